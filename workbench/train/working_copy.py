"""Batch-train a live model through a *working copy*, so Lightning never touches the live tensors.

A live :class:`~workbench.train.handle.ModelHandle` may be trained per candle by sessions while a
batch run trains it too. Lightning touches the model it fits between batches, outside any lock:
``model.to(device)`` at fit and test start, ``zero_grad()`` before every validation, train/eval
switches, validation forwards and checkpoint reads. On the live model those raced the per-candle
steps of a session and crashed the process (a segfault in ``zero_grad``, found by the stress
test, ``tests/live/test_stress.py``).

So the engine gets a copy (:func:`working_copy`). When a training batch takes the lock
(:class:`SyncedLock`), the copy is loaded with the live weights (every per-candle update so far);
when the batch publishes, the copy's new weights are written into the live model and a snapshot
is published, still under the lock. Per-candle and batch updates thus apply in lock order, none
is lost, and only code holding the lock ever reads or writes the live tensors.

Used by ``ModelHandle.fit`` and by "Train Model" (``workbench.live.batch.start_batch_training``).
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
import torch


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst`` in place (same architecture)."""
    with torch.no_grad():
        for d, s in zip(dst.parameters(), src.parameters()):
            d.copy_(s)
        for d, s in zip(dst.buffers(), src.buffers()):
            d.copy_(s)


class SyncedLock:
    """The handle's training lock as the engine sees it while training a working copy.

    :meth:`acquire` takes the real lock, then loads the live weights into the working copy;
    everything else (``release``, ``holder``, ``stats``, ...) is the real lock's.
    """

    def __init__(self, lock, live: torch.nn.Module, working: torch.nn.Module):
        self._lock, self._live, self._working = lock, live, working

    def acquire(self, operation: str, session: str = "-", timeout: float | None = None) -> None:
        """Acquire the real lock (TrainingLockTimeout names the holder), then sync the copy."""
        self._lock.acquire(operation, session, timeout)
        try:
            copy_weights(self._live, self._working)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        """Release the real lock."""
        self._lock.release()

    @contextlib.contextmanager
    def hold(self, operation: str, session: str = "-", timeout: float | None = None):
        """Context manager over :meth:`acquire` / :meth:`release`."""
        self.acquire(operation, session, timeout)
        try:
            yield self
        finally:
            self.release()

    def __getattr__(self, name):
        return getattr(self._lock, name)


@dataclass(frozen=True)
class WorkingCopy:
    """A live handle's model, a copy for the engine to train, and the glue between them."""

    handle: object  # a ModelHandle: .model, .lock, .publish()
    model: torch.nn.Module  # the copy the engine trains
    lock: SyncedLock

    def publish(self, model=None) -> int:
        """Write the copy's weights into the live model and publish them; returns the version.

        The engine calls this with the lock held (after every training step).
        """
        copy_weights(self.model, self.handle.model)
        return self.handle.publish()

    def engine_kwargs(self) -> dict:
        """The ``model`` / ``lock`` / ``publish`` arguments of ``runs.train`` / ``start_training``."""
        return {"model": self.model, "lock": self.lock, "publish": self.publish}

    def write_back(self, operation: str, session: str) -> int:
        """Take the real lock, write the copy into the live model and publish; returns the version.

        For weights the copy got outside a training step (early stopping's restored best epoch).
        """
        with self.handle.lock.hold(operation, session):
            return self.publish()


def working_copy(handle, operation: str = "batch_setup", session: str = "-") -> WorkingCopy:
    """Return a :class:`WorkingCopy` of ``handle.model``, copied under ``handle.lock``.

    ``operation`` and ``session`` name this one lock acquisition (in a TrainingLockTimeout).

    Raises
    ------
    TrainingLockTimeout : when the lock is not free in its default timeout.
    """
    with handle.lock.hold(operation, session):
        working = copy.deepcopy(handle.model)
    return WorkingCopy(handle, working, SyncedLock(handle.lock, handle.model, working))
