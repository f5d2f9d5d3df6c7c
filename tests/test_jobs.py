"""The one background-job lifecycle: run / start / join / failure, cleanup in every case."""
from __future__ import annotations

import threading

import pytest

from workbench.errors import ParameterError
from workbench.jobs import BackgroundJob, CallableJob


class Job(BackgroundJob):
    def __init__(self, fail=False, gate=None):
        super().__init__("test-job")
        self.fail, self.gate, self.finished, self.thread_name = fail, gate, 0, None

    def _execute(self):
        self.thread_name = threading.current_thread().name
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ValueError("boom")
        return 42

    def _finish(self):
        self.finished += 1


def test_run_returns_the_result_and_finishes_once():
    job = Job()
    assert job.run() == 42 and job.result == 42 and job.finished == 1 and job.failure is None
    assert job.thread_name == threading.current_thread().name and job.elapsed_s > 0


def test_a_failure_is_kept_reraised_by_join_and_still_finishes():
    job = Job(fail=True)
    with pytest.raises(ValueError, match="boom"):
        job.run()
    assert job.finished == 1 and isinstance(job.failure, ValueError)
    background = Job(fail=True).start()
    with pytest.raises(ValueError, match="boom"):
        background.join(5)
    assert background.finished == 1 and background.thread_name == "test-job"


def test_start_runs_in_a_background_thread_once():
    gate = threading.Event()
    job = Job(gate=gate).start()
    assert job.is_alive()
    with pytest.raises(ParameterError, match="test-job has already been started"):
        job.start()
    gate.set()
    assert job.join(5) == 42 and not job.is_alive() and job.finished == 1


def test_callable_job_hands_an_error_to_on_error_and_always_calls_on_finish():
    seen, finished = [], []
    job = CallableJob("cb", lambda: 1 / 0, on_error=seen.append,
                      on_finish=lambda: finished.append(1)).start()
    assert job.join(5) is None and job.failure is None
    assert isinstance(seen[0], ZeroDivisionError) and finished == [1]
    with pytest.raises(ZeroDivisionError):
        CallableJob("raw", lambda: 1 / 0).run()
