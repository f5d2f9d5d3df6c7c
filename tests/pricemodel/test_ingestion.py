"""Ingestion stage: source selection, resampling, exogenous join and the deterministic cache."""
from __future__ import annotations

import polars as pl
import pytest

from workbench.errors import DataValidationError, NotFoundError, ParameterError
from workbench.pricemodel import ingestion
from workbench.pricemodel.ingestion import COUNTERS, IngestRequest, date_to_ms, ingest

START, END = date_to_ms("2025-06-02"), date_to_ms("2025-06-04", end_of_day=True)


def _req(tf="15m", exog=None):
    return IngestRequest("ETH/USDT", tf, START, END, exog)


def test_date_to_ms_parses_utc_days_and_rejects_garbage():
    assert date_to_ms("2025-06-02") == 1748822400000
    assert date_to_ms("2025-06-02", end_of_day=True) == 1748822400000 + 86_400_000 - 1
    with pytest.raises(ParameterError, match="2025/06/02"):
        date_to_ms("2025/06/02")


def test_source_timeframe_is_the_stored_one_else_the_finest_divisor(eth_store):
    assert ingestion.find_source_timeframe(eth_store, "ETH/USDT", "1m") == "1m"
    assert ingestion.find_source_timeframe(eth_store, "ETH/USDT", "1h") == "1m"
    with pytest.raises(NotFoundError, match="BTC/USDT.*stored timeframes: none"):
        ingestion.find_source_timeframe(eth_store, "BTC/USDT", "1h")


def test_resampled_candles_aggregate_the_source_rows(eth_store, eth_slice, tmp_path):
    out = ingest(eth_store, _req(), tmp_path).frame
    first = out.row(0, named=True)
    rows = eth_slice.filter((pl.col("ts") >= first["ts"]) & (pl.col("ts") < first["ts"] + 900_000))
    assert rows.height == 15
    assert first["open"] == rows["open"][0] and first["close"] == rows["close"][-1]
    assert first["high"] == rows["high"].max() and first["low"] == rows["low"].min()
    assert first["volume"] == pytest.approx(rows["volume"].sum())
    assert out["ts"].diff().drop_nulls().unique().to_list() == [900_000]
    # the last 1m candle is 23:19, so the 23:15 bucket is incomplete and dropped
    assert out["ts"][-1] + 900_000 <= eth_slice["ts"][-1] + 60_000


def test_cache_miss_writes_then_hit_reuses_without_recomputing(eth_store, tmp_path):
    COUNTERS.clear()
    miss = ingest(eth_store, _req(), tmp_path)
    assert not miss.cache_hit and miss.cache_path.is_file()
    assert COUNTERS["resample"] == 1 and COUNTERS["cache_write"] == 1
    mtime = miss.cache_path.stat().st_mtime_ns
    hit = ingest(eth_store, _req(), tmp_path)
    assert hit.cache_hit and hit.cache_path == miss.cache_path
    # no work on a hit: the source rows are not even read (the store fingerprints them)
    assert COUNTERS["resample"] == 1 and COUNTERS["cache_write"] == 1
    assert COUNTERS["source_read"] == 1
    assert hit.cache_path.stat().st_mtime_ns == mtime
    assert hit.frame.equals(miss.frame)


def test_force_refresh_rebuilds_the_same_key(eth_store, tmp_path):
    COUNTERS.clear()
    first = ingest(eth_store, _req(), tmp_path)
    again = ingest(eth_store, _req(), tmp_path, force_refresh=True)
    assert not again.cache_hit and again.cache_path == first.cache_path
    assert COUNTERS["resample"] == 2 and COUNTERS["cache_write"] == 2
    assert again.frame.equals(first.frame)


def test_changed_source_rows_change_the_key(eth_store, eth_slice, tmp_path):
    before = ingest(eth_store, _req(), tmp_path)
    edited = eth_slice.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(pl.col("close") + 1.0)
        .otherwise(pl.col("close")).alias("close"))
    eth_store.replace_series("ETH/USDT", "1m", edited)
    after = ingest(eth_store, _req(), tmp_path)
    assert not after.cache_hit and after.source_hash != before.source_hash
    assert after.cache_path != before.cache_path


