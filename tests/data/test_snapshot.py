"""SeriesSnapshot: one read of a series, served from memory exactly as the store would serve it."""
from __future__ import annotations

import polars as pl

from workbench.data.store.snapshot import SeriesSnapshot


def test_snapshot_reads_equal_the_stores_reads(eth_store):
    snap = SeriesSnapshot(eth_store, "ETH/USDT", "1m")
    ts = eth_store.read_ts("ETH/USDT", "1m")["ts"]
    first, mid, last = int(ts[0]), int(ts[1500]), int(ts[-1])
    ranges = [(None, None), (mid, None), (None, mid), (mid, mid), (mid + 1, mid + 59_999),
              (first - 10**9, first), (last, last + 10**9), (last + 1, None), (None, first - 1),
              (mid, first)]  # the last: start after end, no rows
    for start, end in ranges:
        got = snap.read_ohlcv("ETH/USDT", "1m", start, end)
        want = eth_store.read_ohlcv("ETH/USDT", "1m", start, end)
        assert got.equals(want), (start, end)
        assert got.schema == want.schema
    assert snap.read_ts("ETH/USDT", "1m").equals(eth_store.read_ts("ETH/USDT", "1m"))


def test_snapshot_reads_its_series_once_and_passes_everything_else_to_the_file(
        eth_store, eth_slice, file_opens):
    snap = SeriesSnapshot(eth_store, "ETH/USDT", "1m")
    assert len(file_opens) == 1
    for _ in range(5):
        snap.read_ohlcv("ETH/USDT", "1m", int(eth_slice["ts"][100]), int(eth_slice["ts"][900]))
        snap.read_ts("ETH/USDT", "1m")
    assert len(file_opens) == 1  # served from memory
    # another series and every write go to the file, and the snapshot keeps its copy
    snap.replace_series("ETH/USDT", "1m", eth_slice.head(100))
    snap.replace_series("BTC/USDT", "1m", eth_slice.head(10))
    assert snap.read_ohlcv("BTC/USDT", "1m").height == 10
    assert snap.read_ohlcv("ETH/USDT", "1m").height == eth_slice.height
    assert eth_store.read_ohlcv("ETH/USDT", "1m").height == 100
    assert repr(snap).startswith("SeriesSnapshot(") and "ETH/USDT" in repr(snap)


def test_a_snapshot_of_a_missing_series_is_empty(tmp_store):
    snap = SeriesSnapshot(tmp_store, "NOPE/USDT", "1m")
    assert snap.read_ohlcv("NOPE/USDT", "1m").height == 0
    assert snap.read_ts("NOPE/USDT", "1m").columns == ["ts"]
    assert isinstance(snap.read_ohlcv("NOPE/USDT", "1m", 0, 10), pl.DataFrame)

