"""Training runs (seed 004): run folders, lifecycle, one active run, resume, background runs.

A run lives in ``runs_dir()/<run-id>/``::

    run.json            status pending -> running -> completed | failed, times, metrics, error
    config.json         the frozen configuration
    metrics.json        per-epoch metrics, rewritten after every epoch
    checkpoints/        best.ckpt, last.ckpt (+ every-N-epoch files), written atomically
    logs/training.log   the run's log
    tensorboard/        TensorBoard events

Only one run trains at a time per project, across processes: :class:`ActiveRunLock` holds a
``filelock`` lock on ``runs_dir()/.active.lock`` and a marker naming the run, its pid and host. A
second run is refused with :class:`~workbench.errors.ActiveRunError` naming the active one. The OS
drops the lock when a process dies, so the next run that takes it finds the marker of a dead run
and marks that run ``failed`` ("process died"); :func:`list_runs` does the same for a run whose
recorded process no longer exists on this host.

:func:`train` runs synchronously (the CLI); :func:`start_training` runs in a background thread and
returns a :class:`RunHandle` with ``status()``, ``progress()``, ``stop()`` and ``wait()``.
``resume=RUN_ID`` continues a run from its ``last.ckpt``; because every random choice depends on
the seed and the epoch only, the resumed run ends with the metrics of an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import filelock
from lightning.pytorch.callbacks import Callback

from workbench.errors import ActiveRunError, NotFoundError, RunError, WorkbenchError
from workbench.paths import runs_dir as _runs_root
from workbench.train.callbacks import write_json_atomic
from workbench.train.config import TrainConfig, config_from_dict

log = logging.getLogger("workbench.train")

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: fault injection for the kill-and-resume test: SIGKILL this process at this global step
KILL_AT_STEP_ENV = "WORKBENCH_FAULT_KILL_AT_STEP"
#: the run id shared by the processes of one distributed (DDP) run
RUN_ID_ENV = "WORKBENCH_RUN_ID"
STATUSES = ("pending", "running", "completed", "failed")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def runs_dir(db=None) -> Path:
    """Return (and create) the folder holding runs (see :func:`workbench.paths.runs_dir`)."""
    root = _runs_root(db)
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_run_id(config: TrainConfig) -> str:
    """Return a fresh id: UTC time, model type, optional run name and random hex."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"-{config.output.run_name}" if config.output.run_name else ""
    return f"{stamp}-{config.model.type}{name}-{secrets.token_hex(3)}"


def run_path(run_id: str, db=None) -> Path:
    """Return the folder of ``run_id`` inside the runs folder.

    Raises
    ------
    RunError : when the id is not a plain name (so no id can point outside the runs folder).
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or ".." in run_id:
        raise RunError(f"invalid run id {run_id!r}: use letters, digits, '-', '_' and '.', "
                       "starting with a letter or digit")
    root = runs_dir(db).resolve()
    path = (root / run_id).resolve()
    if path.parent != root:
        raise RunError(f"run id {run_id!r} escapes the runs folder {root}")
    return path


def read_run(run_id: str, db=None) -> dict:
    """Return the ``run.json`` of a run; raises NotFoundError when there is none."""
    path = run_path(run_id, db) / "run.json"
    if not path.is_file():
        raise NotFoundError(f"no run {run_id!r} in {path.parent.parent}")
    return json.loads(path.read_text())


def update_run(run_id: str, db=None, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` (atomically) and return the new record."""
    path = run_path(run_id, db) / "run.json"
    record = json.loads(path.read_text()) if path.is_file() else {"run_id": run_id}
    record.update(fields)
    write_json_atomic(path, record)
    return record


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_died(record: dict, db=None) -> dict:
    who = f"pid {record.get('pid')} on {record.get('hostname')}"
    return update_run(record["run_id"], db, status="failed", ended_at=now_iso(),
                      error=f"process died ({who}) while the run was {record['status']}")


class ActiveRunLock:
    """The one-active-run lock of a runs folder (see the module docstring)."""

    def __init__(self, db=None):
        self.db = db
        root = runs_dir(db)
        self._lock = filelock.FileLock(root / ".active.lock", thread_local=False)
        self._marker = root / ".active.json"

    def acquire(self, run_id: str) -> None:
        """Take the lock for ``run_id``; recover a dead run's marker.

        Raises
        ------
        ActiveRunError : naming the active run, its pid and host, when another run holds it.
        """
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            raise ActiveRunError(f"training run {self._describe()} is active; wait for it to "
                                 "finish (one active run per project)") from None
        self._recover_stale()
        self.set_run(run_id)

    def set_run(self, run_id: str) -> None:
        """Name ``run_id`` (with this pid and host) in the marker of the held lock."""
        write_json_atomic(self._marker, {"run_id": run_id, "pid": os.getpid(),
                                         "hostname": socket.gethostname(), "since": now_iso()})

    def _describe(self) -> str:
        try:
            m = json.loads(self._marker.read_text())
        except (OSError, ValueError):
            return "(unknown: marker unreadable)"
        return f"{m['run_id']!r} (pid {m['pid']} on {m['hostname']}, since {m['since']})"

    def _recover_stale(self) -> None:
        """We hold the lock, so whoever wrote a leftover marker is gone: fail its run."""
        try:
            marker = json.loads(self._marker.read_text())
        except (OSError, ValueError):
            return
        try:
            record = read_run(marker["run_id"], self.db)
        except (WorkbenchError, OSError, ValueError):
            return
        if record.get("status") in ("pending", "running"):
            _mark_died({**record, **{k: marker[k] for k in ("pid", "hostname")}}, self.db)
            log.warning("recovered stale run %s (process died)", marker["run_id"])

    def release(self) -> None:
        """Remove the marker and release the lock."""
        self._marker.unlink(missing_ok=True)
        self._lock.release()


