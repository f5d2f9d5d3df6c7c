"""Every write path validates, any store can be inspected and repaired (issue 11).

Each test is named after what broke: resample turned finite volumes into inf, appends and
indicator rows took NaN, ``--db some.csv`` "worked" on an in-memory database, a store holding a
microsecond row could not be listed or repaired, ``--levels`` had no bound.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.resample import resample_ohlcv, resample_series
from workbench.data.store import Store
from workbench.errors import DataValidationError, StoreError

runner = CliRunner()
WORKBENCH = Path(sys.executable).with_name("workbench")


def wb(db, *args):
    return runner.invoke(app, ["--db", str(db), "data", *args])


def _one_clear_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- write paths ------------------------------------------------------------------------------
def test_resample_of_huge_finite_volumes_is_refused_not_inf(eth_slice, tmp_store):
    five = eth_slice.head(15).with_columns(volume=pl.lit(1e308))
    start = five.filter(pl.col("ts") % 300_000 == 0)["ts"][0]
    with pytest.raises(DataValidationError) as info:
        resample_ohlcv(five, "1m", "5m")
    assert info.value.rule == "not_finite" and "volume" in str(info.value)
    assert info.value.ts == start
    tmp_store.replace_series("ETH/USDT", "1m", five)
    with pytest.raises(DataValidationError):
        resample_series(tmp_store, "ETH/USDT", "1m", "5m")
    assert tmp_store.read_ohlcv("ETH/USDT", "5m").height == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_append_and_replace_refuse_non_finite_values(bad, eth_store, eth_1m):
    before = eth_store.read_ohlcv("ETH/USDT", "1m")
    nxt = eth_1m.slice(23_000, 2).with_columns(volume=pl.Series([1.0, bad]))
    with pytest.raises(DataValidationError) as info:
        eth_store.append_candles("ETH/USDT", "1m", nxt)
    assert (info.value.rule, info.value.row, info.value.ts) == ("not_finite", 2, nxt["ts"][1])
    assert "volume" in str(info.value)
    with pytest.raises(DataValidationError, match="not_finite"):
        eth_store.replace_series("ETH/USDT", "1m", pl.concat([before, nxt]))
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(before)


def test_store_refuses_a_ts_no_date_can_be_written_for(eth_store, eth_1m):
    micro = eth_1m.slice(23_000, 1).with_columns(pl.col("ts") * 1_000)
    with pytest.raises(DataValidationError, match="ts_range"):
        eth_store.append_candles("ETH/USDT", "1m", micro)
    assert eth_store.last_ts("ETH/USDT", "1m") == eth_1m["ts"][22_999]


def test_indicator_persistence_refuses_inf_but_keeps_warm_up_nulls(eth_store):
    from workbench.features.indicators import persist_indicators

    good = persist_indicators(eth_store, "ETH/USDT", "1m")
    assert good["sma_50"].null_count() == 49  # warm-up nulls are not a fault
    bad = good.with_columns(rsi_14=pl.when(pl.int_range(pl.len()) == 100).then(math.inf)
                            .otherwise(pl.col("rsi_14")))
    with pytest.raises(DataValidationError) as info:
        eth_store.replace_indicators("ETH/USDT", "1m", bad)
    assert (info.value.rule, info.value.row, info.value.ts) == ("not_finite", 101, good["ts"][100])
    assert "rsi_14" in str(info.value)
    assert eth_store.read_indicators("ETH/USDT", "1m").equals(good)


# -- --db that is not a DuckDB file ----------------------------------------------------------
@pytest.mark.parametrize("name", ["candles.csv", "candles.parquet", "notes.txt"])
def test_db_pointing_at_another_file_is_refused_and_the_file_untouched(name, eth_slice, tmp_path):
    path = tmp_path / name
    if name.endswith(".parquet"):
        eth_slice.head(5).write_parquet(path)
    else:
        eth_slice.head(5).write_csv(path)
    original = path.read_bytes()
    with pytest.raises(StoreError, match="not a valid DuckDB database file"):
        Store(path).series()
    good = tmp_path / "good.csv"
    eth_slice.head(5).write_csv(good)
    for args in (["info"], ["ingest", str(good), "--symbol", "E", "--timeframe", "1m"],
                 ["pivots", "--symbol", "E", "--timeframe", "1m"],
                 ["resample", "--symbol", "E", "--to", "5m"],
                 ["delete", "--symbol", "E", "--timeframe", "1m", "--yes"]):
        assert "not a valid DuckDB database" in _one_clear_line(wb(path, *args))
    assert path.read_bytes() == original
    assert not list(tmp_path.glob(f"{name}.*"))  # no WAL or marker left beside it


def test_db_csv_through_the_console_script_exits_2_with_one_line(eth_slice, tmp_path):
    path = tmp_path / "some.csv"
    eth_slice.head(5).write_csv(path)
    for args in (["data", "info"], ["data", "ingest", str(path), "--symbol", "E",
                                    "--timeframe", "1m"]):
        out = subprocess.run([str(WORKBENCH), "--db", str(path), *args], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2 and out.stderr.startswith("error: store ")
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


# -- a store broken by old code ---------------------------------------------------------------
def _break(db: Path, ts: int) -> None:
    """What the old reader did: a microsecond row committed into a millisecond series."""
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO ohlcv VALUES ('ETH/USDT', '1m', ?, 1, 2, 0.5, 1, 1)", [ts])
    con.close()


def test_data_info_lists_a_store_holding_a_microsecond_row_and_delete_repairs_it(eth_store,
                                                                                 eth_slice):
    db = eth_store.path
    micro = int(eth_slice["ts"][-1]) * 1_000 + 60_000_000
    _break(db, micro)
    text = wb(db, "info")
    assert text.exit_code == 0 and "Traceback" not in text.output
    assert f"invalid ts {micro}" in text.stdout and "workbench data delete" in text.stdout
    rows = json.loads(wb(db, "info", "--json").stdout)
    assert rows[0]["invalid_ts_rows"] == 1 and rows[0]["gaps"] == 0 and rows[0]["rows"] == 3_001
    fix = text.stdout.strip().splitlines()[-1].split()  # the command info suggests
    assert fix[:3] == ["workbench", "data", "delete"]
    repaired = wb(db, "delete", *[a.strip("'") for a in fix[3:]], "--json")
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.stdout)["deleted"]["candles"] == 1
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(eth_slice)


# -- data delete ------------------------------------------------------------------------------
def test_delete_without_yes_refuses_and_changes_nothing(eth_store, eth_slice):
    result = wb(eth_store.path, "delete", "--symbol", "ETH/USDT", "--timeframe", "1m")
    line = _one_clear_line(result)
    assert "--yes" in line and "3,000 candle(s)" in line
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(eth_slice)


def test_delete_a_range_removes_candles_and_the_series_derived_rows(eth_slice, tmp_path):
    from workbench.data.ingest import ingest_file
    from workbench.features.indicators import persist_indicators
    from workbench.features.pivots import persist_pivots

    store = Store(tmp_path / "x.duckdb")
    path = tmp_path / "eth.parquet"
    eth_slice.head(600).write_parquet(path)
    ingest_file(store, path, "ETH/USDT", "1m")
    store.replace_series("BTC/USDT", "1m", eth_slice.head(10))  # another series: kept
    persist_indicators(store, "ETH/USDT", "1m")
    persist_pivots(store, "ETH/USDT", "1m", 2, 3)
    n_piv = store.read_pivots("ETH/USDT", "1m").height
    lo, hi = eth_slice["ts"][100], eth_slice["ts"][199]
    result = wb(store.path, "delete", "--symbol", "ETH/USDT", "--timeframe", "1m", "--start",
                str(lo), "--end", str(hi), "--yes", "--json")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["deleted"] == {"candles": 100, "pivot_points": n_piv, "indicators": 600,
                            "ingest_cache": 1}
    assert d["candles_left"] == 500 and n_piv > 0
    kept = store.read_ohlcv("ETH/USDT", "1m")
    assert kept.equals(eth_slice.head(600).filter(~pl.col("ts").is_between(lo, hi)))
    assert store.read_pivots("ETH/USDT", "1m").height == 0
    assert store.read_indicators("ETH/USDT", "1m").height == 0
    assert store.read_ohlcv("BTC/USDT", "1m").height == 10
    assert ingest_file(store, path, "ETH/USDT", "1m").rows_added == 100  # cache gone: re-read


def test_delete_of_an_unknown_series_is_not_found(tmp_store):
    line = _one_clear_line(wb(tmp_store.path, "delete", "--symbol", "NOPE", "--timeframe", "1m",
                              "--yes"))
    assert "NOPE" in line


# -- bounded options --------------------------------------------------------------------------
@pytest.mark.parametrize("levels", ["0", "11", "100000"])
def test_pivots_levels_out_of_range_is_refused_before_any_work(levels, eth_store):
    line = _one_clear_line(wb(eth_store.path, "pivots", "--symbol", "ETH/USDT", "--timeframe",
                              "1m", "--levels", levels))
    assert "--levels" in line and "1..10" in line
