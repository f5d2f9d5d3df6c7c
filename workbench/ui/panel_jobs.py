"""The control panel's background work: named jobs, the ticker that shows them, Stop's end.

Widgets are created on the kernel's main thread; long work (a live session, a backtest,
training, a manual step) runs in a named :class:`~workbench.jobs.CallableJob`, and one
``panel-ticker`` thread polls the running work twice a second and calls the panel's ``tick``,
which only *sets widget traits*. A job's error goes to the panel's log (never a traceback in the
kernel). Stop is a flag here plus a request to each piece of work: :meth:`PanelJobs.settle` ends
it ("stopped" in the log) as soon as no job works any more, from the last job's end or the
ticker, so the panel is idle again at once, not at the next poll.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from workbench.errors import WorkbenchError
from workbench.jobs import CallableJob

TICK_S = 0.5  # how often the ticker refreshes the view while work runs


class PanelJobs:
    """The panel's jobs by name and its ticker thread.

    Parameters
    ----------
    log : ``log(message)`` of the panel; tick : one view refresh (called by the ticker);
    refresh : re-applies the button states (called when a job starts or ends).
    """

    def __init__(self, log: Callable[[str], None], tick: Callable[[], None],
                 refresh: Callable[[], None]):
        self.log, self.tick, self.refresh = log, tick, refresh
        self.stopping = False
        self._threads: dict[str, CallableJob] = {}
        self._ended: dict[str, threading.Event] = {}  # set when a job's work has ended
        self._wake = threading.Event()  # set by Stop and by the end of every job
        self._settle_guard = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._ticker_guard = threading.Lock()

    def alive(self, name: str) -> bool:
        """True while the job ``name`` works (its thread may still be winding down after)."""
        job, ended = self._threads.get(name), self._ended.get(name)
        return job is not None and job.is_alive() and not ended.is_set()

    def busy(self) -> bool:
        """True while any job works."""
        return any(self.alive(name) for name in list(self._threads))

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` as the job ``name`` and make sure the ticker runs."""
        def report(exc: Exception) -> None:  # shown in the log, never kills the kernel
            self.log(f"{name}: {exc}" if isinstance(exc, WorkbenchError)
                     else f"{name} failed: {type(exc).__name__}: {exc}")

        ended = threading.Event()

        def finished() -> None:  # the panel is idle again now, not at the ticker's next poll
            ended.set()
            self.settle()
            self._wake.set()
            self.refresh()

        job = CallableJob(f"panel-{name}", target, on_error=report, on_finish=finished)
        self._threads[name], self._ended[name] = job, ended
        job.start()
        self.refresh()
        self.ensure_ticker()

    def request_stop(self) -> None:
        """Mark a Stop in progress and wake the ticker (the work itself is asked by the panel)."""
        self.stopping = True
        self.wake()
        self.ensure_ticker()

    def wake(self) -> None:
        """Refresh the view now rather than at the next poll."""
        self._wake.set()

    def settle(self) -> None:
        """End a Stop once nothing works any more (from the last job's end or the ticker)."""
        with self._settle_guard:
            if self.stopping and not self.busy():
                self.stopping = False
                self.log("stopped")

    def ensure_ticker(self) -> None:
        """Start the ticker thread unless it runs."""
        with self._ticker_guard:
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick_loop, name="panel-ticker",
                                                daemon=True)
                self._ticker.start()

    def _tick_loop(self) -> None:
        while True:
            busy = self.busy()
            self.settle()
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the view must keep updating
                self.log(f"view update failed: {type(exc).__name__}: {exc}")
            with self._ticker_guard:  # exit only if no work or stop arrived meanwhile
                if not busy and not self.busy() and not self.stopping:
                    self._ticker = None
                    break
            self._wake.wait(TICK_S)
            self._wake.clear()
        self.refresh()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no work runs and the ticker has ended; False after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy() and not self.stopping and self._ticker is None:
                return True
            time.sleep(0.02)
        return False
