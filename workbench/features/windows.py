"""Model windows: sliding views over an in-memory candle snapshot, normalised per window.

A model at time t sees the window of the last N candles ending at row t (inclusive). Windows are
never materialised for a whole series (600 x 8 float32 per candle would be 19 GB per 1M candles):
:func:`window_view` is a zero-copy ``sliding_window_view`` and :func:`gather_windows` copies only
the B windows of one batch.

Each window is normalised with statistics of its own rows only, so a window ending at t depends on
nothing after t. The normalisation parameters are returned with the window (the coordinator's
``norm_params``) and can be recomputed bit-for-bit from the same rows.

Feature columns (:data:`FEATURES`), all computed from candle t and t-1 only:

==========  ==============================================================
open..close raw prices; normalised by the window's close mean/std
volume      raw volume; normalised by the window's volume mean/std
log_return  log(close_t / close_{t-1}) x 100 (0 for the first candle)
hl_range    (high - low) / close x 100
body        (close - open) / close x 100
==========  ==============================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from workbench.errors import ParameterError

FEATURES = ("open", "high", "low", "close", "volume", "log_return", "hl_range", "body")
N_FEATURES = len(FEATURES)
#: order of the values in a norm-params vector
NORM_PARAMS = ("price_mean", "price_std", "volume_mean", "volume_std")
_EPS = 1e-8


def candle_features(open_, high, low, close, volume) -> np.ndarray:
    """Return the (T, 8) float32 feature matrix of a candle series (see module docstring)."""
    close = np.asarray(close, dtype=np.float64)
    prev = np.concatenate([close[:1], close[:-1]])
    out = np.empty((close.shape[0], N_FEATURES), dtype=np.float32)
    out[:, 0] = open_
    out[:, 1] = high
    out[:, 2] = low
    out[:, 3] = close
    out[:, 4] = volume
    out[:, 5] = np.log(close / prev) * 100.0
    out[:, 6] = (np.asarray(high) - np.asarray(low)) / close * 100.0
    out[:, 7] = (close - np.asarray(open_)) / close * 100.0
    return out


def window_view(features: np.ndarray, n: int) -> np.ndarray:
    """Return a zero-copy (T - n + 1, n, F) view; window i covers rows i .. i + n - 1."""
    if n < 1 or n > features.shape[0]:
        raise ParameterError(f"window length {n} must be between 1 and the series length "
                             f"{features.shape[0]}")
    return sliding_window_view(features, (n, features.shape[1]))[:, 0]


def _window_stats(raw: np.ndarray) -> np.ndarray:
    """Return float32 (B, 6): price mean/std, volume mean/std, then 0 and 1, per raw window.

    The statistics are reduced in float64 along contiguous rows of a (B, 2, n) block, so a
    window gets the same bits whether it is normalised alone or inside any batch. The trailing
    0 and 1 let the derived columns pass through ``(x - 0) / 1`` exactly unchanged.
    """
    b, n = raw.shape[0], raw.shape[1]
    cv = np.ascontiguousarray(raw[:, :, 3:5].transpose(0, 2, 1), dtype=np.float64)
    mean = np.add.reduce(cv, axis=2) / n
    dev = cv - mean[:, :, None]
    np.multiply(dev, dev, out=dev)
    std = np.sqrt(np.add.reduce(dev, axis=2) / n)
    std += _EPS
    out = np.empty((b, 6), dtype=np.float32)
    out[:, 0:4:2] = mean
    out[:, 1:4:2] = std
    out[:, 4] = 0.0
    out[:, 5] = 1.0
    return out


# per feature column: which of the six stats it subtracts / divides by
_SUB = np.array([0, 0, 0, 0, 2, 4, 4, 4])
_DIV = np.array([1, 1, 1, 1, 3, 5, 5, 5])


def normalize_windows(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a (B, n, F) batch of raw windows, each with its own statistics.

    Price columns use the window's close mean/std, volume its own mean/std; the derived columns
    are left as they are. A window's result does not depend on the batch it is in.

    Returns
    -------
    (windows, norm_params) : float32 (B, n, F) and float32 (B, 4) in :data:`NORM_PARAMS` order.
    """
    raw = np.asarray(raw, dtype=np.float32)
    stats = _window_stats(raw)
    out = np.subtract(raw, stats[:, None, _SUB])
    np.divide(out, stats[:, None, _DIV], out=out)
    return out, stats[:, :4].copy()


