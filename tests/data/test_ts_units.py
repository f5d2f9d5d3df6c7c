"""Integer timestamps are never misread (issue 11): each test is named after what broke.

The old reader took every integer ts as epoch ms: a file in microseconds was stored in the year
57000 and broke every later report, a file in seconds was stored in January 1970.
"""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.ingest import ingest_file, iso_utc, validate_candles
from workbench.errors import DataValidationError, ParameterError

runner = CliRunner()
NEXT = 3_000  # eth_slice row count: candle NEXT of eth_1m's slice follows the eth_store series


@pytest.fixture
def two(eth_slice) -> pl.DataFrame:
    return eth_slice.head(2)


def _scaled(frame: pl.DataFrame, path, factor: int = 1, divisor: int = 1):
    frame.with_columns(pl.col("ts") * factor // divisor).write_parquet(path)
    return path


def _parquet(frame: pl.DataFrame, path):
    frame.write_parquet(path)
    return path


def _unchanged(store, before: pl.DataFrame) -> bool:
    return store.read_ohlcv("ETH/USDT", "1m").equals(before)


@pytest.mark.parametrize("unit, factor", [("us", 1_000), ("ns", 1_000_000)])
def test_two_row_parquet_in_micro_or_nanoseconds_is_stored_at_its_real_time(unit, factor, two,
                                                                             tmp_path, tmp_store):
    path = _scaled(two, tmp_path / f"{unit}.parquet", factor)
    summary = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert summary.ts_unit == unit and summary.rows_added == 2
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(two)
    assert summary.to_dict()["first_ts_iso"] == iso_utc(two["ts"][0])
    assert iso_utc(two["ts"][0]).startswith("2025-")


def test_microsecond_row_appended_to_a_series_lands_after_its_last_candle(eth_store, eth_1m,
                                                                         tmp_path):
    nxt = eth_1m.slice(20_000 + NEXT, 1)
    summary = ingest_file(eth_store, _scaled(nxt, tmp_path / "us.parquet", 1_000), "ETH/USDT", "1m")
    stored = eth_store.read_ohlcv("ETH/USDT", "1m")
    assert summary.rows_added == 1 and stored.height == NEXT + 1
    assert stored["ts"][-1] == nxt["ts"][0] and stored["ts"].max() < 10**13


def test_one_row_file_in_seconds_is_not_stored_in_1970(eth_slice, tmp_path, tmp_store):
    path = tmp_path / "s.csv"
    eth_slice.head(1).with_columns(pl.col("ts") // 1000).write_csv(path)
    summary = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert summary.ts_unit == "s"
    assert tmp_store.read_ohlcv("ETH/USDT", "1m")["ts"][0] == eth_slice["ts"][0]
    assert summary.to_dict()["first_ts_iso"].startswith("2025-")


def test_ts_of_no_plausible_unit_is_refused_naming_the_readings_and_store_untouched(
        eth_slice, tmp_path, eth_store):
    before = eth_store.read_ohlcv("ETH/USDT", "1m")
    path = tmp_path / "odd.csv"
    eth_slice.head(1).with_columns(ts=pl.lit(10**10)).write_csv(path)  # 1970-04 in ms, 2286 in s
    with pytest.raises(DataValidationError) as info:
        ingest_file(eth_store, path, "ETH/USDT", "1m")
    err = info.value
    assert (err.rule, err.row) == ("ts_range", 2)
    assert "as seconds 2286-" in str(err) and "as milliseconds 1970-" in str(err)
    assert "--ts-unit" in str(err) and _unchanged(eth_store, before)


def test_declared_unit_reads_old_dates_and_refuses_a_unit_that_gives_no_date(eth_slice, tmp_path,
                                                                            tmp_store):
    old = eth_slice.head(3).with_columns(ts=pl.Series([-86_400_000 * 365 * 5 + 60_000 * k
                                                       for k in range(3)]))  # 1965
    path = _parquet(old, tmp_path / "1965.parquet")
    with pytest.raises(DataValidationError, match="ts_range"):
        ingest_file(tmp_store, path, "X", "1m")  # not inferred: 1965 is outside 1971..2199
    summary = ingest_file(tmp_store, path, "X", "1m", ts_unit="ms")
    assert summary.rows_added == 3
    assert iso_utc(tmp_store.read_ohlcv("X", "1m")["ts"][0]).startswith("1965-")
    micro = _scaled(eth_slice.head(2), tmp_path / "us.parquet", 1_000)
    with pytest.raises(DataValidationError) as info:
        ingest_file(tmp_store, micro, "ETH/USDT", "1m", ts_unit="ms")
    assert info.value.rule == "ts_range" and "as microseconds 2025-" in str(info.value)
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").height == 0


def test_declared_unit_is_part_of_the_cache_key(eth_slice, tmp_path, tmp_store):
    path = _scaled(eth_slice.head(5), tmp_path / "s.parquet", divisor=1_000)
    assert ingest_file(tmp_store, path, "ETH/USDT", "1m").status == "ingested"
    with pytest.raises(DataValidationError, match="step"):  # seconds read as ms: 60 ms apart
        ingest_file(tmp_store, path, "ETH/USDT", "1m", ts_unit="ms")


def test_unknown_ts_unit_and_unit_for_iso_text_are_parameter_errors(eth_slice, tmp_path,
                                                                   tmp_store):
    path = _parquet(eth_slice.head(2), tmp_path / "a.parquet")
    with pytest.raises(ParameterError, match="--ts-unit 'h'"):
        ingest_file(tmp_store, path, "ETH/USDT", "1m", ts_unit="h")
    iso = tmp_path / "iso.csv"
    eth_slice.head(2).with_columns(pl.col("ts").map_elements(iso_utc, return_dtype=pl.String)
                                   ).write_csv(iso)
    with pytest.raises(ParameterError, match="integer epoch"):
        ingest_file(tmp_store, iso, "ETH/USDT", "1m", ts_unit="s")


def test_a_frame_of_microseconds_is_refused_by_validate_candles(eth_slice):
    micro = eth_slice.head(3).with_columns(pl.col("ts") * 1_000)
    with pytest.raises(DataValidationError) as info:
        validate_candles(micro, "1m", "push feed")
    assert info.value.rule == "ts_units" and "microseconds" in str(info.value)
    clean, _ = validate_candles(micro, "1m", "push feed", ts_unit="us")
    assert clean.equals(eth_slice.head(3))


def test_push_feed_refuses_a_microsecond_candle_on_an_empty_store(eth_slice, tmp_store):
    from workbench.live.feed import PushFeed

    feed = PushFeed.from_store(tmp_store, "ETH/USDT", "1m")
    row = eth_slice.row(0, named=True)
    with pytest.raises(DataValidationError) as info:
        feed.push({**row, "ts": row["ts"] * 1_000})
    assert info.value.rule == "ts_units"
    assert tmp_store.series().height == 0
    assert feed.push(row) == 1  # the same candle in ms is taken


def test_candles_30s_off_the_minute_are_refused_not_stored(eth_slice, tmp_path, tmp_store):
    path = tmp_path / "off.csv"
    eth_slice.head(5).with_columns(pl.col("ts") + 30_000).write_csv(path)
    with pytest.raises(DataValidationError) as info:
        ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert (info.value.rule, info.value.row) == ("off_grid", 2) and "30 s after" in str(info.value)
    assert tmp_store.series().height == 0


def test_weekly_candles_may_open_on_any_weekday_at_midnight(tmp_store, tmp_path):
    from workbench.paths import DATA_DIR

    daily = pl.read_parquet(DATA_DIR / "goog_1d.parquet").head(1)
    week = 7 * 86_400_000
    monday = pl.concat([daily.with_columns(ts=pl.col("ts") + k * week) for k in range(3)])
    path = _parquet(monday, tmp_path / "w.parquet")
    assert ingest_file(tmp_store, path, "GOOG", "1w").rows_added == 3
    noon = monday.with_columns(pl.col("ts") + 12 * 3_600_000)
    path = _parquet(noon, tmp_path / "n.parquet")
    with pytest.raises(DataValidationError, match="off_grid"):
        ingest_file(tmp_store, path, "GOOG2", "1w")


@pytest.mark.parametrize("symbol", ["", " ETH", "ETH\n"])
def test_empty_or_padded_symbol_is_refused_before_anything_is_read(symbol, eth_slice, tmp_path,
                                                                  tmp_store):
    path = _parquet(eth_slice.head(3), tmp_path / "a.parquet")
    with pytest.raises(ParameterError, match="symbol"):
        ingest_file(tmp_store, path, symbol, "1m")
    with pytest.raises(ParameterError, match="symbol"):
        tmp_store.replace_series(symbol, "1m", eth_slice.head(3))
    assert tmp_store.series().height == 0


def test_a_summary_that_cannot_be_rendered_commits_nothing(eth_slice, tmp_path, eth_store,
                                                          monkeypatch):
    """The old code rendered ISO text after the commit: a failure there left the rows stored."""
    import workbench.data.ingest as ingest

    def broken(self):
        raise RuntimeError("rendering failed")
    monkeypatch.setattr(ingest.IngestSummary, "to_dict", broken)
    before = eth_store.read_ohlcv("ETH/USDT", "1m")
    path = tmp_path / "next.parquet"
    eth_slice.head(1).with_columns(pl.col("ts") + 3_000 * 60_000).write_parquet(path)
    with pytest.raises(RuntimeError):
        ingest.ingest_file(eth_store, path, "ETH/USDT", "1m")
    assert _unchanged(eth_store, before)


def test_cli_ts_unit_option_and_inferred_unit_is_reported(eth_slice, tmp_path):
    db = tmp_path / "x.duckdb"
    path = _scaled(eth_slice.head(4), tmp_path / "us.parquet", 1_000)
    text = runner.invoke(app, ["--db", str(db), "data", "ingest", str(path), "--symbol", "E",
                               "--timeframe", "1m"])
    assert text.exit_code == 0 and "read as epoch microseconds" in text.stdout
    declared = runner.invoke(app, ["--db", str(db), "data", "ingest", str(path), "--symbol", "E",
                                   "--timeframe", "1m", "--ts-unit", "us", "--json"])
    assert declared.exit_code == 0 and json.loads(declared.stdout)["ts_unit"] == "us"
    bad = runner.invoke(app, ["--db", str(db), "data", "ingest", str(path), "--symbol", "E",
                              "--timeframe", "1m", "--ts-unit", "ms"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "microseconds" in bad.stderr and "Traceback" not in bad.output
