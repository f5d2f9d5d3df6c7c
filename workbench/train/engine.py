"""One execution of a training run: build the Lightning trainer, fit, test, record the outcome.

:func:`execute` is called by :mod:`workbench.train.runs` with the active-run lock already held. It
moves ``run.json`` to ``running`` (with pid and host), fits the
:class:`~workbench.train.module.ForecastModule` on the
:class:`~workbench.train.datamodule.WindowDataModule`, evaluates the test split with the restored
best weights, and ends the run ``completed`` with final and best metrics, or ``failed`` with the
error text. A :class:`~workbench.errors.WorkbenchError` is re-raised as it is; any other error
(a dead DDP peer, a Lightning failure) is re-raised as a one-line ``RunError`` naming the run and
its ``logs/training.log``, which holds the traceback.

Hardware: ``training.accelerator: auto`` picks CUDA when present, where ``precision: auto`` means
``bf16-mixed``; on CPU it is ``32-true`` with ``training.num_threads`` torch threads.
``training.strategy`` / ``devices`` / ``num_nodes`` pass through to Lightning (DDP: see
``docs/training.md``).
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import traceback
import types
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from workbench.errors import RunError, WorkbenchError
from workbench.runs import now_iso, run_path, update_run
from workbench.train.callbacks import JsonMetricsLogger, RestoringEarlyStopping, build_callbacks
from workbench.train.checkpoints import AtomicCheckpointIO
from workbench.train.datamodule import WindowDataModule
from workbench.train.lock import TrainingLock
from workbench.train.module import ForecastModule

#: the run id shared by the processes of one distributed (DDP) run
RUN_ID_ENV = "WORKBENCH_RUN_ID"


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed (DDP) run."""
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


log = logging.getLogger("workbench.train")
_LOGGERS = ("workbench.train", "lightning.pytorch", "lightning.fabric")


