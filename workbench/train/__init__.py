"""The torch training engine (metrics, callbacks, stateful LSTM, run lifecycle),
built on Lightning and torchmetrics.

Modules, in the order data flows through them:

==============  ==================================================================================
config.py       ``TrainConfig`` from YAML (model / training / data / callbacks / output), overrides,
                the ``--quick`` preset; errors name the key
models.py       the model registry: ``transformer`` (default) and the stateful ``lstm``
labels.py       pivot, rule and manual action labels, kept in the store's ``annotations``
datamodule.py   ``WindowDataModule``: windows gathered per batch, chronological splits
module.py       ``ForecastModule``: action + candle heads, combined loss, torchmetrics per epoch
callbacks.py    checkpoints, early stopping, LR schedulers, metrics.json, the training-lock callback
checkpoints.py  atomic checkpoint files loaded with ``weights_only=True``
runs.py         run folders and lifecycle, one active run per project, resume, background runs
engine.py       one execution of a run: the Lightning Trainer, fit, test, outcome in run.json
handle.py       ``ModelHandle`` / ``load_model``: the live modes' and the backtest's model contract
working_copy.py batch training of a live handle through a copy synced under its lock (``fit``,
                "Train Model"), so Lightning never touches the live tensors
export.py       ONNX export with onnxruntime parity
==============  ==================================================================================

The names below are importable from ``workbench.train`` directly; they load lazily, so importing
the package does not import Lightning.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "load_config": "config", "config_from_dict": "config",
    "register_model": "models", "get_model": "models", "build_model": "models",
    "train": "runs", "start_training": "runs", "RunHandle": "runs", "list_runs": "runs",
    "show_run": "runs", "ModelHandle": "handle", "Prediction": "handle",
    "load_model": "handle", "export_onnx": "export",
}

__all__ = sorted([*_EXPORTS, "quick_demo"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"workbench.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'workbench.train' has no attribute {name!r}")


def quick_demo(store=None) -> dict:
    """Train the quick transformer (``configs/transformer.yaml --quick``) on the store's ETH/USDT
    1m series, print the run id and its best metrics, and return the run record (``make demo``)."""
    from workbench.paths import CONFIGS_DIR
    from workbench.train.config import load_config
    from workbench.train.runs import train

    config = load_config(CONFIGS_DIR / "transformer.yaml", ["callbacks.progress=false"],
                         quick=True)
    if store is not None:
        config.data.db = str(store.path)
    record = train(config, db=config.data.db, store=store)
    best = record["best_metrics"]
    shown = "  ".join(f"{k}={best[k]:.4g}" for k in ("val_loss", "val_rmse", "val_pearson",
                                                     "val_acc", "val_f1") if k in best)
    print(f"   run {record['run_id']} {record['status']} (best epoch {record['best_epoch']})")
    print(f"   best {shown}")
    return record
