"""Small builders shared by the live-session tests (tiny models, one torch thread)."""
from __future__ import annotations

import numpy as np
import torch

from workbench.train.config import config_from_dict
from workbench.train.handle import ModelHandle

torch.set_num_threads(1)

TINY = {"model": {"window": 32, "d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32},
        "training": {"learning_rate": 0.01}}


def tiny_config(**sections):
    """A tiny transformer config (window 32); ``sections`` override whole sections."""
    return config_from_dict({**TINY, **sections})


def tiny_handle(seed: int = 0) -> ModelHandle:
    """A fresh tiny transformer handle with seeded weights."""
    return ModelHandle.from_config(tiny_config(training={**TINY["training"], "seed": seed}))


def weights(handle) -> dict:
    """Copies of the trainable model's and the published snapshot's tensors."""
    live = {f"model.{k}": v.detach().clone() for k, v in handle.model.state_dict().items()}
    return {**live, **{f"snapshot.{k}": v for k, v in handle.state_dict_snapshot().items()}}


def bit_identical(a: dict, b: dict) -> bool:
    """True when both dicts hold the same keys with bit-identical tensors."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k].numpy().view(np.uint8),
                                                    b[k].numpy().view(np.uint8)) for k in a)


def quick_run(store, max_windows: int = 300) -> str:
    """Train a tiny transformer run on the store's ETH/USDT 1m for one epoch; return its id."""
    from workbench.train.runs import train

    quick = {"training": {"num_epochs": 1, "batch_size": 64, "learning_rate": 0.01},
             "data": {"symbol": "ETH/USDT", "timeframe": "1m", "max_windows": max_windows},
             "callbacks": {"tensorboard": False, "progress": False}}
    record = train(tiny_config(**quick), store=store)
    assert record["status"] == "completed", record
    return record["run_id"]
