"""Live sessions (seed 000's modes none, pivots_only, every_candle, manual) and walk-forward.

A :class:`LiveSession` replays (or follows) one series through a feed and the
:class:`~workbench.live.coordinator.InferenceTrainingCoordinator`. On every closed candle it

1. predicts on the window ending at that candle: action, confidence, predicted next candle;
2. registers the inference frame with the coordinator (by reference, never a copy);
3. updates its signal (BUY +1, SELL -1, HOLD 0) and its PnL tracking (the backtest simulator's
   conventions, :class:`PnLTracker`);
4. exposes the ghost candle: the predicted next candle in absolute prices, for the chart.

Training is decided by the session's own
:class:`~workbench.live.strategy.TrainingStrategy` (never shared) and always done through
``ModelHandle.train_step``, which holds the model's training lock for the update; predictions run
on the handle's published snapshot and never wait for training. The session is a
:class:`~workbench.live.subscribers.TrainingEventSubscriber`: the coordinator hands it each frame
when its label is revealed (the target's close, or a pivot's ``confirmed_ts``), so nothing trains
on the future. The coordinator is the session's only way in: per close it calls the session's
labels hooks first and :meth:`LiveSession.on_new_candle` last, so the revealed frames train first
and the new prediction uses the updated weights.

A session runs in a background thread (:meth:`LiveSession.start`) or in the caller's thread
(:meth:`LiveSession.run`); :meth:`pause`, :meth:`resume` and :meth:`stop` act between candles.
Several sessions (two symbols, say) may share one model: each has its own strategy, and their
steps serialise on the model's lock. :meth:`snapshot` is a thread-safe copy of what a chart needs;
:meth:`stats` counts predictions, training steps, lock waits, signals, PnL and errors.

Walk-forward (the backtest's ``--train-during``) replays a range through a session: see
:mod:`workbench.live.walk_forward`.
"""
from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import polars as pl

from workbench.actions import SIGNAL_OF_ACTION
from workbench.backtest.signals import actions_to_signals
from workbench.backtest.simulate import SimConfig
from workbench.actions import ACTIONS
from workbench.errors import NonFiniteError, ParameterError
from workbench.features.windows import SeriesArrays, gather_windows
from workbench.jobs import BackgroundJob
from workbench.live.coordinator import InferenceTrainingCoordinator
from workbench.live.events import SubscriberErrors, Subscription, dispatch
from workbench.live.sources import FeedRequest, open_feed
from workbench.live.modes import TrainingMode
from workbench.live.pnl import PnLTracker
from workbench.live.strategy import StrategyConfig, strategy_for
from workbench.live.subscribers import TrainingEventSubscriber, revealed_batch

UpdateFn = Callable[["LiveSession", dict], None]
#: training-lock operation names of a session's steps (also its stats keys)
PER_CANDLE, PIVOT_STEP, MANUAL_STEP = OPERATIONS = ("per_candle", "pivot", "manual_step")
_ACTION_OF_SIGNAL = {s: a for a, s in SIGNAL_OF_ACTION.items()}


def parse_speed(speed) -> float | None:
    """Return the replay pace: ``None`` for ``max``, else a multiple of real time.

    Accepts ``None``, ``"max"``, a number, ``"1x"`` or ``"60x"``. Raises ParameterError otherwise.
    """
    if speed is None or (isinstance(speed, str) and speed.strip().lower() == "max"):
        return None
    text = str(speed).strip().lower().removesuffix("x")
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"speed {speed!r} must be 'max', '1x' or 'Nx' (N > 0)") from None
    if not value > 0:
        raise ParameterError(f"speed {speed!r} must be > 0")
    return value


