"""``workbench backtest --signals`` on a throw-away store holding a real ETH slice."""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.backtest.stats import STATS_KEYS
from workbench.cli import app
from workbench.cli.backtest import parse_when
from workbench.data.epoch import iso_utc
from workbench.errors import ParameterError

from tests.backtest.test_parity import sma_cross_signals


@pytest.fixture
def signal_file(tmp_path, eth_slice):
    path = tmp_path / "sma.parquet"
    pl.DataFrame({"ts": eth_slice["ts"],
                  "signal": sma_cross_signals(eth_slice["close"].to_numpy())}).write_parquet(path)
    return path


def _run(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_backtest_signals_json_is_stored(eth_store, eth_slice, signal_file):
    ts = eth_slice["ts"]
    out = _run("--db", str(eth_store.path), "backtest", "--signals", str(signal_file),
               "--symbol", "ETH/USDT", "--timeframe", "1m", "--start", str(ts[100]),
               "--end", str(ts[2999]), "--fee", "0.0005", "--fill", "close", "--long-only",
               "--json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    stats = summary["stats"]
    assert list(stats) == list(STATS_KEYS)
    assert summary["n_bars"] == 2900 and stats["# Trades"] > 10
    assert summary["start_ts"] == ts[100] and summary["end_ts"] == ts[2999]
    assert stats["Start"] == iso_utc(ts[100]) and stats["Duration"] == "P2DT19M"
    assert stats["Avg. Trade Duration"].startswith("PT")
    # the stored slice holds two weekdays only: nothing shows the market trades on weekends
    assert summary["annualisation"]["periods_per_year"] == 252
    assert "252 days a year" in summary["annualisation"]["text"]
    row = eth_store.backtests().row(0, named=True)
    assert row["backtest_id"] == summary["backtest_id"]
    assert row["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=1e-15)
    assert row["return_pct"] == pytest.approx(stats["Return [%]"] / 100, rel=1e-12)
    params = json.loads(row["params"])
    assert params["sim"]["fee"] == 0.0005 and params["sim"]["long_only"] is True
    assert pl.read_parquet(summary["trades_path"])["side"].unique().to_list() == ["long"]
    # the baselines ran on the same candles: buy & hold earns the instrument's move
    base = summary["baselines"]
    assert base["model"]["return_pct"] == pytest.approx(summary["stats"]["Return [%]"] / 100, rel=1e-12)
    assert base["random_entries"]["draws"] == 100 and base["verdict"].startswith("The model (")
    assert {"flat", "buy_hold", "persistence", "sma_cross"} <= set(base)


def test_backtest_text_output_and_iso_dates(eth_store, eth_slice, signal_file):
    day = pl.from_epoch(eth_slice["ts"], time_unit="ms").dt.date()[0].isoformat()
    out = _run("--db", str(eth_store.path), "backtest", "--signals", str(signal_file),
               "--symbol", "ETH/USDT", "--timeframe", "1m", "--start", day, "--end", day,
               "--size", "fraction", "--amount", "0.5")
    assert out.exit_code == 0, out.output
    assert "Equity Final [$]" in out.stdout and "Sharpe Ratio" in out.stdout
    assert "Start                    " + day in out.stdout and " %" in out.stdout
    assert "252 days a year" in out.stdout


def test_bad_signal_file_exits_2_naming_the_rule(eth_store, eth_slice, tmp_path):
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"ts": eth_slice["ts"][:3], "signal": [0, 5, 0]}).write_parquet(bad)
    out = _run("--db", str(eth_store.path), "backtest", "--signals", str(bad), "--symbol",
               "ETH/USDT", "--timeframe", "1m")
    assert out.exit_code == 2
    assert "signal_in_{-1,0,1}" in out.stderr and "row 1" in out.stderr


def test_walk_forward_without_session_module_or_model_is_a_clear_error(eth_store, signal_file):
    out = _run("--db", str(eth_store.path), "backtest", "--signals", str(signal_file),
               "--symbol", "ETH/USDT", "--timeframe", "1m", "--train-during", "every_candle")
    assert out.exit_code == 2 and "--train-during" in out.stderr


def test_parse_when():
    assert parse_when("1700000000000") == 1_700_000_000_000
    assert parse_when("2024-01-01") == 1_704_067_200_000
    assert parse_when("2024-01-01", end=True) == 1_704_067_200_000 + 86_400_000 - 1
    with pytest.raises(ParameterError, match="yesterday"):
        parse_when("yesterday")


def test_a_trade_open_at_the_end_is_named_beside_zero_trades(eth_store, eth_slice, tmp_path):
    """A single buy never closed: "# Trades 0" and a non-zero return, and a line saying why."""
    path = tmp_path / "buy_once.parquet"
    signal = [0] * eth_slice.height
    signal[200] = 1
    pl.DataFrame({"ts": eth_slice["ts"], "signal": signal}).write_parquet(path)
    out = _run("--db", str(eth_store.path), "backtest", "--signals", str(path), "--symbol",
               "ETH/USDT", "--timeframe", "1m", "--draws", "10")
    assert out.exit_code == 0, out.output
    assert "# Trades                 0" in out.stdout
    assert ("1 trade was still open at the last candle: counted in Return and Equity, not in "
            "# Trades, Win Rate or Exposure Time") in out.stdout
    before = _run("--db", str(eth_store.path), "backtest", "--signals", str(path), "--symbol",
                  "ETH/USDT", "--timeframe", "1m", "--end", str(eth_slice["ts"][150]),
                  "--draws", "10")  # ends before the buy: no trade, no note
    assert before.exit_code == 0 and "still open" not in before.stdout
