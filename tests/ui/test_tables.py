"""Readable tables: UTC times, durations, percentages, whole rows, no dtype line, no reprs."""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.backtest.engine import BacktestConfig
from workbench.backtest.simulate import SimConfig, simulate
from workbench.backtest.stats import compute_stats, trades_frame
from workbench.ui import tables

T0 = 1_748_736_000_000  # 2025-06-01 00:00 UTC


def test_frames_read_as_utc_times_and_numbers_without_dtype_rows():
    frame = pl.DataFrame({"ts": [T0, T0 + 90_000], "close": [2512.3456, 0.000123],
                          "win": [0.5, float("nan")], "ok": [True, False]})
    t = tables.table(frame, {"win": "fraction"})
    assert t.cell(0, "ts") == "2025-06-01 00:00 UTC" and t.cell(1, "ts") == "2025-06-01 00:01 UTC"
    assert t.cell(0, "close") == "2,512.35" and t.cell(1, "close") == "0.000123"
    assert t.cell(0, "win") == "50.00 %" and t.cell(1, "win") == "n/a"
    assert t.cell(0, "ok") == "yes"
    page = t._repr_html_()
    assert "str" not in page and "f64" not in page and "shape" not in page and "…" not in page


def test_statistics_and_trades_tables_are_whole_and_carry_units(eth_slice):
    frame = eth_slice.head(600)
    sig = np.zeros(600, dtype=np.int8)
    sig[[10, 200, 400]] = [1, -1, 1]
    sim = simulate(frame["open"].to_numpy(), frame["close"].to_numpy(), sig, SimConfig())
    ts = frame["ts"].to_numpy()
    stats = tables.stats_table(compute_stats(sim, ts, frame["close"].to_numpy()))
    assert len(stats.rows) == 32 and stats.cell(22, "statistic") == "Win Rate [%]"
    assert stats.cell(22, "value").endswith(" %") and "days a year" in stats.caption
    trades = tables.trades_table(trades_frame(sim, ts))
    assert trades.columns == ("entry", "exit", "side", "duration", "entry price", "exit price",
                              "PnL", "PnL %")
    assert trades.cell(0, "side") == "long" and trades.cell(0, "duration") == "3 h 10 min"
    assert trades.cell(2, "exit") == "open" and trades.cell(0, "PnL %").endswith(" %")
    assert trades.cell(0, "entry").endswith("UTC") and "3 trades" in trades.caption


def test_a_config_reads_as_a_parameter_table_not_a_repr():
    cfg = BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=T0, end=T0 + 3_600_000,
                         model="run-1", sim=SimConfig(fee=0.001))
    t = tables.params_table(cfg)
    shown = dict(t.rows)
    assert shown["start"] == "2025-06-01 00:00 UTC" and shown["sim.fee"] == "0.100 %"
    assert shown["sim.fill"] == "next_open" and shown["signals_path"] == "–"
    assert "BacktestConfig(" not in repr(t) and "SimConfig(" not in t._repr_html_()


def test_research_tables_read_like_the_statistics_block():
    from workbench.research.report import baselines_frame
    from workbench.ui.tables import research_table

    stats = {"return_pct": -0.0286, "sharpe": -1.234, "max_drawdown": 0.05, "n_trades": 16}
    shown = research_table(baselines_frame({
        "model": stats, "buy_hold": {**stats, "n_trades": 1},
        "random_entries": {"draws": 100, "return_pct": 0.01, "return_p05": -0.02,
                           "return_p95": 0.03, "n_trades": 16, "model_percentile": 12.0}}))
    sharpe = "Sharpe (annualised from bars)"
    assert shown.columns[:5] == ("strategy", "return", sharpe, "max drawdown", "trades opened")
    assert shown.cell(0, "return") == "-2.86 %" and shown.cell(0, "max drawdown") == "-5.00 %"
    # a value that does not apply reads the same in every column
    assert shown.cell(2, sharpe) == shown.cell(2, "max drawdown") == "n/a"
    board = research_table(pl.DataFrame({
        "name": ["trial 0", "flat (always HOLD)"], "value": [1.5, None],
        "oos_max_drawdown": [-0.1, 0.0],
        "params": ['{"model.d_model": 8, "training.learning_rate": 0.0031234567}', None]}))
    assert board.cell(0, "parameters") == "model.d_model = 8, training.learning_rate = 0.00312"
    assert board.cell(0, "OOS max drawdown") == "-10.00 %"
    assert board.cell(1, "OOS max drawdown") == "0.00 %"  # never "-0.00 %"
    assert board.cell(1, "objective") == board.cell(1, "parameters") == "n/a"