@dataclass(frozen=True)
class SessionConfig:
    """How a session replays, labels, tracks PnL and reports.

    ``history`` candles before ``start`` are loaded for the first windows and the pivot detector;
    ``None`` means the model window - 1, exactly what the backtest loads, so that a replay in mode
    ``none`` and the backtest see identical features. ``keep`` bounds the recent candles,
    predictions, signals and equity points a :meth:`LiveSession.snapshot` returns.
    """

    speed: float | None = None
    source: str = "replay"  # a live data source of workbench.live.sources (register_source)
    history: int | None = None
    pivot_strength: int = 2
    pivot_levels: int = 3
    strategy: StrategyConfig | None = None  # default: StrategyConfig(pivot_strength=...)
    threshold: float | None = None  # minimum top probability for a BUY/SELL signal
    sim: SimConfig = field(default_factory=SimConfig)
    lock_timeout: float | None = None  # None: the lock's default
    keep: int = 500
    ledger: bool = False  # write every frame with its outcome to the prediction ledger
    session_id: str | None = None
    manual_labels: dict | None = None  # candle ts -> action, applied when that candle closes

    def strategy_config(self) -> StrategyConfig:
        return self.strategy or StrategyConfig(pivot_strength=self.pivot_strength)


@dataclass(slots=True)
class TrainingRecord:
    """One training step of a session: when, why, on which frames, with which labels."""

    now_ts: int  # the feed clock (close time of the newest closed candle) at the step
    operation: str  # one of OPERATIONS
    frame_end_ts: tuple  # window-end candle of each trained frame
    actions: tuple  # action names
    loss: float
    model_version: int  # the handle's version read after the step (another session's may follow)


