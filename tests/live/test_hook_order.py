"""The order of one close: labels it reveals (candle frames, then pivots), then the new candle.

Lightning's hook-order test, for the live path: a subscriber records every hook the coordinator
calls over a few closes, and the exact ordered list is asserted. The expected pivots come from
the vectorised detector (an independent implementation of the feed's streaming one).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.data.timeframes import close_ts
from workbench.features.pivots import detect_pivots
from workbench.features.windows import SeriesArrays
from workbench.live.coordinator import InferenceTrainingCoordinator
from workbench.live.feed import ReplayFeed
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig
from workbench.live.subscribers import TrainingEventSubscriber

from ._live_helpers import tiny_handle

SYM, TF, N = "ETH/USDT", "1m", 8


class HookRecorder(TrainingEventSubscriber):
    """Records every hook call; registers a frame (window N, next candle) at each new candle."""

    def __init__(self, coord):
        self.coord, self.calls = coord, []

    def on_candle_completion(self, event, ref):
        self.calls.append(("on_candle_completion", event.ts,
                           None if ref is None else ref.data_range_end))

    def on_pivot_event(self, event, refs):
        self.calls.append(("on_pivot_event", event.pivot_type, event.pivot_ts,
                           tuple(r.data_range_end for r in refs)))

    def on_new_candle(self, event):
        self.calls.append(("on_new_candle", event.ts))
        self.coord.register_frame(event.index, N, event.close_ts, "HOLD", (0.0,) * 4, 0.5, 0)


def _closes_with_pivots(series, first, count=6):
    """The first ``count`` rows from ``first`` on whose close confirms at least one pivot."""
    piv = detect_pivots(series.ts, series.ohlcv[:, 1], series.ohlcv[:, 2], timeframe=TF,
                        strength=2, levels=3)
    closes = close_ts(series.ts, TF)
    rows = [i for i in range(first, series.length) if (piv["confirmed_ts"] == closes[i]).any()]
    return piv, rows[:count]


def test_every_hook_of_a_few_closes_in_the_exact_order(eth_slice):
    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(400))
    piv, confirming = _closes_with_pivots(series, 120)
    a, b = confirming[0] - 1, confirming[-1]  # a few closes, pivots among them
    feed = ReplayFeed(series, start=int(series.ts[100]), end=int(series.ts[b]))
    coord = InferenceTrainingCoordinator(feed)
    rec = HookRecorder(coord)
    coord.subscribe(rec, SYM, TF)
    feed.run()

    ts, closes = series.ts.tolist(), close_ts(series.ts, TF).tolist()
    expected = []
    for i in range(a, b + 1):
        expected.append(("on_candle_completion", ts[i], ts[i - 1]))  # frame of i-1 targets i
        # the streaming detector's order: level by level, H before L
        confirmed = piv.filter(pl.col("confirmed_ts") == closes[i]).sort("level", "pivot_type")
        for kind, pivot_ts in confirmed.select("pivot_type", "ts").rows():
            expected.append(("on_pivot_event", kind, pivot_ts, (pivot_ts,)))
        expected.append(("on_new_candle", ts[i]))
    start = rec.calls.index(("on_candle_completion", ts[a], ts[a - 1]))
    got = rec.calls[start:]
    assert got == expected
    assert sum(c[0] == "on_pivot_event" for c in got) >= 6  # the window really holds pivots
    assert coord.stats()["subscriber_errors"] == 0


def test_the_candle_event_carries_the_pivots_its_close_confirms(eth_slice):
    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(300))
    feed = ReplayFeed(series, start=int(series.ts[50]))
    carried, emitted = [], []
    feed.subscribe_candle_completion(lambda ev: carried.extend(ev.pivots), SYM, TF)
    feed.subscribe_pivot_events(emitted.append, SYM, TF)
    feed.run()
    assert carried == emitted and len(emitted) == feed.stats()["pivots"] > 10


def test_a_session_predicts_after_the_labels_of_the_same_close(eth_store):
    """pivots_only: at a close that confirms a pivot, the step happens first and the new
    prediction already comes from the version that step published."""
    ts = eth_store.read_ohlcv(SYM, TF)["ts"].to_numpy()
    handle = tiny_handle()
    session = LiveSession(handle, eth_store, SYM, TF, TrainingMode.PIVOTS_ONLY, int(ts[100]),
                          int(ts[220]), config=SessionConfig(keep=1000))
    session.run()
    preds = {p["target_ts"]: p["model_version"] for p in session.snapshot()["predictions"]}
    steps = list(session.training_log)
    assert len(steps) >= 5
    for step in steps:  # the prediction made at the step's close saw the step's weights
        assert preds[step.now_ts] >= step.model_version
    assert np.all(np.diff([s.model_version for s in steps]) > 0)
