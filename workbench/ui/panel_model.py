"""Which model the control panel runs: the saved weights of a run, or a session's unsaved copy.

A session that trains changed the weights of run R in memory, and the next session, even one
without training, used to start from them while a backtest of R loaded the saved ones; nothing
showed it. :class:`ModelSlot` makes that explicit:

* every session gets a handle freshly loaded from the chosen run's saved checkpoints, unless the
  user asks to continue the current session's model (then that handle, with its steps);
* "Train Model" trains a fork (:meth:`~workbench.train.handle.ModelHandle.fork`), never the handle
  a session predicts with, and becomes a run of its own with the parent recorded;
* :meth:`label` says ``R (saved)`` or ``R + N steps (unsaved, session S)``; :meth:`save` writes the
  unsaved weights as a new run (:func:`workbench.train.lineage.save_as_run`), :meth:`reset` drops
  them.

It also answers the compatibility questions for the pickers: :meth:`warning` (trained on another
symbol/timeframe: shown, not refused) and :meth:`refusal` (series shorter than the window: no
session can predict, so starts are refused with that reason).
"""
from __future__ import annotations

from workbench.errors import WorkbenchError


class ModelSlot:
    """The current model of a panel (see the module docstring). ``db``: the runs' database.

    ``live`` is the handle of the running (or last) session; ``kept`` the newest handle with
    unsaved training steps, which a later session on the saved weights does not discard: it
    stays available to continue, save or reset until a newer training session replaces it.
    """

    def __init__(self, db):
        self.db = db
        self.live = self.kept = None
        self.live_meta: dict = {}  # session_id, mode, symbol, timeframe of the live handle
        self.kept_meta: dict = {}
        self._trained_on: dict[str, dict] = {}

    # -- which weights -----------------------------------------------------------------------------
    def _sync(self) -> None:
        """The live handle becomes the kept one once its session has trained it."""
        live = self.live
        if live is not None and live.steps > self.live_meta.get("start_steps", 0):
            self.kept, self.kept_meta = live, self.live_meta

    def unsaved_steps(self, run_id: str | None) -> int:
        """Training steps of the kept handle beyond the saved weights of ``run_id``."""
        self._sync()
        if self.kept is None or run_id is None or self.kept.run_id != run_id:
            return 0
        return self.kept.steps

    @staticmethod
    def _describe(handle, meta: dict) -> str:
        if not handle.steps:
            return f"{handle.run_id} (saved)"
        return f"{handle.run_id} + {handle.steps} steps (unsaved, session {meta.get('session_id')})"

    def label(self, run_id: str | None) -> str:
        """``R (saved)`` or ``R + N steps (unsaved, session S)`` for the live model, plus the
        kept unsaved model when that is another one."""
        if not run_id:
            return "no model"
        kept = self.unsaved_steps(run_id)
        live = self.live if self.live is not None and self.live.run_id == run_id else None
        text = self._describe(live, self.live_meta) if live is not None else f"{run_id} (saved)"
        if kept and self.kept is not live:
            text += f"; kept: {self._describe(self.kept, self.kept_meta)}"
        return text

    def for_session(self, run_id: str, continue_current: bool):
        """The handle a new session uses: the saved weights, or the kept ones if asked."""
        from workbench.train.handle import load_model

        if continue_current and self.unsaved_steps(run_id):
            self.live = self.kept
        else:
            self.live = load_model(run_id, self.db)
        self.live_meta = {}
        return self.live

    def started(self, session, first_ts: int, last_ts: int) -> None:
        """Name the session that runs (and may train) the live handle, and its candle range."""
        self.live_meta = {"session_id": session.session_id, "mode": session.mode.value,
                          "symbol": session.symbol, "timeframe": session.timeframe,
                          "range": (first_ts, last_ts), "start_steps": self.live.steps}

    def for_training(self, run_id: str):
        """A fork of the kept weights for "Train Model" (no session's handle is touched)."""
        from workbench.train.handle import load_model

        if self.unsaved_steps(run_id):
            return self.kept.fork("train-model")
        return load_model(run_id, self.db)

    def for_backtest(self, run_id: str):
        """The kept unsaved handle ("Backtest current model"), or None when there is none."""
        return self.kept if self.unsaved_steps(run_id) else None

    def save(self) -> dict:
        """Save the kept weights as a new run (its ``run.json`` names the parent); forget them."""
        from workbench.train.lineage import save_as_run

        meta = self.kept_meta
        first_ts, last_ts = meta.get("range", (None, None))
        record = save_as_run(self.kept, self.db, session_id=meta.get("session_id", "-"),
                             mode=meta.get("mode", "-"), symbol=meta.get("symbol"),
                             timeframe=meta.get("timeframe"), first_ts=first_ts,
                             last_ts=last_ts)
        self.reset()
        return record

    def reset(self) -> None:
        """Drop the kept unsaved weights: the next session loads the saved ones."""
        if self.live is self.kept:
            self.live, self.live_meta = None, {}
        self.kept, self.kept_meta = None, {}

    # -- compatibility -----------------------------------------------------------------------------
    def trained_on(self, run_id: str) -> dict:
        """What ``run_id`` was trained on (cached: runs are immutable)."""
        from workbench.train.lineage import trained_on

        if run_id not in self._trained_on:
            try:
                self._trained_on[run_id] = trained_on(run_id, self.db)
            except WorkbenchError:
                self._trained_on[run_id] = {}
        return self._trained_on[run_id]

    def warning(self, run_id: str | None, symbol: str, timeframe: str) -> str:
        """Why using ``run_id`` on this series is suspect ('' when it is not)."""
        from workbench.train.lineage import mismatch

        if not run_id:
            return ""
        return mismatch(run_id, self.trained_on(run_id), symbol, timeframe)

    def refusal(self, run_id: str | None, symbol: str, timeframe: str, rows: int) -> str:
        """Why no session can run on a series of ``rows`` candles ('' when one can)."""
        from workbench.train.lineage import check_length

        window = self.trained_on(run_id).get("window") if run_id else None
        if not window:
            return ""
        try:
            check_length(run_id, int(window), symbol, timeframe, rows)
        except WorkbenchError as exc:
            return str(exc)
        return ""
