"""The training lock: one per model, serialising every weight update so two trainers never
interleave their steps on one set of weights.

Batch training steps, per-candle steps and manual steps all acquire the model's
:class:`TrainingLock` before touching weights. Acquisition takes a timeout (so a stuck holder
fails the waiter loudly instead of hanging it); on timeout :class:`TrainingLockTimeout` names the
current holder: its operation, its session and since when it has held the lock (also kept as the
exception's ``holder``).
:meth:`TrainingLock.stats` counts acquisitions, waits, wait time and timeouts, in total and per
session, which is what a live session reports as its "lock waits".

Inference never takes this lock: it runs on an immutable, versioned snapshot of the weights that
the trainer publishes after each update (see the model handle in ``workbench.train``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from workbench.errors import TrainingLockTimeout


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a training lock: the operation, the session and the wall-clock time acquired."""

    operation: str
    session: str
    since: float

    def describe(self) -> str:
        held = time.time() - self.since
        stamp = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"operation {self.operation!r} of session {self.session!r}, held since {stamp} ({held:.1f} s)"


class TrainingLock:
    """A mutex with a timeout, holder bookkeeping and wait statistics.

    Parameters
    ----------
    name : the model this lock protects (used in messages).
    default_timeout : seconds :meth:`acquire` waits when no timeout is given.
    """

    def __init__(self, name: str = "model", default_timeout: float = 60.0):
        self.name = name
        self.default_timeout = default_timeout
        self._lock = threading.Lock()
        self._holder: LockHolder | None = None
        self._stats_guard = threading.Lock()
        self.acquisitions = 0
        self.waits = 0  # acquisitions that found the lock taken
        self.wait_seconds = 0.0
        self.timeouts = 0
        self.waiting = 0  # acquisitions waiting right now (for a status line)
        self._by_session: dict[str, list] = {}  # session -> [acquisitions, waits, wait_s, timeouts]

    @property
    def holder(self) -> LockHolder | None:
        """The current holder, or ``None`` when the lock is free."""
        return self._holder

    def acquire(self, operation: str, session: str = "-", timeout: float | None = None) -> None:
        """Acquire the lock for ``operation`` of ``session``.

        Raises
        ------
        TrainingLockTimeout : when the lock is still held after ``timeout`` seconds; the message
            names the holder.
        """
        timeout = self.default_timeout if timeout is None else timeout
        contended = not self._lock.acquire(blocking=False)
        waited = 0.0
        if contended:
            start = time.perf_counter()
            with self._stats_guard:
                self.waiting += 1
            try:
                got = self._lock.acquire(timeout=timeout)
            finally:
                with self._stats_guard:
                    self.waiting -= 1
            if not got:
                holder = self._holder
                self._count(session, 0, 0, time.perf_counter() - start, 1)
                who = holder.describe() if holder else "an unknown holder"
                exc = TrainingLockTimeout(
                    f"training lock of {self.name!r} not acquired within {timeout:.1f} s for "
                    f"{operation!r} ({session}); it is held by {who}")
                exc.holder = holder  # the LockHolder (operation, session, since) or None
                raise exc
            waited = time.perf_counter() - start
        self._holder = LockHolder(operation, session, time.time())
        self._count(session, 1, int(contended), waited, 0)

    def _count(self, session: str, acquired: int, waited: int, seconds: float,
               timed_out: int) -> None:
        with self._stats_guard:
            self.acquisitions += acquired
            self.waits += waited
            self.wait_seconds += seconds
            self.timeouts += timed_out
            row = self._by_session.setdefault(session, [0, 0, 0.0, 0])
            row[0] += acquired
            row[1] += waited
            row[2] += seconds
            row[3] += timed_out

    def release(self) -> None:
        """Release the lock."""
        self._holder = None
        self._lock.release()

    def hold(self, operation: str, session: str = "-", timeout: float | None = None):
        """Context manager: ``with lock.hold("per_candle", session_id): ...``."""
        return _Held(self, operation, session, timeout)

    def locked(self) -> bool:
        """Return True while some operation holds the lock."""
        return self._lock.locked()

    def stats(self, session: str | None = None) -> dict:
        """Return acquisitions, waits (acquisitions that found the lock taken), total wait
        seconds and timeouts: of every holder, or of one ``session`` only."""
        with self._stats_guard:
            if session is not None:
                a, w, s, t = self._by_session.get(session, (0, 0, 0.0, 0))
                return {"acquisitions": a, "waits": w, "wait_seconds": round(s, 6),
                        "timeouts": t}
            return {"acquisitions": self.acquisitions, "waits": self.waits,
                    "wait_seconds": round(self.wait_seconds, 6), "timeouts": self.timeouts}

    def sessions(self) -> list[str]:
        """The sessions that have asked for this lock, in first-seen order."""
        with self._stats_guard:
            return list(self._by_session)


class _Held:
    __slots__ = ("_lock", "_args")

    def __init__(self, lock: TrainingLock, operation: str, session: str, timeout):
        self._lock, self._args = lock, (operation, session, timeout)

    def __enter__(self):
        self._lock.acquire(*self._args)
        return self._lock

    def __exit__(self, *exc):
        self._lock.release()
        return False
