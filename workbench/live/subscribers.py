"""Training subscribers: what happens when a frame's label is revealed.

:class:`TrainingEventSubscriber` is the interface the coordinator calls, with no-op hooks so a
subclass implements only what it needs; the hooks of one close come in one documented order
(labels first, then the new candle). :class:`~workbench.live.session.LiveSession` is the
subscriber that trains: it asks its per-mode strategy
(:mod:`workbench.live.strategy`) whether a revealed label trains and trains one step through
``ModelHandle.train_step``, which holds the model's training lock.

:func:`revealed_batch` rebuilds a batch from frames whose label is revealed: the frames' exact
model input (``coordinator.get_inference_data``) and their next candle relative to the window's
last close (:func:`~workbench.features.windows.next_candle_relative`), refusing a frame whose next
candle has not closed. :func:`realised_action` is the label of a realised move: BUY above
``+hold_band`` percent, SELL below ``-hold_band``, else HOLD.
"""
from __future__ import annotations

import numpy as np

from workbench.actions import BUY, HOLD, HOLD_BAND, SELL  # noqa: F401 (HOLD: part of the surface)
from workbench.actions import realised_actions as realised_action
from workbench.errors import LookaheadError
from workbench.features.windows import next_candle_relative
from workbench.live.events import CandleCompletionEvent, PivotEvent


def revealed_batch(coordinator, refs, now_index: int):
    """Rebuild the frames' model inputs and their next-candle targets, revealed by ``now_index``.

    Returns ``(windows (B, N, 8), window-end rows (B,), candle targets (B, 4))``.

    Raises
    ------
    LookaheadError : when a frame's next candle has not closed by row ``now_index``.
    """
    windows, ends = [], []
    for ref in refs:
        w, _ = coordinator.get_inference_data(ref)
        end = coordinator.window_rows(ref)[1]
        if end + 1 > now_index:
            raise LookaheadError(f"frame {ref.inference_id}: its next candle (row {end + 1}) "
                                 f"has not closed at row {now_index}")
        windows.append(w)
        ends.append(end)
    o, h, lo, c = (coordinator.series.ohlcv[:, k] for k in range(4))
    ends = np.asarray(ends)
    return np.concatenate(windows), ends, next_candle_relative(o, h, lo, c, ends)


class TrainingEventSubscriber:
    """Base of every training subscriber: override the hooks you need.

    Per closed candle the coordinator calls the hooks in this order (see
    :meth:`~workbench.live.coordinator.InferenceTrainingCoordinator.on_candle_completion`):
    ``on_candle_completion`` per frame that targeted the candle, ``on_pivot_event`` per pivot the
    close confirms, then ``on_new_candle``: labels first, then the new candle.
    """

    def on_candle_completion(self, event: CandleCompletionEvent, inference_ref) -> None:
        """Called when a candle closes, with the frame that targeted it (or ``None``)."""

    def on_pivot_event(self, event: PivotEvent, inference_refs: list) -> None:
        """Called when a pivot is confirmed, with the frames whose window ends at the pivot."""

    def on_new_candle(self, event: CandleCompletionEvent) -> None:
        """Called last at each close, after every label it reveals: predict here."""
