"""Timeframe names and their lengths in milliseconds.

``1M`` (one calendar month) has no fixed length; it is handled by calendar arithmetic where a
step must be checked, see :func:`is_calendar`.
"""
from __future__ import annotations

from workbench.errors import ParameterError

MINUTE_MS = 60_000
TIMEFRAME_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "1w": 7 * 1440 * MINUTE_MS,
}
CALENDAR_TIMEFRAMES = {"1M"}


def timeframe_ms(tf: str) -> int:
    """Return the length of timeframe ``tf`` in ms; raises ParameterError for unknown names."""
    try:
        return TIMEFRAME_MS[tf]
    except KeyError:
        if tf in CALENDAR_TIMEFRAMES:
            return 31 * 1440 * MINUTE_MS  # upper bound; callers that care use is_calendar()
        known = ", ".join([*TIMEFRAME_MS, *CALENDAR_TIMEFRAMES])
        raise ParameterError(f"timeframe {tf!r} is not known; known timeframes: {known}") from None


def is_calendar(tf: str) -> bool:
    """Return True for timeframes without a fixed length (``1M``)."""
    return tf in CALENDAR_TIMEFRAMES


def validate_timeframe(tf: str) -> str:
    """Return ``tf`` unchanged if known, else raise ParameterError naming the known ones."""
    timeframe_ms(tf)
    return tf


def close_ts(ts, tf: str):
    """Return the close time (epoch ms) of candles opening at ``ts`` (scalar or numpy array).

    The close of a candle is the open of the next one: ``ts + timeframe_ms`` for fixed timeframes,
    the first day of the next month for ``1M``.
    """
    import numpy as np

    if not is_calendar(tf):
        return ts + timeframe_ms(tf)
    arr = np.asarray(ts, dtype="int64").astype("datetime64[ms]").astype("datetime64[M]")
    out = (arr + np.timedelta64(1, "M")).astype("datetime64[ms]").astype("int64")
    return out if np.ndim(ts) else int(out)
