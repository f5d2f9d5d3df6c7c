"""The prediction ledger: every inference frame with its outcome, persisted in DuckDB.

The coordinator hands a frame to :meth:`PredictionLedger.add` when the frame leaves memory
(evicted by age or capacity, or on ``coordinator.close()``), so one row carries every outcome
known by then: the actual target candle, the realised move and the highest-level pivot confirmed
at the window's last candle. Rows are buffered and written ``batch_size`` at a time in one short
transaction, through :class:`~workbench.data.store.Store`'s retrying connections, so notebooks can
read the same file while a session writes. A failed flush keeps the buffer; nothing is dropped.

Values ``pred_*``, ``actual_*`` and ``realised_move`` are percent relative to the close of the
window's last candle (the units of ``predicted_candle``). :func:`ledger_summary` is SQL over the
table: per model version, the hit rate per predicted action, calibration (confidence bucket vs
realised accuracy) and the error of the predicted candle.
"""
from __future__ import annotations

import logging
import math
import threading

import polars as pl

from workbench.actions import HOLD_BAND
from workbench.data.store import LEDGER_SCHEMA, Store
from workbench.errors import ParameterError, WorkbenchError

log = logging.getLogger(__name__)


class PredictionLedger:
    """Buffered writer of ledger rows.

    Parameters
    ----------
    store : the :class:`~workbench.data.store.Store` holding ``prediction_ledger``.
    run_id, session_id : stamped on every row (``run_id`` is what the summary filters by).
    batch_size : rows buffered before one transactional write.
    """

    def __init__(self, store: Store, *, run_id: str | None = None,
                 session_id: str | None = None, batch_size: int = 256):
        self.store, self.run_id, self.session_id = store, run_id, session_id
        self.batch_size = max(1, int(batch_size))
        self._rows: list[tuple] = []
        self._guard = threading.Lock()
        self.written = 0
        self.flushes = 0
        self.failed_flushes = 0  # batch flushes that failed in add(); their rows stayed buffered

    def add(self, row: dict) -> None:
        """Buffer one row (keys of :data:`LEDGER_SCHEMA` except run/session); flush when full."""
        row = {**row, "run_id": self.run_id, "session_id": self.session_id}
        with self._guard:
            self._rows.append(tuple(row.get(c) for c in LEDGER_SCHEMA))
            full = len(self._rows) >= self.batch_size
        if full:
            try:
                self.flush()
            except WorkbenchError as exc:  # e.g. StoreBusyError: keep the rows, retry next batch
                self.failed_flushes += 1
                log.warning("prediction ledger: flush of %d rows failed (%s); kept for the next "
                            "flush", self.pending(), exc)

    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return len(self._rows)

    def flush(self) -> int:
        """Write the buffered rows in one transaction; return how many were written.

        On an error (for example :class:`~workbench.errors.StoreBusyError`) the rows stay
        buffered and the error propagates.
        """
        with self._guard:
            if not self._rows:
                return 0
            frame = pl.DataFrame(self._rows, schema=LEDGER_SCHEMA, orient="row")
            self.store.append_ledger(frame)
            n = len(self._rows)
            self._rows = []
            self.written += n
            self.flushes += 1
            return n


def ledger_summary(store: Store, run_id: str | None = None, *, hold_band: float = HOLD_BAND,
                   bucket_width: float = 0.1) -> dict:
    """Summarise the ledger per model version (SQL in the store).

    Returns
    -------
    dict with lists of row dicts:
        ``hit_rate`` (model_version, predicted_action, n, hits, hit_rate, mean_confidence),
        ``calibration`` (model_version, bucket_lo, n, mean_confidence, accuracy) and
        ``candle_error`` (model_version, n, mae_open, mae_high, mae_low, mae_close, rmse_close),
        plus ``rows`` (ledger rows in scope) and the parameters used.

    A prediction is a hit when its action equals the realised one: BUY for a realised move
    above ``+hold_band`` percent, SELL below ``-hold_band``, HOLD in between.

    Raises
    ------
    ParameterError : when ``hold_band`` is not a finite number >= 0 or ``bucket_width`` not a
        finite number in (0, 1].
    """
    if not (math.isfinite(hold_band) and hold_band >= 0):
        raise ParameterError(f"--hold-band must be a finite percentage >= 0, got {hold_band}")
    if not (math.isfinite(bucket_width) and 0 < bucket_width <= 1):
        raise ParameterError(f"bucket_width must be a finite number in (0, 1], got "
                             f"{bucket_width}")
    return {
        "run_id": run_id, "hold_band": hold_band, "bucket_width": bucket_width,
        "rows": store.read_ledger(run_id).height,
        "hit_rate": _rows(store.ledger_hit_rates(run_id, hold_band)),
        "calibration": _rows(store.ledger_calibration(run_id, hold_band, bucket_width)),
        "candle_error": _rows(store.ledger_candle_errors(run_id)),
    }


def _rows(frame: pl.DataFrame) -> list[dict]:
    """Row dicts with integer counts: DuckDB sums integers into a 128-bit Decimal."""
    whole = [c for c, t in frame.schema.items() if isinstance(t, pl.Decimal) and t.scale == 0]
    return frame.with_columns(pl.col(whole).cast(pl.Int64)).to_dicts()
