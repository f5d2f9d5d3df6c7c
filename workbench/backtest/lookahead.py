"""Lookahead check: does a signal at time t change when the data after t is removed?

The idea of freqtrade's ``lookahead-analysis``: compute the signals once on the full history,
then again on histories truncated at sampled times ``t`` (rows with ``ts <= t`` only) and compare
the two on every row of the truncated history. A signal that reads the future (a next close, a
centred window, a normalisation over the whole range) gives a different value on a truncated
history, and every such row is reported with its timestamp. A clean signal function gives no
difference at all.

The check proves nothing about times it did not sample; sample more times for more confidence.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import polars as pl

from workbench.errors import ParameterError

SignalFn = Callable[[pl.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class LookaheadDifference:
    """One row whose signal differs: its ts, the sample time it was truncated at, both values."""

    ts: int
    sample_ts: int
    full: float
    truncated: float


@dataclass
class LookaheadReport:
    """Result of :func:`lookahead_check`; ``passed`` is True when no difference was found."""

    sample_times: list[int]
    rows_compared: int
    differences: list[LookaheadDifference] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.differences

    @property
    def biased_ts(self) -> list[int]:
        """The distinct timestamps whose signal depends on later data, in order."""
        return sorted({d.ts for d in self.differences})

    def to_dict(self) -> dict:
        """Return a JSON-ready summary of the report."""
        return {"passed": self.passed, "sample_times": self.sample_times,
                "rows_compared": self.rows_compared, "n_differences": len(self.differences),
                "biased_ts": self.biased_ts,
                "differences": [asdict(d) for d in self.differences]}


def sample_times(ts: np.ndarray, n: int, *, min_row: int = 0, seed: int = 0) -> np.ndarray:
    """Return ``n`` distinct sorted candle times drawn from rows ``min_row..`` of ``ts``.

    The last candle is always included (truncating there must change nothing either).
    """
    if n < 1:
        raise ParameterError(f"samples {n} must be >= 1")
    pool = np.arange(min_row, ts.shape[0] - 1)
    rng = np.random.default_rng(seed)
    picked = rng.choice(pool, size=min(n - 1, pool.shape[0]), replace=False) if n > 1 else []
    return np.sort(ts[np.append(np.asarray(picked, dtype=np.int64), ts.shape[0] - 1)])


def _signals(signal_fn: SignalFn, frame: pl.DataFrame) -> np.ndarray:
    out = np.asarray(signal_fn(frame), dtype=np.float64)
    if out.shape != (frame.height,):
        raise ParameterError(f"signal function returned shape {out.shape}; expected "
                             f"({frame.height},), one signal per row")
    return out


def _differ(a: np.ndarray, b: np.ndarray, atol: float) -> np.ndarray:
    both_nan = np.isnan(a) & np.isnan(b)
    return ~both_nan & ~(np.abs(a - b) <= atol)


def lookahead_check(signal_fn: SignalFn, frame: pl.DataFrame, sample_times, *,
                    atol: float = 0.0) -> LookaheadReport:
    """Compare full-history signals with signals on histories truncated at ``sample_times``.

    Parameters
    ----------
    signal_fn : maps a candle frame (with a ``ts`` column, sorted) to one signal per row.
    frame : the full history.
    sample_times : candle ``ts`` values to truncate at (rows with ``ts <= t`` are kept).
    atol : tolerated absolute difference (0: exact, right for {-1, 0, 1} signals).

    Returns
    -------
    LookaheadReport
        Every row of every truncated history whose signal differs from the full-history one.

    Raises
    ------
    ParameterError
        When a sample time is not a candle of ``frame`` or ``signal_fn`` returns a wrong shape.
    """
    ts = frame["ts"].to_numpy()
    full = _signals(signal_fn, frame)
    times = [int(t) for t in np.atleast_1d(sample_times)]
    report = LookaheadReport(sample_times=times, rows_compared=0)
    seen: set[int] = set()
    for t in times:
        end = int(np.searchsorted(ts, t, side="right"))
        if end == 0 or ts[end - 1] != t:
            raise ParameterError(f"sample time {t} is not a candle ts of the frame")
        truncated = _signals(signal_fn, frame.slice(0, end))
        report.rows_compared += end
        for row in np.flatnonzero(_differ(full[:end], truncated, atol)):
            if int(ts[row]) not in seen:
                seen.add(int(ts[row]))
                report.differences.append(LookaheadDifference(
                    int(ts[row]), t, float(full[row]), float(truncated[row])))
    report.differences.sort(key=lambda d: d.ts)
    return report
