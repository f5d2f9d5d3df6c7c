"""One lifecycle for background work: start, run, stop, join, failure.

A replay, a live session, a training run and a control-panel action all run either in the
caller's thread or in a background thread, keep the error they died of for whoever waits, and
must clean up whatever happens. :class:`BackgroundJob` owns that once, the way papermill's engine
base owns ``notebook_start(); try: execute() finally: notebook_complete()``: a subclass writes
only :meth:`~BackgroundJob._execute` (and, when it has some, :meth:`~BackgroundJob._finish` and
:meth:`~BackgroundJob.outcome`).

=============  ===========================================================================
``run()``      executes in the calling thread; re-raises a failure; returns :meth:`outcome`
``start()``    executes ``run()`` in a daemon thread; a second call raises ParameterError
``join()``     waits for the thread; re-raises the error it died of; returns :meth:`outcome`
``stop()``     asks the work to end (subclasses decide how; the base sets :attr:`stop_event`)
=============  ===========================================================================
"""
from __future__ import annotations

import threading
import time

from workbench.errors import ParameterError


class BackgroundJob:
    """Base of work that runs in the caller's thread or a background thread.

    Parameters
    ----------
    name : the thread's name and the job's name in messages.

    Attributes
    ----------
    failure : the exception the last run died of (``None`` while it has not).
    result : what :meth:`_execute` returned.
    elapsed_s : seconds spent in :meth:`run`, over every call.
    stop_event : set by :meth:`stop`; long loops poll it.
    """

    def __init__(self, name: str):
        self.job_name = name
        self.failure: BaseException | None = None
        self.result = None
        self.elapsed_s = 0.0
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False  # True while run() executes, in whichever thread

    # -- what a subclass writes ----------------------------------------------------------------
    def _execute(self):
        """Do the work (in whichever thread runs it); return its result."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Called once per :meth:`run` after the work ended, failed or not (release here)."""

    def outcome(self):
        """What :meth:`run` and :meth:`join` return (default: :attr:`result`)."""
        return self.result

    # -- the lifecycle -------------------------------------------------------------------------
    def run(self):
        """Execute in the calling thread; record and re-raise a failure; return :meth:`outcome`."""
        t0 = time.perf_counter()
        self._running = True
        try:
            self.result = self._execute()
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self.elapsed_s += time.perf_counter() - t0
            self._running = False
            self._finish()
        return self.outcome()

    def _run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException:  # noqa: BLE001 - kept in self.failure for join()
            pass

    def start(self):
        """Run in a daemon thread; returns ``self``. Raises ParameterError when started twice."""
        if self._thread is not None:
            raise ParameterError(f"{self.job_name} has already been started")
        self._thread = threading.Thread(target=self._run_in_thread, name=self.job_name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the work to end at its next check of :attr:`stop_event`."""
        self.stop_event.set()

    def join(self, timeout: float | None = None):
        """Wait for a background run; re-raise the error it died of; return :meth:`outcome`."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.failure is not None:
            raise self.failure
        return self.outcome()

    def is_alive(self) -> bool:
        """True while a background run is going."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True while :meth:`run` executes, in any thread."""
        return self._running


class CallableJob(BackgroundJob):
    """A job around a plain function, for work whose failure is reported rather than raised.

    Parameters
    ----------
    name : the thread's name.
    target : ``target()`` does the work.
    on_error : ``on_error(exc)`` receives an ``Exception`` of ``target`` (the job then ends
        normally); ``None`` lets it fail the job like any other.
    on_finish : ``on_finish()`` runs after every run, whatever happened (e.g. refresh a view).
    """

    def __init__(self, name: str, target, *, on_error=None, on_finish=None):
        super().__init__(name)
        self.target, self.on_error, self.on_finish = target, on_error, on_finish

    def _execute(self):
        if self.on_error is None:
            return self.target()
        try:
            return self.target()
        except Exception as exc:  # noqa: BLE001 - handed to on_error, which reports it
            self.on_error(exc)
        return None

    def _finish(self) -> None:
        if self.on_finish is not None:
            self.on_finish()
