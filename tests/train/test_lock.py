"""The training lock: timeout naming the holder, serialisation, wait statistics."""
from __future__ import annotations

import threading
import time

import pytest

from workbench.errors import TrainingLockTimeout, WorkbenchError
from workbench.train.lock import TrainingLock


def test_timeout_names_holder_operation_session_and_since():
    lock = TrainingLock("run-x", default_timeout=5.0)
    lock.acquire("batch_training", "batch-run-42")
    since = lock.holder.since
    try:
        t0 = time.perf_counter()
        with pytest.raises(TrainingLockTimeout) as info:
            lock.acquire("per_candle", "live-ETH", timeout=0.2)
        assert time.perf_counter() - t0 >= 0.19
    finally:
        lock.release()
    msg = str(info.value)
    assert "'batch_training'" in msg and "'batch-run-42'" in msg and "held since" in msg
    assert "'per_candle'" in msg and "live-ETH" in msg and "run-x" in msg
    assert time.strftime("%H:%M:%S", time.localtime(since)) in msg
    assert info.value.holder.operation == "batch_training"
    assert info.value.holder.session == "batch-run-42"
    assert info.value.holder.since == since
    assert isinstance(info.value, WorkbenchError)
    assert lock.stats("live-ETH")["timeouts"] == 1 and lock.stats()["timeouts"] == 1
    assert not lock.locked() and lock.holder is None


def test_lock_is_usable_after_a_timeout_and_after_an_error_inside_hold():
    lock = TrainingLock()
    with pytest.raises(ValueError):
        with lock.hold("manual", "s1"):
            assert lock.holder.operation == "manual"
            raise ValueError("boom")
    assert not lock.locked()
    with lock.hold("manual", "s1", timeout=0.1):
        assert lock.holder.session == "s1"


def test_hold_serialises_critical_sections_and_counts_waits_per_session():
    lock = TrainingLock(default_timeout=10.0)
    inside, overlaps, done = [0], [0], []

    def worker(session: str) -> None:
        for _ in range(30):
            with lock.hold("step", session):
                inside[0] += 1
                if inside[0] > 1:
                    overlaps[0] += 1
                time.sleep(0.0005)
                inside[0] -= 1
        done.append(session)

    threads = [threading.Thread(target=worker, args=(f"s{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0 and sorted(done) == ["s0", "s1", "s2"]
    total = lock.stats()
    assert total["acquisitions"] == 90
    assert total["waits"] > 0 and total["wait_seconds"] > 0
    per = [lock.stats(s) for s in lock.sessions()]
    assert sum(p["acquisitions"] for p in per) == 90
    assert sum(p["waits"] for p in per) == total["waits"]
    assert lock.stats("never-seen") == {"acquisitions": 0, "waits": 0, "wait_seconds": 0.0,
                                        "timeouts": 0}
