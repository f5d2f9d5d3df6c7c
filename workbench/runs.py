"""Run folders shared by both engines: paths, ``run.json`` lifecycle, the one-active-run lock.

Torch runs (:mod:`workbench.train.runs`) and price-model runs (:mod:`workbench.pricemodel`) keep
the same layout and take the same lock, so this module depends on neither engine: importing the
TensorFlow pipeline never loads torch, and a run of one engine blocks a run of the other.

A run lives in ``runs_dir(db)/<run-id>/``, beside the database it reads (``runs/`` next to the
database file, or ``$WORKBENCH_RUNS``)::

    run.json            status pending -> running -> completed | failed, times, metrics, error
    config.json         the frozen configuration
    ...                 what the engine writes (checkpoints, logs, exported models)

Only one run trains at a time per runs folder, across processes: :class:`ActiveRunLock` holds a
``filelock`` lock on ``runs_dir()/.active.lock`` and a marker naming the run, its pid and host. A
second run is refused with :class:`~workbench.errors.ActiveRunError` naming the active one. The OS
drops the lock when a process dies, so the next run that takes it finds the marker of a dead run
and marks that run ``failed`` ("process died"); :func:`list_runs` does the same for a run whose
recorded process no longer exists on this host.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import filelock

from workbench.errors import ActiveRunError, NotFoundError, RunError, WorkbenchError
from workbench.paths import runs_dir as _runs_root

log = logging.getLogger("workbench.runs")

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("pending", "running", "completed", "failed")


def write_json_atomic(path: Path, payload, **dump_options) -> Path:
    """Write JSON to ``path`` through a unique temporary file and ``os.replace``; return ``path``.

    ``dump_options`` go to :func:`json.dump` (for example ``sort_keys=True, default=str``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, allow_nan=True, **dump_options)
    os.replace(tmp, path)
    return path


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 text, to the millisecond (the times of ``run.json``).

    Milliseconds, because "newest run" is ordered by ``created_at``: a live session's child run
    can be created within the second of its parent, and a tie would make "newest" arbitrary.
    """
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def runs_dir(db=None) -> Path:
    """Return (and create) the folder holding runs (see :func:`workbench.paths.runs_dir`)."""
    root = _runs_root(db)
    root.mkdir(parents=True, exist_ok=True)
    return root


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

    def holder(self) -> dict | None:
        """Return the marker of the held lock (run_id, pid, hostname, since), or None."""
        try:
            return json.loads(self._marker.read_text())
        except (OSError, ValueError):
            return None

    def check_held_by(self, job_id: str) -> None:
        """Raise ActiveRunError unless job ``job_id`` holds the lock in a live process.

        A job (a sweep, a walk-forward evaluation) takes the lock once; the runs it starts,
        in this or other processes on the same runs folder, run under it (``train(under_job=)``).
        """
        marker = self.holder()
        alive = marker is not None and (marker.get("hostname") != socket.gethostname()
                                        or _pid_alive(int(marker.get("pid", 0))))
        if marker is None or marker.get("run_id") != job_id or not alive:
            raise ActiveRunError(f"job {job_id!r} does not hold the active-run lock of "
                                 f"{runs_dir(self.db)} (holder: {marker}); a run under a job "
                                 "starts only while that job is active")

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


def pin_report_run(run_id: str, db=None) -> dict:
    """Choose ``run_id`` as the run report pages show by default (``runs/.report_run.json``).

    Without a pinned run, reports fall back to the newest completed one, which changes with every
    training click; a pinned run changes only when someone pins another.

    Raises
    ------
    NotFoundError : for an unknown run. RunError : for a run that has not completed.
    """
    record = read_run(run_id, db)
    if record.get("status") != "completed":
        raise RunError(f"run {run_id!r} is {record.get('status')}; pin a completed run")
    marker = {"run_id": run_id, "pinned_at": now_iso()}
    write_json_atomic(runs_dir(db) / ".report_run.json", marker)
    return marker


def report_run(db=None) -> str | None:
    """The pinned report run (see :func:`pin_report_run`), or None when none is pinned."""
    path = runs_dir(db) / ".report_run.json"
    try:
        run_id = json.loads(path.read_text())["run_id"]
        return run_id if read_run(run_id, db).get("status") == "completed" else None
    except (OSError, ValueError, KeyError, WorkbenchError):
        return None


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for notebooks and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
