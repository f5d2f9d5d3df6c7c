"""Price-model runs on the run folders both engines share (:mod:`workbench.runs`).

A price-model run is a run like any other: its folder is ``runs_dir()/<run-id>/``, its
``run.json`` goes pending → running → completed | failed (with the error text, start and end
times, pid and host, so ``workbench runs list`` shows and reconciles it), and it takes the same
cross-process :class:`~workbench.runs.ActiveRunLock`, so a price-model run and a torch run
never train at the same time and a stale lock of a killed process is recovered the same way.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from workbench.runs import ActiveRunLock, now_iso, read_run, run_path, update_run

KIND = "pricemodel"


def new_run_id(model_type: str) -> str:
    """Return a fresh id: UTC time, ``pricemodel``, the model type and random hex."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{KIND}-{model_type}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Run:
    """A run being executed: its id, folder and the database its runs folder belongs to."""

    run_id: str
    run_dir: Path
    db: object = None

    def update(self, **fields) -> dict:
        """Merge ``fields`` into ``run.json`` atomically and return the record."""
        return update_run(self.run_id, self.db, **fields)

    def record(self) -> dict:
        return read_run(self.run_id, self.db)


@contextlib.contextmanager
def active_run(config: dict, db=None) -> Iterator[Run]:
    """Create a run and hold the project's one-active-run lock while the block executes.

    Yields a :class:`Run` in status ``running``; it ends ``completed``, or ``failed`` with the
    error text when the block raises (the exception propagates).

    Raises
    ------
    ActiveRunError : when another run (torch or price-model, any process) is active; names it.
    """
    lock = ActiveRunLock(db)
    lock.acquire("(starting)")
    try:
        run_id = new_run_id(config.get("model_type", "model"))
        run = Run(run_id, run_path(run_id, db), db)
        run.run_dir.mkdir(parents=True)
        run.update(status="pending", created_at=now_iso(), kind=KIND,
                   model_type=config.get("model_type"), symbol=config.get("symbol"),
                   timeframe=config.get("timeframe"))
        lock.set_run(run_id)
        run.update(status="running", started_at=now_iso(), ended_at=None, error=None,
                   pid=os.getpid(), hostname=socket.gethostname())
        try:
            yield run
        except BaseException as exc:
            run.update(status="failed", ended_at=now_iso(), error=f"{type(exc).__name__}: {exc}")
            raise
        run.update(status="completed", ended_at=now_iso())
    finally:
        lock.release()
