"""The "Train Model" action: batch-train a loaded model on a range's annotations, in the background.

:func:`start_batch_training` trains a live :class:`~workbench.train.handle.ModelHandle` with the
torch engine (:func:`workbench.train.runs.start_training`): the run gets its own folder with every
artifact (``run.json``, ``config.json``, metrics, checkpoints, logs), every training batch holds the
handle's :class:`~workbench.live.lock.TrainingLock` (the engine's lock-taking callback) and
publishes a new snapshot, so live sessions on the same handle keep predicting and training while
it runs. The labels are the engine's ``data.labels``; "Train Model" takes all three sources by
default (issue 6: "all annotations for the chosen range"): ``manual`` (what a person annotated),
``pivot`` and ``rule`` (derived and written back as annotations), merged with the precedence
manual > pivot > rule (:mod:`workbench.train.labels`).

Why the engine trains a *working copy*: Lightning also touches the model between batches, outside
any lock (``model.to(device)`` at fit and test start, ``zero_grad()`` before every validation,
train/eval switches, validation and checkpoint reads). On the live model those raced the
per-candle steps of a session and crashed the process (a segfault in ``zero_grad``, found by the
stress test). So the engine gets a copy; when a batch takes the lock the copy is loaded with the
live weights (every per-candle update so far), and when the batch publishes, the copy's new
weights are written into the live model, still under the lock. Per-candle and batch updates thus
apply in lock order, none is lost, and Lightning never touches the live tensors.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from workbench.train.config import config_from_dict


def _copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
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
            _copy_weights(self._live, self._working)
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


#: "Train Model" trains on every annotation of the range (issue 6)
ALL_LABELS = ("manual", "pivot", "rule")


def batch_config(handle, store, symbol: str, timeframe: str, start=None, end=None, *,
                 labels=ALL_LABELS, overrides: dict | None = None):
    """Return the handle's config retargeted at a series, range and label sources.

    ``labels`` is one source or a sequence of them (``data.labels``).

    ``overrides`` are dotted keys (``{"training.num_epochs": 2}``); the model section stays the
    handle's, so the run trains exactly the loaded architecture. Early stopping does not restore
    the best epoch's weights (that would rewrite the live model behind the sessions' backs); the
    run's ``best.ckpt`` still holds them. Raises ConfigError for a bad key.
    """
    raw = handle.config.to_dict()
    raw["callbacks"]["early_stopping"]["restore_best"] = False
    raw["data"].update(db=str(store.path), symbol=symbol, timeframe=timeframe,
                       start=None if start is None else int(start),
                       end=None if end is None else int(end),
                       labels=labels if isinstance(labels, str) else list(labels))
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if not raw["output"]["run_name"]:
        raw["output"]["run_name"] = "batch"
    return config_from_dict(raw)


def start_batch_training(handle, store, symbol: str, timeframe: str, start=None, end=None, *,
                         labels=ALL_LABELS, overrides: dict | None = None, db=None):
    """Start "Train Model" in a background thread and return the engine's ``RunHandle``.

    ``labels``: the label sources (default all three, manual > pivot > rule where they overlap).

    The run trains a working copy of ``handle.model`` synchronised with it under ``handle.lock``
    at every batch (see the module docstring) and publishes a snapshot after every step;
    ``RunHandle.stop()`` ends it after the current batch, ``wait()`` returns its ``run.json``.

    Raises
    ------
    ActiveRunError : when another run is active. ConfigError : for a bad override.
    """
    from workbench.train.runs import start_training

    config = batch_config(handle, store, symbol, timeframe, start, end, labels=labels,
                          overrides=overrides)
    with handle.lock.hold("batch_setup", "train-model"):
        working = copy.deepcopy(handle.model)
    lock = SyncedLock(handle.lock, handle.model, working)

    def publish(model=None) -> int:
        _copy_weights(working, handle.model)  # the engine calls this with the lock held
        return handle.publish()

    return start_training(config, db=db, model=working, lock=lock, publish=publish, store=store)