def gather_windows(features: np.ndarray, end_idx, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather and normalise the windows ending at rows ``end_idx`` (inclusive).

    Only the B requested windows are copied. Raises ParameterError when a window would start
    before row 0 or end past the last row.
    """
    end_idx = np.atleast_1d(np.asarray(end_idx, dtype=np.int64))
    if end_idx.size and (end_idx.min() < n - 1 or end_idx.max() >= features.shape[0]):
        raise ParameterError(
            f"window end rows must lie in [{n - 1}, {features.shape[0] - 1}] for n={n}; "
            f"got [{end_idx.min()}, {end_idx.max()}]")
    if end_idx.size == 1:  # a plain slice: no strided view to build, no fancy-index copy
        e = int(end_idx[0])
        return normalize_windows(features[e - n + 1: e + 1][None])
    raw = window_view(features, n)[end_idx - (n - 1)]
    return normalize_windows(raw)


def next_candle_relative(open_, high, low, close, end_idx) -> np.ndarray:
    """Return the candle after each ``end_idx`` as OHLC relative to the close at ``end_idx``.

    Values are percent: ``(x_{t+1} / close_t - 1) * 100`` as float32 (B, 4). This is the target of
    the candle head and the ``predicted_candle`` of an inference frame.
    """
    end_idx = np.atleast_1d(np.asarray(end_idx, dtype=np.int64))
    base = np.asarray(close, dtype=np.float64)[end_idx]
    nxt = end_idx + 1
    cols = [np.asarray(a, dtype=np.float64)[nxt] for a in (open_, high, low, close)]
    return ((np.stack(cols, axis=1) / base[:, None] - 1.0) * 100.0).astype(np.float32)


@dataclass
class SeriesArrays:
    """An in-memory snapshot of one candle series plus its feature matrix.

    Arrays grow in place with amortised doubling when the push feed appends candles, so views
    handed out earlier stay valid for the rows they covered.
    """

    symbol: str
    timeframe: str
    _ts: np.ndarray
    _ohlcv: np.ndarray  # (cap, 5) float64
    _features: np.ndarray  # (cap, 8) float32
    length: int = field(default=0)

    @classmethod
    def from_frame(cls, symbol: str, timeframe: str, frame: pl.DataFrame) -> "SeriesArrays":
        """Build a snapshot from a frame with columns ts, open, high, low, close, volume."""
        ohlcv = frame.select("open", "high", "low", "close", "volume").to_numpy().astype(np.float64)
        feats = candle_features(*ohlcv.T)
        return cls(symbol, timeframe, frame["ts"].to_numpy().astype(np.int64), ohlcv, feats,
                   length=frame.height)

    @property
    def ts(self) -> np.ndarray:
        return self._ts[: self.length]

    @property
    def ohlcv(self) -> np.ndarray:
        return self._ohlcv[: self.length]

    @property
    def features(self) -> np.ndarray:
        return self._features[: self.length]

    def column(self, name: str) -> np.ndarray:
        """Return one of open, high, low, close, volume as a float64 view."""
        return self.ohlcv[:, ("open", "high", "low", "close", "volume").index(name)]

    def index_of(self, ts: int) -> int:
        """Return the row of candle ``ts``; raises ParameterError if it is not in the snapshot."""
        i = int(np.searchsorted(self.ts, ts))
        if i >= self.length or self.ts[i] != ts:
            raise ParameterError(f"{self.symbol} {self.timeframe}: no candle at ts {ts}")
        return i

    def append(self, ts: int, open_: float, high: float, low: float, close: float,
               volume: float) -> int:
        """Append one candle (already validated) and return its row."""
        if self.length == self._ts.shape[0]:
            cap = max(16, 2 * self.length)
            self._ts = np.resize(self._ts, cap)
            self._ohlcv = np.resize(self._ohlcv, (cap, 5))
            self._features = np.resize(self._features, (cap, N_FEATURES))
        i = self.length
        self._ts[i] = ts
        self._ohlcv[i] = (open_, high, low, close, volume)
        prev_close = self._ohlcv[i - 1, 3] if i else close
        self._features[i] = (open_, high, low, close, volume, np.log(close / prev_close) * 100.0,
                             (high - low) / close * 100.0, (close - open_) / close * 100.0)
        self.length += 1
        return i

    def windows(self, end_idx, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return normalised windows ending at ``end_idx`` (see :func:`gather_windows`)."""
        return gather_windows(self.features, end_idx, n)
