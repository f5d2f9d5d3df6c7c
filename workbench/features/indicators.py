"""Causal technical indicators as polars expressions (lazy), persisted as indicator columns.

Every value at row t uses rows <= t only; rows before an indicator has enough history hold null.
The columns match the ``indicators`` table of :mod:`workbench.data.store`:

============  =================================================================================
returns       ``close_t / close_{t-1} - 1`` (null at row 0)
log_returns   ``ln(close_t / close_{t-1})`` (null at row 0)
sma_N         mean of the last N closes, N in 10, 20, 50 (null for the first N-1 rows)
ema_N         exponential mean, ``alpha = 2 / (N + 1)``, seeded with the first close
              (pandas ``ewm(span=N, adjust=False)``); null for the first N-1 rows
rsi_14        Wilder's RSI: average gain/loss seeded with the simple mean of the first 14
              close changes (rows 1..14), then ``avg = (13 * avg + x) / 14``; ``100 * gain /
              (gain + loss)``, 50 when both are 0; first value at row 14
atr_14        Wilder's ATR: true range ``max(h - l, |h - c_{t-1}|, |l - c_{t-1}|)`` (``h - l``
              at row 0), seeded with the mean of the first 14 true ranges (rows 0..13), then
              ``atr = (13 * atr + tr) / 14``; first value at row 13
volume_z      ``(v_t - mean) / std`` over the last 20 volumes including t (sample std,
              ddof=1); null for the first 19 rows and where the std is 0
============  =================================================================================
"""
from __future__ import annotations

import polars as pl

from workbench.data.store.schema import INDICATOR_TABLE_COLUMNS
from workbench.errors import DataValidationError

#: the columns :func:`add_indicators` computes; the store's indicators table holds exactly these,
#: so the one list is the table's (the store sits below this module and cannot import it)
INDICATOR_COLUMNS = INDICATOR_TABLE_COLUMNS

MA_WINDOWS = (10, 20, 50)
RSI_PERIOD = 14
ATR_PERIOD = 14
VOLUME_Z_WINDOW = 20
_REQUIRED = ("ts", "high", "low", "close", "volume")


def _wilder(values: pl.Expr, period: int, first_row: int) -> pl.Expr:
    """Wilder's smoothing of ``values``, seeded with the mean of ``period`` rows ending at
    ``first_row``.

    The seed replaces the value at ``first_row`` and earlier rows are masked, so an
    ``adjust=False`` EWM with ``alpha = 1 / period`` starts from the seed: exactly Wilder's
    recursion ``avg_t = avg_{t-1} + (x_t - avg_{t-1}) / period``.
    """
    row = pl.int_range(pl.len())
    seed = values.rolling_mean(period, min_samples=period)
    masked = (pl.when(row == first_row).then(seed)
              .when(row > first_row).then(values)
              .otherwise(None))
    return masked.ewm_mean(alpha=1.0 / period, adjust=False, min_samples=1, ignore_nulls=True)


def _rsi(close: pl.Expr, period: int) -> pl.Expr:
    change = close.diff()
    gain = _wilder(change.clip(lower_bound=0.0), period, period)
    loss = _wilder((-change).clip(lower_bound=0.0), period, period)
    total = gain + loss
    return pl.when(total > 0).then(100.0 * gain / total).when(total == 0).then(50.0)


def _atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int) -> pl.Expr:
    prev = close.shift(1)
    true_range = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    return _wilder(true_range, period, period - 1)


def _volume_z(volume: pl.Expr, window: int) -> pl.Expr:
    std = volume.rolling_std(window, min_samples=window, ddof=1)
    mean = volume.rolling_mean(window, min_samples=window)
    return pl.when(std > 0).then((volume - mean) / std)


def indicator_exprs() -> list[pl.Expr]:
    """Return the polars expressions of every indicator column, named as in the store."""
    close, high, low, vol = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")
    exprs = [(close / close.shift(1) - 1.0).alias("returns"),
             (close / close.shift(1)).log().alias("log_returns")]
    exprs += [close.rolling_mean(n, min_samples=n).alias(f"sma_{n}") for n in MA_WINDOWS]
    exprs += [close.ewm_mean(span=n, adjust=False, min_samples=n).alias(f"ema_{n}")
              for n in MA_WINDOWS]
    exprs += [_rsi(close, RSI_PERIOD).alias(f"rsi_{RSI_PERIOD}"),
              _atr(high, low, close, ATR_PERIOD).alias(f"atr_{ATR_PERIOD}"),
              _volume_z(vol, VOLUME_Z_WINDOW).alias("volume_z")]
    return exprs


def add_indicators(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Return ``frame`` (sorted by ts) with the :data:`INDICATOR_COLUMNS` added.

    Parameters
    ----------
    frame : candles with at least ts, high, low, close, volume (eager or lazy).

    Raises
    ------
    DataValidationError
        When a required column is missing (rule ``missing_column``).
    """
    lazy = frame.lazy()
    names = lazy.collect_schema().names()
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise DataValidationError(f"candles lack column(s) {', '.join(missing)}; indicators need "
                                  f"{', '.join(_REQUIRED)}", rule="missing_column")
    return lazy.sort("ts").with_columns(indicator_exprs()).collect()


def persist_indicators(store, symbol: str, timeframe: str) -> pl.DataFrame:
    """Compute the indicators of a stored series and atomically replace its stored ones.

    Returns the frame written (``ts`` plus :data:`INDICATOR_COLUMNS`).
    """
    candles = store.read_ohlcv(symbol, timeframe)
    out = add_indicators(candles).select("ts", *INDICATOR_COLUMNS)
    store.replace_indicators(symbol, timeframe, out)
    return out
