"""Queries on walk-forward evaluations, their folds, sweeps and their trials (workbench/research)."""
from __future__ import annotations

import json
from typing import Sequence

import polars as pl

from workbench.data.store.schema import RESEARCH_COLUMNS
from workbench.errors import ParameterError

RESEARCH_TABLES = tuple(RESEARCH_COLUMNS)


class ResearchQueries:
    """Methods of :class:`~workbench.data.store.Store` on the research tables."""

    def _upsert(self, con, table: str, row: dict) -> None:
        if table not in RESEARCH_TABLES:
            raise ParameterError(f"table {table!r} is not one of {list(RESEARCH_TABLES)}")
        row = {k: json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list))
               else v for k, v in row.items()}
        # the columns from the schema, not information_schema (a 14 ms query per row written)
        unknown = sorted(set(row) - set(RESEARCH_COLUMNS[table]))
        if unknown:
            raise ParameterError(f"field(s) {unknown} are not {table} columns")
        cols = list(row)
        con.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' for _ in cols)})", [row[c] for c in cols])

    def save_evaluation(self, row: dict, folds: list[dict], backtests: list[dict] = ()) -> None:
        """Insert one evaluation, its folds and their backtests' summary rows in one transaction
        (``summary`` may be a dict; ``backtests`` are ``backtest_results`` rows)."""
        with self.transaction() as con:
            for backtest in backtests:
                self._insert_backtest(con, backtest)
            self._upsert(con, "evaluations", row)
            for fold in folds:
                self._upsert(con, "folds", {"evaluation_id": row["evaluation_id"], **fold})

    def evaluations(self, sweep_id: str | None = None) -> pl.DataFrame:
        """Return stored evaluations, newest first (optionally those of one sweep)."""
        return self.query("SELECT * FROM evaluations WHERE sweep_id = ? OR CAST(? AS VARCHAR) "
                          "IS NULL ORDER BY created_at DESC", [sweep_id, sweep_id])

    def folds(self, evaluation_id: str) -> pl.DataFrame:
        """Return the folds of one evaluation, in order."""
        return self.query("SELECT * FROM folds WHERE evaluation_id = ? ORDER BY fold",
                          [evaluation_id])

    def save_sweep(self, row: dict, trials: Sequence[dict] = ()) -> None:
        """Insert or update one sweep's summary row and its ``trials`` rows, in one transaction."""
        with self.transaction() as con:
            for trial in trials:
                self._upsert(con, "sweep_trials", trial)
            self._upsert(con, "sweeps", row)

    def save_sweep_trials(self, rows: Sequence[dict]) -> None:
        """Insert or update trials of a sweep in one transaction (``params`` may be a dict)."""
        with self.transaction() as con:
            for row in rows:
                self._upsert(con, "sweep_trials", row)

    def sweeps(self) -> pl.DataFrame:
        """Return stored sweeps, newest first."""
        return self.query("SELECT * FROM sweeps ORDER BY created_at DESC")

    def sweep_trials(self, sweep_id: str) -> pl.DataFrame:
        """Return the trials of one sweep, in trial order."""
        return self.query("SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY trial",
                          [sweep_id])
