"""Torch training runs: create, execute, resume and watch them (the run folder is :mod:`workbench.runs`).

A torch run's folder (see :mod:`workbench.runs` for the shared layout and the one-active-run
lock) also holds::

    metrics.json        per-epoch metrics, rewritten after every epoch
    checkpoints/        best.ckpt, last.ckpt (+ every-N-epoch files), written atomically
    logs/training.log   the run's log
    tensorboard/        TensorBoard events

:func:`train` runs synchronously (the CLI); :func:`start_training` runs in a background thread and
returns a :class:`RunHandle` with ``status()``, ``progress()``, ``stop()`` and ``wait()``.
``resume=RUN_ID`` continues a run from its ``last.ckpt``; because every random choice depends on
the seed and the epoch only, the resumed run ends with the metrics of an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from workbench.errors import NotFoundError, RunError
from workbench.jobs import BackgroundJob
from workbench.runs import (ActiveRunLock, list_runs, now_iso, read_run, run_path, runs_dir,
                            show_run, update_run, wait_for, write_json_atomic)
from workbench.train.config import TrainConfig, config_from_dict
from workbench.train.engine import RUN_ID_ENV, execute, is_rank_zero
from workbench.train.lineage import describe_training

__all__ = ["ActiveRunLock", "RunHandle", "list_runs", "load_run_config", "new_run_id", "now_iso",
           "read_run", "run_path", "runs_dir", "show_run", "start_training", "train",
           "update_run", "wait_for"]

#: fault injection for the kill-and-resume test: SIGKILL this process at this global step
KILL_AT_STEP_ENV = "WORKBENCH_FAULT_KILL_AT_STEP"
KILL_RANK_ENV = "WORKBENCH_FAULT_KILL_RANK"


def new_run_id(config: TrainConfig) -> str:
    """Return a fresh id: UTC time, model type, optional run name and random hex."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"-{config.output.run_name}" if config.output.run_name else ""
    return f"{stamp}-{config.model.type}{name}-{secrets.token_hex(3)}"


def load_run_config(run_id: str, db=None) -> TrainConfig:
    """Return the frozen config of a run."""
    path = run_path(run_id, db) / "config.json"
    if not path.is_file():
        raise NotFoundError(f"run {run_id!r} has no config.json")
    return config_from_dict(json.loads(path.read_text()))


# -- executing -----------------------------------------------------------------------------------
@dataclass
class _Job:
    """Everything one execution of a run needs."""

    run_id: str
    config: TrainConfig
    db: object = None
    ckpt_path: Path | None = None
    model: object = None  # a live handle's model to train in place
    lock: object = None  # the training lock of that model
    publish: object = None
    store: object = None
    callbacks: tuple = ()  # extra Lightning callbacks (a sweep's pruning callback)
    stop: threading.Event = field(default_factory=threading.Event)
    progress: dict = field(default_factory=dict)


