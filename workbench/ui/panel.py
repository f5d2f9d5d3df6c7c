"""The six-mode control panel (live inference, pivot and per-candle training, backtest, batch and
manual training), as ipywidgets (JupyterLab and Voila).

Buttons: the three live modes plus a manual session, Backtest Visible Chart, Train
Model, Train on Current Candle (Manual) with BUY/SELL/HOLD (visible only while a manual session
runs), Stop, Pause / Resume / Step one candle (during a session; a manual session starts paused,
so "label the current candle" names a candle that stays put), and the lineage buttons Save as
run, Reset to saved and Backtest current model. Pickers choose the model (completed runs),
symbol, timeframe, range (the last N candles: the "visible chart"), replay speed and the source
(history replay or an exchange, with paper trading on or off: :mod:`workbench.ui.panel_live`);
the pickers are fixed lists of choices and the exchange id and URL are validated text, so no
viewer input is ever evaluated; all are disabled while work runs, so the chart always shows the
picked series. The chart is a plotly ``FigureWidget`` updated in place
(:mod:`workbench.ui.panel_view`).

Which weights run is explicit (:mod:`workbench.ui.panel_model`): a session starts from the saved
weights of the picked run unless "continue the current model" is ticked; the model line says
``R (saved)`` or ``R + N steps (unsaved, session S)``. A model trained on another series is
warned about; a series shorter than its window refuses every start with the reason.

Threads
-------
Widgets are created on the kernel's main thread. Long work runs in background threads
(``live-*``, ``backtest``, ``train``) and one ``panel-ticker`` thread
(:mod:`workbench.ui.panel_jobs`), which polls the running work twice a second and only *sets
widget traits* (a figure's traces, an ``HTML``'s text, a progress value, ``disabled``, the log's
HTML); none of them uses ``with output:`` capture, which ipykernel 7 routes per thread. Stop sets a :class:`threading.Event` and
asks each running piece of work to end at its next step; the ticker waits on an event that Stop
and the end of every job set, so the panel is idle again as soon as the work has ended (a paced
replay's wait and an exchange's websocket wait are themselves interruptible).

Which buttons are enabled, and the reason shown when one is not, comes from the pure state
machine :mod:`workbench.ui.panel_state`.
"""
from __future__ import annotations

import threading

import ipywidgets as w
import polars as pl

from workbench.actions import ACTIONS
from workbench.backtest.stats import format_stats
from workbench.errors import WorkbenchError
from workbench.live.modes import TrainingMode
from workbench.ui import prepare
from workbench.ui.panel_jobs import PanelJobs
from workbench.ui.panel_live import PanelLive
from workbench.ui.panel_log import PanelLog, hhmm
from workbench.ui.panel_model import ModelSlot
from workbench.ui.panel_view import (PanelChart, lock_status, session_status, stats_table,
                                     training_status)
from workbench.ui.panel_state import (LABELS, LIVE_BUTTONS, Activity, Button, PanelFacts,
                                      button_states)

RANGES = (300, 600, 1500, 3000)  # "last N candles" choices of the range picker
SPEEDS = ("300x", "60x", "600x", "1x", "max")
_STYLES = {Button.LIVE_NONE: "success", Button.LIVE_PIVOTS: "info",
           Button.LIVE_EVERY_CANDLE: "primary", Button.LIVE_MANUAL: "warning",
           Button.BACKTEST: "warning", Button.TRAIN: "primary", Button.MANUAL_TRAIN: "warning",
           Button.STOP: "danger", Button.PAUSE: "", Button.RESUME: "", Button.STEP: "",
           Button.SAVE: "success", Button.RESET: "", Button.BACKTEST_CURRENT: "warning"}
_PACE = (Button.PAUSE, Button.RESUME, Button.STEP)
_LINEAGE = (Button.SAVE, Button.RESET, Button.BACKTEST_CURRENT)


