"""Queries on the prediction ledger: appends, reads and the hit-rate / calibration summaries.

A prediction is a hit when its predicted action equals the realised action, by the one rule of
:func:`workbench.actions.realised_actions`; the SQL form below takes the hold band as a bound
parameter whose default is :data:`workbench.actions.HOLD_BAND`.
"""
from __future__ import annotations

import polars as pl

from workbench.actions import ACTIONS, BUY, HOLD, HOLD_BAND, SELL
from workbench.data.store.connection import registered
from workbench.data.store.schema import LEDGER_COLUMNS


class LedgerQueries:
    """Methods of :class:`~workbench.data.store.Store` on the ``prediction_ledger`` table."""

    # The realised-action rule of workbench.actions in SQL: the band and the action names are
    # bound parameters (see _scored_params), so this text holds no number and no action name.
    _LEDGER_SCORED = (
        "WITH scored AS (SELECT *, CASE WHEN realised_move > ? THEN ? "
        "WHEN realised_move < -? THEN ? ELSE ? END AS realised_action "
        "FROM prediction_ledger WHERE realised_move IS NOT NULL "
        "AND (run_id = ? OR CAST(? AS VARCHAR) IS NULL)) ")

    @staticmethod
    def _scored_params(run_id: str | None, hold_band: float) -> list:
        """Bound parameters of :attr:`_LEDGER_SCORED`, in order."""
        return [hold_band, ACTIONS[BUY], hold_band, ACTIONS[SELL], ACTIONS[HOLD], run_id, run_id]

    def append_ledger(self, rows: pl.DataFrame) -> int:
        """Insert prediction-ledger rows (columns ``LEDGER_COLUMNS``) in one transaction."""
        if rows.height == 0:
            return 0
        cols = ", ".join(LEDGER_COLUMNS)
        with self.transaction() as con:
            with registered(con, "_ledger", rows.select(LEDGER_COLUMNS)):
                con.execute(f"INSERT INTO prediction_ledger ({cols}) "  # noqa: S608 - constants
                            f"SELECT {cols} FROM _ledger")
        return rows.height

    def read_ledger(self, run_id: str | None = None) -> pl.DataFrame:
        """Return ledger rows (optionally of one run) ordered by prediction_ts, inference_id."""
        return self.query("SELECT * FROM prediction_ledger WHERE run_id = ? OR "
                          "CAST(? AS VARCHAR) IS NULL ORDER BY prediction_ts, inference_id",
                          [run_id, run_id])

    def ledger_hit_rates(self, run_id: str | None = None,
                         hold_band: float = HOLD_BAND) -> pl.DataFrame:
        """Per model version and predicted action: n, hits, hit_rate, mean_confidence."""
        return self.query(
            self._LEDGER_SCORED + "SELECT model_version, predicted_action, count(*) AS n, "
            "sum(CAST(predicted_action = realised_action AS INTEGER)) AS hits, "
            "avg(CAST(predicted_action = realised_action AS DOUBLE)) AS hit_rate, "
            "avg(confidence) AS mean_confidence FROM scored "
            "GROUP BY model_version, predicted_action ORDER BY model_version, predicted_action",
            self._scored_params(run_id, hold_band))

    def ledger_calibration(self, run_id: str | None = None, hold_band: float = HOLD_BAND,
                           bucket_width: float = 0.1) -> pl.DataFrame:
        """Per model version and confidence bucket [lo, lo + width): n, mean confidence, accuracy."""
        return self.query(
            self._LEDGER_SCORED + "SELECT model_version, "
            "least(floor(confidence / ? + 1e-9), ceil(1 / ?) - 1) * ? AS bucket_lo, "
            "count(*) AS n, avg(confidence) AS mean_confidence, "
            "avg(CAST(predicted_action = realised_action AS DOUBLE)) AS accuracy FROM scored "
            "GROUP BY ALL ORDER BY model_version, bucket_lo",
            [*self._scored_params(run_id, hold_band), bucket_width, bucket_width, bucket_width])

    def ledger_candle_errors(self, run_id: str | None = None) -> pl.DataFrame:
        """Per model version: mean absolute error of each predicted OHLC value (percent points)
        and the RMSE of the predicted close, over frames whose target candle is known."""
        return self.query(
            "SELECT model_version, count(*) AS n, avg(abs(pred_open - actual_open)) AS mae_open, "
            "avg(abs(pred_high - actual_high)) AS mae_high, "
            "avg(abs(pred_low - actual_low)) AS mae_low, "
            "avg(abs(pred_close - actual_close)) AS mae_close, "
            "sqrt(avg((pred_close - actual_close) ^ 2)) AS rmse_close "
            "FROM prediction_ledger WHERE actual_close IS NOT NULL "
            "AND (run_id = ? OR CAST(? AS VARCHAR) IS NULL) "
            "GROUP BY model_version ORDER BY model_version", [run_id, run_id])
