"""Signal sources of a backtest: an external signal file, or a model's batched inference.

A signal is the action decided at a candle's close: ``+1`` BUY, ``-1`` SELL, ``0`` HOLD (the
class order of :data:`workbench.actions.ACTIONS`). Both sources return one int8 signal per
candle of the backtest range.

* **Signal file**: a Parquet file with columns ``ts`` (epoch ms candle open time, or a datetime)
  and ``signal`` in {-1, 0, 1}. :func:`read_signal_file` validates it and raises
  :class:`DataValidationError` naming the file, the row, the ts and the rule broken;
  :func:`align_signals` puts it on the candles (a candle without a row is HOLD).
* **Model**: :func:`model_signals` runs inference only (never a weight update, never the training
  lock) over every window of the range through the ``ModelHandle`` contract, in chunks of
  windows gathered with :func:`workbench.features.windows.gather_windows`. A window ending at
  row ``t`` holds rows ``t - N + 1 .. t``, so the signal of ``t`` depends on nothing after ``t``.
  The stateful LSTM needs no special path: its state starts at zero at the first row of every
  window and is carried across the window's N candles inside ``predict`` (one pass per window,
  all windows of a chunk at once), which is exactly what feeding the window to ``step`` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from workbench.actions import ACTIONS, SIGNAL_OF_ACTION, SIGNAL_OF_CLASS
from workbench.errors import DataValidationError, NotFoundError, ParameterError
from workbench.features.windows import gather_windows

SIGNAL_COLUMNS = ("ts", "signal")

ProgressFn = Callable[[str, int, int], None]


# -- signal files ----------------------------------------------------------------------------
def _read_parquet(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise NotFoundError(f"signal file {path} does not exist")
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for a bad file
        raise DataValidationError(f"cannot read as Parquet ({exc.__class__.__name__}: {exc})",
                                  path=path, rule="readable_parquet") from exc


def _ts_column(frame: pl.DataFrame, path: Path) -> np.ndarray:
    dtype = frame.schema["ts"]
    if dtype.is_temporal() and dtype != pl.Duration:
        col = frame["ts"].dt.epoch("ms") if dtype != pl.Date else \
            frame["ts"].cast(pl.Datetime("ms")).dt.epoch("ms")
    elif dtype.is_integer():
        col = frame["ts"].cast(pl.Int64)
    else:
        raise DataValidationError(f"column ts has type {dtype}; it must be an integer epoch-ms "
                                  "candle open time or a datetime", path=path, rule="ts_type")
    return col.to_numpy()


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _check_rows(ts: np.ndarray, raw: pl.Series, path: Path) -> np.ndarray:
    row = _first_bad(raw.is_null().to_numpy())
    if row is not None:
        raise DataValidationError("signal is null", path=path, row=row, ts=int(ts[row]),
                                  rule="signal_not_null")
    if not raw.dtype.is_numeric():
        raise DataValidationError(f"column signal has type {raw.dtype}; it must be numeric",
                                  path=path, rule="signal_type")
    values = raw.cast(pl.Float64).to_numpy()
    row = _first_bad(~np.isin(values, (-1.0, 0.0, 1.0)))
    if row is not None:
        raise DataValidationError(f"signal is {values[row]!r}; it must be -1 (SELL), 0 (HOLD) "
                                  "or 1 (BUY)", path=path, row=row, ts=int(ts[row]),
                                  rule="signal_in_{-1,0,1}")
    row = _first_bad(np.diff(ts) <= 0)
    if row is not None:
        raise DataValidationError(f"ts {int(ts[row + 1])} does not come after the previous row's "
                                  f"ts {int(ts[row])}", path=path, row=row + 1,
                                  ts=int(ts[row + 1]), rule="ts_strictly_increasing")
    return values.astype(np.int8)


def read_signal_file(path) -> pl.DataFrame:
    """Read and validate a signal file; return a frame ``ts`` (int64 epoch ms), ``signal`` (int8).

    Raises
    ------
    NotFoundError
        When the file does not exist.
    DataValidationError
        Naming the file, row, ts and rule: unreadable Parquet, a missing column, a ts that is
        neither an integer nor a datetime, a null, a signal outside {-1, 0, 1}, or a ts that does
        not increase strictly.
    """
    path = Path(path)
    frame = _read_parquet(path)
    missing = [c for c in SIGNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(f"missing column(s) {', '.join(missing)}; a signal file has "
                                  f"columns ts and signal (found: {', '.join(frame.columns)})",
                                  path=path, rule="required_columns")
    row = _first_bad(frame["ts"].is_null().to_numpy())
    if row is not None:
        raise DataValidationError("ts is null", path=path, row=row, rule="ts_not_null")
    ts = _ts_column(frame, path)
    signal = _check_rows(ts, frame["signal"], path)
    return pl.DataFrame({"ts": ts.astype(np.int64), "signal": signal})


def align_signals(signals: pl.DataFrame, candle_ts: np.ndarray, source="signals") -> np.ndarray:
    """Return one int8 signal per candle; candles without a signal row are HOLD (0).

    Rows outside the candles' ts range are ignored. Raises DataValidationError when a row inside
    the range is not at a candle open time, or when no row falls inside the range.
    """
    ts = signals["ts"].to_numpy()
    inside = (ts >= candle_ts[0]) & (ts <= candle_ts[-1])
    if not inside.any():
        raise DataValidationError(
            f"no signal row lies in the backtest range [{int(candle_ts[0])}, "
            f"{int(candle_ts[-1])}]", path=source, rule="overlaps_range")
    rows = np.flatnonzero(inside)
    pos = np.searchsorted(candle_ts, ts[rows])
    off = _first_bad(candle_ts[pos] != ts[rows])
    if off is not None:
        raise DataValidationError("ts is not the open time of a candle of the series",
                                  path=source, row=int(rows[off]), ts=int(ts[rows[off]]),
                                  rule="ts_on_candle")
    out = np.zeros(candle_ts.shape[0], dtype=np.int8)
    out[pos] = signals["signal"].to_numpy()[rows]
    return out


# -- rule signals ----------------------------------------------------------------------------
def sma_cross_signals(close, fast: int = 10, slow: int = 30) -> np.ndarray:
    """Return the classic SMA-crossover signal: +1 where SMA(fast) crosses above SMA(slow), -1
    where it crosses below, else 0; causal (row t uses closes up to t), 0 during warm-up.

    The reference signal of the demos, the parity tests and the benchmark.
    """
    if not 1 <= fast < slow:
        raise ParameterError(f"need 1 <= fast ({fast}) < slow ({slow})")
    close = np.asarray(close, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(close)])
    idx = np.arange(slow, close.shape[0] + 1)
    above = np.zeros(close.shape[0], dtype=bool)
    above[slow - 1:] = (csum[idx] - csum[idx - fast]) / fast > (csum[idx] - csum[idx - slow]) / slow
    sig = np.zeros(close.shape[0], dtype=np.int8)
    sig[1:][above[1:] & ~above[:-1]] = 1
    sig[1:][~above[1:] & above[:-1]] = -1
    sig[:slow] = 0
    return sig


# -- model signals ---------------------------------------------------------------------------
def actions_to_signals(action_probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Map (B, 3) action probabilities to int8 signals: argmax BUY=+1, SELL=-1, HOLD=0.

    With ``threshold``, a prediction whose top probability is below it becomes HOLD.
    """
    probs = np.asarray(action_probs)
    out = SIGNAL_OF_CLASS[np.argmax(probs, axis=1)]
    if threshold is not None:
        out = np.where(probs.max(axis=1) >= threshold, out, 0).astype(np.int8)
    return out


