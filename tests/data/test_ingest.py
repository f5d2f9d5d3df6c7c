"""Good inputs of every layout, sorting, duplicates, gaps, idempotency, the content-hash cache."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from workbench.data.ingest import (ingest_file, ingest_shipped, iso_utc, read_candles,
                                   validate_candles)
from workbench.errors import DataValidationError, NotFoundError
from workbench.paths import SHIPPED_SERIES

SMALL = 200  # candles per generated file; the slice's first 200 rows


@pytest.fixture
def rows(eth_slice) -> pl.DataFrame:
    return eth_slice.head(SMALL)


def _write_csv_ms(frame: pl.DataFrame, path):
    frame.write_csv(path)
    return path


def _write_csv_iso(frame: pl.DataFrame, path):
    """ISO-8601 with mixed zones: even rows in UTC (Z), odd rows as +02:00 local time."""
    def iso(i, ms):
        t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        if i % 2:
            return t.astimezone(timezone(timedelta(hours=2))).isoformat()
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.with_columns(pl.Series("ts", [iso(i, t) for i, t in enumerate(frame["ts"])])).write_csv(path)
    return path


def _binance_lines(frame: pl.DataFrame, scale: int) -> list[str]:
    out = []
    for ts, o, h, lo, c, v in frame.iter_rows():
        out.append(f"{ts * scale},{o},{h},{lo},{c},{v},{(ts + 59_999) * scale},"
                   f"{v * c:.4f},77,{v / 2:.4f},{v * c / 2:.4f},0")
    return out


def _write_binance(frame, path, header: bool, scale: int = 1):
    head = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,"
            "taker_buy_volume,taker_buy_quote_volume,ignore"] if header else []
    path.write_text("\n".join(head + _binance_lines(frame, scale)) + "\n")
    return path


WRITERS = {
    "parquet": lambda f, p: (f.write_parquet(p), p)[1],
    "csv_ms": _write_csv_ms,
    "csv_iso_zone": _write_csv_iso,
    "binance_no_header": lambda f, p: _write_binance(f, p, header=False),
    "binance_header": lambda f, p: _write_binance(f, p, header=True),
    "binance_microseconds": lambda f, p: _write_binance(f, p, header=False, scale=1000),
}


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_every_layout_reads_the_same_candles(layout, rows, tmp_path, tmp_store):
    path = WRITERS[layout](rows, tmp_path / f"in.{'parquet' if layout == 'parquet' else 'csv'}")
    frame = read_candles(path)
    assert frame.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert frame.equals(rows)
    summary = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert (summary.status, summary.rows_added, summary.rows_in_file) == ("ingested", SMALL, SMALL)
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(rows)


def test_rows_out_of_order_are_sorted(rows, tmp_path, tmp_store):
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=7)
    assert not shuffled["ts"].is_sorted()
    clean, report = validate_candles(shuffled, "1m", "shuffled")
    assert report.reordered and clean.equals(rows)
    ingest_file(tmp_store, _write_csv_ms(shuffled, tmp_path / "s.csv"), "ETH/USDT", "1m")
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(rows)


def test_exact_duplicates_are_dropped_and_counted(rows, tmp_path, tmp_store):
    doubled = pl.concat([rows, rows.slice(10, 7), rows.slice(50, 1)])
    summary = ingest_file(tmp_store, _write_csv_ms(doubled, tmp_path / "d.csv"), "ETH/USDT", "1m")
    assert (summary.rows_in_file, summary.duplicates_dropped, summary.rows_added) == (SMALL + 8, 8, SMALL)
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(rows)


def test_gaps_are_reported_not_filled(rows, tmp_path, tmp_store):
    holed = rows.filter(~pl.col("ts").is_in(rows["ts"].slice(20, 3).to_list() + [rows["ts"][100]]))
    summary = ingest_file(tmp_store, _write_csv_ms(holed, tmp_path / "g.csv"), "ETH/USDT", "1m")
    ts = rows["ts"]
    assert (summary.gaps, summary.missing_candles) == (2, 4)
    assert summary.gap_ranges == [(ts[20], ts[22]), (ts[100], ts[100])]
    assert summary.to_dict()["gap_ranges_iso"][0] == [iso_utc(ts[20]), iso_utc(ts[22])]
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").height == SMALL - 4


def test_monthly_and_daily_real_series_validate_with_their_gaps(tmp_store):
    summaries = {s.symbol: s for s in ingest_shipped(tmp_store)}
    assert [s.status for s in summaries.values()] == ["ingested"] * len(SHIPPED_SERIES)
    assert summaries["ETH/USDT"].rows_added == 130_708 and summaries["ETH/USDT"].gaps == 0
    assert summaries["BTC/USD"].gaps == 0 and summaries["BTC/USD"].rows_added == 156
    assert summaries["GOOG"].gaps > 400  # weekends and exchange holidays, reported not filled
    assert summaries["EUR/USD"].gaps == 42
    again = ingest_shipped(tmp_store)
    assert [s.status for s in again] == ["cached"] * len(SHIPPED_SERIES)


def test_ingest_is_idempotent_and_cached_by_content(rows, tmp_path, tmp_store):
    path = _write_csv_ms(rows, tmp_path / "a.csv")
    first = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    stored = tmp_store.read_ohlcv("ETH/USDT", "1m")
    second = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert (first.status, second.status) == ("ingested", "cached")
    assert second.rows_added == 0 and second.content_hash == first.content_hash
    assert (second.first_ts, second.last_ts) == (first.first_ts, first.last_ts)
    forced = ingest_file(tmp_store, path, "ETH/USDT", "1m", force_refresh=True)
    assert (forced.status, forced.rows_added, forced.rows_in_file) == ("ingested", 0, SMALL)
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(stored)


def test_cached_file_is_not_parsed(rows, tmp_path, tmp_store, monkeypatch):
    path = _write_csv_ms(rows, tmp_path / "a.csv")
    ingest_file(tmp_store, path, "ETH/USDT", "1m")
    import workbench.data.ingest as ingest

    def boom(*_):
        raise AssertionError("a cached file must not be parsed")
    monkeypatch.setattr(ingest, "read_candle_file", boom)
    assert ingest_file(tmp_store, path, "ETH/USDT", "1m").status == "cached"
    with pytest.raises(AssertionError):
        ingest_file(tmp_store, path, "ETH/USDT", "1m", force_refresh=True)


def test_changed_file_is_read_again_and_merged(rows, tmp_path, tmp_store):
    path = tmp_path / "a.csv"
    _write_csv_ms(rows.head(120), path)
    ingest_file(tmp_store, path, "ETH/USDT", "1m")
    _write_csv_ms(rows.slice(100, 100), path)  # overlaps 20 stored candles, adds 80
    summary = ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert (summary.status, summary.rows_added) == ("ingested", 80)
    assert tmp_store.read_ohlcv("ETH/USDT", "1m").equals(rows)


def test_same_file_for_another_series_is_not_a_cache_hit(rows, tmp_path, tmp_store):
    path = _write_csv_ms(rows, tmp_path / "a.csv")
    ingest_file(tmp_store, path, "ETH/USDT", "1m")
    assert ingest_file(tmp_store, path, "ETH-copy", "1m").status == "ingested"


def test_file_on_another_grid_than_the_store_is_rejected(rows, tmp_path, eth_store):
    shifted = rows.with_columns(pl.col("ts") + 30_000)
    before = eth_store.read_ohlcv("ETH/USDT", "1m")
    with pytest.raises(DataValidationError) as info:
        ingest_file(eth_store, _write_csv_ms(shifted, tmp_path / "x.csv"), "ETH/USDT", "1m")
    assert info.value.rule == "off_grid" and info.value.row == 2  # refused before the merge
    assert eth_store.read_ohlcv("ETH/USDT", "1m").equals(before)


def test_validate_candles_checks_a_frame_from_a_feed(rows):
    bad = rows.with_columns(pl.when(pl.int_range(pl.len()) == 17).then(-5.0)
                            .otherwise(pl.col("volume")).alias("volume"))
    with pytest.raises(DataValidationError) as info:
        validate_candles(bad, "1m", "push feed", first_row=1000)
    assert (info.value.rule, info.value.row, info.value.ts) == ("negative_volume", 1017, rows["ts"][17])
    assert "push feed" in str(info.value)


def test_a_short_feed_batch_with_dropped_candles_is_not_taken_for_another_timeframe(rows):
    """A live feed's backfill after dropped candles (4 candles, 2 of 3 steps gaps) once failed
    as 'timeframe_mismatch'; a few steps are no evidence of another timeframe."""
    batch = rows[[0, 2, 4, 5]]
    clean, _ = validate_candles(batch, "1m", "push feed")
    assert clean["ts"].to_list() == batch["ts"].to_list()


def test_first_offending_row_is_reported(rows):
    v = rows["high"].to_numpy().copy()
    v[[30, 150]] = 1.0  # two bad rows: the first one is named
    with pytest.raises(DataValidationError) as info:
        validate_candles(rows.with_columns(pl.Series("high", v)), "1m")
    assert info.value.row == 31 and info.value.rule == "high_below_open_close"


def test_missing_file_is_a_clear_error(tmp_path, tmp_store):
    with pytest.raises(NotFoundError, match="does not exist"):
        ingest_file(tmp_store, tmp_path / "nope.csv", "X", "1m")


def test_summary_dict_is_json_ready(rows, tmp_path, tmp_store):
    import json

    d = ingest_file(tmp_store, _write_csv_ms(rows, tmp_path / "a.csv"), "ETH/USDT", "1m").to_dict()
    assert json.loads(json.dumps(d))["first_ts_iso"] == iso_utc(rows["ts"][0])
    assert set(d) >= {"path", "symbol", "timeframe", "status", "rows_in_file", "rows_added",
                      "duplicates_dropped", "gaps", "gap_ranges", "first_ts", "last_ts", "seconds",
                      "first_ts_iso", "last_ts_iso"}
    assert np.isfinite(d["seconds"]) and d["seconds"] > 0
