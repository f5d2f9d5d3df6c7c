"""Queries on the paper-trading tables: orders, fills, equity and the open position."""
from __future__ import annotations

import polars as pl

from workbench.data.store.connection import registered
from workbench.data.store.schema import PAPER_COLUMNS, PAPER_KEYS
from workbench.errors import ParameterError


class PaperQueries:
    """Methods of :class:`~workbench.data.store.Store` on the ``paper_*`` tables."""

    @staticmethod
    def _paper_table(kind: str) -> str:
        if kind not in PAPER_COLUMNS:
            raise ParameterError(f"paper table {kind!r} is not known; known: "
                                 f"{', '.join(PAPER_COLUMNS)}")
        return f"paper_{kind}"

    def write_paper(self, frames: dict[str, pl.DataFrame]) -> int:
        """Insert or replace paper-trading rows (``{kind: frame}``, kinds of ``PAPER_COLUMNS``)
        in one transaction; returns the rows written."""
        for kind in frames:
            self._paper_table(kind)
        written = 0
        with self.transaction() as con:
            for kind, rows in frames.items():
                if rows.height == 0:
                    continue
                cols = ", ".join(PAPER_COLUMNS[kind])
                with registered(con, "_paper", rows.select(PAPER_COLUMNS[kind])):
                    con.execute(f"INSERT OR REPLACE INTO paper_{kind} ({cols}) "  # noqa: S608
                                f"SELECT {cols} FROM _paper")
                written += rows.height
        return written

    def read_paper(self, kind: str, session_id: str | None = None) -> pl.DataFrame:
        """Return one paper table's rows (of one session, or all), in time order."""
        table = self._paper_table(kind)
        order = ", ".join(["session_id"] + ([PAPER_KEYS[kind]] if PAPER_KEYS[kind] else []))
        return self.query(f"SELECT * FROM {table} WHERE session_id = ? "  # noqa: S608
                          f"OR CAST(? AS VARCHAR) IS NULL ORDER BY {order}",
                          [session_id, session_id])
