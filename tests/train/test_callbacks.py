"""Callbacks: exact hook order, early stopping on a crafted loss, tracker, atomic checkpoints."""
from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from workbench.errors import RunError
from workbench.train.lock import TrainingLock
from workbench.train.callbacks import MetricsTracker, RestoringEarlyStopping, build_callbacks
from workbench.train.checkpoints import AtomicCheckpointIO, atomic_save, load_checkpoint
from workbench.train.datamodule import WindowDataModule
from workbench.train.engine import build_trainer
from workbench.train.module import ForecastModule

_HOOKS = sorted(n for n in dir(Callback) if n.startswith("on_") or n in ("setup", "teardown"))


class HookRecorder(Callback):
    """Records every callback hook Lightning calls, in order (Lightning's test_hooks style)."""

    def __init__(self, calls: list):
        self.calls = calls


def _recording(name):
    def hook(self, *args, **kwargs):
        self.calls.append(name)
    return hook


for _name in _HOOKS:
    setattr(HookRecorder, _name, _recording(_name))


class RecordingLock(TrainingLock):
    def __init__(self, calls):
        super().__init__("recorded")
        self.calls = calls

    def acquire(self, operation, session="-", timeout=None):
        super().acquire(operation, session, timeout)
        self.calls.append(f"lock.acquire:{operation}")

    def release(self):
        self.calls.append("lock.release")
        super().release()


def test_hook_order_of_one_epoch(tiny, eth_store, tmp_path):
    """Two train batches and one val batch: lock around each batch, metrics then checkpoints."""
    calls: list[str] = []
    tiny.training.num_epochs = 1
    tiny.training.batch_size = 128
    tiny.callbacks.early_stopping.enabled = False
    dm = WindowDataModule(tiny.data, 16, 128, store=eth_store)
    dm.setup()
    assert (len(dm.train_dataloader()), len(dm.val_dataloader())) == (2, 1)

    def publish(model):
        calls.append("publish")

    callbacks = build_callbacks(tiny, tmp_path, lock=RecordingLock(calls), publish=publish,
                                on_epoch=lambda epoch, m: calls.append("metrics.json"))
    trainer = build_trainer(tiny, tmp_path, callbacks + [HookRecorder(calls)])
    trainer.fit(ForecastModule(tiny), datamodule=dm)
    # the lock is held from before the forward pass until the new snapshot is published
    batch = ["lock.acquire:batch_training", "on_train_batch_start", "on_before_zero_grad",
             "on_before_backward", "on_after_backward", "on_before_optimizer_step",
             "publish", "lock.release", "on_train_batch_end"]
    assert calls == [
        "setup", "on_fit_start", "on_train_start", "on_train_epoch_start",
        *batch, *batch,
        "on_validation_start", "on_validation_epoch_start", "on_validation_batch_start",
        "on_validation_batch_end", "on_validation_epoch_end", "on_validation_end",
        # metrics.json after the module logged the train metrics, then best.ckpt and last.ckpt
        "on_train_epoch_end", "metrics.json", "on_save_checkpoint", "on_save_checkpoint",
        "on_train_end", "on_fit_end", "teardown"]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"][0]["train_loss"] > 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt",
                                                                           "last.ckpt"]


