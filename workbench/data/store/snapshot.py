"""A store that reads one series once and serves it from memory: :class:`SeriesSnapshot`.

A walk-forward evaluation reads its series many times: each fold's training run loads its range,
each fold's backtest loads its range with history and the whole calendar. Every read opened the
DuckDB file (about 35 ms each on a quiet machine, more when the processes of a sweep take turns
on the file lock), which was about a third of a tiny sweep trial. A snapshot reads the series
once; its reads of that series are slices of the frame in memory, and everything else (other
series, every write) goes to the file as usual.

All folds then see the same candles even if an ingest lands during the evaluation, which is what
an evaluation should compare anyway.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.data.store import Store

_MIN, _MAX = -(2**62), 2**62


class SeriesSnapshot(Store):
    """A :class:`Store` whose reads of one series come from a copy taken at construction.

    Parameters
    ----------
    store : the store to read the series from; writes and other reads go to its file.
    symbol, timeframe : the series to hold in memory.
    """

    def __init__(self, store: Store, symbol: str, timeframe: str):
        super().__init__(store.path, busy_timeout=store.busy_timeout)
        self.key = (symbol, timeframe)
        self.frame = store.read_ohlcv(symbol, timeframe)

    def __repr__(self) -> str:
        return f"SeriesSnapshot({str(self.path)!r}, {self.key[0]!r}, {self.key[1]!r})"

    def read_ohlcv(self, symbol: str, timeframe: str, start: int | None = None,
                   end: int | None = None) -> pl.DataFrame:
        """Return the candles ``start <= ts <= end`` (see :meth:`Store.read_ohlcv`)."""
        if (symbol, timeframe) != self.key:
            return super().read_ohlcv(symbol, timeframe, start, end)
        ts = self.frame["ts"].to_numpy()
        lo = int(np.searchsorted(ts, _MIN if start is None else int(start), side="left"))
        hi = int(np.searchsorted(ts, _MAX if end is None else int(end), side="right"))
        return self.frame.slice(lo, max(0, hi - lo))

    def read_ts(self, symbol: str, timeframe: str) -> pl.DataFrame:
        """Return the ``ts`` column of a series (see :meth:`Store.read_ts`)."""
        if (symbol, timeframe) != self.key:
            return super().read_ts(symbol, timeframe)
        return self.frame.select("ts")
