"""Callbacks of a training run: Lightning's own where they exist, plus four of the workbench.

:func:`build_callbacks` assembles, from the config's ``callbacks`` section:

* ``ModelCheckpoint`` for ``best.ckpt`` (monitored metric), ``last.ckpt`` and every N epochs;
* :class:`RestoringEarlyStopping`: Lightning's ``EarlyStopping`` (patience, min_delta) that puts
  the best weights back into the model when training ends;
* :class:`SyncedEpochMetrics`, first, so that every DDP rank runs the epoch-end collectives at
  the same point (the progress bar's rank-0-only read deadlocked DDP runs);
* ``LearningRateMonitor`` (with the TensorBoard logger) and :class:`StderrProgressBar`
  (Lightning's ``TQDMProgressBar`` on stderr), which uses ``tqdm.auto`` (a widget bar in a
  kernel, a text bar in a terminal) when ipywidgets is installed;
* :class:`JsonMetricsLogger`, writing ``metrics.json`` after every epoch, with a
  :class:`MetricsTracker` (history, latest, best, best epoch of every metric);
* :class:`TrainingLockCallback`, holding the project's training lock around every optimizer step
  and publishing a new weight snapshot after it.

:func:`build_scheduler` makes the plateau / step / cosine LR schedulers.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable

import torch
from lightning.pytorch.callbacks import (Callback, Checkpoint, EarlyStopping, LearningRateMonitor,
                                         ModelCheckpoint, TQDMProgressBar)

from workbench.runs import write_json_atomic

#: metrics where a larger value is better; every other metric is minimised
_MAXIMISED = ("pearson", "r2", "snr_db", "acc", "f1")


def metric_mode(name: str) -> str:
    """Return ``'max'`` for metrics where larger is better (accuracy, R²...), else ``'min'``."""
    return "max" if name.rsplit("_", 1)[-1] in _MAXIMISED or name.endswith("snr_db") else "min"


def _resolved_mode(section) -> str:
    """A callback section's ``mode``, with ``auto`` taken from its monitored metric."""
    return metric_mode(section.monitor) if section.mode == "auto" else section.mode


class MetricsTracker:
    """Per-epoch history of every metric with its latest and best value and best epoch."""

    def __init__(self):
        self.records: list[dict] = []

    def update(self, epoch: int, metrics: dict) -> None:
        """Record the metrics of ``epoch`` (replacing an earlier record of the same epoch)."""
        self.records = [r for r in self.records if r["epoch"] != epoch]
        self.records.append({"epoch": int(epoch), **{k: float(v) for k, v in metrics.items()}})

    def names(self) -> list[str]:
        """Return every metric name seen so far."""
        return sorted({k for r in self.records for k in r if k != "epoch"})

    def history(self, name: str) -> list[float]:
        """Return the metric's value per recorded epoch (epochs that lack it are skipped)."""
        return [r[name] for r in self.records if name in r]

    def latest(self, name: str) -> float | None:
        values = self.history(name)
        return values[-1] if values else None

    def best_epoch(self, name: str) -> int | None:
        """Return the epoch of the best finite value (the earliest one on ties)."""
        pairs = [(r[name], r["epoch"]) for r in self.records
                 if name in r and math.isfinite(r[name])]
        if not pairs:
            return None
        sign = -1.0 if metric_mode(name) == "max" else 1.0
        return min(pairs, key=lambda p: (sign * p[0], p[1]))[1]

    def best(self, name: str) -> float | None:
        epoch = self.best_epoch(name)
        return None if epoch is None else next(r[name] for r in self.records
                                               if r["epoch"] == epoch)

    def summary(self) -> dict:
        """Return ``{metric: {latest, best, best_epoch}}`` for every metric."""
        return {n: {"latest": self.latest(n), "best": self.best(n), "best_epoch": self.best_epoch(n)}
                for n in self.names()}

    def state_dict(self) -> dict:
        return {"records": copy.deepcopy(self.records)}

    def load_state_dict(self, state: dict) -> None:
        self.records = copy.deepcopy(state["records"])


