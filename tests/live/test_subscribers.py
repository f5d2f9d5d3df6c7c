"""Training subscribers: the no-op base, revealed batches, and the session training on them.

The torch training adapter and its per-model-type registry were used only by these tests; the
session is the subscriber that trains, so what the adapter's tests asserted is asserted here on a
real session: each step trains the frame's exact model input with its revealed next candle and
realised action, through the model's lock.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.errors import LookaheadError
from workbench.features.windows import SeriesArrays, gather_windows, next_candle_relative
from workbench.live.coordinator import InferenceTrainingCoordinator
from workbench.live.feed import ReplayFeed
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig
from workbench.live.strategy import StrategyConfig
from workbench.live.subscribers import (BUY, HOLD, SELL, TrainingEventSubscriber, realised_action,
                                        revealed_batch)

from ._live_helpers import tiny_handle

SYM, TF = "ETH/USDT", "1m"


class RecordingHandle:
    """Wraps the real handle and records every train_step call (the session's output)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.window, self.model_type, self.lock = inner.window, inner.model_type, inner.lock
        self.run_id = inner.run_id

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def train_step(self, windows, actions, candles, **kw):
        self.calls.append((windows.copy(), actions.copy(), candles.copy(), kw))
        return self.inner.train_step(windows, actions, candles, **kw)


def test_the_base_hooks_do_nothing():
    base = TrainingEventSubscriber()
    assert base.on_candle_completion(None, None) is None and base.on_pivot_event(None, []) is None
    assert base.on_new_candle(None) is None


def test_realised_action_uses_the_hold_band():
    got = realised_action(np.array([0.2, -0.2, 0.04, -0.05, 0.051]), hold_band=0.05)
    assert got.tolist() == [BUY, SELL, HOLD, HOLD, BUY] and got.dtype == np.int64


def test_session_steps_train_the_exact_frame_input_on_revealed_labels_through_the_lock(eth_store):
    ts = eth_store.read_ohlcv(SYM, TF)["ts"].to_numpy()
    inner = tiny_handle()
    rec = RecordingHandle(inner)
    before = inner.state_dict_snapshot()
    # pivot_strength 3: a pivot is never confirmed by the close that reveals t + 1, so every
    # label is the realised move
    session = LiveSession(rec, eth_store, SYM, TF, TrainingMode.EVERY_CANDLE, int(ts[100]),
                          int(ts[160]), config=SessionConfig(
                              pivot_strength=3, strategy=StrategyConfig(pivot_strength=3)))
    session.run()
    series = session.series
    o, h, lo, c = (series.ohlcv[:, k] for k in range(4))
    assert len(rec.calls) == 60 == inner.version == inner.lock.stats()["acquisitions"]
    for step, (windows, actions, candles, kw) in zip(session.training_log, rec.calls):
        end = series.index_of(step.frame_end_ts[0])
        expected, _ = gather_windows(series.features, np.array([end]), inner.window)
        assert windows.tobytes() == expected.tobytes()
        np.testing.assert_array_equal(candles, next_candle_relative(o, h, lo, c, [end]))
        assert actions.tolist() == realised_action(candles[:, 3]).tolist()
        assert kw["operation"] == "per_candle" and kw["session"] == session.session_id
    after = inner.state_dict_snapshot()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a_revealed_batch_refuses_a_frame_whose_next_candle_has_not_closed(eth_slice):
    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(80))
    feed = ReplayFeed(series, start=int(series.ts[40]), end=int(series.ts[50]))
    coord = InferenceTrainingCoordinator(feed)
    feed.run()
    fid = coord.register_frame(50, 24, int(series.ts[51]), "HOLD", (0, 0, 0, 0), 0.5, 0)
    with pytest.raises(LookaheadError, match="row 51.*has not closed at row 50"):
        revealed_batch(coord, [coord.get_frame(fid)], 50)
    windows, ends, _ = revealed_batch(coord, [coord.get_frame(fid)], 51)
    assert ends.tolist() == [50] and windows.shape == (1, 24, 8)
