"""The control panel's pure core: which buttons are visible and enabled, and why not.

The widget layer (:mod:`workbench.ui.panel`) describes the situation as :class:`PanelFacts`
and renders what :func:`button_states` returns; it holds no enabling rule of its own, so the rules
are tested here without widgets, threads or a kernel.

Rules (the six training/inference modes plus Stop):

* A live session (any :class:`TrainingMode`) and a backtest need a model, candles in the picked
  range, and nothing else running.
* "Train Model" needs candles and no other training or backtest; it may run during a live
  session, because every weight update goes through the model's training lock.
* "Train on Current Candle (Manual)" and its BUY/SELL/HOLD choices are visible only while a
  manual session runs, and enabled once that session has a current candle.
* Stop is enabled while anything runs, and disabled while a stop is in progress.
* Pause is enabled while a live session runs; Resume and Step (one candle) while it is paused.
* An exchange session follows candles as the exchange closes them: it cannot pause or step
  (Stop ends it), and the manual mode, which labels a paused replay's current candle, needs
  the history replay source.
* A series shorter than the model's window (``refusal``) blocks every live start and the
  backtest, with that reason.
* "Save as run", "Reset to saved" and "Backtest current model" need unsaved training steps and
  an idle panel (so the weights saved or backtested are not changing meanwhile).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from workbench.live.modes import TrainingMode


class Activity(str, enum.Enum):
    """What the panel is doing."""

    IDLE = "idle"
    LIVE = "live"
    BACKTEST = "backtest"
    TRAINING = "training"
    LIVE_AND_TRAINING = "live_and_training"
    STOPPING = "stopping"


class Button(str, enum.Enum):
    """Every button of the panel."""

    LIVE_NONE = "live_none"
    LIVE_PIVOTS = "live_pivots"
    LIVE_EVERY_CANDLE = "live_every_candle"
    LIVE_MANUAL = "live_manual"
    BACKTEST = "backtest"
    TRAIN = "train"
    MANUAL_TRAIN = "manual_train"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    STEP = "step"
    SAVE = "save"
    RESET = "reset"
    BACKTEST_CURRENT = "backtest_current"


#: the button that starts a live session in each mode
LIVE_BUTTONS = {
    TrainingMode.NONE: Button.LIVE_NONE,
    TrainingMode.PIVOTS_ONLY: Button.LIVE_PIVOTS,
    TrainingMode.EVERY_CANDLE: Button.LIVE_EVERY_CANDLE,
    TrainingMode.MANUAL: Button.LIVE_MANUAL,
}

#: the button labels, named as the six modes are in the design notes
LABELS = {
    Button.LIVE_NONE: "Start Live Inference (No Training)",
    Button.LIVE_PIVOTS: "Live Inference + Pivot Training",
    Button.LIVE_EVERY_CANDLE: "Live Inference + Per-Candle Training",
    Button.LIVE_MANUAL: "Live Inference + Manual Training",
    Button.BACKTEST: "Backtest Visible Chart",
    Button.TRAIN: "Train Model",
    Button.MANUAL_TRAIN: "Train on Current Candle (Manual)",
    Button.STOP: "Stop",
    Button.PAUSE: "Pause",
    Button.RESUME: "Resume",
    Button.STEP: "Step one candle",
    Button.SAVE: "Save as run",
    Button.RESET: "Reset to saved",
    Button.BACKTEST_CURRENT: "Backtest current model",
}


@dataclass(frozen=True)
class PanelFacts:
    """Everything the enabling rules depend on.

    ``live_mode`` is the mode of the running live session (``None``: no session); ``training``,
    ``backtest`` and ``stopping`` say whether batch training or a backtest is running and
    whether a Stop is in progress.
    """

    live_mode: TrainingMode | None = None
    training: bool = False
    backtest: bool = False
    stopping: bool = False
    has_model: bool = False
    has_candles: bool = False
    has_current_candle: bool = False
    manual_step_running: bool = False
    paused: bool = False
    unsaved_steps: int = 0
    refusal: str = ""  # why no session can run on the picked series ('' when one can)
    exchange: bool = False  # the source is an exchange (the running session follows one)

    @property
    def activity(self) -> Activity:
        """The single activity the facts describe (Stop in progress wins)."""
        if self.stopping:
            return Activity.STOPPING
        if self.backtest:
            return Activity.BACKTEST
        if self.live_mode is not None:
            return Activity.LIVE_AND_TRAINING if self.training else Activity.LIVE
        return Activity.TRAINING if self.training else Activity.IDLE


@dataclass(frozen=True)
class ButtonState:
    """How one button is shown: visible, enabled, and the reason when it is disabled."""

    visible: bool
    enabled: bool
    reason: str = ""


_BUSY_REASONS = {
    Activity.LIVE: "a live session is running; press Stop first",
    Activity.LIVE_AND_TRAINING: "a live session and training are running; press Stop first",
    Activity.BACKTEST: "a backtest is running; press Stop first",
    Activity.TRAINING: "training is running; press Stop first",
    Activity.STOPPING: "stopping; wait until the current work has ended",
}


def _needs(facts: PanelFacts, *, model: bool) -> str:
    """Return why a start-type action cannot run now ('' when it can)."""
    if facts.activity is not Activity.IDLE:
        return _BUSY_REASONS[facts.activity]
    if model and not facts.has_model:
        return "pick a model (no completed training run yet: press Train Model)"
    if not facts.has_candles:
        return "no candles for the picked symbol, timeframe and range"
    if model and facts.refusal:
        return facts.refusal
    return ""


def _train_reason(facts: PanelFacts) -> str:
    if facts.activity in (Activity.IDLE, Activity.LIVE):
        return "" if facts.has_candles else "no candles for the picked symbol, timeframe and range"
    return _BUSY_REASONS[facts.activity]


def _manual_state(facts: PanelFacts) -> ButtonState:
    if facts.live_mode is not TrainingMode.MANUAL or facts.stopping:
        return ButtonState(False, False, "only during a manual live session")
    if facts.manual_step_running:
        return ButtonState(True, False, "a manual training step is running")
    if not facts.has_current_candle:
        return ButtonState(True, False, "waiting for the first closed candle")
    return ButtonState(True, True)


def _stop_state(facts: PanelFacts) -> ButtonState:
    if facts.activity is Activity.IDLE:
        return ButtonState(True, False, "nothing is running")
    if facts.activity is Activity.STOPPING:
        return ButtonState(True, False, _BUSY_REASONS[Activity.STOPPING])
    return ButtonState(True, True)


def _pace_states(facts: PanelFacts) -> dict[Button, ButtonState]:
    if facts.live_mode is None or facts.stopping or facts.exchange:
        hidden = ButtonState(False, False, "only during a live session over history")
        return {Button.PAUSE: hidden, Button.RESUME: hidden, Button.STEP: hidden}
    if facts.paused:
        return {Button.PAUSE: ButtonState(True, False, "paused: Resume or Step"),
                Button.RESUME: ButtonState(True, True), Button.STEP: ButtonState(True, True)}
    running = ButtonState(True, False, "the session is running: Pause first")
    return {Button.PAUSE: ButtonState(True, True), Button.RESUME: running, Button.STEP: running}


def _lineage_states(facts: PanelFacts) -> dict[Button, ButtonState]:
    none = "" if facts.unsaved_steps else "the model has no unsaved training steps"
    busy = _BUSY_REASONS.get(facts.activity, "")
    return {Button.SAVE: _enabled_unless(none or busy),
            Button.RESET: _enabled_unless(none or busy),
            Button.BACKTEST_CURRENT: _enabled_unless(none or busy)}


_MANUAL_NEEDS_REPLAY = ("manual training labels the current candle of a paused replay: pick "
                        "the history replay source")


def _enabled_unless(reason: str) -> ButtonState:
    return ButtonState(True, not reason, reason)


def button_states(facts: PanelFacts) -> dict[Button, ButtonState]:
    """Return the state of every button for ``facts`` (see the module docstring for the rules)."""
    live = _enabled_unless(_needs(facts, model=True))
    states = {button: live for button in LIVE_BUTTONS.values()}
    if facts.exchange and live.enabled:
        states[Button.LIVE_MANUAL] = ButtonState(True, False, _MANUAL_NEEDS_REPLAY)
    states[Button.BACKTEST] = _enabled_unless(_needs(facts, model=True))
    states[Button.TRAIN] = _enabled_unless(_train_reason(facts))
    states[Button.MANUAL_TRAIN] = _manual_state(facts)
    states[Button.STOP] = _stop_state(facts)
    states.update(_pace_states(facts))
    states.update(_lineage_states(facts))
    return states