class _StopAndFault(Callback):
    """Stop cleanly when asked (RunHandle.stop) and, for tests only, SIGKILL at a given step."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        env = os.environ.get(KILL_AT_STEP_ENV)
        self.kill_at = int(env) if env else None
        rank = os.environ.get(KILL_RANK_ENV)  # DDP: only this global rank dies
        self.kill_rank = int(rank) if rank else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (self.kill_at is not None and trainer.global_step >= self.kill_at
                and self.kill_rank in (None, trainer.global_rank)):
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.stop.is_set():
            trainer.should_stop = True


def _prepare(config: TrainConfig, db, resume: str | None,
             lineage: dict | None = None) -> tuple[str, Path | None]:
    """Create a new run folder (or check a resumable one); return (run_id, checkpoint).

    A new run's ``run.json`` records what it trains on (``trained_on``, for the compatibility
    checks of :mod:`workbench.train.lineage`) plus the ``lineage`` fields given (e.g. the
    ``parent_run_id`` of "Train Model" on a loaded model).
    """
    if resume is None:
        run_id = os.environ.get(RUN_ID_ENV) or new_run_id(config)
        folder = run_path(run_id, db)
        if folder.exists():
            raise RunError(f"run {run_id!r} already exists; resume it or choose another id")
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "logs").mkdir()
        write_json_atomic(folder / "config.json", config.to_dict())
        update_run(run_id, db, status="pending", created_at=now_iso(), model_type=config.model.type,
                   symbol=config.data.symbol, timeframe=config.data.timeframe,
                   trained_on=describe_training(config.data.symbol, config.data.timeframe,
                                                config.model.window), **(lineage or {}))
        return run_id, None
    record = read_run(resume, db)
    if record.get("status") == "completed":
        raise RunError(f"run {resume!r} already completed; nothing to resume")
    ckpt = run_path(resume, db) / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise RunError(f"run {resume!r} has no checkpoints/last.ckpt to resume from (it died "
                       "before its first epoch ended); start a new run")
    return resume, ckpt


class _NoLock:
    """The active-run lock of a non-zero DDP rank: rank 0 holds the real one."""

    def release(self) -> None:
        pass


def _start(config: TrainConfig | None, db, resume: str | None,
           under_job: str | None = None, lineage: dict | None = None,
           **job_kw):
    """Acquire the active-run lock and prepare the job; the caller must run or release."""
    if resume is not None:
        config = load_run_config(resume, db)
    if config is None:
        raise RunError("start a run with a config or resume=RUN_ID")
    if not is_rank_zero():  # a DDP worker joins the run that rank 0 created
        run_id = resume or os.environ.get(RUN_ID_ENV)
        if not run_id:
            raise RunError(f"a non-zero DDP rank needs ${RUN_ID_ENV} (rank 0 sets it for the "
                           "processes it launches; set it on every node for multi-node runs)")
        ckpt = run_path(run_id, db) / "checkpoints" / "last.ckpt" if resume else None
        return _NoLock(), _Job(run_id, config, db, ckpt, **job_kw)
    lock = ActiveRunLock(db)
    if under_job is not None:  # the job holds the lock; this run is one of its parts
        lock.check_held_by(under_job)
        run_id, ckpt = _prepare(config, db, resume, lineage)
        return _NoLock(), _Job(run_id, config, db, ckpt, **job_kw)
    lock.acquire(resume or "(starting)")
    try:
        run_id, ckpt = _prepare(config, db, resume, lineage)
        lock.set_run(run_id)
    except BaseException:
        lock.release()
        raise
    return lock, _Job(run_id, config, db, ckpt, **job_kw)


def _run_job(job: _Job, lock: ActiveRunLock) -> dict:
    """Execute a prepared job, always releasing the active-run lock; return the final record."""
    try:
        return execute(job, _StopAndFault(job.stop))
    finally:
        lock.release()


def train(config: TrainConfig | None = None, *, resume: str | None = None, db=None, model=None,
          lock=None, publish=None, store=None, under_job: str | None = None,
          callbacks=(), lineage: dict | None = None) -> dict:
    """Run a training run to the end in this thread and return its final ``run.json``.

    Parameters
    ----------
    config : the run's configuration (ignored when resuming: the frozen one is used).
    resume : an existing run id to continue from its ``last.ckpt``.
    db : database path used for the runs folder (default: the resolved project database).
    model, lock, publish : train a live :class:`~workbench.train.handle.ModelHandle`'s model in
        place, through its lock, publishing snapshots (see ``ModelHandle.fit``).
    store : a Store to read candles from (default: ``Store(config.data.db)``).
    under_job : the id of the active job (a sweep or an evaluation) holding the active-run lock;
        the run is one of its parts and does not take the lock itself.
    callbacks : extra Lightning callbacks for this run (e.g. Optuna's pruning callback).
    lineage : fields recorded in the new run's ``run.json`` (``parent_run_id``, ...).

    Raises
    ------
    ActiveRunError : when another run is active. RunError : when resuming is impossible.
    Any error of the run itself is re-raised after ``run.json`` records it as failed.
    """
    active, job = _start(config, db, resume, under_job, lineage, model=model, lock=lock,
                         publish=publish, store=store, callbacks=tuple(callbacks))
    return _run_job(job, active)


class RunHandle(BackgroundJob):
    """A run training in a background thread (returned by :func:`start_training`)."""

    def __init__(self, job: _Job, active: ActiveRunLock):
        super().__init__(f"train-{job.run_id}")
        self.run_id, self._job, self._active = job.run_id, job, active
        self.start()

    def _execute(self) -> dict:
        return _run_job(self._job, self._active)

    def status(self) -> str:
        """Return the run's status from ``run.json``."""
        return read_run(self.run_id, self._job.db).get("status", "pending")

    def progress(self) -> dict:
        """Return ``{epoch, num_epochs, metrics}`` of the last finished epoch."""
        return dict(self._job.progress)

    def stop(self) -> None:
        """Ask the run to stop after the current batch (it completes with what it has)."""
        self._job.stop.set()

    def done(self) -> bool:
        """True once the run has ended (completed, stopped or failed)."""
        return not self.is_alive()

    def wait(self, timeout: float | None = None) -> dict:
        """Wait for the run to end and return its ``run.json``; re-raise its error if it failed.

        Raises
        ------
        RunError : when ``timeout`` passes first.
        """
        self._thread.join(timeout)
        if self.is_alive():
            raise RunError(f"run {self.run_id} still running after {timeout} s")
        return self.join()


def start_training(config: TrainConfig | None = None, *, resume: str | None = None, db=None,
                   model=None, lock=None, publish=None, store=None,
                   lineage: dict | None = None) -> RunHandle:
    """Start a run in a background thread; same parameters as :func:`train`.

    The active-run lock is taken before this returns, so a refused run raises
    :class:`~workbench.errors.ActiveRunError` here, not later.
    """
    active, job = _start(config, db, resume, lineage=lineage, model=model, lock=lock,
                         publish=publish, store=store)
    return RunHandle(job, active)
