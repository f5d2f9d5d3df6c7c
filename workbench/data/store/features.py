"""Queries on derived per-candle data: the persisted indicators and the pivot points."""
from __future__ import annotations

import polars as pl

from workbench.data.guards import refuse_non_finite
from workbench.data.store.connection import registered
from workbench.data.store.schema import INDICATOR_TABLE_COLUMNS
from workbench.errors import ParameterError


class FeatureQueries:
    """Methods of :class:`~workbench.data.store.Store` on ``indicators`` and ``pivot_points``."""

    def replace_indicators(self, symbol: str, timeframe: str, frame: pl.DataFrame) -> None:
        """Atomically replace the persisted indicator columns of a series."""
        cols = [c for c in frame.columns if c != "ts"]
        unknown = sorted(set(cols) - set(INDICATOR_TABLE_COLUMNS))
        if unknown:
            raise ParameterError(f"indicator column(s) {unknown} are not in the indicators table; "
                                 f"known: {list(INDICATOR_TABLE_COLUMNS)}")
        names = ", ".join(["ts", *cols])  # checked against the schema above
        refuse_non_finite(frame, cols, f"indicators {symbol} {timeframe}")
        with self.transaction() as con:
            con.execute("DELETE FROM indicators WHERE symbol = ? AND timeframe = ?",
                        [symbol, timeframe])
            with registered(con, "_ind", frame):
                con.execute(f"INSERT INTO indicators (symbol, timeframe, {names}) "  # noqa: S608
                            f"SELECT ?, ?, {names} FROM _ind ORDER BY ts", [symbol, timeframe])

    def read_indicators(self, symbol: str, timeframe: str) -> pl.DataFrame:
        """Return the persisted indicator columns of a series, by ts."""
        return self.query("SELECT * EXCLUDE (symbol, timeframe) FROM indicators "
                          "WHERE symbol = ? AND timeframe = ? ORDER BY ts", [symbol, timeframe])

    def replace_pivots(self, symbol: str, timeframe: str, pivots: pl.DataFrame) -> None:
        """Atomically replace the stored pivots of a series.

        ``pivots`` has columns ts, confirmed_ts, price, pivot_type, level, strength.
        """
        refuse_non_finite(pivots, ["price"], f"pivots {symbol} {timeframe}")
        with self.transaction() as con:
            con.execute("DELETE FROM pivot_points WHERE symbol = ? AND timeframe = ?",
                        [symbol, timeframe])
            if pivots.height:
                with registered(con, "_piv", pivots):
                    con.execute(
                        "INSERT INTO pivot_points SELECT ?, ?, ts, confirmed_ts, price, pivot_type,"
                        " level, strength FROM _piv ORDER BY ts", [symbol, timeframe])

    def read_pivots(self, symbol: str, timeframe: str, *, confirmed_until: int | None = None,
                    max_level: int | None = None) -> pl.DataFrame:
        """Return stored pivots known by ``confirmed_until`` (confirmed_ts <= it), by pivot ts."""
        return self.query(
            "SELECT ts, confirmed_ts, price, pivot_type, level, strength FROM pivot_points "
            "WHERE symbol = ? AND timeframe = ? AND confirmed_ts <= ? AND level <= ? "
            "ORDER BY ts, level",
            [symbol, timeframe, 2**62 if confirmed_until is None else int(confirmed_until),
             1_000 if max_level is None else int(max_level)])
