"""Features stage: MinMax scaling in polars, fitted on the training rows only.

The feature matrix is every numeric column of the ingested frame except ``ts`` (OHLCV plus any
exogenous columns), scaled to [0, 1] with the minimum and maximum of the *training* rows. Rows
after the training split are scaled with those same parameters, so validation and test data never
influence the scaler (values there may fall outside [0, 1]; that is expected and honest).

The scaler's parameters travel with the model (``metadata.json`` → ``scaler``) so predictions can
be turned back into prices with :meth:`MinMaxScaler.inverse`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.errors import ParameterError

TARGET_COLUMN = "close"


@dataclass(frozen=True)
class MinMaxScaler:
    """Per-column ``(x - min) / (max - min)``; a constant column gets a span of 1."""

    columns: tuple[str, ...]
    mins: tuple[float, ...]
    maxs: tuple[float, ...]

    @classmethod
    def fit(cls, frame: pl.DataFrame, columns: tuple[str, ...]) -> "MinMaxScaler":
        """Return a scaler fitted on ``frame`` (the training rows only)."""
        stats = frame.select(*[pl.col(c).min().alias(f"{c}__min") for c in columns],
                             *[pl.col(c).max().alias(f"{c}__max") for c in columns]).row(0)
        n = len(columns)
        return cls(tuple(columns), tuple(float(v) for v in stats[:n]),
                   tuple(float(v) for v in stats[n:]))

    def _span(self, i: int) -> float:
        span = self.maxs[i] - self.mins[i]
        return span if span > 0 else 1.0

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """Return the scaled columns of ``frame`` as a float32 (T, F) matrix (scaled in polars)."""
        scaled = frame.select(*[((pl.col(c) - self.mins[i]) / self._span(i)).cast(pl.Float32)
                                for i, c in enumerate(self.columns)])
        return scaled.to_numpy().astype(np.float32, copy=False)

    def inverse(self, values: np.ndarray, column: str = TARGET_COLUMN) -> np.ndarray:
        """Return scaled ``values`` of one column mapped back to its original units (float64)."""
        i = self.columns.index(column)
        return np.asarray(values, dtype=np.float64) * self._span(i) + self.mins[i]

    def state_dict(self) -> dict:
        """Return the parameters as plain JSON-ready data."""
        return {"kind": "minmax", "columns": list(self.columns), "min": list(self.mins),
                "max": list(self.maxs)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "MinMaxScaler":
        """Rebuild a scaler saved with :meth:`state_dict`."""
        return cls(tuple(state["columns"]), tuple(state["min"]), tuple(state["max"]))


@dataclass(frozen=True)
class SplitRows:
    """Chronological split of the rows: ``[0, train)``, ``[train, train+val)``, the rest test."""

    n_rows: int
    n_train: int
    n_val: int

    @property
    def n_test(self) -> int:
        return self.n_rows - self.n_train - self.n_val


@dataclass(frozen=True)
class FeatureMatrix:
    """Output of the features stage.

    Attributes
    ----------
    ts : int64 (T,) candle open times.
    values : float32 (T, F) scaled features, columns in ``columns`` order.
    columns : feature names; ``target_index`` is the position of ``close``.
    scaler : the training-rows scaler.
    split : the row split the scaler was fitted on.
    """

    ts: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    target_index: int
    scaler: MinMaxScaler
    split: SplitRows


def split_rows(n_rows: int, sequence_length: int, train_frac: float, val_frac: float) -> SplitRows:
    """Return the chronological split; each part must hold at least one window target.

    Raises
    ------
    ParameterError : when fractions are impossible or the series is too short for the window.
    """
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise ParameterError(f"train_frac {train_frac} and val_frac {val_frac} must be in (0, 1) "
                             "and sum to less than 1")
    n_train = int(n_rows * train_frac)
    n_val = int(n_rows * val_frac)
    split = SplitRows(n_rows, n_train, n_val)
    if n_train <= sequence_length or split.n_val < 1 or split.n_test < 1:
        raise ParameterError(
            f"{n_rows} candles are too few for sequence length {sequence_length}: the training "
            f"split ({n_train} rows) must exceed it and validation/test need rows; widen the date "
            "range or shorten --sequence-length")
    return split


def build_features(frame: pl.DataFrame, sequence_length: int, *, train_frac: float = 0.7,
                   val_frac: float = 0.15) -> FeatureMatrix:
    """Scale the numeric columns of an ingested frame with a scaler fitted on training rows only."""
    columns = tuple(c for c in frame.columns if c != "ts")
    split = split_rows(frame.height, sequence_length, train_frac, val_frac)
    scaler = MinMaxScaler.fit(frame.head(split.n_train), columns)
    return FeatureMatrix(frame["ts"].to_numpy(), scaler.transform(frame), columns,
                         columns.index(TARGET_COLUMN), scaler, split)