class JsonMetricsLogger(Checkpoint):
    """Write every epoch's metrics (and the learning rate) to ``metrics.json``.

    It derives from Lightning's ``Checkpoint`` base only so that Lightning runs its
    ``on_train_epoch_end`` *after* the LightningModule's, where the train metrics are logged (as it
    does for ModelCheckpoint). On resume it keeps the records of the epochs already done.
    """

    def __init__(self, path: str | os.PathLike, on_epoch: Callable[[int, dict], None] | None = None):
        self.path = Path(path)
        self.tracker = MetricsTracker()
        self.on_epoch = on_epoch

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0 and self.path.is_file():
            done = [r for r in json.loads(self.path.read_text())["epochs"]
                    if r["epoch"] < trainer.current_epoch]
            self.tracker.load_state_dict({"records": done})

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: v.item() for k, v in trainer.callback_metrics.items()
                   if isinstance(v, torch.Tensor) and v.numel() == 1}
        if trainer.optimizers:
            metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        metrics["global_step"] = trainer.global_step
        self.tracker.update(trainer.current_epoch, metrics)
        write_json_atomic(self.path, {"epochs": self.tracker.records,
                                      "summary": self.tracker.summary()})
        if self.on_epoch is not None:
            self.on_epoch(trainer.current_epoch, metrics)


class RestoringEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping that can restore the best weights when training ends."""

    def __init__(self, *args, restore_best: bool = True, lock=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.restore_best, self.lock = restore_best, lock
        self.best_state: dict | None = None
        self.best_epoch: int | None = None

    def _run_early_stopping_check(self, trainer) -> None:
        before = self.best_score.clone()
        super()._run_early_stopping_check(trainer)
        # Keep the weights only when the monitored value really improved: Lightning leaves
        # wait_count unchanged for a non-finite value, which must not pass for an improvement.
        if self.restore_best and not torch.equal(self.best_score, before):
            self.best_epoch = trainer.current_epoch
            self.best_state = {k: v.detach().clone()
                               for k, v in trainer.lightning_module.state_dict().items()}

    def state_dict(self) -> dict:
        """Lightning's early-stopping state plus the best weights, so a resumed run restores them."""
        return {**super().state_dict(), "best_state": self.best_state,
                "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        self.best_state = state.pop("best_state", None)
        self.best_epoch = state.pop("best_epoch", None)
        super().load_state_dict(state)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.restore_best and self.best_state is not None:
            if self.lock is None:
                pl_module.load_state_dict(self.best_state)
                return
            with self.lock.hold("restore_best_weights", "early_stopping"):  # weights change
                pl_module.load_state_dict(self.best_state)


class SyncedEpochMetrics(Callback):
    """Run every epoch-end collective on all DDP ranks at one point, in one order.

    Lightning calls the callbacks' ``on_train_epoch_end`` before the module's. The progress bar
    reads its metrics there on rank 0 only, which makes rank 0 enter the all_reduce of the
    ``sync_dist`` values while rank 1 enters the torchmetrics all_gather of the module's hook:
    a deadlock at the end of epoch 0 (Lightning issue 21264). This callback comes first: it
    computes the module's epoch metrics and then reads ``trainer.callback_metrics``, which
    synchronises every logged value on every rank; later readers get the cached results.
    """

    def _sync(self, trainer, pl_module, split: str) -> None:
        log_epoch = getattr(pl_module, "log_epoch_metrics", None)
        if log_epoch is not None:
            log_epoch(split)
        trainer.callback_metrics  # noqa: B018 - the read is the synchronisation point

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._sync(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._sync(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._sync(trainer, pl_module, "test")


def _on_stderr(make_bar):
    """Create a Lightning tqdm bar on stderr: Lightning hard-codes ``file=sys.stdout``."""
    with contextlib.redirect_stdout(sys.stderr):
        return make_bar()


class StderrProgressBar(TQDMProgressBar):
    """Lightning's ``TQDMProgressBar`` writing to stderr, so stdout carries only results
    (``workbench train --json`` prints exactly one JSON document there)."""

    def init_sanity_tqdm(self):
        return _on_stderr(super().init_sanity_tqdm)

    def init_train_tqdm(self):
        return _on_stderr(super().init_train_tqdm)

    def init_validation_tqdm(self):
        return _on_stderr(super().init_validation_tqdm)

    def init_test_tqdm(self):
        return _on_stderr(super().init_test_tqdm)

    def init_predict_tqdm(self):
        return _on_stderr(super().init_predict_tqdm)


class TrainingLockCallback(Callback):
    """Hold the training lock around every training batch, then publish a new snapshot.

    The lock is acquired at the start of the batch, *before* the forward pass, and released after
    ``publish(model)`` at the end of the batch. Holding it only around the optimizer step is not
    enough: another holder's in-place update between this batch's forward and backward passes
    breaks autograd ("modified by an inplace operation", the concurrency bug this lock exists
    for; see tests/live/test_stress.py).
    """

    def __init__(self, lock, publish: Callable | None = None, session: str = "batch",
                 operation: str = "batch_training", timeout: float | None = None):
        self.lock, self.publish, self.session = lock, publish, session
        self.operation, self.timeout = operation, timeout
        self._held = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lock.acquire(self.operation, self.session, self.timeout)
        self._held = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._held:
            return
        try:
            if self.publish is not None:
                self.publish(pl_module.model)
        finally:
            self._release()

    def _release(self) -> None:
        if self._held:
            self._held = False
            self.lock.release()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._release()


def build_scheduler(optimizer, config):
    """Return Lightning's lr-scheduler dict for ``callbacks.lr_scheduler``, or ``None``."""
    s = config.callbacks.lr_scheduler
    if not s.enabled:
        return None
    if s.scheduler == "plateau":
        mode = metric_mode(s.monitor)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=s.factor, patience=s.patience, min_lr=s.min_lr)
        return {"scheduler": sched, "monitor": s.monitor, "interval": "epoch"}
    if s.scheduler == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.factor)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=s.t_max or config.training.num_epochs, eta_min=s.min_lr)
    return {"scheduler": sched, "interval": "epoch"}


