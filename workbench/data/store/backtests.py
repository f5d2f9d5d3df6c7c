"""Queries on backtest summaries (one row per backtest; trades and equity live in files)."""
from __future__ import annotations

import json

import polars as pl

from workbench.data.store.schema import BACKTEST_COLUMNS
from workbench.errors import ParameterError


class BacktestQueries:
    """Methods of :class:`~workbench.data.store.Store` on the ``backtest_results`` table."""

    def save_backtest(self, row: dict) -> None:
        """Insert one backtest summary row (see the ``backtest_results`` columns)."""
        with self.transaction() as con:
            self._insert_backtest(con, row)

    @staticmethod
    def _insert_backtest(con, row: dict) -> None:
        row = dict(row)
        if isinstance(row.get("params"), dict):
            row["params"] = json.dumps(row["params"], sort_keys=True)
        cols = list(row)
        unknown = sorted(set(cols) - set(BACKTEST_COLUMNS))
        if unknown:
            raise ParameterError(f"backtest field(s) {unknown} are not backtest_results columns; "
                                 f"known: {list(BACKTEST_COLUMNS)}")
        con.execute(
            f"INSERT OR REPLACE INTO backtest_results ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])

    def backtests(self, run_id: str | None = None) -> pl.DataFrame:
        """Return stored backtest summaries, newest first, optionally for one run."""
        if run_id is None:
            return self.query("SELECT * FROM backtest_results ORDER BY created_at DESC")
        return self.query("SELECT * FROM backtest_results WHERE run_id = ? "
                          "ORDER BY created_at DESC", [run_id])
