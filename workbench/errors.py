"""The one exception hierarchy of the workbench.

Every error a user can cause derives from :class:`WorkbenchError`. Messages name the file, row,
timestamp or field involved and the rule that was broken, so that a quant can fix the input
without reading a traceback.
"""
from __future__ import annotations


class WorkbenchError(Exception):
    """Root of every error raised on purpose by the workbench."""


class ConfigError(WorkbenchError):
    """Raised when a configuration key is unknown, has the wrong type or an impossible value."""


class ParameterError(WorkbenchError):
    """Raised when a CLI option, API argument or widget value is invalid."""


class DataValidationError(WorkbenchError):
    """Raised when input candles break a validation rule.

    Attributes
    ----------
    path, row, ts, rule : the file (or source name), the row as the user sees it (the line number
        in a CSV file, header = line 1; the 1-based row of a Parquet file or frame), the candle
        timestamp (epoch ms) and the short name of the rule broken (see
        ``workbench.data.ingest.RULES``). Any may be ``None`` when not applicable.
    """

    def __init__(self, message: str, *, path=None, row=None, ts=None, rule: str | None = None):
        self.path, self.row, self.ts, self.rule = path, row, ts, rule
        where = []
        if path is not None:
            where.append(f"file {path}")
        if row is not None:
            where.append(f"row {row}")
        if ts is not None:
            where.append(f"ts {ts}")
        prefix = ", ".join(where)
        rule_txt = f" [rule: {rule}]" if rule else ""
        super().__init__(f"{prefix}: {message}{rule_txt}" if prefix else f"{message}{rule_txt}")


class StoreError(WorkbenchError):
    """Raised when the DuckDB store cannot complete an operation."""


class StoreBusyError(StoreError):
    """Raised when the store file stayed locked by another process past the retry deadline."""


class NotFoundError(WorkbenchError):
    """Raised when a symbol, timeframe, run or other named object does not exist."""


class RunError(WorkbenchError):
    """Raised when a training run cannot be created, resumed or loaded."""


class ActiveRunError(RunError):
    """Raised when a second training run is started while another one is active."""


class TrainingLockTimeout(WorkbenchError):
    """Raised when the training lock could not be acquired in time; names the holder."""


class ExportError(WorkbenchError):
    """Raised when a model export fails or its parity check exceeds tolerance."""


class LookaheadError(WorkbenchError):
    """Raised when a computation would use data from after the decision time."""


class NonFiniteError(WorkbenchError):
    """Raised when a model produces NaN or inf where a result is expected: a training loss, the
    weights of a checkpoint, or the outputs of an inference (never passed on as a signal)."""


class LiveSourceError(WorkbenchError):
    """Raised when a live data source (an exchange) keeps failing past its retry budget or
    answers with an error no retry can fix (an unknown market, say)."""


class ModelMismatchError(ParameterError):
    """Raised when a model is used on a series it was not trained on (symbol, timeframe) without
    an explicit override, or on a series shorter than its window."""
