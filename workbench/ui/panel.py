"""The six-mode control panel (live inference, pivot and per-candle training, backtest, batch and
manual training), as ipywidgets (JupyterLab and Voila).

Buttons: the three live modes plus a manual session, Backtest Visible Chart, Train
Model, Train on Current Candle (Manual) with BUY/SELL/HOLD (visible only while a manual session
runs) and Stop. Pickers choose the model (completed runs), symbol, timeframe, range (the last N
candles: the "visible chart") and replay speed; every picker is a fixed list of choices, so no
viewer input is ever evaluated.

Threads
-------
Widgets are created on the kernel's main thread. Long work runs in background threads
(``live-*``, ``backtest``, ``train``) and one ``panel-ticker`` thread, which polls the running work
twice a second and only *sets widget traits* (an ``Image``'s bytes, an ``HTML``'s text, a
progress value, ``disabled``) or replaces the log ``Output``'s text; none of them uses
``with output:`` capture, which ipykernel 7 routes per thread. Stop sets a
:class:`threading.Event` and asks each running piece of work to end at its next step.

Which buttons are enabled, and the reason shown when one is not, comes from the pure state
machine :mod:`workbench.ui.panel_state`.
"""
from __future__ import annotations

import io
import threading
import time
from collections import deque

import ipywidgets as w
import polars as pl

from workbench.actions import ACTIONS
from workbench.errors import WorkbenchError
from workbench.jobs import CallableJob
from workbench.live.modes import TrainingMode
from workbench.ui import charts, prepare
from workbench.ui.panel_state import (LABELS, LIVE_BUTTONS, Button, PanelFacts, button_states)