# -- listing -------------------------------------------------------------------------------------
def _reconcile(record: dict, db=None) -> dict:
    """Mark a pending/running run whose process is gone (on this host) as failed."""
    if (record.get("status") in ("pending", "running") and record.get("pid")
            and record.get("hostname") == socket.gethostname()
            and not _pid_alive(int(record["pid"]))):
        return _mark_died(record, db)
    return record


def list_runs(db=None) -> list[dict]:
    """Return the ``run.json`` of every run, newest first (stale runs reconciled)."""
    out = []
    for path in runs_dir(db).glob("*/run.json"):
        try:
            out.append(_reconcile(json.loads(path.read_text()), db))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: r.get("created_at", ""), reverse=True)


def show_run(run_id: str, db=None) -> dict:
    """Return one run's record plus its per-epoch metrics and artifact paths."""
    record = _reconcile(read_run(run_id, db), db)
    folder = run_path(run_id, db)
    metrics = folder / "metrics.json"
    record["epochs"] = json.loads(metrics.read_text())["epochs"] if metrics.is_file() else []
    record["artifacts"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                                 if p.is_file() and not p.name.startswith("."))
    return record


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
    stop: threading.Event = field(default_factory=threading.Event)
    progress: dict = field(default_factory=dict)


class _StopAndFault(Callback):
    """Stop cleanly when asked (RunHandle.stop) and, for tests only, SIGKILL at a given step."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        env = os.environ.get(KILL_AT_STEP_ENV)
        self.kill_at = int(env) if env else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.kill_at is not None and trainer.global_step >= self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.stop.is_set():
            trainer.should_stop = True


def _prepare(config: TrainConfig, db, resume: str | None) -> tuple[str, Path | None]:
    """Create a new run folder (or check a resumable one); return (run_id, checkpoint)."""
    if resume is None:
        run_id = os.environ.get(RUN_ID_ENV) or new_run_id(config)
        folder = run_path(run_id, db)
        if folder.exists():
            raise RunError(f"run {run_id!r} already exists; resume it or choose another id")
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "logs").mkdir()
        write_json_atomic(folder / "config.json", config.to_dict())
        update_run(run_id, db, status="pending", created_at=now_iso(), model_type=config.model.type,
                   symbol=config.data.symbol, timeframe=config.data.timeframe)
        return run_id, None
    record = read_run(resume, db)
    if record.get("status") == "completed":
        raise RunError(f"run {resume!r} already completed; nothing to resume")
    ckpt = run_path(resume, db) / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise RunError(f"run {resume!r} has no checkpoints/last.ckpt to resume from (it died "
                       "before its first epoch ended); start a new run")
    return resume, ckpt


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed (DDP) run."""
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


class _NoLock:
    """The active-run lock of a non-zero DDP rank: rank 0 holds the real one."""

    def release(self) -> None:
        pass


def _start(config: TrainConfig | None, db, resume: str | None, **job_kw):
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
    lock.acquire(resume or "(starting)")
    try:
        run_id, ckpt = _prepare(config, db, resume)
        lock.set_run(run_id)
    except BaseException:
        lock.release()
        raise
    return lock, _Job(run_id, config, db, ckpt, **job_kw)


def _run_job(job: _Job, lock: ActiveRunLock) -> dict:
    """Execute a prepared job, always releasing the active-run lock; return the final record."""
    from workbench.train.engine import execute

    try:
        return execute(job, _StopAndFault(job.stop))
    finally:
        lock.release()


def train(config: TrainConfig | None = None, *, resume: str | None = None, db=None, model=None,
          lock=None, publish=None, store=None) -> dict:
    """Run a training run to the end in this thread and return its final ``run.json``.

    Parameters
    ----------
    config : the run's configuration (ignored when resuming: the frozen one is used).
    resume : an existing run id to continue from its ``last.ckpt``.
    db : database path used for the runs folder (default: the resolved project database).
    model, lock, publish : train a live :class:`~workbench.train.handle.ModelHandle`'s model in
        place, through its lock, publishing snapshots (see ``ModelHandle.fit``).
    store : a Store to read candles from (default: ``Store(config.data.db)``).

    Raises
    ------
    ActiveRunError : when another run is active. RunError : when resuming is impossible.
    Any error of the run itself is re-raised after ``run.json`` records it as failed.
    """
    active, job = _start(config, db, resume, model=model, lock=lock, publish=publish, store=store)
    return _run_job(job, active)


class RunHandle:
    """A run training in a background thread (returned by :func:`start_training`)."""

    def __init__(self, job: _Job, active: ActiveRunLock):
        self.run_id, self._job = job.run_id, job
        self._result: dict | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(active,),
                                        name=f"train-{job.run_id}", daemon=True)
        self._thread.start()

    def _work(self, active: ActiveRunLock) -> None:
        try:
            self._result = _run_job(self._job, active)
        except BaseException as exc:  # noqa: BLE001 - handed to wait()
            self._error = exc

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
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> dict:
        """Wait for the run to end and return its ``run.json``; re-raise its error if it failed.

        Raises
        ------
        RunError : when ``timeout`` passes first.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RunError(f"run {self.run_id} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result


def start_training(config: TrainConfig | None = None, *, resume: str | None = None, db=None,
                   model=None, lock=None, publish=None, store=None) -> RunHandle:
    """Start a run in a background thread; same parameters as :func:`train`.

    The active-run lock is taken before this returns, so a refused run raises
    :class:`~workbench.errors.ActiveRunError` here, not later.
    """
    active, job = _start(config, db, resume, model=model, lock=lock, publish=publish, store=store)
    return RunHandle(job, active)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for notebooks and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