@dataclass
class ModelSignals:
    """Batched inference results for the rows of a range.

    Attributes
    ----------
    signal : int8 (R,) one per row; HOLD where a row has fewer than N candles of history.
    action_probs : float32 (R, 3), NaN where a row has no full window.
    candle : float32 (R, 4) predicted next candle (percent of close), NaN likewise.
    model_version : the published snapshot version the predictions used.
    """

    signal: np.ndarray
    action_probs: np.ndarray
    candle: np.ndarray
    model_version: int | None


def _chunks(n: int, chunk: int):
    for lo in range(0, n, chunk):
        yield lo, min(lo + chunk, n)


def _predict_windows(handle, features, rows, chunk, progress):
    n = handle.window
    probs = np.full((rows.shape[0], len(ACTIONS)), np.nan, dtype=np.float32)
    candle = np.full((rows.shape[0], 4), np.nan, dtype=np.float32)
    usable = np.flatnonzero(rows >= n - 1)
    version = None
    total = usable.shape[0]
    for lo, hi in _chunks(total, chunk):
        windows, _ = gather_windows(features, rows[usable[lo:hi]], n)
        pred = handle.predict(windows)
        probs[usable[lo:hi]] = np.asarray(pred.action_probs, dtype=np.float32)
        candle[usable[lo:hi]] = np.asarray(pred.candle, dtype=np.float32)
        version = pred.model_version
        if progress:
            progress("signals", hi, total)
    return probs, candle, version


def model_signals(handle, features: np.ndarray, rows, *, chunk: int = 64,
                  threshold: float | None = None,
                  progress: ProgressFn | None = None) -> ModelSignals:
    """Run a model's inference on the windows ending at ``rows`` of ``features``.

    Parameters
    ----------
    handle : a ``workbench.train.handle.ModelHandle`` (``.window``, ``.predict``).
    features : float32 (T, 8) feature matrix of the series (history before the range included,
        so that the first row of the range has a full window).
    rows : sorted int rows of ``features`` to predict at (the candles of the backtest range).
    chunk : windows per ``predict`` call; bounds memory (a transformer's attention holds
        ``chunk * N * N`` floats per layer).
    threshold : optional minimum top probability for a BUY/SELL (else HOLD).
    progress : called as ``progress("signals", done, total)`` after each chunk.

    Raises
    ------
    ParameterError
        When ``chunk`` is not positive.
    """
    if chunk < 1:
        raise ParameterError(f"chunk {chunk} must be >= 1 windows")
    rows = np.asarray(rows, dtype=np.int64)
    probs, candle, version = _predict_windows(handle, features, rows, chunk, progress)
    signal = actions_to_signals(np.nan_to_num(probs, nan=0.0), threshold)
    signal[np.isnan(probs).any(axis=1)] = 0
    return ModelSignals(signal=signal, action_probs=probs, candle=candle, model_version=version)
