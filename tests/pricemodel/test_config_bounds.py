"""The price-model config refuses non-finite and out-of-range numbers before any run starts."""
from __future__ import annotations

import dataclasses

import pytest

from workbench.errors import ParameterError
from workbench.pricemodel.pipeline import TrainingConfig

_BASE = dict(symbol="ETH/USDT", timeframe="15m", start_date="2025-06-01", end_date="2025-06-03")


@pytest.mark.parametrize("key, value", [
    ("learning_rate", float("nan")), ("learning_rate", float("inf")), ("learning_rate", 0.0),
    ("train_frac", float("nan")), ("train_frac", 1.2), ("val_frac", float("-inf")),
    ("val_frac", 0.0), ("train_frac", 0.9), ("noise_levels", (0.01, float("nan"))),
    ("noise_levels", (-0.1,)), ("epochs", 0), ("batch_size", -1), ("units", 0),
    ("early_stopping_patience", 0), ("sequence_length", 1),
])
def test_non_finite_or_out_of_range_price_model_settings_are_refused_by_name(key, value):
    with pytest.raises(ParameterError, match=key):
        TrainingConfig(**_BASE, **{key: value}).validate()


def test_every_float_setting_of_the_price_model_is_bounded():
    floats = [f.name for f in dataclasses.fields(TrainingConfig) if f.type in ("float", float)]
    for name in floats:
        with pytest.raises(ParameterError, match=name):
            TrainingConfig(**_BASE, **{name: float("nan")}).validate()
    assert TrainingConfig(**_BASE).validate().learning_rate == 1e-3
