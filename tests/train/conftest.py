"""Fixtures of the training-engine tests: tiny configs on a real 3,000-candle ETH/USDT slice."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from workbench.train.config import config_from_dict

#: a model and data small enough for a whole run in a few seconds on one thread
TINY = {
    "model": {"window": 16, "d_model": 8, "n_heads": 2, "n_layers": 1, "ff_dim": 16},
    "training": {"num_epochs": 2, "batch_size": 32, "num_threads": 1},
    "data": {"max_windows": 300},
    "callbacks": {"tensorboard": False, "progress": False},
}


def tiny_dict(db, **sections) -> dict:
    """TINY with ``data.db`` set and ``sections`` merged in (one level deep)."""
    out = {k: dict(v) for k, v in TINY.items()}
    out["data"]["db"] = str(db)
    for name, values in sections.items():
        out.setdefault(name, {}).update(values)
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def db(eth_store):
    """Path of a store holding the real 3,000-candle ETH/USDT 1m slice."""
    return eth_store.path


@pytest.fixture
def tiny(db):
    """A tiny transformer config on the slice."""
    return config_from_dict(tiny_dict(db))


def cli(*args, env=None, check=True, **kw) -> subprocess.CompletedProcess:
    """Run the ``workbench`` command in a fresh Python process."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-c", "from workbench.cli import main; main()", *args],
                          capture_output=True, text=True, env=full_env, timeout=300, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"workbench {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr[-3000:]}")
    return proc
