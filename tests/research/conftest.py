"""Fixtures of the research tests: a tiny LSTM config on the real 3,000-candle ETH slice."""
from __future__ import annotations

import pytest

from tests.train.conftest import tiny_dict


@pytest.fixture
def tiny_lstm(eth_store) -> dict:
    """A config dict small enough for a fold run in about a second on one thread."""
    return tiny_dict(eth_store.path, model={"type": "lstm", "window": 16},
                     training={"num_epochs": 1, "batch_size": 32, "num_threads": 1},
                     data={"max_windows": 200, "labels": "rule"})
