"""Diagnostics: test-split metrics, matplotlib plots and the input-noise robustness check.

Metrics are reported in price units (the scaled prediction mapped back with the training scaler)
and in scaled units. The robustness check adds Gaussian noise of several standard deviations (in
scaled units) to the test windows and reports the RMSE at each level; level 0 is the clean RMSE.
Plot functions take data and a path and return the path; they use the Agg backend and never show.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.pricemodel.features import MinMaxScaler

NOISE_LEVELS = (0.0, 0.01, 0.02, 0.05)


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Return the model's float32 (N,) predictions for windows ``x``."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0),
                      dtype=np.float32).reshape(-1)


def regression_metrics(y_scaled: np.ndarray, pred_scaled: np.ndarray,
                       scaler: MinMaxScaler) -> dict:
    """Return RMSE/MAE in price units and in scaled units."""
    y_scaled = np.asarray(y_scaled, dtype=np.float64).reshape(-1)
    pred_scaled = np.asarray(pred_scaled, dtype=np.float64).reshape(-1)
    err = scaler.inverse(pred_scaled) - scaler.inverse(y_scaled)
    err_s = pred_scaled - y_scaled
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
            "rmse_scaled": float(np.sqrt(np.mean(err_s ** 2))),
            "mae_scaled": float(np.mean(np.abs(err_s))), "n": int(err.size)}


def robustness(model, x: np.ndarray, y: np.ndarray, scaler: MinMaxScaler, *,
               levels: tuple[float, ...] = NOISE_LEVELS, seed: int = 0) -> list[dict]:
    """Return ``[{"noise_std", "rmse"}]``: the price RMSE with Gaussian noise added to inputs."""
    rng = np.random.default_rng(seed)
    out = []
    for level in levels:
        noisy = x + rng.normal(0.0, level, size=x.shape).astype(np.float32) if level else x
        out.append({"noise_std": float(level),
                    "rmse": regression_metrics(y, predict(model, noisy), scaler)["rmse"]})
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_predictions(ts: np.ndarray, actual: np.ndarray, predicted: np.ndarray, path: Path,
                     title: str = "next close: predicted vs actual (test split)") -> Path:
    """Draw predicted vs actual close over time and save it as a PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4))
    when = np.asarray(ts, dtype="int64").astype("datetime64[ms]")
    ax.plot(when, actual, label="actual", linewidth=1.0)
    ax.plot(when, predicted, label="predicted", linewidth=1.0)
    ax.set_title(title)
    ax.legend()
    fig.autofmt_xdate()
    return _save(fig, plt, path)


def plot_loss(history: dict, path: Path) -> Path:
    """Draw training and validation loss per epoch and save it as a PNG at ``path``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (scaled)")
    ax.set_yscale("log")
    ax.legend()
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
