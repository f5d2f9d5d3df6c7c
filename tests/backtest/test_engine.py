"""The backtest engine: signal-file backtests end to end, persistence, progress, errors."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.backtest.engine import PHASES, BacktestConfig, run_backtest
from workbench.backtest.simulate import SimConfig, simulate
from workbench.data.store import Store
from workbench.errors import ConfigError, DataValidationError, NotFoundError, ParameterError, \
    StoreError

from tests.backtest.test_parity import sma_cross_signals


@pytest.fixture
def signal_file(tmp_path, eth_slice):
    sig = sma_cross_signals(eth_slice["close"].to_numpy())
    path = tmp_path / "sma.parquet"
    pl.DataFrame({"ts": eth_slice["ts"], "signal": sig}).write_parquet(path)
    return path


def _cfg(eth_slice, signal_file, **kw):
    ts = eth_slice["ts"]
    return BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[500]),
                          end=int(ts[2499]), signals_path=str(signal_file), **kw)


def test_signal_file_backtest_equals_the_simulator_on_the_range(eth_store, eth_slice,
                                                                signal_file):
    calls = []
    res = run_backtest(_cfg(eth_slice, signal_file), store=eth_store,
                       progress=lambda *a: calls.append(a))
    rng = eth_slice.slice(500, 2000)
    sim = simulate(rng["open"].to_numpy(), rng["close"].to_numpy(),
                   sma_cross_signals(eth_slice["close"].to_numpy())[500:2500])
    assert res.stats["Equity Final [$]"] == sim.final_equity
    assert res.summary()["n_bars"] == 2000 and res.stats["# Trades"] > 20
    assert res.equity["ts"].to_list() == rng["ts"].to_list()
    assert [c[0] for c in calls] == ["load", "signals", "simulate", "simulate", "persist"]
    assert {c[0] for c in calls} == set(PHASES)


def test_results_are_persisted_queryable_and_round_trip(eth_store, eth_slice, signal_file):
    res = run_backtest(_cfg(eth_slice, signal_file, sim=SimConfig(fill="close")),
                       store=eth_store)
    rows = eth_store.backtests()
    assert rows.height == 1
    row = rows.row(0, named=True)
    assert row["backtest_id"] == res.backtest_id and row["run_id"] is None
    assert row["final_equity"] == res.stats["Equity Final [$]"]
    assert row["n_trades"] == res.stats["# Trades"]
    assert row["sharpe"] == pytest.approx(res.stats["Sharpe Ratio"], nan_ok=True)
    assert row["start_ts"] == int(eth_slice["ts"][500])
    assert '"fill": "close"' in row["params"]
    assert res.trades_path.parent == eth_store.path.parent / "backtests" / res.backtest_id
    assert pl.read_parquet(row["trades_path"]).equals(res.trades)
    assert pl.read_parquet(row["equity_path"]).equals(res.equity)
    assert not list(res.trades_path.parent.parent.glob(".*tmp"))


def test_a_failed_summary_insert_leaves_no_files(eth_store, eth_slice, signal_file,
                                                 monkeypatch):
    def refuse(self, row):
        raise StoreError("disk full")

    monkeypatch.setattr(Store, "save_backtest", refuse)
    with pytest.raises(StoreError):
        run_backtest(_cfg(eth_slice, signal_file), store=eth_store)
    assert list((eth_store.path.parent / "backtests").iterdir()) == []


def test_persist_false_stores_nothing(eth_store, eth_slice, signal_file):
    res = run_backtest(_cfg(eth_slice, signal_file, persist=False), store=eth_store)
    assert res.trades_path is None and eth_store.backtests().height == 0


def test_bad_inputs_raise_typed_errors(eth_store, eth_slice, signal_file, tmp_path):
    with pytest.raises(ParameterError, match="exactly one"):
        BacktestConfig(symbol="ETH/USDT", timeframe="1m")
    with pytest.raises(ParameterError, match="timeframe"):
        BacktestConfig(symbol="ETH/USDT", timeframe="7m", signals_path="x")
    with pytest.raises(NotFoundError, match="BTC/USDT"):
        run_backtest(BacktestConfig(symbol="BTC/USDT", timeframe="1m",
                                    signals_path=str(signal_file)), store=eth_store)
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"ts": eth_slice["ts"][:3], "signal": [0, 3, 0]}).write_parquet(bad)
    with pytest.raises(DataValidationError, match="row 1"):
        run_backtest(_cfg(eth_slice, bad), store=eth_store)
    assert eth_store.backtests().height == 0


def test_walk_forward_without_a_model_is_refused(eth_store, eth_slice, signal_file):
    with pytest.raises((ParameterError, ConfigError)):
        run_backtest(_cfg(eth_slice, signal_file, train_during="every_candle"), store=eth_store)


def test_walk_forward_without_its_signals_names_the_live_entry_point(eth_store):
    """The backtest never imports the live layer: walk-forward signals must be handed in."""
    cfg = BacktestConfig(symbol="ETH/USDT", timeframe="1m", model="any-run",
                         train_during="pivots_only")
    with pytest.raises(ConfigError, match="workbench.live.walk_forward.run_walk_forward_backtest"):
        run_backtest(cfg, store=eth_store)
    assert eth_store.backtests().height == 0


def test_precomputed_signals_and_a_signal_source_equal_the_signal_file(eth_store, eth_slice,
                                                                      signal_file):
    cfg = _cfg(eth_slice, signal_file, persist=False)
    by_file = run_backtest(cfg, store=eth_store)
    given = by_file.equity["signal"].to_numpy()
    by_array = run_backtest(cfg, store=eth_store, signals=given)
    calls = []
    by_source = run_backtest(cfg, store=eth_store,
                             signals=lambda c, st, pr: calls.append(c) or given)
    assert (by_array.stats.to_json() == by_file.stats.to_json() == by_source.stats.to_json()
            and calls == [cfg])
    with pytest.raises(ParameterError, match="2000 candles"):
        run_backtest(cfg, store=eth_store, signals=given[:-1])
    with pytest.raises(ParameterError, match="-1 .* 0 .* \\+1"):
        run_backtest(cfg, store=eth_store, signals=given * 2)




def test_annualisation_reads_the_calendar_of_the_whole_stored_series(tmp_store, eth_1m,
                                                                     tmp_path):
    week = eth_1m.slice(0, 8 * 1440)  # Tuesday 2025-05-20 .. Tuesday 2025-05-27: one weekend
    tmp_store.replace_series("ETH/USDT", "1m", week)
    path = tmp_path / "sig.parquet"
    pl.DataFrame({"ts": week["ts"], "signal": sma_cross_signals(week["close"].to_numpy())}) \
        .write_parquet(path)
    ts = week["ts"]
    res = run_backtest(BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[0]),
                                      end=int(ts[2 * 1440 - 1]), signals_path=str(path),
                                      persist=False), store=tmp_store)
    ann = res.stats.annualisation  # the range holds two weekdays, the series a weekend
    assert (ann.calendar, ann.periods_per_year, ann.n_returns) == ("24/7", 365, 1)
