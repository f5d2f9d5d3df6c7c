"""Training subscribers: registry by model type and the torch adapter on a real tiny model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.errors import NotFoundError
from workbench.features.windows import SeriesArrays, next_candle_relative
from workbench.live.coordinator import InferenceFrameReference, InferenceTrainingCoordinator
from workbench.live.feed import ReplayFeed
from workbench.live.subscribers import (BUY, HOLD, SELL, TorchTrainingAdapter,
                                        TrainingEventSubscriber, adapter_for, get_adapter,
                                        realised_action, register_adapter)
from workbench.train.config import config_from_dict
from workbench.train.handle import ModelHandle

SYM, TF = "ETH/USDT", "1m"
WINDOW = 24


@pytest.fixture
def handle():
    torch.set_num_threads(1)
    cfg = config_from_dict({"model": {"window": WINDOW, "d_model": 8, "n_heads": 2,
                                      "n_layers": 1, "ff_dim": 16}})
    return ModelHandle.from_config(cfg)


class RecordingHandle:
    """Wraps the real handle and records every train_step call (the adapter's output)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.window, self.model_type, self.lock = inner.window, inner.model_type, inner.lock

    def train_step(self, windows, actions, candles, **kw):
        self.calls.append((windows.copy(), actions.copy(), candles.copy(), kw))
        return self.inner.train_step(windows, actions, candles, **kw)


def _live_session(frame, handle, start=60):
    """Replay + real inference at each close + the torch adapter, as a session would wire it."""
    series = SeriesArrays.from_frame(SYM, TF, frame)
    feed = ReplayFeed(series, start=int(series.ts[start]))
    coord = InferenceTrainingCoordinator(feed)
    seen = {}

    def infer(ev):
        windows, params = series.windows(ev.index, WINDOW)
        pred = handle.inner.predict(windows)
        ref = InferenceFrameReference(
            None, SYM, TF, ev.close_ts, ev.ts + 60_000, int(series.ts[ev.index - WINDOW + 1]),
            ev.ts, tuple(params[0].tolist()), pred.actions[0], tuple(pred.candle[0].tolist()),
            float(pred.confidence[0]), pred.model_version)
        seen[coord.register_inference_frame(ref)] = windows

    feed.subscribe_candle_completion(infer, SYM, TF)
    adapter = adapter_for(handle, coord, session="test-session")
    coord.subscribe(adapter, SYM, TF, ["L1L", "L1H", "L2L", "L2H"])
    return series, feed, coord, adapter, seen


def test_registry_knows_torch_types_and_names_them_when_missing():
    assert get_adapter("transformer") is TorchTrainingAdapter
    assert get_adapter("lstm") is TorchTrainingAdapter
    with pytest.raises(NotFoundError, match="registered: .*lstm.*transformer"):
        get_adapter("xgboost")

    class Noop(TrainingEventSubscriber):
        def __init__(self, handle, coordinator):
            self.handle = handle

    register_adapter("test-noop", Noop)
    try:
        assert isinstance(get_adapter("test-noop")(None, None), Noop)
    finally:
        from workbench.live import subscribers
        subscribers._ADAPTERS.pop("test-noop")
    base = TrainingEventSubscriber()
    assert base.on_candle_completion(None, None) is None and base.on_pivot_event(None, []) is None


def test_realised_action_uses_the_hold_band():
    got = realised_action(np.array([0.2, -0.2, 0.04, -0.05, 0.051]), hold_band=0.05)
    assert got.tolist() == [BUY, SELL, HOLD, HOLD, BUY] and got.dtype == np.int64


def test_torch_adapter_trains_on_revealed_labels_through_the_lock(eth_slice, handle):
    rec = RecordingHandle(handle)
    series, feed, coord, adapter, seen = _live_session(eth_slice.head(200), rec)
    before = handle.state_dict_snapshot()
    feed.run()
    candle_calls = [c for c in rec.calls if c[3]["operation"] == "per_candle"]
    pivot_calls = [c for c in rec.calls if c[3]["operation"] == "pivot"]
    assert len(candle_calls) == coord.counts["matched_candle"] == 139
    assert pivot_calls and adapter.steps == len(rec.calls)
    assert handle.lock.stats()["acquisitions"] == len(rec.calls) == handle.version
    assert all(c[3]["session"] == "test-session" for c in rec.calls)
    after = handle.state_dict_snapshot()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    o, h, lo, c = (series.ohlcv[:, k] for k in range(4))
    # per-candle batches: the frame's exact input, the realised next candle and its action
    for fid, (windows, actions, candles, _) in zip(sorted(seen)[:139], candle_calls):
        assert windows.tobytes() == seen[fid].tobytes()
        end = series.index_of(coord.get_frame(fid).data_range_end)
        np.testing.assert_array_equal(candles, next_candle_relative(o, h, lo, c, [end]))
        assert actions.tolist() == realised_action(candles[:, 3]).tolist()
    assert np.isfinite(adapter.losses).all()


def test_pivot_batches_label_lows_buy_and_highs_sell(eth_slice, handle):
    rec = RecordingHandle(handle)
    series, feed, coord, adapter, seen = _live_session(eth_slice.head(150), rec)
    kinds = []
    coord.subscribe(type("Spy", (TrainingEventSubscriber,), {
        "on_pivot_event": lambda self, ev, refs: kinds.append((ev.is_high, len(refs)))})(),
        SYM, TF, ["L1L", "L1H", "L2L", "L2H"])
    feed.run()
    pivot_calls = [c for c in rec.calls if c[3]["operation"] == "pivot"]
    expected = [(is_high, n) for is_high, n in kinds if n]
    assert len(pivot_calls) == len(expected) > 5
    for (is_high, n), (windows, actions, _, _) in zip(expected, pivot_calls):
        assert windows.shape == (n, WINDOW, 8)
        assert set(actions.tolist()) == {SELL if is_high else BUY}


def test_a_window_length_mismatch_is_reported_not_trained(eth_slice, handle):
    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(120))
    feed = ReplayFeed(series, start=int(series.ts[60]))
    coord = InferenceTrainingCoordinator(feed)
    adapter = TorchTrainingAdapter(handle, coord, on_pivots=False)
    coord.subscribe(adapter, SYM, TF)
    feed.subscribe_candle_completion(
        lambda ev: coord.register_frame(ev.index, WINDOW + 1, ev.ts + 60_000, "HOLD",
                                        (0, 0, 0, 0), 0.4, 0), SYM, TF)
    feed.run()
    assert adapter.steps == 0 and handle.version == 0
    report = coord.stats()["errors"]
    assert report["total"] == 59 and "does not match the model window" in report["recent"][0]["error"]
