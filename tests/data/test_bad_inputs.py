"""Every file of the bad-input corpus fails with its rule, row and ts, and leaves the store as it was.

The corpus (tests/data/bad_inputs/, rebuilt by make_bad_inputs.py) is made of real ETH/USDT 1m rows
23000..23009, the ten candles right after the ``eth_store`` slice: without its fault, each file
would extend the stored series, so "nothing changed" is a real check of atomicity.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from workbench.data.ingest import RULES, file_hash, ingest_file
from workbench.errors import DataValidationError

BAD = Path(__file__).with_name("bad_inputs")
T0 = 1_749_079_200_000  # open time of ETH/USDT row 23000 (2025-06-04 23:20 UTC)
M = 60_000

# file -> (timeframe, rule, row as the user sees it (CSV line / Parquet row), ts)
CASES = {
    "empty.csv": ("1m", "empty", None, None),
    "header_only.csv": ("1m", "empty", None, None),
    "misnamed_column.csv": ("1m", "columns", None, None),
    "missing_value.csv": ("1m", "missing_value", 5, T0 + 3 * M),
    "non_numeric.csv": ("1m", "non_numeric", 4, T0 + 2 * M),
    "nan_value.csv": ("1m", "not_finite", 6, T0 + 4 * M),
    "inf_value.parquet": ("1m", "not_finite", 6, T0 + 5 * M),
    "price_zero.csv": ("1m", "price_not_positive", 3, T0 + 1 * M),
    "high_below_open_close.csv": ("1m", "high_below_open_close", 8, T0 + 6 * M),
    "low_above_open_close.csv": ("1m", "low_above_open_close", 9, T0 + 7 * M),
    "negative_volume.csv": ("1m", "negative_volume", 10, T0 + 8 * M),
    "duplicate_conflict.csv": ("1m", "duplicate_conflict", 12, T0 + 3 * M),
    "step_off_grid.csv": ("1m", "step", 7, T0 + 5 * M + 30_000),
    "step_sub_multiple.csv": ("1m", "step", 7, T0 + 4 * M + 30_000),
    "iso_without_zone.csv": ("1m", "ts_format", 4, None),
    "binance_no_header_high_below.csv": ("1m", "high_below_open_close", 5, T0 + 4 * M),
    "binance_header_non_numeric.csv": ("1m", "non_numeric", 8, T0 + 6 * M),
    "binance_mixed_units.csv": ("1m", "ts_units", 8, T0 + 7 * M),
    "conflicts_with_store.csv": ("1m", "conflicts_with_store", 4, T0 - 3 * M),
    "wrong_timeframe.csv": ("1m", "timeframe_mismatch", None, None),
    "not_parquet.parquet": ("1m", "format", None, None),
    "monthly_off_month_start.csv": ("1M", "step", 5, 1_333_238_400_000 + 86_400_000),
    # issue 11: timestamps of a unit that cannot be told, candles off the grid, odd headers
    "ts_micros_not_whole_ms.csv": ("1m", "ts_units", 6, None),
    "ts_no_plausible_unit.csv": ("1m", "ts_range", 2, None),
    "ts_mixed_seconds_and_ms.csv": ("1m", "ts_units", 8, T0 + 6 * M),
    "off_grid_30s.csv": ("1m", "off_grid", 2, T0 + 30_000),
    "header_repeated.csv": ("1m", "header_repeated", 7, None),
    "column_twice.csv": ("1m", "columns", 1, None),
    "daily_off_midnight.csv": ("1d", "off_grid", 2, 1_092_873_600_000 + 5 * 3_600_000),
}


def test_corpus_is_complete():
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)
    assert len(CASES) >= 12
    assert {rule for _, rule, _, _ in CASES.values()} <= set(RULES)


def _snapshot(store) -> tuple:
    frames = [store.read_ohlcv(r["symbol"], r["timeframe"]) for r in store.series().iter_rows(named=True)]
    return store.series(), frames


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_fails_clearly_and_writes_nothing(name, eth_store):
    timeframe, rule, row, ts = CASES[name]
    path = BAD / name
    series_before, frames_before = _snapshot(eth_store)
    with pytest.raises(DataValidationError) as info:
        ingest_file(eth_store, path, "ETH/USDT", timeframe)
    err = info.value
    assert (err.rule, err.row, err.ts) == (rule, row, ts)
    assert err.path == str(path)
    text = str(err)
    assert str(path) in text and f"[rule: {rule}]" in text
    if row is not None:
        assert f"row {row}" in text
    series_after, frames_after = _snapshot(eth_store)
    assert series_after.equals(series_before)
    assert len(frames_after) == len(frames_before)
    assert all(a.equals(b) for a, b in zip(frames_after, frames_before))
    assert eth_store.cached_ingest(file_hash(path), "ETH/USDT", timeframe) is None


def test_fixed_file_would_have_been_written(eth_store, tmp_path):
    """Control for the test above: the same rows without the fault extend the stored series."""
    good = tmp_path / "fixed.csv"
    lines = (BAD / "negative_volume.csv").read_text().splitlines()
    lines[9] = lines[9].replace(",-1.0", ",40.5")
    good.write_text("\n".join(lines) + "\n")
    summary = ingest_file(eth_store, good, "ETH/USDT", "1m")
    assert summary.rows_added == 10
    stored = eth_store.read_ohlcv("ETH/USDT", "1m")
    assert stored.height == 3_010 and stored["ts"][-1] == T0 + 9 * M
    assert stored.filter(pl.col("ts") == T0 + 8 * M)["volume"][0] == 40.5
