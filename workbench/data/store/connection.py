"""Connections to the store's DuckDB file and how several processes share it.

DuckDB lets one process at a time hold a database file open read-write, and a read-only open
conflicts with a writer in another process. Several processes must nevertheless use the same file
at once (a notebook kernel ingesting, another kernel reading, a Voila dashboard reading), so:

* **No process holds the file open.** Every operation opens a connection, runs one short
  transaction and closes it, so the OS file lock is held for milliseconds.
* **Every open retries.** When another process holds the lock, DuckDB raises an ``IOException``
  ("Could not set lock on file"). :meth:`StoreConnection._connect` retries with jittered
  exponential backoff until ``busy_timeout`` seconds have passed, then raises
  :class:`StoreBusyError`, a typed error with a clear message. The raw DuckDB lock error never
  reaches a user.
* **Waiters get their turn.** A process that finds the file locked leaves a fresh marker file
  (``<db>.waiting.<pid>``) while it retries; a process about to open the store steps aside for
  50 ms when it sees another process's marker, so a tight write loop cannot starve a reader.
* **One writer at a time, atomically.** Writes run inside ``BEGIN ... COMMIT``; a failure rolls
  back, so nothing is half-written. Within one process, DuckDB shares one database instance
  between connections to the same path, so threads do not contend on the file lock; each thread
  uses its own cursor.
* **Readers work on snapshots.** Hot paths (replay, windows, backtests) read a range once into
  memory (numpy/polars) and work on that snapshot; they never keep a cursor open.
* All connections use the same (read-write) configuration, because DuckDB refuses to mix
  read-only and read-write connections to one file inside a process.
"""
from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import polars as pl

from workbench.data.store.schema import SCHEMA
from workbench.errors import StoreBusyError, StoreError
from workbench.paths import resolve_db_path

_schema_ready: set[Path] = set()
_schema_guard = threading.Lock()
_WAITER_FRESH_S = 2.0  # a waiting marker older than this belongs to a process that gave up or died
_WAITER_YIELD_S = 0.05  # how long an opener steps aside for a waiting process
_CREATING_S = 5.0  # a header-less store file younger than this is still being created

# -- threads of one process ------------------------------------------------------------------
# DuckDB shares one database instance between the connections of a process and tears it down
# when the last one closes; a connect racing that close fails with "Unique file handle conflict".
# Opening and closing under one lock removes the race. Writers of one process also take turns
# (one lock per file), so their transactions never conflict (tests/live/test_stress.py).
_open_guard = threading.Lock()
_write_guards: dict[Path, threading.RLock] = {}


def _write_guard(path: Path) -> threading.RLock:
    with _open_guard:
        return _write_guards.setdefault(path, threading.RLock())


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text or "resource" in text)


@contextlib.contextmanager
def registered(con, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """Expose ``frame`` to SQL as ``name`` for one block.

    Once a statement has aborted the transaction, unregistering fails too; that second error is
    suppressed so the statement's own error (the one naming the broken rule) reaches the caller.
    """
    con.register(name, frame.to_arrow())
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


class StoreConnection:
    """Short, retrying connections to one DuckDB database file (the base of ``Store``).

    Parameters
    ----------
    path : database file; resolved with :func:`workbench.paths.resolve_db_path` when ``None``.
    busy_timeout : seconds to keep retrying when another process holds the file lock.
    """

    def __init__(self, path=None, *, busy_timeout: float = 30.0):
        self.path = resolve_db_path(path)
        self.busy_timeout = float(busy_timeout)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a short-lived connection, retrying while another process holds the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.005
        waiting = self.path.with_name(f"{self.path.name}.waiting.{os.getpid()}")
        self._yield_to_waiters(waiting.name)
        try:
            while True:
                try:
                    if self._file_state() != "creating":
                        with _open_guard:
                            created = not self.path.exists()
                            con = duckdb.connect(str(self.path))
                        break
                except duckdb.Error as exc:
                    if not (_is_lock_error(exc) or self._being_created(exc)):
                        raise StoreError(f"cannot open store {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store {self.path} stayed locked by another process for "
                        f"{self.busy_timeout:.0f} s; close long-running writers or retry"
                    ) from None
                waiting.touch()  # tell the holder someone waits (see _yield_to_waiters)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)
        finally:
            with contextlib.suppress(OSError):
                waiting.unlink()
        try:
            self._ensure_schema(con, created)
            yield con
        finally:
            with _open_guard:
                con.close()

    def _file_state(self) -> str:
        """Return ``'absent'``, ``'duckdb'`` or ``'creating'``; refuse any other file.

        DuckDB opens some files that are not databases (a ``.csv`` or ``.parquet`` path becomes
        an empty in-memory database over that file), so ``--db data.csv`` "worked" and lost
        every write. The header is checked first instead: a DuckDB file carries ``DUCK`` at byte
        8. A young file shorter than its header is one another process is still creating (see
        :meth:`_being_created`); the file is only read, never written.

        Raises
        ------
        StoreError : the path is a folder, unreadable, or a file that is not a DuckDB database.
        """
        try:
            with self.path.open("rb") as fh:
                head = fh.read(12)
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return "absent"
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {exc.strerror or exc}") from None
        if head[8:12] == b"DUCK":
            return "duckdb"
        if len(head) < 12 and age < _CREATING_S:
            return "creating"
        raise StoreError(f"store {self.path} is not a valid DuckDB database file (it begins "
                         f"{head!r}); give the path of a DuckDB store, or a new path to create "
                         "one. The file was not changed")

    def _being_created(self, exc: BaseException) -> bool:
        """True when another process has just created the file and not yet written its header.

        DuckDB creates the file before it writes the header, so a process opening a brand-new
        store at that instant reads "not a valid DuckDB database file"; only a young file is
        given that benefit of the doubt, an old one is reported as damaged.
        """
        if "not a valid duckdb database file" not in str(exc).lower():
            return False
        with contextlib.suppress(OSError):
            return time.time() - self.path.stat().st_mtime < _CREATING_S
        return False

    def _yield_to_waiters(self, own: str) -> None:
        """Pause briefly before opening when another process waits for the file lock.

        Retrying with backoff alone is not fair: a process that opens the store in a tight loop
        (a live session writing its ledger) gets the lock back within microseconds and can starve
        a reader for the whole busy timeout. A waiting process leaves a marker file beside the
        database (refreshed on every retry, ignored once stale) and an opener that sees someone
        else's marker lets it in first.
        """
        prefix, now = f"{self.path.name}.waiting.", time.time()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if (entry.name.startswith(prefix) and entry.name != own
                        and now - entry.stat().st_mtime < _WAITER_FRESH_S):
                    time.sleep(_WAITER_YIELD_S)
                    return

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection, created: bool) -> None:
        # Remembered per path, except that a file this connect created (a store deleted and made
        # again at the same path, say to start over in a notebook) always gets its tables.
        with _schema_guard:
            if self.path in _schema_ready and not created:
                return
            for stmt in SCHEMA:
                con.execute(stmt)
            _schema_ready.add(self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block in one transaction: committed on success, rolled back on any error."""
        with _write_guard(self.path), self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def query(self, sql: str, params: Sequence | None = None) -> pl.DataFrame:
        """Run a read-only query of the store package and return a polars frame (internal)."""
        with self._connect() as con:
            return con.sql(sql, params=list(params or [])).pl()
