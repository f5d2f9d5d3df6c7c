"""Queries on annotations: the stored BUY/SELL/HOLD labels and where each came from."""
from __future__ import annotations

from typing import Sequence

import polars as pl

from workbench.actions import ACTIONS, ANNOTATION_SOURCES
from workbench.data.store.connection import registered
from workbench.errors import ParameterError


class AnnotationQueries:
    """Methods of :class:`~workbench.data.store.Store` on the ``annotations`` table."""

    def add_annotations(self, symbol: str, timeframe: str, rows: pl.DataFrame) -> int:
        """Insert or replace annotations (columns ts, action, source); returns the row count."""
        if rows.height == 0:
            return 0
        rows = self._checked_annotations(rows)
        with self.transaction() as con:
            self._insert_annotations(con, symbol, timeframe, rows)
        return rows.height

    @staticmethod
    def _checked_annotations(rows: pl.DataFrame) -> pl.DataFrame:
        """Return ``ts, action, source`` of ``rows``; ParameterError names a row breaking a rule."""
        for column, allowed in (("action", ACTIONS), ("source", ANNOTATION_SOURCES)):
            bad = rows.filter(~pl.col(column).is_in(list(allowed)))
            if bad.height:
                raise ParameterError(f"annotation at ts {bad['ts'][0]}: {column} "
                                     f"{bad[column][0]!r} is not one of {allowed}")
        return rows.select("ts", "action", "source")

    @staticmethod
    def _insert_annotations(con, symbol: str, timeframe: str, rows: pl.DataFrame) -> None:
        """Insert or replace checked annotations inside the caller's transaction."""
        with registered(con, "_ann", rows):
            con.execute("INSERT OR REPLACE INTO annotations (symbol, timeframe, ts, action, source) "
                        "SELECT ?, ?, ts, action, source FROM _ann", [symbol, timeframe])

    def read_annotations(self, symbol: str, timeframe: str, start: int | None = None,
                         end: int | None = None,
                         sources: Sequence[str] = ANNOTATION_SOURCES) -> pl.DataFrame:
        """Return annotations ``ts, action, source, created_at`` in a ts range, by ts."""
        return self.query(
            "SELECT ts, action, source, created_at FROM annotations "
            "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts <= ? "
            "AND list_contains(?, source) ORDER BY ts, source",
            [symbol, timeframe, -(2**62) if start is None else int(start),
             2**62 if end is None else int(end), list(sources)])
