"""Diagnostics: metrics in price units, robustness under noise, PNG plots."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.pricemodel import diagnostics
from workbench.pricemodel.features import MinMaxScaler

SCALER = MinMaxScaler(("close",), (100.0,), (200.0,))


def test_metrics_are_in_price_units_and_scaled_units():
    y = np.array([0.0, 0.5, 1.0])
    pred = np.array([0.1, 0.5, 0.8])
    m = diagnostics.regression_metrics(y, pred, SCALER)
    assert m["rmse"] == pytest.approx(np.sqrt((10 ** 2 + 0 + 20 ** 2) / 3))
    assert m["mae"] == pytest.approx(10.0)
    assert m["rmse_scaled"] == pytest.approx(m["rmse"] / 100)
    assert m["n"] == 3


class _Mean:
    """A real predictor: the mean of the window's last close column (no randomness)."""

    def predict(self, x, batch_size=None, verbose=0):
        return x[:, -3:, 0].mean(axis=1, keepdims=True)


def test_robustness_reports_each_level_and_zero_is_clean():
    rng = np.random.default_rng(0)
    x = rng.random((50, 6, 1), dtype=np.float32)
    y = x[:, -3:, 0].mean(axis=1, keepdims=True)
    out = diagnostics.robustness(_Mean(), x, y, SCALER, levels=(0.0, 0.05, 0.2), seed=1)
    assert [r["noise_std"] for r in out] == [0.0, 0.05, 0.2]
    assert out[0]["rmse"] == pytest.approx(0.0, abs=1e-4)
    assert 0 < out[1]["rmse"] < out[2]["rmse"]


def test_plots_write_png_files(tmp_path):
    ts = np.arange(20, dtype="int64") * 3_600_000 + 1_750_000_000_000
    a = diagnostics.plot_predictions(ts, np.linspace(1, 2, 20), np.linspace(1, 2.1, 20),
                                     tmp_path / "p" / "pred.png")
    b = diagnostics.plot_loss({"loss": [1.0, 0.5, 0.2], "val_loss": [1.1, 0.6, 0.3]},
                              tmp_path / "loss.png")
    for path in (a, b):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