RANGES = (300, 600, 1500, 3000)  # "last N candles" choices of the range picker
SPEEDS = ("300x", "60x", "600x", "1x", "max")
TICK_S = 0.5  # how often the ticker refreshes the view while work runs
LOG_LINES = 200
_STYLES = {Button.LIVE_NONE: "success", Button.LIVE_PIVOTS: "info",
           Button.LIVE_EVERY_CANDLE: "primary", Button.LIVE_MANUAL: "warning",
           Button.BACKTEST: "warning", Button.TRAIN: "primary", Button.MANUAL_TRAIN: "warning",
           Button.STOP: "danger"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


class ControlPanel:
    """The control panel; ``display(panel.widget)`` shows it.

    Parameters
    ----------
    db : DuckDB file ("" : ``$WORKBENCH_DB`` or the default).
    symbol, timeframe, model : initial picks ("" model: the newest completed run).
    candles : initial range (last N candles); speed : initial replay pace.
    chart_candles : candles drawn on the live chart.
    train_epochs, train_windows : size of a "Train Model" run (kept small for a dashboard).
    """

    def __init__(self, db: str = "", symbol: str = "ETH/USDT", timeframe: str = "1m",
                 model: str = "", candles: int = 600, speed: str = "300x",
                 chart_candles: int = 120, train_epochs: int = 1, train_windows: int = 1000):
        self.store = prepare.open_store(db)
        self.chart_candles, self.train_epochs = chart_candles, train_epochs
        self.train_windows = train_windows
        self.stop_event = threading.Event()
        self.session = None
        self.last_backtest = None
        self._handles: dict = {}
        self._threads: dict[str, CallableJob] = {}
        self._run_handle = None
        self._manual_busy = False
        self._stopping = False
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._guard = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._ticker_guard = threading.Lock()
        self._logged_ts = self._drawn_ts = 0
        self._counts: dict[tuple[str, str], int] = {}
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
        self.buttons = {b: w.Button(description=LABELS[b], button_style=_STYLES[b],
                                    layout=w.Layout(width="auto")) for b in Button}
        for button, widget in self.buttons.items():
            widget.add_class(f"wb-{button.value}")
        self.manual_action = w.ToggleButtons(options=ACTIONS, value=ACTIONS[0],
                                             description="action")
        self.manual_box = w.HBox([self.manual_action, self.buttons[Button.MANUAL_TRAIN]])
        self.reasons = w.HTML().add_class("wb-reasons")
        self.status = w.HTML().add_class("wb-status")
        self.progress = w.FloatProgress(value=0, min=0, max=1, description="progress")
        self.chart = w.Image(format="png", layout=w.Layout(width="100%")).add_class("wb-chart")
        self.chart_caption = w.HTML().add_class("wb-chart-caption")
        self.results = w.HTML().add_class("wb-results")
        self.log_output = w.Output(layout=w.Layout(max_height="220px", overflow="auto",
                                                   border="1px solid #ddd")).add_class("wb-log")
        self._refresh_models(model)
        for picker in (self.symbol, self.timeframe, self.model, self.range):
            picker.observe(self._on_pick, names="value")
        self._wire()
        starts = [self.buttons[b] for b in (*LIVE_BUTTONS.values(), Button.BACKTEST, Button.TRAIN,
                                            Button.STOP)]
        self.widget = w.VBox([
            w.HTML("<h3>Workbench control panel</h3>"),
            w.HBox([self.model, self.symbol, self.timeframe]), w.HBox([self.range, self.speed]),
            w.HBox(starts, layout=w.Layout(flex_flow="row wrap")), self.manual_box,
            self.reasons, self.status, self.progress, self.chart_caption, self.chart,
            self.results, w.HTML("<b>log</b>"), self.log_output]).add_class("wb-panel")

    def _wire(self) -> None:
        for mode, button in LIVE_BUTTONS.items():
            self.buttons[button].on_click(lambda _b, m=mode: self.start_live(m))
        self.buttons[Button.BACKTEST].on_click(lambda _b: self.start_backtest())
        self.buttons[Button.TRAIN].on_click(lambda _b: self.start_training())
        self.buttons[Button.MANUAL_TRAIN].on_click(lambda _b: self.train_manual())
        self.buttons[Button.STOP].on_click(lambda _b: self.stop())

    def _timeframes(self, symbol: str) -> list[str]:
        series = self.store.series().filter(pl.col("symbol") == symbol)
        return series["timeframe"].to_list()

    def _refresh_models(self, prefer: str = "") -> None:
        from workbench.train.models import known_models
        from workbench.train.runs import list_runs

        runs = [r["run_id"] for r in list_runs(self.store.path) if r.get("status") == "completed"
                and r.get("model_type") in known_models()]
        current = prefer or self.model.value
        self.model.options = runs
        self.model.value = current if current in runs else (runs[0] if runs else None)

    def _on_pick(self, change) -> None:
        if change["owner"] is self.symbol:
            self.timeframe.options = self._timeframes(self.symbol.value)
        self.refresh()
        if self.facts().activity.value == "idle":
            self._draw_range()

    # -- state -----------------------------------------------------------------------------------
    def _alive(self, name: str) -> bool:
        thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def _candle_count(self) -> int:
        key = (self.symbol.value, self.timeframe.value)
        if key not in self._counts:  # cached: refresh() runs twice a second
            series = self.store.series().filter((pl.col("symbol") == key[0])
                                                & (pl.col("timeframe") == key[1]))
            self._counts[key] = int(series["rows"][0]) if series.height else 0
        return self._counts[key]

    def facts(self) -> PanelFacts:
        """Describe the panel's situation for :func:`button_states`."""
        live = self._alive("live") and self.session is not None
        return PanelFacts(
            live_mode=self.session.mode if live else None, training=self._alive("train"),
            backtest=self._alive("backtest"), stopping=self._stopping,
            has_model=bool(self.model.value), has_candles=self._candle_count() > 0,
            has_current_candle=live and self.session.counts["predictions"] > 0,
            manual_step_running=self._manual_busy)

    def refresh(self) -> None:
        """Apply the state machine to the buttons (trait sets only: safe from any thread)."""
        states = button_states(self.facts())
        for button, state in states.items():
            widget = self.buttons[button]
            widget.disabled = not state.enabled
            widget.tooltip = state.reason
            widget.layout.display = None if state.visible else "none"
        manual = states[Button.MANUAL_TRAIN]
        self.manual_box.layout.display = None if manual.visible else "none"
        self.manual_action.disabled = not manual.enabled
        why = [f"<li><b>{LABELS[b]}</b>: {s.reason}</li>" for b, s in states.items()
               if s.visible and not s.enabled]
        self.reasons.value = f"<ul class='wb-why'>{''.join(why)}</ul>" if why else ""

    def log(self, message: str) -> None:
        """Append one line to the log (replaces the Output's text: safe from any thread)."""
        with self._guard:
            self._log.append(f"{time.strftime('%H:%M:%S')} {message}")
            text = "\n".join(self._log) + "\n"
        self.log_output.outputs = ({"output_type": "stream", "name": "stdout", "text": text},)

    @property
    def log_lines(self) -> list[str]:
        """The lines currently in the log."""
        with self._guard:
            return list(self._log)

    def _picked_range(self) -> tuple[int, int]:
        return prepare.pick_range(self.store, self.symbol.value, self.timeframe.value,
                                  candles=self.range.value)

    def _handle(self):
        from workbench.train.handle import load_model

        run_id = self.model.value
        if run_id not in self._handles:
            self._handles[run_id] = load_model(run_id, self.store.path)
        return self._handles[run_id]

    def _spawn(self, name: str, target) -> None:
        def report(exc: Exception) -> None:  # shown in the log, never kills the kernel
            self.log(f"{name}: {exc}" if isinstance(exc, WorkbenchError)
                     else f"{name} failed: {type(exc).__name__}: {exc}")

        job = CallableJob(f"panel-{name}", target, on_error=report, on_finish=self.refresh)
        self._threads[name] = job
        job.start()
        self.refresh()
        self._ensure_ticker()

    # -- actions ---------------------------------------------------------------------------------
    def start_live(self, mode: TrainingMode) -> None:
        """Start a live session in ``mode`` on the picked model, series, range and speed."""
        from workbench.live.session import LiveSession, SessionConfig

        if not button_states(self.facts())[LIVE_BUTTONS[mode]].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        self.session = LiveSession(self._handle(), self.store, self.symbol.value,
                                   self.timeframe.value, mode, first, last, self.speed.value,
                                   config=SessionConfig(ledger=True, keep=self.chart_candles * 2))
        self._logged_ts = self._drawn_ts = 0
        # the chart shows the stored candles up to the session's newest close, so it is full
        # from the first candle on (the session itself keeps only what it replayed)
        self._chart_frame = self.store.read_ohlcv(self.symbol.value, self.timeframe.value, None,
                                                  last).tail(self.range.value + self.chart_candles)
        self.results.value = ""
        self.log(f"live session {self.session.session_id}: mode {mode.value}, model "
                 f"{self.model.value}, {self.range.value} candles at {self.speed.value}")
        self._spawn("live", self._run_live)

    def _run_live(self) -> None:
        stats = self.session.run()
        self.log(f"session ended ({stats['state']}): {stats['predictions']} predictions, "
                 f"{stats['training_steps']} training steps, equity "
                 f"{stats['pnl']['equity']:.2f}")

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
                self.log(f"manual {out['action']} at {_hhmm(out['ts'])}: loss {out['loss']:.4f}, "
                         f"model v{out['model_version']}, training steps "
                         f"{session.counts['training_steps']}")
            finally:
                self._manual_busy = False

        self._spawn("manual", step)

    def start_backtest(self) -> None:
        """Backtest the picked model on the visible range (inference only, no weight change)."""
        from workbench.backtest.engine import BacktestConfig

        if not button_states(self.facts())[Button.BACKTEST].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        config = BacktestConfig(symbol=self.symbol.value, timeframe=self.timeframe.value,
                                start=first, end=last, model=self.model.value)
        self.log(f"backtest of {self.model.value} on {self.range.value} candles")
        self._spawn("backtest", lambda: self._run_backtest(config))

    def _run_backtest(self, config) -> None:
        from workbench.backtest.engine import PHASES, run_backtest

        def progress(phase: str, done: int, total: int) -> None:
            if self.stop_event.is_set():
                raise WorkbenchError("backtest stopped")
            self.progress.description = phase
            self.progress.value = (PHASES.index(phase) + done / max(total, 1)) / len(PHASES)

        run = run_backtest
        if config.walk_forward:  # its signals come from a session that trains as it replays
            from workbench.live.walk_forward import run_walk_forward_backtest as run
        result = run(config, store=self.store, progress=progress)
        self.last_backtest = result
        self.progress.value = 1.0
        self.results.value = _stats_table(result.stats, result.backtest_id)
        frame = self.store.read_ohlcv(config.symbol, config.timeframe, config.start, config.end)
        shown = frame.tail(self.chart_candles)
        fig = charts.plot_candles_with_signals(
            shown, trades=result.trades.filter(pl.col("entry_ts") >= shown["ts"][0]),
            predictions=result.equity.select("ts", "signal"), title="backtest: signals and trades")
        self.chart.value = _png(fig)
        self.chart_caption.value = f"backtest {result.backtest_id}: last {shown.height} candles"
        s = result.stats
        self.log(f"backtest {result.backtest_id}: {s['n_trades']} trades, pnl {s['pnl']:.2f}, "
                 f"win rate {s['win_rate']:.3f}")

    def start_training(self) -> None:
        """Train the picked model (or a fresh quick one) on the picked range, through its lock."""
        from workbench.live.batch import start_batch_training
        from workbench.train.runs import start_training

        if not button_states(self.facts())[Button.TRAIN].enabled:
            return
        self.stop_event.clear()
        first, last = self._picked_range()
        if self.model.value:  # "Train Model": a working copy of the live handle, all annotations
            self._run_handle = start_batch_training(
                self._handle(), self.store, self.symbol.value, self.timeframe.value, first, last,
                overrides={"training.num_epochs": self.train_epochs,
                           "data.max_windows": self.train_windows})
        else:
            config = prepare.quick_config(self.store, self.symbol.value, self.timeframe.value,
                                          start=first, end=last, epochs=self.train_epochs,
                                          max_windows=self.train_windows)
            self._run_handle = start_training(config, db=self.store.path)
        self.log(f"training run {self._run_handle.run_id} started")
        self._spawn("train", self._wait_training)

    def _wait_training(self) -> None:
        record = self._run_handle.wait()
        best = record.get("best_metrics") or {}
        self.log(f"training run {record['run_id']} {record['status']}: best val_loss "
                 f"{best.get('val_loss', float('nan')):.4f}")
        self._refresh_models(self.model.value or record["run_id"])

    def stop(self) -> None:
        """Ask everything running to stop at its next step (a Stop button press)."""
        self.stop_event.set()
        self._stopping = True
        if self.session is not None:
            self.session.stop(wait=False)
        if self._run_handle is not None:
            self._run_handle.stop()
        self.log("stop requested")
        self.refresh()
        self._ensure_ticker()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no work runs (for notebooks run headless and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._busy() and not self._stopping and self._ticker is None:
                return True
            time.sleep(0.05)
        return False

    # -- the ticker: polls running work and updates the view -------------------------------------
    def _busy(self) -> bool:
        return any(t.is_alive() for t in self._threads.values())

    def _ensure_ticker(self) -> None:
        with self._ticker_guard:
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick_loop, name="panel-ticker",
                                                daemon=True)
                self._ticker.start()

    def _tick_loop(self) -> None:
        while True:
            busy = self._busy()
            if not busy and self._stopping:
                self._stopping = False
                self.log("stopped")
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the view must keep updating
                self.log(f"view update failed: {type(exc).__name__}: {exc}")
            with self._ticker_guard:  # exit only if no work or stop arrived meanwhile
                if not busy and not self._busy() and not self._stopping:
                    self._ticker = None
                    break
            time.sleep(TICK_S)
        self.refresh()

    def tick(self) -> None:
        """Refresh status, progress, chart and log from the running work (one poll)."""
        self.refresh()
        parts = [f"<b>state</b>: {self.facts().activity.value}"]
        if self.session is not None:
            parts += self._session_status()
        if self._run_handle is not None:
            parts += self._training_status()
        if self.model.value in self._handles:
            holder = self._handles[self.model.value].lock.holder
            parts.append("<b>lock</b>: " + (f"held by {holder.describe()}" if holder else "free"))
        self.status.value = " &nbsp;|&nbsp; ".join(parts)

    def _session_status(self) -> list[str]:
        session = self.session
        snap = session.snapshot()
        self._log_predictions(snap["predictions"])
        if snap["candles"] and snap["candles"][-1][0] != self._drawn_ts:
            self._draw_live(snap)
            self._drawn_ts = snap["candles"][-1][0]
        pnl = session.pnl.summary()
        # a replay run in the caller's thread reports "idle" until it ends; ours runs in "live"
        state = "running" if self._alive("live") and snap["state"] == "idle" else snap["state"]
        return [f"<b>session</b>: {snap['mode']} ({state})",
                f"<b>predictions</b>: {session.counts['predictions']}",
                f"<b>training steps</b>: {session.counts['training_steps']}",
                f"<b>PnL</b>: equity {pnl['equity']:.2f} ({pnl['return_pct']:+.3f}%)",
                f"<b>model</b>: v{snap['model_version']}"]

    def _training_status(self) -> list[str]:
        progress = self._run_handle.progress()
        epoch, total = progress.get("epoch"), progress.get("num_epochs") or 1
        if self._alive("train"):
            self.progress.description = "training"
            self.progress.value = min(1.0, ((epoch or 0) + 1) / total if epoch is not None else 0)
        return [f"<b>training</b>: run {self._run_handle.run_id} epoch "
                f"{'-' if epoch is None else epoch + 1}/{total}"]

    def _log_predictions(self, predictions: list[dict]) -> None:
        fresh = [p for p in predictions if p["ts"] > self._logged_ts]
        if not fresh:
            return
        if len(fresh) > 3:
            self.log(f"... {len(fresh) - 3} more predictions")
        for p in fresh[-3:]:
            self.log(f"prediction {_hhmm(p['ts'])}: {p['action']} ({p['confidence']:.2f}), "
                     f"ghost close {p['ghost'][3]:.2f}, model v{p['model_version']}")
        self._logged_ts = fresh[-1]["ts"]

    def _draw_live(self, snap: dict) -> None:
        now = snap["candles"][-1][0]
        frame = self._chart_frame.filter(pl.col("ts") <= now).tail(self.chart_candles)
        preds = pl.DataFrame(snap["signals"], schema=["ts", "signal"], orient="row")
        ghost = dict(zip(["ts", "open", "high", "low", "close"], snap["ghost"])) \
            if snap["ghost"] else None
        fig = charts.plot_candles_with_signals(
            frame, predictions=preds, ghost=ghost,
            title=f"{snap['symbol']} {snap['timeframe']} · {snap['mode']} · v{snap['model_version']}")
        self.chart.value = _png(fig)
        n_pred = len([p for p in snap["predictions"] if p["ts"] >= frame["ts"][0]])
        self.chart_caption.value = (f"live chart: {frame.height} candles, {n_pred} predictions, "
                                    f"ghost candle {'shown' if ghost else 'pending'}")

    def _draw_range(self) -> None:
        """Draw the picked range's last candles (the chart before anything runs)."""
        try:
            first, last = self._picked_range()
        except WorkbenchError as exc:
            self.chart_caption.value = str(exc)
            return
        frame = self.store.read_ohlcv(self.symbol.value, self.timeframe.value, first, last)
        self.chart.value = _png(charts.plot_candles_with_signals(
            frame.tail(self.chart_candles), title=f"{self.symbol.value} {self.timeframe.value}"))
        self.chart_caption.value = f"visible range: {frame.height} candles"

    def show(self):
        """Draw the initial chart and return the widget (the notebook's last expression)."""
        self._draw_range()
        self.tick()
        return self.widget


def _hhmm(ts: int) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(ts / 1000))


def _stats_table(stats: dict, backtest_id: str) -> str:
    keys = ("n_trades", "pnl", "return_pct", "win_rate", "max_drawdown", "sharpe", "exposure",
            "final_equity")
    rows = "".join(f"<tr><td>{k}</td><td class='wb-{k}'>{_fmt(stats.get(k))}</td></tr>"
                   for k in keys)
    return (f"<table class='wb-backtest-table'><caption>backtest {backtest_id}</caption>"
            f"<tr><th>statistic</th><th>value</th></tr>{rows}</table>")


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)

