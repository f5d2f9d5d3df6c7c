"""Readable and machine-readable forms of times, durations and numbers with units.

One place for how the workbench writes a number for a person (``2025-06-01 14:03 UTC``,
``2 d 3 h 15 min``, ``12.34 %``, ``10,512.80 $``) and for a machine (ISO-8601 durations
``P2DT3H15M``, non-finite as ``None``; ISO times are :func:`workbench.data.epoch.iso_utc`).
Tables, statistics blocks, reports and the CLI use these helpers so that a time or a percentage
reads the same on every page.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

_MS_PER_DAY = 86_400_000


def utc_datetime(ts_ms: int) -> datetime:
    """Return epoch milliseconds as a timezone-aware UTC :class:`datetime`."""
    return datetime.fromtimestamp(int(ts_ms) / 1000, tz=timezone.utc)


def iso_duration(value: timedelta | None) -> str | None:
    """Return ``value`` as an ISO-8601 duration (``P2DT3H15M``, ``PT0S``), ``None`` for ``None``.

    Days are kept as days (not months/years) so that the text is exact and round-trips.
    """
    if value is None:
        return None
    ms = round(value / timedelta(milliseconds=1))
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    days, rest = divmod(ms, _MS_PER_DAY)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = rest / 1000
    clock = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    if seconds or not (days or clock):
        clock += f"{seconds:g}S"
    return f"{sign}P{f'{days}D' if days else ''}{'T' + clock if clock else ''}"


def human_time(ts_or_dt, *, seconds: bool = False) -> str:
    """Return a time as ``2025-06-01 14:03 UTC`` (epoch ms or a datetime; ``–`` for None)."""
    if ts_or_dt is None:
        return "–"
    when = ts_or_dt if isinstance(ts_or_dt, datetime) else utc_datetime(ts_or_dt)
    when = when.astimezone(timezone.utc) if when.tzinfo else when
    return when.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def human_duration(value: timedelta | None) -> str:
    """Return a duration as ``2 d 3 h 15 min``, ``6 h 34 min``, ``1 min``, ``45 s``; ``–`` for None.

    Units are spelled out (never ``06:34``, which reads as minutes:seconds or a clock time);
    zero parts are left out and seconds are shown only under a minute.
    """
    if value is None:
        return "–"
    total = value.total_seconds()
    if abs(total) < 60:
        return f"{total:g} s"
    sign, minutes = ("-" if total < 0 else ""), int(round(abs(total) / 60))
    days, rest = divmod(minutes, 1440)
    parts = [f"{v} {u}" for v, u in ((days, "d"), (rest // 60, "h"), (rest % 60, "min")) if v]
    return sign + " ".join(parts)


def is_finite(value) -> bool:
    """True for a real number that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def human_number(value, *, unit: str = "", digits: int = 2) -> str:
    """Return ``value`` with thousands separators, ``digits`` decimals and ``unit``.

    NaN reads ``n/a`` (nothing to measure: no trades, no losing trade), infinities ``∞``/``-∞``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,d}"
    else:
        text = f"{float(value):,.{digits}f}"
    return f"{text} {unit}" if unit else text


def human_percent(value, *, digits: int = 2, fraction: bool = False) -> str:
    """Return a percentage as ``12.34 %``; ``fraction=True`` when ``value`` is 0.1234."""
    if is_finite(value) and fraction:
        value = 100.0 * value
    return human_number(value, unit="%", digits=digits)


def finite_or_none(value):
    """Return ``value`` with every non-finite float (NaN, inf) replaced by ``None``, recursively
    through dicts, lists and tuples (containers are copied; other values pass unchanged).

    JSON has no NaN, and a statistic that cannot be computed (the win rate without a closed
    trade) is absent, never a NaN passed off as a result.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
