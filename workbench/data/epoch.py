"""Integer epoch timestamps: their unit, the range a candle may have, and safe ISO rendering.

The store keeps epoch **milliseconds**. Files and feeds may carry epoch seconds, milliseconds,
microseconds or nanoseconds; the unit of a number is only a guess from its magnitude, and a wrong
guess stores a candle in 1970 or in the year 57000. So a unit is inferred only where the magnitude
leaves no doubt:

* A candle is *plausible* when it opens between :data:`PLAUSIBLE_FROM_MS` (1971-01-01) and
  :data:`PLAUSIBLE_TO_MS` (2200-01-01). That span is less than a factor 1000 wide, so the
  plausible ranges of the four units do not overlap: a number falls in at most one of them
  (:func:`plausible_unit`).
* A file whose every ts is plausible in one unit is read in that unit. A ts plausible in no unit,
  or a file mixing units, is refused naming the unit(s) it looks like; the user then declares the
  unit (``workbench data ingest --ts-unit``), which skips the guess but still requires a date
  ISO-8601 can write (years 1..9999, :data:`MIN_MS`..:data:`MAX_MS`).

:func:`iso_utc` never raises: a store written by an older version may hold any number, and
``workbench data info`` must still show it (as ``invalid ts N``).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

#: units an integer ts may be declared in, and how many of each make one millisecond
TS_UNITS = {"s": None, "ms": 1, "us": 1_000, "ns": 1_000_000}
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
PLAUSIBLE_FROM_MS = 31_536_000_000  # 1971-01-01T00:00:00Z
PLAUSIBLE_TO_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64_MAX = np.iinfo(np.int64).max


def iso_utc(ts: int | None) -> str | None:
    """Return epoch ms ``ts`` as ISO-8601 UTC text (``2025-05-20T00:00:00Z``), or ``None``.

    A ts outside years 1..9999 (a row stored in another unit by an older version) is returned as
    ``'invalid ts <ts>'`` instead of raising, so every report can still be printed.
    """
    if ts is None:
        return None
    if not MIN_MS <= int(ts) <= MAX_MS:
        return f"invalid ts {int(ts)}"
    return (_EPOCH + timedelta(milliseconds=int(ts))).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_iso_range(ms: np.ndarray) -> np.ndarray:
    """Return a mask of the epoch-ms values ISO-8601 can write (years 1..9999)."""
    return (ms >= MIN_MS) & (ms <= MAX_MS)


def _raw_bounds(unit: str) -> tuple[int, int]:
    """The plausible range of ``unit`` numbers (see the module docstring)."""
    per_ms = TS_UNITS[unit]
    if per_ms is None:
        return PLAUSIBLE_FROM_MS // 1000, PLAUSIBLE_TO_MS // 1000
    return PLAUSIBLE_FROM_MS * per_ms, PLAUSIBLE_TO_MS * per_ms


def plausible_unit(raw: np.ndarray) -> np.ndarray:
    """Return, per integer, the index in :data:`TS_UNITS` of the unit it is plausible in, or -1."""
    out = np.full(raw.shape, -1, dtype=np.int8)
    for k, unit in enumerate(TS_UNITS):
        lo, hi = _raw_bounds(unit)
        out[(raw >= lo) & (raw <= hi)] = k
    return out


def unit_at(k: int) -> str:
    """The unit name of index ``k`` of :func:`plausible_unit`."""
    return list(TS_UNITS)[k]


def to_ms(raw: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert integers in ``unit`` to epoch ms.

    Returns
    -------
    (ms, ok) : ``ok`` is False where the value is not a whole millisecond or overflows int64
        (``ms`` there is meaningless).
    """
    per_ms = TS_UNITS[unit]
    if per_ms is None:
        ok = np.abs(raw) <= _INT64_MAX // 1000
        return np.where(ok, raw, 0) * 1000, ok
    return raw // per_ms, raw % per_ms == 0


def readings(value: int) -> str:
    """How ``value`` reads in each unit that gives a writable date (for error messages)."""
    parts = []
    for unit in TS_UNITS:
        ms, ok = to_ms(np.array([value], dtype=np.int64), unit)
        if ok[0] and in_iso_range(ms)[0]:
            parts.append(f"as {UNIT_NAMES[unit]} {iso_utc(int(ms[0]))}")
    return "; ".join(parts) or "not a date in any unit"
