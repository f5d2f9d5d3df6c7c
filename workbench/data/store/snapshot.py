"""A store that reads one series once and serves it from memory: :class:`SeriesSnapshot`.

A walk-forward evaluation reads its series many times: each fold's training run loads its range,
each fold's backtest loads its range with history and the whole calendar. Every read opened the
DuckDB file (about 35 ms each on a quiet machine, more when the processes of a sweep take turns
on the file lock), which was about a third of a tiny sweep trial. A snapshot reads the series
once; its reads of that series are slices of the frame in memory, and everything else (other
series, every write) goes to the file as usual.

All folds then see the same candles even if an ingest lands during the evaluation, which is what
an evaluation should compare anyway.

The labels a training run derives from the candles (pivot and rule annotations, written back so
people can see them) are held too, and written with the next write to the file: an evaluation's
folds write theirs in the transaction that stores the evaluation, not in one open each. An
evaluation that fails stores no labels, as it stores nothing else.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import duckdb

import numpy as np
import polars as pl

from workbench.actions import ANNOTATION_SOURCES
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
        self._annotations: list[pl.DataFrame] = []  # the series', in the order they were added

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

    def add_annotations(self, symbol: str, timeframe: str, rows: pl.DataFrame) -> int:
        """Check annotations of the series now and write them with the next write to the file
        (other series: at once, see :meth:`Store.add_annotations`); returns the row count."""
        if (symbol, timeframe) != self.key:
            return super().add_annotations(symbol, timeframe, rows)
        if rows.height:
            self._annotations.append(self._checked_annotations(rows))
        return rows.height

    def read_annotations(self, symbol: str, timeframe: str, start: int | None = None,
                         end: int | None = None, sources: Sequence[str] = ANNOTATION_SOURCES
                         ) -> pl.DataFrame:
        """Return annotations (see :meth:`Store.read_annotations`), the held ones included."""
        if self._annotations and (symbol, timeframe) == self.key:
            with self.transaction():  # writes the held annotations
                pass
        return super().read_annotations(symbol, timeframe, start, end, sources)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on the file (see :meth:`Store.transaction`) that first writes the held
        annotations; they are let go once it commits."""
        with super().transaction() as con:
            for rows in self._annotations:
                self._insert_annotations(con, *self.key, rows)
            yield con
        self._annotations.clear()
