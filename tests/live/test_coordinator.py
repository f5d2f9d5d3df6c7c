"""Coordinator: frames by reference, bit-identical rebuild, label timing, matching, retention."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.data.timeframes import close_ts
from workbench.errors import LookaheadError, NotFoundError, ParameterError
from workbench.features.windows import SeriesArrays, gather_windows
from workbench.live.coordinator import (CoordinatorConfig, InferenceFrameReference,
                                        InferenceTrainingCoordinator, normalize_window)
from workbench.live.feed import PushFeed, ReplayFeed

SYM, TF = "ETH/USDT", "1m"
N = 48  # window length of the fake model in these tests


class Inference:
    """Stands in for the session's inference step: at each close, predict from the window ending
    at that candle and register the frame; remembers exactly what the model saw."""

    def __init__(self, feed, coord, horizons=(1,), window=N):
        self.feed, self.coord, self.horizons, self.window = feed, coord, horizons, window
        self.seen: dict[int, tuple[bytes, bytes]] = {}
        self.end_ts: dict[int, int] = {}
        feed.subscribe_candle_completion(self, SYM, TF)

    def __call__(self, ev):
        if ev.index < self.window - 1:
            return
        windows, params = gather_windows(self.feed.series.features, ev.index, self.window)
        for h in self.horizons:
            ref = InferenceFrameReference(
                None, SYM, TF, ev.close_ts, ev.ts + h * 60_000,
                int(self.feed.series.ts[ev.index - self.window + 1]), ev.ts,
                tuple(params[0].tolist()), ("BUY", "SELL", "HOLD")[ev.index % 3],
                (0.1, 0.2, -0.1, 0.05 * h), 0.5 + 0.01 * h, 7)
            fid = self.coord.register_inference_frame(ref)
            self.seen[fid] = (windows.tobytes(), params.tobytes())
            self.end_ts[fid] = ev.ts


class Recorder:
    """A TrainingEventSubscriber that records deliveries with the feed clock."""

    def __init__(self, feed, coord):
        self.feed, self.coord = feed, coord
        self.candles, self.pivots = [], []

    def on_candle_completion(self, event, ref):
        self.candles.append((event, ref, self.feed.now))

    def on_pivot_event(self, event, refs):
        self.pivots.append((event, refs, self.feed.now))


def _setup(frame, start=100, config=None, horizons=(1,)):
    series = SeriesArrays.from_frame(SYM, TF, frame)
    feed = ReplayFeed(series, start=int(series.ts[start]))
    coord = InferenceTrainingCoordinator(feed, config=config)
    inf = Inference(feed, coord, horizons)
    rec = Recorder(feed, coord)
    coord.subscribe(rec, SYM, TF)
    return series, feed, coord, inf, rec


def test_rebuilt_inputs_are_bit_identical_to_what_the_model_saw(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(1200))
    checked = 0

    def check(event, ref):
        nonlocal checked
        if ref is not None:
            windows, params = coord.get_inference_data(ref)
            assert (windows.tobytes(), params.tobytes()) == inf.seen[ref.inference_id]
            assert np.array(ref.norm_params, dtype=np.float32).tobytes() == params.tobytes()
            checked += 1

    rec.on_candle_completion = check
    feed.run()
    assert checked == len(inf.seen) - 1  # the last frame's target never closes
    # and again later, from references rebuilt after the replay
    for fid in list(inf.seen)[-50:]:
        windows, params = coord.get_inference_data(coord.get_frame(fid))
        assert (windows.tobytes(), params.tobytes()) == inf.seen[fid]


def test_normalize_window_equals_gather_windows_bit_for_bit_on_real_data(eth_1m):
    features = SeriesArrays.from_frame(SYM, TF, eth_1m).features
    rng = np.random.default_rng(5)
    for n in (1, 2, 17, 64, 600):
        for end in rng.integers(n - 1, features.shape[0], 40):
            want = gather_windows(features, end, n)
            got = normalize_window(features[end - n + 1: end + 1])
            assert all(a.tobytes() == b.tobytes() and a.shape == b.shape
                       for a, b in zip(want, got)), (n, end)


def test_rebuild_stays_identical_after_push_appends_grow_the_series(tmp_store, eth_slice):
    tmp_store.replace_series(SYM, TF, eth_slice.head(200))
    feed = PushFeed.from_store(tmp_store, SYM, TF, history=200)
    coord = InferenceTrainingCoordinator(feed)
    inf = Inference(feed, coord)
    feed.push_many(eth_slice.slice(200, 300))  # the arrays reallocate while frames are live
    assert len(inf.seen) == 300
    for fid, seen in inf.seen.items():
        windows, params = coord.get_inference_data(coord.get_frame(fid))
        assert (windows.tobytes(), params.tobytes()) == seen


def test_each_frame_is_delivered_once_when_its_target_candle_closes(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(900), horizons=(1, 3))
    feed.run()
    delivered = [ref.inference_id for _, ref, _ in rec.candles if ref is not None]
    assert sorted(delivered) == sorted(set(delivered))
    assert len(delivered) == len(inf.seen) - 4  # 1 + 3 targets lie past the end of the replay
    for event, ref, now in rec.candles:
        if ref is None:
            continue
        # label timing: delivered exactly at the close of the target candle, never before
        assert event.ts == ref.target_timestamp
        assert now == event.close_ts == close_ts(ref.target_timestamp, TF)
        assert ref.data_range_end < ref.target_timestamp and ref.prediction_timestamp <= now
    # a candle no frame targeted (only the first replayed one) is announced with ref None
    assert [e.index for e, ref, _ in rec.candles if ref is None] == [100]
    assert len({e.ts for e, _, _ in rec.candles}) == 800


def test_pivot_labels_reach_the_frames_inferred_at_the_pivot_candle_at_confirmation(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(1500), horizons=(1, 2))
    feed.run()
    with_frames = 0
    for event, refs, now in rec.pivots:
        assert now == event.confirmed_ts > event.pivot_ts  # never before the reveal time
        for ref in refs:
            assert ref.data_range_end == event.pivot_ts  # window ends at the pivot candle
            windows, _ = coord.get_inference_data(ref)
            assert windows.shape == (1, N, 8)
        expected = [fid for fid, end in inf.end_ts.items() if end == event.pivot_ts]
        assert [ref.inference_id for ref in refs] == expected
        with_frames += bool(refs)
    assert with_frames > 100
    assert {len(refs) for _, refs, _ in rec.pivots if refs} == {2}


def test_pivot_type_filter_of_coordinator_subscribers(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(800))
    only = Recorder(feed, coord)
    coord.subscribe(only, SYM, TF, ["L2L", "L2H"], candles=False)
    feed.run()
    assert only.candles == [] and only.pivots
    assert {e.pivot_type for e, _, _ in only.pivots} <= {"L2L", "L2H"}
    assert len(rec.pivots) > len(only.pivots)


def test_retention_keeps_memory_bounded_over_a_long_replay(eth_slice):
    config = CoordinatorConfig(max_age_candles=40, initial_capacity=16)
    series, feed, coord, inf, rec = _setup(eth_slice, config=config, horizons=(1, 2, 5))
    live = []
    feed.subscribe_candle_completion(lambda ev: live.append(coord.live_frames()), SYM, TF)
    feed.run()
    stats = coord.stats()
    assert stats["registered"] == 3 * (3000 - 100) and max(live) <= 3 * 41
    assert stats["evicted"] == stats["registered"] - stats["live"]
    assert stats["capacity"] == 128  # grew once to the bound, never again
    assert stats["evicted_unmatched"] == 0 and stats["evicted_capacity"] == 0
    with pytest.raises(NotFoundError, match="not in memory"):
        coord.get_frame(0)


def test_max_frames_caps_live_frames_and_counts_capacity_evictions(eth_slice):
    config = CoordinatorConfig(max_age_candles=500, max_frames=64, initial_capacity=16)
    series, feed, coord, inf, rec = _setup(eth_slice.head(600), config=config)
    feed.run()
    stats = coord.stats()
    assert stats["live"] == 64 and stats["capacity"] == 64
    assert stats["evicted_capacity"] == stats["registered"] - 64
    # frames evicted by capacity before their target closed are reported unmatched: none here
    assert stats["evicted_unmatched"] == 0


def test_frames_evicted_before_a_late_pivot_get_no_refs(eth_slice):
    config = CoordinatorConfig(max_age_candles=3)
    series, feed, coord, inf, rec = _setup(eth_slice.head(1500), config=config)
    feed.run()
    late = [(e, refs) for e, refs, _ in rec.pivots
            if e.index - series.index_of(e.pivot_ts) > 3]
    assert late and all(refs == [] for _, refs in late)


def test_a_window_ending_after_the_newest_closed_candle_is_refused(eth_slice):
    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(300))
    feed = ReplayFeed(series, start=int(series.ts[100]), end=int(series.ts[150]))
    coord = InferenceTrainingCoordinator(feed)
    feed.run()
    with pytest.raises(LookaheadError, match="newest closed candle is row 150"):
        coord.register_frame(151, N, int(series.ts[152]), "BUY", (0, 0, 0, 0), 0.5, 1)
    with pytest.raises(ParameterError, match="must be after the window end"):
        coord.register_frame(150, N, int(series.ts[150]), "BUY", (0, 0, 0, 0), 0.5, 1)
    with pytest.raises(ParameterError, match="not one of"):
        coord.register_frame(150, N, int(series.ts[151]), "LONG", (0, 0, 0, 0), 0.5, 1)
    with pytest.raises(ParameterError, match="coordinator of ETH/USDT"):
        coord.register_inference_frame(InferenceFrameReference(
            None, "BTC/USDT", TF, 0, 0, 0, 0, None, "BUY", (0, 0, 0, 0), 0.5, 1))


def test_a_failing_training_subscriber_does_not_stop_the_others(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(400))

    class Broken:
        def on_candle_completion(self, event, ref):
            raise RuntimeError("trainer crashed")

        def on_pivot_event(self, event, refs):
            raise RuntimeError("pivot trainer crashed")

    coord.subscribe(Broken(), SYM, TF)
    after = Recorder(feed, coord)
    coord.subscribe(after, SYM, TF)
    feed.run()
    assert len(after.candles) == len(rec.candles) == 300
    assert len(after.pivots) == len(rec.pivots) > 0
    assert coord.stats()["subscriber_errors"] == 300 + len(rec.pivots)
    assert feed.stats()["subscriber_errors"] == 0  # contained inside the coordinator


def test_unsubscribe_stops_delivery(eth_slice):
    series, feed, coord, inf, rec = _setup(eth_slice.head(300))
    handle = coord.subscribe(Recorder(feed, coord), SYM, TF)
    handle.unsubscribe()
    handle.unsubscribe()
    feed.run()
    assert handle.subscriber.candles == [] and len(rec.candles) == 200
