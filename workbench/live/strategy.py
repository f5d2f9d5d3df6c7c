"""The training strategy of one live session: when to train, and on which label (seed 000).

Every :class:`~workbench.live.session.LiveSession` owns its own :class:`TrainingStrategyManager`
(seed 000's third recommendation: never shared between sessions). The manager only *decides*;
the session trains, always through the model's lock. Per mode
(:class:`~workbench.live.modes.TrainingMode`):

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


class TrainingStrategyManager:
    """Decide when one session trains and on which action (see the module docstring).

    Parameters
    ----------
    mode : a :class:`TrainingMode` (or its value).
    timeframe : the session's timeframe (for the pivot detector).
    config : labelling parameters (:class:`StrategyConfig`).
    """

    def __init__(self, mode, timeframe: str, config: StrategyConfig | None = None):
        self.mode = TrainingMode.parse(mode)
        self.config = config or StrategyConfig()
        self._last_observed: int | None = None
        self._known: dict[int, int] = {}  # pivot candle ts -> action, confirmed so far
        self.decisions = {a: 0 for a in ACTIONS}

    # -- what the session subscribes to ------------------------------------------------------
    @property
    def pivot_types(self) -> tuple[str, ...] | None:
        """Pivot types to receive from the coordinator (``()`` when no pivot ever trains)."""
        return self.config.pivot_types if self.mode is TrainingMode.PIVOTS_ONLY else ()

    # -- state ----------------------------------------------------------------------------------
    def observe_close(self, event: CandleCompletionEvent) -> None:
        """Record a closed candle (idempotent per candle): level-1 pivots it confirms become known.

        The pivots come from the feed's detector with the event; ``pivot_strength`` of the
        strategy must therefore equal the feed's (the session builds both from one setting).
        """
        if self.mode is not TrainingMode.EVERY_CANDLE:
            return
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
        """The action of candle ``ts`` if it is a pivot confirmed so far, else ``None``.

        A candle confirmed as both a high and a low pivot (an outside bar) gives ``None``.
        """
        action = self._known.get(int(ts))
        return None if action == _AMBIGUOUS else action

    # -- decisions ------------------------------------------------------------------------------
    def should_train_on_candle(self, inference_ref) -> bool:
        """True when this close trains the frame that targeted it (``every_candle``)."""
        return self.mode is TrainingMode.EVERY_CANDLE and inference_ref is not None

    def action_for_candle(self, frame_end_ts: int, move_pct: float) -> int:
        """The action of the frame whose window ends at ``frame_end_ts``, revealed now.

        ``move_pct`` is the next candle's close relative to the frame's last close, in percent.
        A pivot at ``frame_end_ts`` confirmed by now wins over the move.
        """
        action = self.known_pivot(frame_end_ts)
        if action is None:
            action = move_action(move_pct, self.config.hold_band)
        self.decisions[ACTIONS[action]] += 1
        return action

    def should_train_on_pivot(self, event: PivotEvent) -> bool:
        """True when a confirmed pivot trains (``pivots_only``, type in ``pivot_types``)."""
        types = self.config.pivot_types
        return (self.mode is TrainingMode.PIVOTS_ONLY
                and (types is None or event.pivot_type in types))

    def action_for_pivot(self, event: PivotEvent) -> int:
        """BUY at a confirmed low pivot, SELL at a confirmed high pivot."""
        action = pivot_action(event.is_high)
        self.decisions[ACTIONS[action]] += 1
        return action

    def manual_action(self, action) -> int:
        """Validate a manual label (a name in ACTIONS or its index) and return its index.

        Raises
        ------
        ParameterError : outside ``manual`` mode, or for an unknown action.
        """
        if self.mode is not TrainingMode.MANUAL:
            raise ParameterError(f"train_manual needs a session in mode "
                                 f"{TrainingMode.MANUAL.value!r}; this one is in "
                                 f"{self.mode.value!r}")
        if isinstance(action, (int, np.integer)) and 0 <= int(action) < len(ACTIONS):
            index = int(action)
        elif isinstance(action, str) and action.strip().upper() in ACTIONS:
            index = ACTIONS.index(action.strip().upper())
        else:
            raise ParameterError(f"manual action {action!r} is not one of {ACTIONS}")
        self.decisions[ACTIONS[index]] += 1
        return index