class _CraftedLoss(L.LightningModule):
    """val_loss follows a fixed sequence; the weight equals the epoch that produced it."""

    def __init__(self, losses):
        super().__init__()
        self.losses = losses
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w * 0.0).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        with torch.no_grad():
            self.w.fill_(self.current_epoch)
        self.log("val_loss", self.losses[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def train_dataloader(self):
        return [torch.zeros(1)]

    def val_dataloader(self):
        return [torch.zeros(1)]


def test_early_stopping_stops_at_the_expected_epoch_and_restores_best_weights():
    # epoch 1 improves by 0.1 > min_delta; epochs 2 and 3 improve on 0.9 by < 0.05 -> patience 2
    # runs out at epoch 3, before the big improvement at epoch 4 is ever seen
    losses = [1.0, 0.9, 0.88, 0.87, 0.5, 0.4, 0.3, 0.2]
    stopper = RestoringEarlyStopping(monitor="val_loss", patience=2, min_delta=0.05)
    module = _CraftedLoss(losses)
    trainer = L.Trainer(max_epochs=len(losses), callbacks=[stopper], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module)
    assert stopper.stopped_epoch == 3 and trainer.current_epoch == 4
    assert stopper.best_epoch == 1 and module.w.item() == 1.0


def _fit_crafted(losses, stopper, epochs=None):
    module = _CraftedLoss(losses)
    trainer = L.Trainer(max_epochs=epochs or len(losses), callbacks=[stopper], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module)
    return module


def test_a_nan_epoch_after_an_improvement_is_not_restored_as_the_best():
    stopper = RestoringEarlyStopping(monitor="val_loss", patience=5)  # stops at the NaN
    module = _fit_crafted([1.0, 0.5, float("nan"), 0.7], stopper)
    assert stopper.best_epoch == 1 and module.w.item() == 1.0


def test_resumed_early_stopping_still_restores_the_best_weights_from_before_the_kill():
    first = RestoringEarlyStopping(monitor="val_loss", patience=5)
    _fit_crafted([1.0, 0.5, 0.7, 0.8], first, epochs=2)  # the "killed" run saw epochs 0-1
    resumed = RestoringEarlyStopping(monitor="val_loss", patience=5)
    resumed.load_state_dict(first.state_dict())  # what Lightning does from last.ckpt
    module = _CraftedLoss([1.0, 0.5, 0.7, 0.8])
    trainer = L.Trainer(max_epochs=4, callbacks=[resumed], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit_loop.epoch_progress.current.completed = 2  # continue at epoch 2
    trainer.fit(module)
    assert resumed.best_epoch == 1 and module.w.item() == 1.0


def test_checkpoint_and_early_stopping_follow_the_metric_direction_by_default(tmp_path):
    from workbench.train.config import config_from_dict

    config = config_from_dict({"callbacks": {"checkpoint": {"monitor": "val_acc"},
                                             "early_stopping": {"monitor": "val_f1"}}})
    callbacks = build_callbacks(config, tmp_path)
    modes = {type(c).__name__: c.mode for c in callbacks if hasattr(c, "mode")}
    assert modes["RestoringEarlyStopping"] == "max"
    assert [c.mode for c in callbacks if type(c).__name__ == "ModelCheckpoint"] == ["max"]


def test_metrics_tracker_history_latest_best_and_best_epoch():
    t = MetricsTracker()
    for epoch, (loss, acc) in enumerate([(1.0, 0.5), (0.7, 0.6), (0.8, 0.55)]):
        t.update(epoch, {"val_loss": loss, "val_acc": acc})
    assert t.history("val_loss") == [1.0, 0.7, 0.8] and t.latest("val_loss") == 0.8
    assert (t.best("val_loss"), t.best_epoch("val_loss")) == (0.7, 1)
    assert (t.best("val_acc"), t.best_epoch("val_acc")) == (0.6, 1)  # maximised
    restored = MetricsTracker()
    restored.load_state_dict(t.state_dict())
    assert restored.summary() == t.summary()


class _Boom:
    def __reduce__(self):
        raise RuntimeError("disk full, say")


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_save({"state_dict": {"w": torch.arange(4.0)}, "epoch": 1}, path)
    before = path.read_bytes()
    big = {"state_dict": {"w": torch.randn(200_000)}, "epoch": 2, "z": _Boom()}
    with pytest.raises(RuntimeError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint(big, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial temporary file
    assert load_checkpoint(path)["epoch"] == 1


def test_checkpoints_load_with_weights_only(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": MetricsTracker()}, path)
    with pytest.raises(RunError, match="cannot be read"):
        load_checkpoint(path)
    with pytest.raises(RunError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")