def _tensorboard_without_tensorflow() -> None:
    """Make TensorBoard write its event files through its bundled TensorFlow stub.

    When TensorFlow is installed, TensorBoard imports all of it (about 6 s and 500 MB per process)
    just to write event files. TensorBoard's own marker module ``tensorboard.compat.notf`` selects
    the stub instead. Nothing is changed when TensorFlow is already loaded in this process (the
    price-model pipeline), so one process never mixes the two backends.
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))

def resolve_precision(training_cfg) -> str:
    """Return the Lightning precision: ``bf16-mixed`` on CUDA and ``32-true`` on CPU for auto."""
    if training_cfg.precision != "auto":
        return training_cfg.precision
    on_cuda = torch.cuda.is_available() and training_cfg.accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_cuda else "32-true"


def _attach_log(folder: Path, level: str) -> logging.Handler:
    handler = logging.FileHandler(folder / "logs" / "training.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.getLevelName(level):
            logger.setLevel(level)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    for name in _LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def build_trainer(config, folder: Path, callbacks) -> L.Trainer:
    """Return the Lightning Trainer of a run writing into ``folder``."""
    t = config.training
    _tensorboard_without_tensorflow()
    logger = (TensorBoardLogger(save_dir=str(folder), name="tensorboard", version="")
              if config.callbacks.tensorboard else False)
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, num_nodes=t.num_nodes,
        precision=resolve_precision(t), max_epochs=t.num_epochs, callbacks=callbacks,
        logger=logger, default_root_dir=str(folder), plugins=[AtomicCheckpointIO()],
        gradient_clip_val=t.grad_clip or None, deterministic=t.deterministic,
        num_sanity_val_steps=0, enable_progress_bar=config.callbacks.progress,
        enable_model_summary=False, log_every_n_steps=10)


def _on_epoch(job):
    def report(epoch: int, metrics: dict) -> None:
        job.progress.update(epoch=epoch + 1, num_epochs=job.config.training.num_epochs,
                            metrics=dict(metrics))
        shown = " ".join(f"{k}={v:.6g}" for k, v in sorted(metrics.items()))
        log.info("run %s epoch %d: %s", job.run_id, epoch, shown)
    return report


def _is_metric(name: str) -> bool:
    return name.split("_", 1)[0] in ("train", "val", "test")


def _summaries(callbacks, config) -> dict:
    tracker = next(c for c in callbacks if isinstance(c, JsonMetricsLogger)).tracker
    summary = tracker.summary()
    monitor = config.callbacks.checkpoint.monitor
    stopper = next((c for c in callbacks if isinstance(c, RestoringEarlyStopping)), None)
    final = dict(tracker.records[-1]) if tracker.records else {}
    return {"final_metrics": final,
            "best_metrics": {k: v["best"] for k, v in summary.items() if _is_metric(k)},
            "best_epoch": tracker.best_epoch(monitor), "monitor": monitor,
            "epochs_run": len(tracker.records),
            "stopped_early": bool(stopper and stopper.stopped_epoch)}


def _fit(job, folder: Path, extra_callback) -> dict:
    config = job.config
    L.seed_everything(config.training.seed, workers=True, verbose=False)
    if not torch.cuda.is_available():
        torch.set_num_threads(config.training.num_threads)
    dm = WindowDataModule(config.data, config.model.window, config.training.batch_size,
                          config.training.seed, store=job.store)
    dm.setup()
    if is_rank_zero():
        update_run(job.run_id, job.db, data=dm.describe())
    module = ForecastModule(config, job.model)
    lock = job.lock or TrainingLock(f"run {job.run_id}")
    callbacks = build_callbacks(config, folder, lock=lock, publish=job.publish,
                                session=job.run_id, on_epoch=_on_epoch(job)) + [extra_callback,
                                                                     *job.callbacks]
    trainer = build_trainer(config, folder, callbacks)
    trainer.fit(module, datamodule=dm, ckpt_path=job.ckpt_path)
    # test the weights that load_model() and the backtest use: best.ckpt, not the last epoch's.
    # Named explicitly: "best" would ask trainer.checkpoint_callback, the metrics logger here.
    best = next((c.best_model_path for c in callbacks if isinstance(c, ModelCheckpoint)), "")
    tested = trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False)
    out = _summaries(callbacks, config)
    out["test_metrics"] = {k: float(v) for k, v in (tested[0] if tested else {}).items()}
    out["global_step"] = trainer.global_step
    ckpt_dir = folder / "checkpoints"
    out["checkpoints"] = sorted(p.name for p in ckpt_dir.glob("*.ckpt"))
    return out


def _execute_worker(job, extra_callback) -> dict:
    """A non-zero DDP rank: train its shard; rank 0 owns run.json, logs and checkpoints."""
    _fit(job, run_path(job.run_id, job.db), extra_callback)
    return {"run_id": job.run_id}


def execute(job, extra_callback) -> dict:
    """Run ``job`` (a prepared run) to the end; return the final ``run.json``.

    Raises whatever the run raised, after recording it in ``run.json`` as ``failed``.
    """
    if not is_rank_zero():
        return _execute_worker(job, extra_callback)
    previous = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = job.run_id  # DDP processes launched by Lightning join this run
    try:
        return _execute_rank_zero(job, extra_callback)
    finally:
        if previous is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = previous


def _execute_rank_zero(job, extra_callback) -> dict:
    folder = run_path(job.run_id, job.db)
    handler = _attach_log(folder, job.config.output.log_level)
    resumes = {"resumed_at": now_iso()} if job.ckpt_path else {}
    update_run(job.run_id, job.db, status="running", started_at=now_iso(), ended_at=None,
               error=None, pid=os.getpid(), hostname=socket.gethostname(), **resumes)
    log.info("run %s %s (pid %d)", job.run_id, "resumed" if job.ckpt_path else "started",
             os.getpid())
    try:
        result = _fit(job, folder, extra_callback)
    except BaseException as exc:
        log.error("run %s failed: %s\n%s", job.run_id, exc, traceback.format_exc())
        update_run(job.run_id, job.db, status="failed", ended_at=now_iso(),
                   error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, WorkbenchError) or not isinstance(exc, Exception):
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise RunError(f"run {job.run_id} failed: {type(exc).__name__}: {first_line} (traceback "
                       f"in {folder / 'logs' / 'training.log'})") from exc
    else:
        log.info("run %s completed at step %d", job.run_id, result["global_step"])
    finally:
        _detach_log(handler)
    return update_run(job.run_id, job.db, status="completed", ended_at=now_iso(), **result)
