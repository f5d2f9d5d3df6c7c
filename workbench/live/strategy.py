"""The training strategy of one live session: when to train, and on which label (seed 000).

Every :class:`~workbench.live.session.LiveSession` owns its own strategy (never shared between
sessions). A strategy only *decides*; the session trains, always through the model's lock. There
is one small :class:`TrainingStrategy` subclass per mode, registered by its mode in
:data:`STRATEGIES`; :func:`strategy_for` builds the one of a mode. A new mode is one class and one
``register_strategy(name, cls)`` call: the session asks its strategy, never tests the mode. The
modes of :class:`~workbench.live.modes.TrainingMode`:

``none``
    Never trains.
``pivots_only``
    Trains when a pivot is confirmed (its :class:`~workbench.live.events.PivotEvent`, delivered by
    the coordinator at ``confirmed_ts`` with the frames whose window ends at the pivot candle): an
    L pivot is BUY, an H pivot SELL. By default only level-1 pivots train (every higher-level
    pivot is also a level-1 pivot, so each pivot candle trains once); ``pivot_types`` widens it.
``every_candle``
    Trains once per completed candle, on the frame whose label that close reveals: the frame
    inferred at candle ``t`` (predicting ``t + 1``) when ``t + 1`` closes. Its action is the pivot
    action if candle ``t`` is a pivot *already confirmed by that close*, otherwise the move of
    ``t + 1``'s close relative to ``t``'s close (> +0.05% BUY, < -0.05% SELL, else HOLD). A pivot
    at ``t`` is confirmed ``strength`` candles after ``t`` at the earliest, so at ``t + 1``'s close
    the pivot rule can apply only with ``pivot_strength=1``; with the default strength 2 the move
    decides. The pivots a close confirms come with its candle event (``event.pivots``, from the
    feed's one detector), so they are known before the decision.
``manual``
    Trains only when the user calls ``LiveSession.train_manual(action)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.actions import ACTIONS, BUY, HOLD, HOLD_BAND, SELL
from workbench.actions import realised_action as move_action
from workbench.errors import ParameterError
from workbench.live.events import CandleCompletionEvent, PivotEvent
from workbench.live.modes import TrainingMode
from workbench.registry import Registry

_AMBIGUOUS = -1
_KEEP_PIVOTS = 64  # confirmed pivot candles remembered; only the newest ever matter


@dataclass(frozen=True)
class StrategyConfig:
    """Labelling parameters of a strategy.

    ``hold_band`` is the percent half-width of a HOLD move (default :data:`HOLD_BAND`, 0.05%).
    ``pivot_strength`` must equal the feed's, so both detectors agree.
    ``pivot_types`` are the pivot types ``pivots_only`` trains on (``None``: every type).
    """

    hold_band: float = HOLD_BAND
    pivot_strength: int = 2
    pivot_types: tuple[str, ...] | None = ("L1L", "L1H")

    def __post_init__(self):
        if not self.hold_band >= 0:
            raise ParameterError(f"hold_band {self.hold_band} must be >= 0 (percent)")
        if int(self.pivot_strength) < 1:
            raise ParameterError(f"pivot_strength {self.pivot_strength} must be >= 1")


def pivot_action(is_high: bool) -> int:
    """Return SELL for a high pivot and BUY for a low pivot."""
    return SELL if is_high else BUY


class TrainingStrategy:
    """Base of the per-mode strategies: never trains; a subclass overrides what its mode does.

    Parameters
    ----------
    timeframe : the session's timeframe.
    config : labelling parameters (:class:`StrategyConfig`).

    Attributes
    ----------
    mode : the mode this class is registered for (set by :func:`register_strategy`).
    manual : True when the mode trains on the user's labels (``train_manual``).
    decisions : count of each action decided so far.
    """

    mode: str = ""
    manual = False

    def __init__(self, timeframe: str, config: StrategyConfig | None = None):
        self.timeframe = timeframe
        self.config = config or StrategyConfig()
        self.decisions = {a: 0 for a in ACTIONS}

    @property
    def pivot_types(self) -> tuple[str, ...] | None:
        """Pivot types to receive from the coordinator (``()``: no pivot ever trains)."""
        return ()

    def observe_close(self, event: CandleCompletionEvent) -> None:
        """Called at each close before any decision about it (idempotent per candle)."""

    def should_train_on_candle(self, inference_ref) -> bool:
        """True when this close trains the frame that targeted it."""
        return False

    def action_for_candle(self, frame_end_ts: int, move_pct: float) -> int:
        """The action of the frame whose window ends at ``frame_end_ts``, revealed now.

        ``move_pct`` is the next candle's close relative to the frame's last close, in percent.
        """
        return self._decided(move_action(move_pct, self.config.hold_band))

    def should_train_on_pivot(self, event: PivotEvent) -> bool:
        """True when a confirmed pivot trains the frames inferred at the pivot candle."""
        return False

    def action_for_pivot(self, event: PivotEvent) -> int:
        """BUY at a confirmed low pivot, SELL at a confirmed high pivot."""
        return self._decided(pivot_action(event.is_high))

    def manual_action(self, action) -> int:
        """Validate a manual label and return its index; only a manual mode accepts one.

        Raises
        ------
        ParameterError : outside ``manual`` mode, or for an unknown action.
        """
        raise ParameterError(f"train_manual needs a session in mode "
                             f"{TrainingMode.MANUAL.value!r}; this one is in {str(self.mode)!r}")

    def _decided(self, action: int) -> int:
        self.decisions[ACTIONS[action]] += 1
        return action


#: training strategy classes by mode value
STRATEGIES: Registry[type[TrainingStrategy]] = Registry("training mode")


def register_strategy(mode, cls: type[TrainingStrategy]) -> type[TrainingStrategy]:
    """Register ``cls`` as the strategy of ``mode`` (a TrainingMode or a new mode's name)."""
    cls.mode = mode if isinstance(mode, TrainingMode) else str(mode)
    return STRATEGIES.register(str(mode), cls)


def strategy_for(mode, timeframe: str, config: StrategyConfig | None = None) -> TrainingStrategy:
    """Build the registered strategy of ``mode`` (a member, its value or a registered name).

    Raises
    ------
    ParameterError : (UnknownNameError) naming the mode and the registered ones.
    """
    key = str(mode).strip().lower().replace("-", "_")
    return STRATEGIES.get(key)(timeframe, config)


#: seed 000's name for a session's strategy: ``TrainingStrategyManager(mode, timeframe, config)``
TrainingStrategyManager = strategy_for


class NoTraining(TrainingStrategy):
    """``none``: inference only; the weights never change."""


class PivotsOnly(TrainingStrategy):
    """``pivots_only``: one step per confirmed pivot of ``config.pivot_types``."""

    @property
    def pivot_types(self) -> tuple[str, ...] | None:
        return self.config.pivot_types

    def should_train_on_pivot(self, event: PivotEvent) -> bool:
        types = self.config.pivot_types
        return types is None or event.pivot_type in types


class EveryCandle(TrainingStrategy):
    """``every_candle``: one step per close on the frame it reveals; a pivot confirmed in time
    labels the frame, otherwise the move does (see the module docstring)."""

    def __init__(self, timeframe: str, config: StrategyConfig | None = None):
        super().__init__(timeframe, config)
        self._last_observed: int | None = None
        self._known: dict[int, int] = {}  # pivot candle ts -> action, confirmed so far

    def observe_close(self, event: CandleCompletionEvent) -> None:
        """Record the level-1 pivots this close confirms (they come with the event from the
        feed's detector; ``pivot_strength`` must equal the feed's)."""
        if self._last_observed is not None and event.ts <= self._last_observed:
            return
        self._last_observed = event.ts
        for p in event.pivots:
            if p.level != 1:
                continue
            action = pivot_action(p.is_high)
            # an outside bar that is both a high and a low pivot is ambiguous: the move decides
            known = self._known.get(p.pivot_ts, action)
            self._known[p.pivot_ts] = action if known == action else _AMBIGUOUS
        if len(self._known) > _KEEP_PIVOTS:
            for key in sorted(self._known)[:-_KEEP_PIVOTS]:
                del self._known[key]

    def known_pivot(self, ts: int) -> int | None:
        """The action of candle ``ts`` if it is a pivot confirmed so far, else ``None`` (also for
        an outside bar confirmed as both a high and a low pivot)."""
        action = self._known.get(int(ts))
        return None if action == _AMBIGUOUS else action

    def should_train_on_candle(self, inference_ref) -> bool:
        return inference_ref is not None

    def action_for_candle(self, frame_end_ts: int, move_pct: float) -> int:
        action = self.known_pivot(frame_end_ts)
        if action is None:
            return super().action_for_candle(frame_end_ts, move_pct)
        return self._decided(action)


class Manual(TrainingStrategy):
    """``manual``: one step per label the user gives (``LiveSession.train_manual``)."""

    manual = True

    def manual_action(self, action) -> int:
        if isinstance(action, (int, np.integer)) and 0 <= int(action) < len(ACTIONS):
            index = int(action)
        elif isinstance(action, str) and action.strip().upper() in ACTIONS:
            index = ACTIONS.index(action.strip().upper())
        else:
            raise ParameterError(f"manual action {action!r} is not one of {ACTIONS}")
        return self._decided(index)


for _mode, _cls in ((TrainingMode.NONE, NoTraining), (TrainingMode.PIVOTS_ONLY, PivotsOnly),
                    (TrainingMode.EVERY_CANDLE, EveryCandle), (TrainingMode.MANUAL, Manual)):
    register_strategy(_mode, _cls)