class ControlPanel:
    """The control panel; ``display(panel.widget)`` shows it.

    Parameters
    ----------
    db : DuckDB file ("" : ``$WORKBENCH_DB`` or the default).
    symbol, timeframe, model : initial picks ("" model: the newest completed run).
    candles : initial range (last N candles); speed : initial replay pace.
    chart_candles : candles drawn on the live chart.
    train_epochs, train_windows : size of a "Train Model" run (kept small for a dashboard).
    source : the initial source choice, ``source`` ("replay" or "exchange"), ``exchange`` (a
        ccxt id), ``url`` (a base URL, "" for the exchange's own) and ``paper`` (paper trading
        on or off); see :mod:`workbench.ui.panel_live`.
    """

    def __init__(self, db: str = "", symbol: str = "ETH/USDT", timeframe: str = "1m",
                 model: str = "", candles: int = 600, speed: str = "300x",
                 chart_candles: int = 120, train_epochs: int = 1, train_windows: int = 1000,
                 **source):
        self.store = prepare.open_store(db)
        self.chart_candles, self.train_epochs = chart_candles, train_epochs
        self.train_windows = train_windows
        self.stop_event = threading.Event()
        self.slot = ModelSlot(self.store.path)
        self.last_backtest = None
        self._run_handle = None
        self._manual_busy = False
        self._logbook = PanelLog()
        self.jobs = PanelJobs(self.log, self.tick, self.refresh)
        self._counts: dict[tuple[str, str], int] = {}
        self.live_chart = PanelChart(chart_candles)
        self.live = PanelLive(self.store, chart_candles * 2, self.live_chart, **source)
        self._build(symbol, timeframe, model, candles, speed)
        self.refresh()

    # -- widgets ---------------------------------------------------------------------------------
    def _build(self, symbol, timeframe, model, candles, speed) -> None:
        series = self.store.series()
        symbols = sorted(set(series["symbol"].to_list())) or [symbol]
        self.symbol = w.Dropdown(options=symbols, value=symbol if symbol in symbols else symbols[0],
                                 description="symbol")
        self.timeframe = w.Dropdown(options=self._timeframes(self.symbol.value) or [timeframe],
                                    description="timeframe")
        if timeframe in self.timeframe.options:
            self.timeframe.value = timeframe
        self.model = w.Dropdown(options=[], description="model",
                                layout=w.Layout(width="380px"))
        self.range = w.Dropdown(options=[(f"last {n} candles", n) for n in RANGES],
                                value=candles if candles in RANGES else RANGES[1],
                                description="range")
        self.speed = w.Dropdown(options=SPEEDS, value=speed if speed in SPEEDS else SPEEDS[0],
                                description="speed")
        self.continue_model = w.Checkbox(value=False, indent=False,
                                         description="continue the current session's model")
        self.continue_model.add_class("wb-continue")
        self.buttons = {b: w.Button(description=LABELS[b], button_style=_STYLES[b],
                                    layout=w.Layout(width="auto")) for b in Button}
        for button, widget in self.buttons.items():
            widget.add_class(f"wb-{button.value}")
        self.manual_action = w.ToggleButtons(options=ACTIONS, value=ACTIONS[0],
                                             description="action")
        self.manual_box = w.HBox([self.manual_action, self.buttons[Button.MANUAL_TRAIN]])
        self.model_status = w.HTML().add_class("wb-model-status")
        self.mismatch = w.HTML().add_class("wb-mismatch")
        self.reasons = w.HTML().add_class("wb-reasons")
        self.status = w.HTML().add_class("wb-status")
        self.progress = w.FloatProgress(value=0, min=0, max=1, description="idle")
        self.chart, self.chart_caption = self.live_chart.widget, self.live_chart.caption
        self.results = w.HTML().add_class("wb-results")
        self.log_output = self._logbook.widget
        self._refresh_models(model)
        for name in ("symbol", "timeframe", "model", "range", "speed"):
            getattr(self, name).add_class(f"wb-pick-{name}")
        for picker in (self.symbol, self.timeframe, self.model, self.range):
            picker.observe(self._on_pick, names="value")
        self.live.controls.source.observe(lambda _c: self.refresh(), names="value")
        self._wire()
        self.widget = w.VBox([
            w.HTML("<h3>Workbench control panel</h3>"),
            w.HBox([self.model, self.symbol, self.timeframe]), w.HBox([self.range, self.speed]),
            w.HBox([self.model_status, self.continue_model]), self.mismatch,
            self.live.controls.box,
            self._row((*LIVE_BUTTONS.values(), Button.BACKTEST, Button.TRAIN, Button.STOP)),
            self._row(_PACE + _LINEAGE), self.manual_box,
            self.reasons, self.status, self.progress, self.live.view, self.chart_caption,
            self.chart, self.results, w.HTML("<b>log</b>"),
            self.log_output]).add_class("wb-panel")

    def _row(self, buttons) -> w.HBox:
        return w.HBox([self.buttons[b] for b in buttons], layout=w.Layout(flex_flow="row wrap"))

    def _wire(self) -> None:
        for mode, button in LIVE_BUTTONS.items():
            self.buttons[button].on_click(lambda _b, m=mode: self.start_live(m))
        actions = {Button.BACKTEST: self.start_backtest, Button.TRAIN: self.start_training,
                   Button.MANUAL_TRAIN: self.train_manual, Button.STOP: self.stop,
                   Button.PAUSE: self.pause, Button.RESUME: self.resume, Button.STEP: self.step,
                   Button.SAVE: self.save_as_run, Button.RESET: self.reset_to_saved,
                   Button.BACKTEST_CURRENT: lambda: self.start_backtest(current=True)}
        for button, action in actions.items():
            self.buttons[button].on_click(lambda _b, a=action: a())

    def _timeframes(self, symbol: str) -> list[str]:
        series = self.store.series().filter(pl.col("symbol") == symbol)
        return series["timeframe"].to_list()

    def _refresh_models(self, prefer: str = "") -> None:
        runs = [r["run_id"] for r in prepare.completed_runs(self.store.path)]
        current = prefer or self.model.value
        self.model.options = runs
        self.model.value = current if current in runs else (runs[0] if runs else None)

    def _on_pick(self, change) -> None:
        if change["owner"] is self.symbol:  # keep the timeframe when the symbol has it
            keep = self.timeframe.value
            self.timeframe.options = self._timeframes(self.symbol.value)
            if keep in self.timeframe.options:
                self.timeframe.value = keep
        self.refresh()
        if self.facts().activity is Activity.IDLE:
            self._draw_range()

    # -- state -----------------------------------------------------------------------------------
    @property
    def session(self):
        """The running (or last) live session, None before the first."""
        return self.live.session

    def _candle_count(self) -> int:
        key = (self.symbol.value, self.timeframe.value)
        if key not in self._counts:  # cached: refresh() runs twice a second
            series = self.store.series().filter((pl.col("symbol") == key[0])
                                                & (pl.col("timeframe") == key[1]))
            self._counts[key] = int(series["rows"][0]) if series.height else 0
        return self._counts[key]

    def facts(self) -> PanelFacts:
        """Describe the panel's situation for :func:`button_states`."""
        live = self.jobs.alive("live") and self.session is not None
        run_id, symbol, tf = self.model.value, self.symbol.value, self.timeframe.value
        return PanelFacts(
            live_mode=self.session.mode if live else None, training=self.jobs.alive("train"),
            backtest=self.jobs.alive("backtest"), stopping=self.jobs.stopping,
            has_model=bool(run_id), has_candles=self._candle_count() > 0,
            has_current_candle=live and self.session.counts["predictions"] > 0,
            manual_step_running=self._manual_busy,
            paused=live and self.session.state == "paused",
            unsaved_steps=self.slot.unsaved_steps(run_id),
            refusal=self.slot.refusal(run_id, symbol, tf, self._candle_count()),
            exchange=self.live.controls.exchange_chosen)

    def refresh(self) -> None:
        """Apply the state machine to the buttons and pickers (trait sets only: any thread)."""
        self._show_model()  # before the buttons: an enabled Start shows the final model line
        facts = self.facts()
        states = button_states(facts)
        for button, state in states.items():
            widget = self.buttons[button]
            widget.disabled = not state.enabled
            widget.tooltip = state.reason
            widget.layout.display = None if state.visible else "none"
        manual = states[Button.MANUAL_TRAIN]
        self.manual_box.layout.display = None if manual.visible else "none"
        self.manual_action.disabled = not manual.enabled
        busy = facts.activity is not Activity.IDLE
        for picker in (self.symbol, self.timeframe, self.model, self.range, self.speed,
                       self.continue_model, *self.live.controls.pickers):
            picker.disabled = busy
        why = [f"<li><b>{LABELS[b]}</b>: {s.reason}</li>" for b, s in states.items()
               if s.visible and not s.enabled and b not in _LINEAGE]
        self.reasons.value = f"<ul class='wb-why'>{''.join(why)}</ul>" if why else ""

    def _show_model(self) -> None:
        run_id = self.model.value
        self.model_status.value = f"<b>model</b>: {self.slot.label(run_id)}"
        warning = self.slot.warning(run_id, self.symbol.value, self.timeframe.value)
        self.mismatch.value = (f"<div style='color:#b71c1c'>&#9888; {warning}</div>"
                               if warning else "")

    def log(self, message: str) -> None:
        """Append one line to the log (sets the log widget's value: safe from any thread)."""
        self._logbook.add(message)

    @property
    def log_lines(self) -> list[str]:
        """The lines currently in the log."""
        return self._logbook.lines

    def _picked_range(self) -> tuple[int, int]:
        return prepare.pick_range(self.store, self.symbol.value, self.timeframe.value,
                                  candles=self.range.value)

    # -- actions ---------------------------------------------------------------------------------
    def start_live(self, mode: TrainingMode) -> None:
        """Start a live session in ``mode`` on the picked model and source.

        A history replay covers the picked series and range at the picked speed; an exchange
        session follows the exchange until Stop (:mod:`workbench.ui.panel_live`). The session's
        model is the picked run's saved weights, unless "continue the current session's model"
        is ticked and there are unsaved ones. A manual session starts paused: Step advances one
        candle, so a label names a candle that stays put. Bad source input is shown, not raised.
        """
        if not button_states(self.facts())[LIVE_BUTTONS[mode]].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        try:
            self.live.controls.choice()  # bad source input: said before any model is loaded
            handle = self.slot.for_session(self.model.value, self.continue_model.value)
            session = self.live.open(handle, self.symbol.value, self.timeframe.value, mode,
                                     first, last, self.speed.value)
        except WorkbenchError as exc:
            self.log(f"live session not started: {exc}")
            return
        self.slot.started(session, first, last)
        self.live_chart.start(self.store, session)
        self.results.value = ""
        self._logbook.clear()
        self.log(f"live session {session.session_id}: mode {mode.value}, model "
                 f"{self.slot.label(self.model.value)}, {self.live.describe(self.speed.value)}")
        self.jobs.spawn("live", self._run_live)

    def _run_live(self) -> None:
        try:
            stats = self.live.run_to_end()
        finally:
            self.live.drain(self.log)  # every prediction line before the end line
        if self.live.run.source == "exchange":  # the lineage range: the candles it saw
            self.slot.live_meta["range"] = self.live.emitted_range()
        self.log(f"session ended ({stats['state']}): {stats['candles']} candles, "
                 f"{stats['predictions']} predictions, {stats['training_steps']} training steps, "
                 f"equity {stats['pnl']['equity']:.2f}; model {self.slot.label(self.model.value)}")

    def _pace(self, button: Button, action: str, message: str = "") -> None:
        if self.session is not None and button_states(self.facts())[button].enabled:
            getattr(self.session, action)()
            if message:
                self.log(message)
            self.jobs.wake()

    def pause(self) -> None:
        """Pause the live session after the candle being processed."""
        self._pace(Button.PAUSE, "pause", "paused")

    def resume(self) -> None:
        """Resume a paused live session."""
        self._pace(Button.RESUME, "resume", "resumed")

    def step(self) -> None:
        """Advance a paused live session by one candle (it stays paused)."""
        self._pace(Button.STEP, "step")

    def train_manual(self) -> None:
        """Train one step on the current candle with the chosen BUY/SELL/HOLD (manual mode)."""
        if not button_states(self.facts())[Button.MANUAL_TRAIN].enabled:
            return
        action, session = self.manual_action.value, self.session
        self._manual_busy = True
        self.refresh()

        def step():
            try:
                out = session.train_manual(action)
                self.log(f"manual {out['action']} at {hhmm(out['ts'])}: loss {out['loss']:.4f}, "
                         f"model v{out['model_version']}, training steps "
                         f"{session.counts['training_steps']}")
                self.live_chart.invalidate()  # redraw: the label goes on the chart
            finally:
                self._manual_busy = False

        self.jobs.spawn("manual", step)

    def start_backtest(self, current: bool = False) -> None:
        """Backtest the picked model on the visible range (inference only, no weight change).

        ``current``: backtest the unsaved weights of the last training session instead of the
        saved ones ("Backtest current model"); such a backtest is labelled and not stored.
        """
        from workbench.backtest.engine import BacktestConfig

        button = Button.BACKTEST_CURRENT if current else Button.BACKTEST
        if not button_states(self.facts())[button].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        handle = self.slot.for_backtest(self.model.value) if current else None
        label = self.slot.label(self.model.value) if current else f"{self.model.value} (saved)"
        config = BacktestConfig(symbol=self.symbol.value, timeframe=self.timeframe.value,
                                start=first, end=last, model=self.model.value,
                                persist=handle is None)
        self._logbook.clear()
        self.log(f"backtest of {label} on {self.range.value} candles")
        self.jobs.spawn("backtest", lambda: self._run_backtest(config, handle, label))

    def _run_backtest(self, config, handle, label: str) -> None:
        from workbench.backtest.engine import PHASES, run_backtest

        def progress(phase: str, done: int, total: int) -> None:
            if self.stop_event.is_set():
                raise WorkbenchError("backtest stopped")
            self.progress.description = phase
            self.progress.value = (PHASES.index(phase) + done / max(total, 1)) / len(PHASES)

        if config.walk_forward:  # its signals come from a session that trains as it replays
            from workbench.live.walk_forward import run_walk_forward_backtest

            result = run_walk_forward_backtest(config, store=self.store, progress=progress)
        else:
            result = run_backtest(config, store=self.store, progress=progress, handle=handle)
        self.last_backtest = result
        self.results.value = stats_table(result.stats, result.backtest_id, label)
        self.live_chart.draw_backtest(self.store, config, result, label)
        s = result.stats
        text = dict(format_stats(s))
        self.log(f"backtest {result.backtest_id}: {text['# Trades']} trades, return "
                 f"{text['Return [%]']}, win rate {text['Win Rate [%]']}")

    def start_training(self) -> None:
        """Train the picked model (or a fresh quick one) on the picked range, through its lock.

        "Train Model" trains a copy of the current weights (the saved ones, or a session's
        unsaved ones) into a new run whose ``run.json`` names its parent; no session's model
        changes, and the picked model stays picked.
        """
        from workbench.live.batch import start_batch_training
        from workbench.train.runs import start_training

        if not button_states(self.facts())[Button.TRAIN].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        if self.model.value:  # "Train Model": a copy of the current model, all annotations
            self._run_handle = start_batch_training(
                self.slot.for_training(self.model.value), self.store, self.symbol.value,
                self.timeframe.value, first, last,
                overrides={"training.num_epochs": self.train_epochs,
                           "data.max_windows": self.train_windows})
        else:
            config = prepare.quick_config(self.store, self.symbol.value, self.timeframe.value,
                                          start=first, end=last, epochs=self.train_epochs,
                                          max_windows=self.train_windows)
            self._run_handle = start_training(config, db=self.store.path)
        self.log(f"training run {self._run_handle.run_id} started")
        self.jobs.spawn("train", self._wait_training)

    def _wait_training(self) -> None:
        record = self._run_handle.wait()
        best = record.get("best_metrics") or {}
        parent = record.get("parent_run_id")
        self.log(f"training run {record['run_id']} {record['status']}"
                 + (f" (parent {parent})" if parent else "")
                 + f": best val_loss {best.get('val_loss', float('nan')):.4f}; pick it in the "
                 "model list to use it")
        self._refresh_models(self.model.value or record["run_id"])

    def save_as_run(self) -> str | None:
        """Save the unsaved weights as a new run (with its parent) and pick it; returns its id."""
        if not button_states(self.facts())[Button.SAVE].enabled:
            return None
        parent = self.model.value
        record = self.slot.save()
        self.log(f"saved {record['training_steps']} steps of session {record['session_id']} as "
                 f"run {record['run_id']} (parent {parent})")
        self._refresh_models(record["run_id"])
        self.refresh()
        return record["run_id"]

    def reset_to_saved(self) -> None:
        """Drop the unsaved weights; the next session starts from the saved ones."""
        if button_states(self.facts())[Button.RESET].enabled:
            self.slot.reset()
            self.log(f"reset to the saved weights of {self.model.value}")
            self.refresh()

    def stop(self) -> None:
        """Ask everything running to stop at its next step (a Stop button press)."""
        self.stop_event.set()
        self.jobs.request_stop()
        if self.session is not None:
            self.session.stop(wait=False)
        if self._run_handle is not None:
            self._run_handle.stop()
        self.log("stop requested")
        self.refresh()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no work runs (for notebooks run headless and tests)."""
        return self.jobs.wait_idle(timeout)

    # -- the view: refreshed by the ticker while work runs -----------------------------------------
    def tick(self) -> None:
        """Refresh status, progress, chart and log from the running work (one poll)."""
        self.refresh()
        activity = self.facts().activity
        parts = [f"<b>state</b>: {activity.value}"]
        if self.session is not None:
            parts += self._session_status()
        if self._run_handle is not None:
            training, done = training_status(self._run_handle)
            parts += training
            if self.jobs.alive("train"):
                self.progress.description, self.progress.value = "epochs", done
        parts.append(f"<b>lock</b>: {lock_status(self.slot.live)}")
        self.status.value = " &nbsp;|&nbsp; ".join(parts)
        if activity is Activity.IDLE:  # the ticker's last poll: the figure has settled
            self.progress.description, self.progress.value = "idle", 0.0
            self.live_chart.settle()

    def _session_status(self) -> list[str]:
        snap = self.session.snapshot()
        if self.jobs.alive("live"):
            self.live.drain(self.log)
            self.live.show()
        self.live_chart.update(snap, self.slot.label(self.model.value))
        parts, done = session_status(self.session, snap, self.jobs.alive("live"))
        if self.jobs.alive("live"):
            self.progress.description = "candles" if done is not None else "following"
            self.progress.value = done if done is not None else 0.0
        return parts

    def _draw_range(self) -> None:
        """Draw the picked range's last candles (the chart before anything runs)."""
        self.live_chart.draw_range(self.store, self.symbol.value, self.timeframe.value,
                                   self.range.value)

    def show(self):
        """Draw the initial chart and return the widget (the notebook's last expression)."""
        self._draw_range()
        self.tick()
        return self.widget
