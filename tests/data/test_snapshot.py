"""SeriesSnapshot: one read of a series, served from memory exactly as the store would serve it."""
from __future__ import annotations

import polars as pl
import pytest

from workbench.data.store.snapshot import SeriesSnapshot
from workbench.errors import ParameterError


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



def _labels(ts, actions, source="rule") -> pl.DataFrame:
    return pl.DataFrame({"ts": ts, "action": actions, "source": [source] * len(ts)})


def test_the_series_labels_wait_for_the_next_write_and_other_labels_do_not(
        eth_store, eth_slice, file_opens):
    snap = SeriesSnapshot(eth_store, "ETH/USDT", "1m")
    ts = [int(t) for t in eth_slice["ts"][:3]]
    assert snap.add_annotations("ETH/USDT", "1m", _labels(ts, ["BUY", "HOLD", "SELL"])) == 3
    # a later label of the same candle replaces the earlier one, as in the file
    snap.add_annotations("ETH/USDT", "1m", _labels(ts[:1], ["SELL"]))
    assert len(file_opens) == 1 and eth_store.read_annotations("ETH/USDT", "1m").height == 0
    # a rolled-back write keeps them held; the next committed write stores them with its own
    with pytest.raises(RuntimeError), snap.transaction():
        raise RuntimeError("the evaluation's write failed")
    assert eth_store.read_annotations("ETH/USDT", "1m").height == 0
    snap.add_annotations("BTC/USDT", "1m", _labels(ts[:1], ["BUY"]))  # not held: written now
    assert eth_store.read_annotations("BTC/USDT", "1m").height == 1
    stored = eth_store.read_annotations("ETH/USDT", "1m")
    assert stored["action"].to_list() == ["SELL", "HOLD", "SELL"]
    # written once: a later write (here a person's label, which it must not replace) carries
    # nothing
    eth_store.add_annotations("ETH/USDT", "1m", _labels(ts[:1], ["HOLD"], "manual"))
    eth_store.add_annotations("ETH/USDT", "1m", _labels(ts[1:2], ["BUY"]))
    snap.save_sweep_trials([{"sweep_id": "sw-1", "trial": 1, "state": "COMPLETE"}])
    stored = eth_store.read_annotations("ETH/USDT", "1m", sources=["rule"])
    assert stored["action"].to_list() == ["SELL", "BUY", "SELL"]


def test_reading_the_series_labels_includes_the_held_ones_and_bad_labels_fail_at_once(
        eth_store, eth_slice):
    snap = SeriesSnapshot(eth_store, "ETH/USDT", "1m")
    ts = [int(t) for t in eth_slice["ts"][:2]]
    snap.add_annotations("ETH/USDT", "1m", _labels(ts, ["BUY", "SELL"]))
    assert snap.read_annotations("ETH/USDT", "1m")["action"].to_list() == ["BUY", "SELL"]
    with pytest.raises(ParameterError, match=rf"annotation at ts {ts[0]}: action 'MAYBE'"):
        snap.add_annotations("ETH/USDT", "1m", _labels(ts[:1], ["MAYBE"]))

