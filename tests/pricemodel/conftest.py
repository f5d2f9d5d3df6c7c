"""Fixtures of the price-model tests: one TF thread, tiny real series, a full-ETH store."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import tensorflow as tf

from workbench.data.store import Store

# Set before any TF op runs: one intra/inter-op thread keeps xdist workers from fighting.
try:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:  # the runtime was already initialised by an earlier import; keep its pool
    pass


def _tiny_config(store: Store, tmp_path, **overrides):
    """A TrainingConfig that trains in seconds on the 2-day ETH slice resampled to 15m."""
    from workbench.pricemodel.pipeline import TrainingConfig

    base = dict(symbol="ETH/USDT", timeframe="15m", start_date="2025-06-02",
                end_date="2025-06-04", epochs=2, batch_size=16, sequence_length=8, units=8,
                xla=False, db_path=str(store.path), cache_dir=str(tmp_path / "cache"),
                noise_levels=(0.0, 0.05))
    base.update(overrides)
    return TrainingConfig(**base)


@pytest.fixture(scope="session")
def tiny_config():
    """Factory ``tiny_config(store, tmp_path, **overrides) -> TrainingConfig``."""
    return _tiny_config


@pytest.fixture
def eth_15m_store(eth_store):
    """The 3,000-candle ETH 1m slice store; 15m candles are resampled from it."""
    return eth_store


@pytest.fixture(scope="module")
def eth_full_store(tmp_path_factory, eth_1m):
    """A store holding the whole shipped ETH/USDT 1m series (about 90 days)."""
    store = Store(tmp_path_factory.mktemp("ethfull") / "wb.duckdb")
    store.replace_series("ETH/USDT", "1m", eth_1m)
    return store


@pytest.fixture
def small_windows():
    """Random (x, y) windows of a tiny shape, fixed seed."""
    rng = np.random.default_rng(7)
    return rng.random((40, 8, 5), dtype=np.float32), rng.random((40, 1), dtype=np.float32)


def slice_dates(frame: pl.DataFrame) -> tuple[str, str]:
    """Return the first and last UTC day (YYYY-MM-DD) of a candle frame."""
    days = frame["ts"].cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%d")
    return days[0], days[-1]