class LiveSession(TrainingEventSubscriber, BackgroundJob):
    """One live (or replayed) session of a model on one series, in one training mode.

    Parameters
    ----------
    model_handle : a ``workbench.train.handle.ModelHandle`` (may be shared by several sessions).
    store : the :class:`~workbench.data.store.Store` holding the candles (and manual annotations).
    symbol, timeframe : the series.
    mode : a :class:`~workbench.live.modes.TrainingMode` or its value.
    start, end : epoch-ms open times of the first and last candle to replay (inclusive).
    speed : ``None`` / ``"max"``, ``"1x"``, ``"Nx"`` or a number (see :func:`parse_speed`).
    config : everything else (:class:`SessionConfig`).
    on_update : optional ``callback(session, info)`` after every closed candle (see
        :meth:`add_update_hook`).
    feed : an existing feed of the series (e.g. a ``PushFeed``, whose ``push`` then drives the
        session) instead of one opened from ``config.source``; ``start``/``end``/``speed`` are
        then unused.

    Raises
    ------
    ParameterError : for an unknown mode or speed. NotFoundError : when the range has no candles.
    """

    def __init__(self, model_handle, store, symbol: str, timeframe: str, mode, start=None,
                 end=None, speed=None, *, config: SessionConfig | None = None,
                 on_update: UpdateFn | None = None, feed=None):
        cfg = config or SessionConfig()
        self.config = replace(cfg, speed=parse_speed(speed if speed is not None else cfg.speed))
        self.handle, self.store = model_handle, store
        self.symbol, self.timeframe = symbol, timeframe
        self.training_strategy = strategy_for(mode, timeframe, self.config.strategy_config())
        self.mode = self.training_strategy.mode  # a TrainingMode, or a registered mode's name
        self.session_id = self.config.session_id or f"{self.mode}-{symbol}-{timeframe}-" \
                                                    f"{uuid.uuid4().hex[:6]}"
        BackgroundJob.__init__(self, f"live-{self.session_id}")
        self.feed = feed if feed is not None else self._open_feed(start, end)
        self.series: SeriesArrays = self.feed.series
        self.coordinator = InferenceTrainingCoordinator(self.feed, ledger=self._ledger())
        self._init_state(on_update)
        self._subs = [self.coordinator.subscribe(
            self, symbol, timeframe, self.training_strategy.pivot_types,
            pivots=self.training_strategy.pivot_types != ())]

    # -- construction helpers ------------------------------------------------------------------
    def _open_feed(self, start, end):
        history = self.handle.window - 1 if self.config.history is None else self.config.history
        return open_feed(self.config.source, self.store, self.symbol, self.timeframe, FeedRequest(
            start, end, int(history), self.config.speed, self.config.pivot_strength,
            self.config.pivot_levels))

    def _ledger(self):
        if not self.config.ledger:
            return None
        from workbench.live.ledger import PredictionLedger

        return PredictionLedger(self.store, run_id=self.handle.run_id,
                                session_id=self.session_id)

    def _init_state(self, on_update) -> None:
        keep = self.config.keep
        self._guard = threading.Lock()
        self._recent = {k: deque(maxlen=keep) for k in ("candles", "predictions", "signals",
                                                         "equity")}
        self.training_log: deque[TrainingRecord] = deque(maxlen=100_000)
        self.pnl = PnLTracker(self.config.sim)
        self.counts = {"candles": 0, "predictions": 0, "skipped_no_window": 0,
                       "training_steps": 0, **{op: 0 for op in OPERATIONS}}
        self.signal_counts = {a: 0 for a in ACTIONS}
        self.errors = SubscriberErrors(f"session {self.session_id}")
        self._hooks: tuple[Subscription, ...] = ()
        if on_update:
            self.add_update_hook(on_update)
        self._last: dict | None = None  # the newest prediction (row, ts, candle, ...)
        self._closed = False
        self._signals: dict[int, int] = {}  # candle ts -> signal, every candle of the replay

    # -- per closed candle -----------------------------------------------------------------------
    def on_new_candle(self, event) -> None:
        """Called last at each close: predict, register the frame, update signal and PnL,
        publish a view."""
        i, n = event.index, self.handle.window
        self.counts["candles"] += 1
        pred = None
        if i >= n - 1:
            try:
                pred = self._predict(event, i, n)
            except NonFiniteError as exc:  # a NaN model's output is an error, never a signal
                self.errors.record("predict", event.ts, exc)
        signal = pred["signal"] if pred else 0
        equity = self.pnl.on_bar(event.open, event.close, signal)
        with self._guard:
            self._signals[event.ts] = signal
            self._recent["candles"].append((event.ts, *event.ohlcv))
            self._recent["signals"].append((event.ts, signal))
            self._recent["equity"].append((event.ts, equity))
            if pred:
                self._recent["predictions"].append(pred)
                self._last = pred
        if i < n - 1:
            self.counts["skipped_no_window"] += 1
        self._apply_manual_label(event.ts)
        self._notify(pred, event)

    def _predict(self, event, i: int, n: int) -> dict:
        windows, _ = gather_windows(self.series.features, np.array([i]), n)
        p = self.handle.predict(windows)
        probs, candle = p.action_probs[0], p.candle[0]
        action = int(np.argmax(probs))
        self.coordinator.register_frame(i, n, event.close_ts, action, candle, float(probs[action]),
                                        p.model_version, prediction_ts=event.close_ts)
        signal = int(actions_to_signals(p.action_probs, self.config.threshold)[0])
        self.counts["predictions"] += 1
        self.signal_counts[_ACTION_OF_SIGNAL[signal]] += 1
        ghost = tuple(float(x) for x in event.close * (1.0 + candle.astype(np.float64) / 100.0))
        return {"ts": event.ts, "row": i, "target_ts": event.close_ts, "action": ACTIONS[action],
                "confidence": float(probs[action]), "probs": tuple(probs.tolist()),
                "candle_pct": tuple(candle.tolist()), "ghost": ghost, "signal": signal,
                "model_version": p.model_version}

    def _notify(self, pred, event) -> None:
        if not self._hooks:
            return
        info = {"ts": event.ts, "index": event.index, "prediction": pred,
                "equity": self.pnl.equity}
        # a UI hook never stops the session: its errors are counted in stats()
        dispatch(self._hooks, None, (self, info), self.errors, event.ts)

    def add_update_hook(self, callback: UpdateFn) -> Subscription:
        """Call ``callback(session, info)`` after every closed candle, in the session's thread.

        Returns the :class:`~workbench.live.events.Subscription` (``unsubscribe()`` removes it).

        ``info`` holds ``ts``, ``index``, ``prediction`` (a dict, or ``None`` before the first
        full window) and ``equity``. An exception in a hook is counted in :meth:`stats`.
        """
        sub = Subscription(callback, "update", _on_remove=self._remove_hook)
        self._hooks = (*self._hooks, sub)
        return sub

    def _remove_hook(self, sub: Subscription) -> None:
        self._hooks = tuple(s for s in self._hooks if s is not sub)

    # -- training (TrainingEventSubscriber hooks, called by the coordinator) -------------------
    def on_candle_completion(self, event, inference_ref) -> None:
        """Train the frame that targeted this candle when the strategy says so.

        The first hook of every close (once with ``inference_ref=None`` when no frame targeted
        it), so the strategy observes the close here, before any decision about it.
        """
        strategy = self.training_strategy
        strategy.observe_close(event)
        if not strategy.should_train_on_candle(inference_ref):
            return
        windows, ends, candles = revealed_batch(self.coordinator, [inference_ref],
                                                event.index)
        action = strategy.action_for_candle(int(self.series.ts[ends[0]]), float(candles[0, 3]))
        self._train(windows, np.array([action]), candles, PER_CANDLE, ends)

    def on_pivot_event(self, event, inference_refs: list) -> None:
        """Train the frames inferred at a confirmed pivot candle (``pivots_only``)."""
        strategy = self.training_strategy
        if not inference_refs or not strategy.should_train_on_pivot(event):
            return
        windows, ends, candles = revealed_batch(self.coordinator, inference_refs, event.index)
        actions = np.full(len(ends), strategy.action_for_pivot(event), dtype=np.int64)
        self._train(windows, actions, candles, PIVOT_STEP, ends)

    def _train(self, windows, actions, candles, operation: str, ends) -> float:
        loss = self.handle.train_step(windows, np.asarray(actions, dtype=np.int64), candles,
                                      operation=operation, session=self.session_id,
                                      timeout=self.config.lock_timeout)
        self.counts["training_steps"] += 1
        self.counts[operation] += 1
        ts = self.series.ts
        self.training_log.append(TrainingRecord(
            int(self.feed.now) if self.feed.now is not None else -1, operation,
            tuple(int(ts[e]) for e in ends), tuple(ACTIONS[int(a)] for a in actions),
            float(loss), self.handle.version))
        return loss

    def train_manual(self, action) -> dict:
        """Train one step on the current candle with a user's ``action`` (mode ``manual``).

        The label is stored as an annotation (source ``manual``) of the newest closed candle with
        a prediction, then one step goes through the model's lock on the frame inferred at that
        candle. Its next candle is not known yet, so the candle head's target is the session's own
        prediction (zero candle loss): only the action head learns from a manual label.

        Returns ``{"ts", "action", "loss", "model_version"}``.

        Raises
        ------
        ParameterError : outside ``manual`` mode, for an unknown action, or before any prediction.
        TrainingLockTimeout : when the lock stays taken past ``config.lock_timeout``.
        """
        index = self.training_strategy.manual_action(action)
        with self._guard:
            last = self._last
        if last is None:
            raise ParameterError(f"session {self.session_id}: no candle with a full window has "
                                 "closed yet; nothing to train on")
        name = ACTIONS[index]
        self.store.add_annotations(self.symbol, self.timeframe, pl.DataFrame(
            {"ts": [last["ts"]], "action": [name], "source": [TrainingMode.MANUAL.value]}))
        windows, _ = gather_windows(self.series.features, np.array([last["row"]]),
                                    self.handle.window)
        candle = np.asarray([last["candle_pct"]], dtype=np.float32)
        loss = self._train(windows, [index], candle, MANUAL_STEP, [last["row"]])
        return {"ts": last["ts"], "action": name, "loss": loss,
                "model_version": self.handle.version}

    def _apply_manual_label(self, ts: int) -> None:
        labels = self.config.manual_labels
        if labels and self.training_strategy.manual and ts in labels:
            self.train_manual(labels[ts])

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``idle``, ``running``, ``paused``, ``stopped``, ``finished`` or ``failed``."""
        if self.failure is not None:
            return "failed"
        state = getattr(self.feed, "state", "running")
        return "stopped" if self._closed and state not in ("finished",) else state

    def _execute(self) -> None:
        """Run the feed (``run()`` in the caller's thread, ``start()`` in a background one);
        the coordinator then drives the session. ``_finish`` closes it whatever happens."""
        self.feed.run()

    def outcome(self) -> dict:
        """:meth:`run` and :meth:`join` return the session's :meth:`stats`."""
        return self.stats()

    def _replay_control(self, name: str):
        control = getattr(self.feed, name, None)
        if control is None:
            raise ParameterError(f"session {self.session_id} follows a push feed, which cannot "
                                 f"{name}; stop() the session instead")
        return control

    def pause(self) -> None:
        """Pause a replay after the candle being processed."""
        self._replay_control("pause")()

    def resume(self) -> None:
        """Resume a paused replay."""
        self._replay_control("resume")()

    def step(self) -> None:
        """Process one more candle of a paused replay, then stay paused (manual labelling)."""
        self._replay_control("step")()

    def stop(self, wait: bool = True, timeout: float | None = 30.0) -> dict:
        """Stop after the candle being processed (also wakes a paused session); return stats.

        A push-fed session unsubscribes from its feed: later pushes are stored but not seen.
        """
        stop = getattr(self.feed, "stop", None)
        if stop is not None:
            stop()
        if wait and self._thread is not None:
            self._thread.join(timeout)
        # a run() still going in some other thread finishes (and flushes the ledger) itself: closing
        # here would race the candle it is processing and lose that candle's frame
        if self._thread is None and not self._running:
            self._finish()
        return self.stats()

    def _finish(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
        self.coordinator.close()
        for sub in self._subs:
            sub.unsubscribe()

    # -- views ---------------------------------------------------------------------------------
    def signals(self) -> dict[int, int]:
        """Every signal of the replay so far, by candle ts (HOLD before a full window)."""
        with self._guard:
            return dict(self._signals)

    def snapshot(self) -> dict:
        """A thread-safe copy of what a chart shows (lists of tuples/dicts, newest last).

        Keys: ``symbol, timeframe, mode, state, candles (ts, o, h, l, c, v), predictions,
        ghost (ts, o, h, l, c) of the next candle or None, signals (ts, s), equity (ts, value),
        model_version``.
        """
        with self._guard:
            out = {k: list(v) for k, v in self._recent.items()}
            last = self._last
        out["ghost"] = (last["target_ts"], *last["ghost"]) if last else None
        out.update(symbol=self.symbol, timeframe=self.timeframe, mode=str(self.mode),
                   state=self.state, model_version=self.handle.version)
        return out

    def stats(self) -> dict:
        """Counts of candles, predictions, training steps (by operation), lock waits, signals,
        PnL and errors, plus throughput."""
        lock = self.handle.lock.stats(self.session_id)
        coord = self.coordinator.stats()
        feed_errors = self.feed.errors.total
        errors = coord["subscriber_errors"] + feed_errors + self.errors.total
        recent = (self.coordinator.errors.report()["recent"] + self.feed.errors.report()["recent"]
                  + self.errors.report()["recent"])
        return {"session_id": self.session_id, "symbol": self.symbol,
                "timeframe": self.timeframe, "mode": str(self.mode), "state": self.state,
                "model_version": self.handle.version, **self.counts,
                "lock_waits": lock["waits"], "lock_wait_s": lock["wait_seconds"],
                "lock_timeouts": lock["timeouts"], "signals": dict(self.signal_counts),
                "decisions": dict(self.training_strategy.decisions), "pnl": self.pnl.summary(),
                "frames": {k: coord[k] for k in ("registered", "matched_candle",
                                                 "matched_pivot", "live")},
                "errors": errors, "recent_errors": recent[-10:],
                "elapsed_s": round(self.elapsed_s, 6),
                "candles_per_s": round(self.counts["candles"] / self.elapsed_s, 2)
                if self.elapsed_s else None}
