"""Labels: the seed-000 rule, pivot labels without lookahead, manual labels, stored annotations."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.errors import NotFoundError
from workbench.features.pivots import pivots_from_frame
from workbench.train.config import DataConfig
from workbench.train.labels import BUY, HOLD, SELL, build_labels, pivot_labels, rule_actions


def test_rule_labels_follow_the_next_close_threshold():
    close = np.array([100.0, 100.06, 100.06, 99.99, 100.0, 100.0])
    # moves: +0.06% BUY, 0 HOLD, -0.07% SELL, +0.01% HOLD, 0 HOLD, last candle HOLD
    assert rule_actions(close, 0.05).tolist() == [BUY, HOLD, SELL, HOLD, HOLD, HOLD]


def test_pivot_labels_in_the_train_range_use_only_pivots_confirmed_by_its_end(eth_slice):
    frame = eth_slice.head(600)
    pivots = pivots_from_frame(frame, "1m", strength=2)
    ts = frame["ts"].to_numpy()
    # end the train range one candle after a pivot: it is confirmed only a candle later
    train_end = int(np.searchsorted(ts, pivots.filter(pl.col("ts") > ts[400])["ts"][0])) + 1
    labels = pivot_labels(frame, "1m", train_end, strength=2)
    end_close = ts[train_end] + 60_000
    first_known = pivots.group_by("ts").agg(pl.col("confirmed_ts").min())
    late = first_known.filter((pl.col("confirmed_ts") > end_close) & (pl.col("ts") <= ts[train_end]))
    assert late.height > 0  # pivots near the end are confirmed only after it...
    late_rows = np.searchsorted(ts, late["ts"].to_numpy())
    assert (labels[late_rows] == HOLD).all()  # ...so they are not labels of the train range
    known = pivots.filter(pl.col("confirmed_ts") <= end_close)
    lows = known.filter(pl.col("pivot_type").str.ends_with("L"))["ts"].to_numpy()
    highs = known.filter(pl.col("pivot_type").str.ends_with("H"))["ts"].to_numpy()
    only_low = np.setdiff1d(lows, highs)
    assert only_low.size and (labels[np.searchsorted(ts, only_low)] == BUY).all()
    assert (labels[np.searchsorted(ts, np.setdiff1d(highs, lows))] == SELL).all()
    # after the train range, pivots known at the end of the data are used
    full = pivot_labels(frame, "1m", len(frame) - 1, strength=2)
    assert (labels[train_end + 1:] == full[train_end + 1:]).all()


def test_derived_labels_are_written_to_the_store_annotations(eth_store, eth_slice):
    frame = eth_slice.head(200)
    cfg = DataConfig(labels="rule")
    rows = np.zeros(200, dtype=bool)
    rows[50:150] = True
    labels = build_labels(eth_store, frame, cfg, 120, rows)
    stored = eth_store.read_annotations("ETH/USDT", "1m", sources=["rule"])
    assert stored.height == 100
    assert stored["ts"].to_list() == frame["ts"].to_list()[50:150]
    expected = np.array(["BUY", "SELL", "HOLD"])[labels.actions[50:150]]
    assert stored["action"].to_list() == expected.tolist()


def test_manual_labels_keep_only_annotated_candles(eth_store, eth_slice):
    frame = eth_slice.head(100)
    cfg = DataConfig(labels="manual")
    with pytest.raises(NotFoundError, match="no manual annotations"):
        build_labels(eth_store, frame, cfg, 80)
    ts = frame["ts"].to_list()
    eth_store.add_annotations("ETH/USDT", "1m", pl.DataFrame(
        {"ts": [ts[10], ts[20]], "action": ["SELL", "BUY"], "source": ["manual", "manual"]}))
    labels = build_labels(eth_store, frame, cfg, 80)
    assert np.flatnonzero(labels.annotated).tolist() == [10, 20]
    assert labels.actions[[10, 20]].tolist() == [SELL, BUY]
