"""One loader of "a range of candles plus the warm-up history before it", counted in rows.

Sessions, the backtest and walk-forward all need the candles of ``[start, end]`` plus the
``history`` candles just before ``start`` (the first window's rows, the pivot detector's warm-up).
History is counted in **rows**, never as ``history x timeframe`` milliseconds: a series with gaps
or a calendar timeframe (``1M``, ``1w``) has fewer candles in that many milliseconds, and the first
windows would silently be short.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.errors import NotFoundError


def load_range(store, symbol: str, timeframe: str, start: int | None, end: int | None,
               history: int = 0) -> tuple[pl.DataFrame, int]:
    """Return the candles up to ``end`` from ``history`` rows before ``start``, and the row of
    ``start`` in that frame.

    Parameters
    ----------
    store : the :class:`~workbench.data.store.Store` to read.
    symbol, timeframe : the series.
    start, end : inclusive epoch-ms open times of the range (``None``: the first / last candle).
    history : candles (rows) to include before ``start``; fewer when the series starts later.

    Returns
    -------
    (frame, first) : ``frame`` holds ``ts, open, high, low, close, volume``; ``frame[first]`` is
        the first candle of the range.

    Raises
    ------
    NotFoundError : when no stored candle lies in ``[start, end]``.
    """
    frame = store.read_ohlcv(symbol, timeframe, None, end)
    first = 0 if start is None else int(np.searchsorted(frame["ts"].to_numpy(), int(start)))
    if frame.height == 0 or first >= frame.height:
        raise NotFoundError(f"no {symbol} {timeframe} candles in the store between {start} and "
                            f"{end} (store {store.path})")
    lo = max(0, first - int(history))
    return frame.slice(lo), first - lo