def build_callbacks(config, run_dir: Path, *, lock=None, publish=None, session: str = "batch",
                    on_epoch=None) -> list[Callback]:
    """Return the callbacks of a run writing into ``run_dir`` (see the module docstring)."""
    cb = config.callbacks
    ckpt_dir = Path(run_dir) / "checkpoints"
    out: list[Callback] = [SyncedEpochMetrics(),  # first: before any reader of the metrics
                           JsonMetricsLogger(Path(run_dir) / "metrics.json", on_epoch)]
    out.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=cb.checkpoint.monitor,
                               mode=_resolved_mode(cb.checkpoint), save_top_k=1, save_last=True,
                               save_on_train_epoch_end=True, enable_version_counter=False))
    if cb.checkpoint.every_n_epochs:
        out.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}",
                                   auto_insert_metric_name=False, save_top_k=-1,
                                   every_n_epochs=cb.checkpoint.every_n_epochs,
                                   save_on_train_epoch_end=True, enable_version_counter=False))
    es = cb.early_stopping
    if es.enabled:
        out.append(RestoringEarlyStopping(monitor=es.monitor, mode=_resolved_mode(es), patience=es.patience,
                                          min_delta=es.min_delta, restore_best=es.restore_best,
                                          lock=lock))
    if cb.tensorboard:
        out.append(LearningRateMonitor(logging_interval="epoch"))
    if cb.progress:
        out.append(StderrProgressBar())
    if lock is not None:
        out.append(TrainingLockCallback(lock, publish, session))
    return out
