"""The LightningModule: one model, an action head and a candle head, one combined loss.

``loss = action_loss_weight * cross_entropy(action) + candle_loss_weight * mse(candle)``.
Per epoch, on train and val, torchmetrics computes on the candle head MSE, RMSE, MAE, Pearson
correlation, R² and SNR in dB (the metrics quants compare price models by), and on the action
head accuracy and macro-F1. They are logged as ``<split>_<metric>`` (``val_loss``,
``train_rmse``, ``val_f1``...).

The module also puts the workbench state that Lightning does not keep into every checkpoint: the
frozen config (``workbench_config``) and the RNG states of torch, numpy and Python
(``workbench_rng``), all as plain types and tensors so ``torch.load(weights_only=True)`` reads it.
"""
from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import (MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef,
                                     R2Score)

from workbench.errors import NonFiniteError
from workbench.train.models import N_ACTIONS, build_model


class SignalToNoiseDB(Metric):
    """SNR in dB: ``10 log10(sum(target²) / sum((target - pred)²))`` over all values."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("signal", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("noise", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        target = target.double()
        self.signal += (target ** 2).sum()
        self.noise += ((target - preds.double()) ** 2).sum()

    def compute(self) -> torch.Tensor:
        return 10.0 * torch.log10(self.signal / self.noise.clamp_min(1e-30))


def candle_metrics() -> MetricCollection:
    """The candle-head metrics (MSE, RMSE, MAE, Pearson, R², SNR) over all flattened OHLC values."""
    return MetricCollection({"mse": MeanSquaredError(), "rmse": MeanSquaredError(squared=False),
                             "mae": MeanAbsoluteError(), "pearson": PearsonCorrCoef(),
                             "r2": R2Score(), "snr_db": SignalToNoiseDB()})


def action_metrics() -> MetricCollection:
    """Accuracy and macro-F1 of the action head."""
    return MetricCollection({"acc": MulticlassAccuracy(N_ACTIONS, average="micro"),
                             "f1": MulticlassF1Score(N_ACTIONS, average="macro")})


def combined_loss(logits, candle_pred, actions, candles, action_weight: float,
                  candle_weight: float) -> torch.Tensor:
    """The weighted sum of the action cross-entropy and the candle MSE (float32)."""
    return (action_weight * F.cross_entropy(logits.float(), actions)
            + candle_weight * F.mse_loss(candle_pred.float(), candles))


def build_optimizer(model: nn.Module, training_cfg) -> torch.optim.Optimizer:
    """Return the optimizer named by ``training.optimizer`` over ``model``'s parameters."""
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "sgd": torch.optim.SGD}[training_cfg.optimizer]
    return cls(model.parameters(), lr=training_cfg.learning_rate,
               weight_decay=training_cfg.weight_decay)


def collect_rng_states() -> dict:
    """Return the torch, numpy and Python RNG states as checkpoint-safe values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
            "numpy_rest": [kind, int(pos), int(has_gauss), float(gauss)],
            "python": random.getstate()}


def restore_rng_states(states: dict) -> None:
    """Restore what :func:`collect_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    kind, pos, has_gauss, gauss = states["numpy_rest"]
    np.random.set_state((kind, states["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss,
                         gauss))
    random.setstate(_as_tuple(states["python"]))


def _as_tuple(state):
    return tuple(_as_tuple(s) if isinstance(s, list) else s for s in state)


class ForecastModule(L.LightningModule):
    """Train a registered model on windows with the combined action + candle loss.

    Parameters
    ----------
    config : the :class:`~workbench.train.config.TrainConfig` of the run.
    model : an already-built model to train (a live handle's); default: built from the config.
    """

    def __init__(self, config, model: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.model = model if model is not None else build_model(config.model)
        self.metrics = nn.ModuleDict({
            f"{split}_{head}": factory().clone(prefix=f"{split}_")
            for split in ("train", "val", "test")
            for head, factory in (("candle", candle_metrics), ("action", action_metrics))})
        self._epoch_logged: dict[str, tuple[int, int]] = {}

    def forward(self, x: torch.Tensor):
        return self.model(x)

    def _non_finite(self, split: str, loss: torch.Tensor, batch_idx: int) -> None:
        """Fail the run: a NaN/inf loss means NaN weights next, never to pass for a model."""
        raise NonFiniteError(f"the {split} loss is {float(loss.detach())} at epoch "
                             f"{self.current_epoch}, step {self.global_step} (batch {batch_idx}); "
                             "the weights diverged: lower training.learning_rate or set "
                             "training.grad_clip")

    def _shared_step(self, batch, batch_idx: int, split: str) -> torch.Tensor:
        x, actions, candles = batch
        logits, candle_pred = self.model(x)
        t = self.config.training
        loss = combined_loss(logits, candle_pred, actions, candles, t.action_loss_weight,
                             t.candle_loss_weight)
        if not torch.isfinite(loss):
            self._non_finite(split, loss, batch_idx)
        self.metrics[f"{split}_candle"].update(candle_pred.detach().float().flatten(),
                                               candles.flatten())
        self.metrics[f"{split}_action"].update(logits.detach().float(), actions)
        self.log(f"{split}_loss", loss, on_step=False, on_epoch=True, prog_bar=split != "test",
                 batch_size=x.shape[0], sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, batch_idx, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, batch_idx, "test")

    def log_epoch_metrics(self, split: str) -> None:
        """Compute, log and reset the torchmetrics of ``split``, once per epoch and step.

        Under DDP, ``compute()`` is a collective (an all_gather per metric state), so every rank
        must call this at the same point: :class:`~workbench.train.callbacks.SyncedEpochMetrics`
        calls it before any other callback's epoch-end hook; the module's own hooks below then
        find it done (they still log when the module runs without that callback).
        """
        when = (self.current_epoch, self.global_step)
        if self._epoch_logged.get(split) == when:
            return
        self._epoch_logged[split] = when
        for head in ("candle", "action"):
            collection = self.metrics[f"{split}_{head}"]
            self.log_dict({k: v.float() for k, v in collection.compute().items()}, sync_dist=True)
            collection.reset()

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch_metrics("test")

    def configure_optimizers(self):
        from workbench.train.callbacks import build_scheduler

        optimizer = build_optimizer(self.model, self.config.training)
        scheduler = build_scheduler(optimizer, self.config)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["workbench_config"] = self.config.to_dict()
        checkpoint["workbench_rng"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "workbench_rng" in checkpoint:
            restore_rng_states(checkpoint["workbench_rng"])
