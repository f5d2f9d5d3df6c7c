"""Training subscribers: what happens when a frame's label is revealed (seed 001).

:class:`TrainingEventSubscriber` is the interface the coordinator calls, with no-op hooks so a
subclass implements only what it needs. Training methods differ per model type, so adapters live
in a registry keyed by model type (:func:`register_adapter`, :func:`get_adapter`,
:func:`adapter_for`); a new model type is one registration.

:class:`TorchTrainingAdapter` is seed 001's torch adapter: it rebuilds the frame's input with
``coordinator.get_inference_data``, pairs it with the actual outcome and trains one step through
``ModelHandle.train_step``, which holds the model's training lock for the update (see the model
handle contract in ``docs/architecture.md``). Labels:

* on candle completion: the realised action of the next candle (BUY above ``+hold_band`` percent,
  SELL below ``-hold_band``, else HOLD) and the next candle relative to the window's last close
  (:func:`~workbench.features.windows.next_candle_relative`);
* on a pivot: BUY at a confirmed low, SELL at a confirmed high, for every frame whose window ends
  at the pivot candle, with the same candle target.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from workbench.actions import BUY, HOLD, HOLD_BAND, SELL  # noqa: F401 (HOLD: part of the surface)
from workbench.actions import realised_actions as realised_action
from workbench.errors import LookaheadError, NotFoundError, ParameterError
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


_ADAPTERS: dict[str, Callable[..., TrainingEventSubscriber]] = {}


def register_adapter(model_type: str, factory: Callable[..., TrainingEventSubscriber]) -> None:
    """Register the training adapter factory ``factory(handle, coordinator, **options)``."""
    _ADAPTERS[model_type] = factory


def get_adapter(model_type: str) -> Callable[..., TrainingEventSubscriber]:
    """Return the adapter factory of ``model_type``; NotFoundError names the known types."""
    try:
        return _ADAPTERS[model_type]
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS)) or "none"
        raise NotFoundError(f"no training adapter for model type {model_type!r}; "
                            f"registered: {known}") from None


def adapter_for(handle, coordinator, **options) -> TrainingEventSubscriber:
    """Build the registered adapter of ``handle.model_type`` for ``handle``."""
    return get_adapter(handle.model_type)(handle, coordinator, **options)


class TorchTrainingAdapter(TrainingEventSubscriber):
    """Train a torch :class:`ModelHandle` on revealed labels, one optimiser step per event.

    Parameters
    ----------
    handle : a ``workbench.train.handle.ModelHandle`` (``train_step`` takes its lock).
    coordinator : the :class:`~workbench.live.coordinator.InferenceTrainingCoordinator` whose
        frames this adapter receives.
    session : session name recorded by the training lock.
    on_candles, on_pivots : which events train.
    hold_band : percent band of a realised HOLD.
    timeout : seconds to wait for the training lock (``None``: the lock's default).
    """

    def __init__(self, handle, coordinator, *, session: str = "-", on_candles: bool = True,
                 on_pivots: bool = True, hold_band: float = HOLD_BAND,
                 timeout: float | None = None):
        self.handle, self.coordinator, self.session = handle, coordinator, session
        self.on_candles, self.on_pivots = on_candles, on_pivots
        self.hold_band, self.timeout = hold_band, timeout
        self.steps = 0
        self.losses: list[float] = []

    def _train(self, windows, actions, candles, operation: str) -> None:
        if windows.shape[1] != self.handle.window:
            raise ParameterError(f"frame window of {windows.shape[1]} candles does not match the "
                                 f"model window {self.handle.window}")
        loss = self.handle.train_step(windows, actions, candles, operation=operation,
                                      session=self.session, timeout=self.timeout)
        self.steps += 1
        self.losses.append(float(loss))

    def on_candle_completion(self, event: CandleCompletionEvent, inference_ref) -> None:
        """Train on the frame that targeted this candle: realised action and candle."""
        if inference_ref is None or not self.on_candles:
            return
        windows, _, candles = revealed_batch(self.coordinator, [inference_ref], event.index)
        actions = realised_action(candles[:, 3], self.hold_band)
        self._train(windows, actions, candles, "per_candle")

    def on_pivot_event(self, event: PivotEvent, inference_refs: list) -> None:
        """Train the frames inferred at the pivot candle: BUY at a low, SELL at a high."""
        if not inference_refs or not self.on_pivots:
            return
        windows, _, candles = revealed_batch(self.coordinator, inference_refs, event.index)
        actions = np.full(len(inference_refs), SELL if event.is_high else BUY, dtype=np.int64)
        self._train(windows, actions, candles, "pivot")


for _model_type in ("transformer", "lstm"):
    register_adapter(_model_type, TorchTrainingAdapter)