def test_store_fingerprint_changes_with_any_row(eth_store, eth_slice):
    fp = eth_store.ohlcv_fingerprint("ETH/USDT", "1m")
    assert fp["rows"] == 3000 and fp["first_ts"] == eth_slice["ts"][0]
    assert eth_store.ohlcv_fingerprint("ETH/USDT", "1m") == fp
    eth_store.replace_series("ETH/USDT", "1m", eth_slice.with_columns(
        pl.when(pl.int_range(pl.len()) == 2999).then(pl.col("volume") + 1e-6)
        .otherwise(pl.col("volume")).alias("volume")))
    changed = eth_store.ohlcv_fingerprint("ETH/USDT", "1m")
    assert changed["content"] != fp["content"] and changed["rows"] == fp["rows"]
    assert eth_store.ohlcv_fingerprint("ETH/USDT", "1m", 0, 1)["rows"] == 0


def test_empty_range_names_the_series(eth_store, tmp_path):
    req = IngestRequest("ETH/USDT", "15m", date_to_ms("2020-01-01"), date_to_ms("2020-01-02"))
    with pytest.raises(NotFoundError, match="ETH/USDT.*no candles"):
        ingest(eth_store, req, tmp_path)


def _write_exog(tmp_path, ts, values, name="sentiment.parquet"):
    path = tmp_path / name
    pl.DataFrame({"ts": ts, "fear_greed": values}).write_parquet(path)
    return path


def test_exog_is_joined_as_of_each_candle_without_lookahead(eth_store, tmp_path):
    day = 86_400_000
    path = _write_exog(tmp_path, [START - day, START + day, START + 2 * day], [10.0, 20.0, 30.0])
    out = ingest(eth_store, _req(exog=path), tmp_path / "c")
    assert out.exog_columns == ("fear_greed",)
    expected = (pl.when(out.frame["ts"] >= START + 2 * day).then(30.0)
                .when(out.frame["ts"] >= START + day).then(20.0).otherwise(10.0))
    assert out.frame["fear_greed"].to_list() == pl.select(expected).to_series().to_list()


def test_exog_change_is_a_cache_miss(eth_store, tmp_path):
    a = _write_exog(tmp_path, [START - 1], [1.0], "a.parquet")
    b = _write_exog(tmp_path, [START - 1], [2.0], "b.parquet")
    assert ingest(eth_store, _req(exog=a), tmp_path).cache_path != \
        ingest(eth_store, _req(exog=b), tmp_path).cache_path


def test_exog_must_cover_the_first_candle(eth_store, tmp_path):
    path = _write_exog(tmp_path, [START + 86_400_000], [1.0])
    with pytest.raises(DataValidationError, match="exog_coverage") as err:
        ingest(eth_store, _req(exog=path), tmp_path)
    assert err.value.row == 0 and str(path) in str(err.value)


@pytest.mark.parametrize("frame, rule, row", [
    (pl.DataFrame({"ts": [2, 1], "x": [1.0, 2.0]}), "exog_sorted_unique", 1),
    (pl.DataFrame({"ts": [1, 2], "x": [1.0, float("nan")]}), "exog_finite", 1),
    (pl.DataFrame({"when": [1, 2], "x": [1.0, 2.0]}), "exog_ts_column", None),
    (pl.DataFrame({"ts": [1, 2], "x": ["a", "b"]}), "exog_numeric_column", None),
])
def test_bad_exog_files_name_the_file_row_and_rule(tmp_path, frame, rule, row):
    path = tmp_path / "bad.csv"
    frame.write_csv(path)
    with pytest.raises(DataValidationError, match=rule) as err:
        ingestion.read_exog(path)
    assert err.value.row == row and err.value.path == path


def test_missing_exog_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        ingestion.read_exog(tmp_path / "nope.parquet")
