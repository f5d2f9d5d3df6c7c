"""Validate candles and ingest candle files into the store atomically.

Files are read by :func:`read_candles` (re-exported from :mod:`workbench.data.candle_files`:
Parquet, CSV with ts/open/high/low/close/volume, Binance kline CSV with or without header).
:func:`validate_candles` checks every rule in :data:`RULES` with vectorised numpy/polars operations
(the first offending row is found with ``argmax`` on a boolean mask, never with a Python loop). The
push feed calls it too. :func:`ingest_file` validates a whole file, merges it with the stored
series and writes the result in one transaction, so a failing file writes nothing; an unchanged file
(same sha256) is skipped as ``cached``.

Row numbers
-----------
Errors name the row as the user sees it: the **line number** in a CSV file (the header, when there
is one, is line 1) and the 1-based row in a Parquet file. For a frame passed to
:func:`validate_candles` directly, frame row ``i`` is reported as ``first_row + i``.

Timestamps
----------
Integer ts are read in the declared unit (``ts_unit``) or inferred only where the magnitude leaves
no doubt (:mod:`workbench.data.epoch`); candles must open on the timeframe's grid (rule
``off_grid``). The summary of an ingest is built and rendered inside the write transaction, so a
failure there rolls the write back.

Gaps
----
Steps between candles must be positive multiples of the timeframe (for ``1M``: whole months between
month starts). A larger multiple is a **gap**: it is reported, never filled. A gap is given as
``(from_ts, to_ts)``, the open times of the first and last missing candle.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from workbench.data.candle_files import (VALUE_COLUMNS, ParsedFile, check_ts_unit,
                                         read_candle_file, read_candles, rule_error, typed_frame)
from workbench.data.epoch import UNIT_NAMES, iso_utc
from workbench.data.guards import check_symbol
from workbench.data.store import Store
from workbench.data.timeframes import (TIMEFRAME_MS, is_calendar, timeframe_ms,
                                       validate_timeframe)
from workbench.errors import DataValidationError, NotFoundError
from workbench.paths import DATA_DIR, SHIPPED_SERIES

#: every validation rule, by the short name carried in ``DataValidationError.rule``
RULES = {
    "format": "the file is not readable Parquet or CSV",
    "empty": "the file holds no candles",
    "columns": "columns ts, open, high, low, close, volume (or the 12 Binance kline columns) exist",
    "missing_value": "no cell of a required column is empty",
    "non_numeric": "prices and volume are numbers",
    "header_repeated": "the header line appears once, at the top",
    "ts_format": "ts is an integer epoch time or ISO-8601 with a zone",
    "ts_units": "integer ts of a file share one unit; microseconds and nanoseconds are whole ms",
    "ts_range": "integer ts are candle times between 1971 and 2199 in one unit (s, ms, us, ns), "
                "or a date in years 1..9999 in the declared unit",
    "not_finite": "no NaN or inf values",
    "price_not_positive": "open, high, low and close are > 0",
    "high_below_open_close": "high >= max(open, close)",
    "low_above_open_close": "low <= min(open, close)",
    "negative_volume": "volume >= 0",
    "duplicate_conflict": "rows with the same ts have the same values (exact copies are dropped)",
    "conflicts_with_store": "a candle already stored with the same ts has the same values",
    "step": "steps between candles are positive multiples of the timeframe",
    "off_grid": "candles open on the timeframe's grid (multiples of it from the epoch; 1d and 1w "
                "at 00:00 UTC, 1M on the first of a month)",
    "timeframe_mismatch": "at least half of the steps are exactly one timeframe (else the file "
                          "holds another timeframe)",
}
MAX_GAPS_LISTED = 10
_HASH_CHUNK = 1 << 20


# -- reports ----------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    """What :func:`validate_candles` found besides errors.

    ``gap_ranges`` lists the first :data:`MAX_GAPS_LISTED` gaps as ``(from_ts, to_ts)``, the open
    times of the first and last missing candle; ``gaps`` counts them all.
    """

    rows_in: int
    rows_out: int
    duplicates_dropped: int
    reordered: bool
    gaps: int
    missing_candles: int
    gap_ranges: list[tuple[int, int]]
    first_ts: int
    last_ts: int


@dataclass
class IngestSummary:
    """The outcome of :func:`ingest_file`; ``status`` is ``'ingested'`` or ``'cached'``.

    A cached summary reads nothing but the file's bytes (for the hash): it has ``rows_added == 0``,
    ``rows_in_file`` from the cache, the stored series' first/last ts and zero gap fields.
    """

    path: str
    symbol: str
    timeframe: str
    status: str
    rows_in_file: int
    rows_added: int
    duplicates_dropped: int
    gaps: int
    missing_candles: int
    gap_ranges: list[tuple[int, int]] = field(default_factory=list)
    first_ts: int | None = None
    last_ts: int | None = None
    seconds: float = 0.0
    content_hash: str = ""
    ts_unit: str | None = None  # the unit integer ts were read in (None when cached)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict, with ISO UTC copies of the timestamps."""
        out = asdict(self)
        out["gap_ranges"] = [list(g) for g in self.gap_ranges]
        out["gap_ranges_iso"] = [[iso_utc(a), iso_utc(b)] for a, b in self.gap_ranges]
        out["first_ts_iso"] = iso_utc(self.first_ts)
        out["last_ts_iso"] = iso_utc(self.last_ts)
        return out


__all__ = ["RULES", "IngestSummary", "ValidationReport", "file_hash", "gap_ranges",
           "ingest_file", "ingest_shipped", "iso_utc", "read_candles", "step_problems",
           "validate_candles"]


# -- validation -------------------------------------------------------------------------------
def _value_checks(v: np.ndarray) -> list[tuple[str, np.ndarray, str]]:
    """(rule, bad-row mask, message template) in the order they are reported."""
    o, h, lo, c, vol = v.T
    return [
        ("not_finite", ~np.isfinite(v).all(axis=1), "a value is NaN or inf"),
        ("price_not_positive", (v[:, :4] <= 0).any(axis=1), "a price is <= 0"),
        ("high_below_open_close", h < np.maximum(o, c), "high is below max(open, close)"),
        ("low_above_open_close", lo > np.minimum(o, c), "low is above min(open, close)"),
        ("negative_volume", vol < 0, "volume is negative"),
    ]


def _row_text(v: np.ndarray, i: int) -> str:
    return ", ".join(f"{name}={float(v[i, k])!r}" for k, name in enumerate(VALUE_COLUMNS))


def _check_values(ts: np.ndarray, v: np.ndarray, source, first_row: int) -> None:
    for rule, bad, text in _value_checks(v):
        if bad.any():
            i = int(bad.argmax())
            raise rule_error(f"{text} ({_row_text(v, i)}) at {iso_utc(ts[i])}", source, rule,
                        row=first_row + i, ts=int(ts[i]))


def _dedupe(ts: np.ndarray, v: np.ndarray, source, first_row: int):
    """Sort stably by ts, drop exact copies, fail on conflicting copies.

    Returns (take, n_dropped, reordered): ``take`` indexes the file rows kept, in ts order, or is
    ``None`` when the file is already strictly increasing (the common case, which copies nothing).
    """
    step = np.diff(ts)
    if (step > 0).all():
        return None, 0, False
    reordered = bool((step < 0).any())
    order = np.argsort(ts, kind="stable") if reordered else np.arange(ts.size)
    ts_s = ts[order]
    same = ts_s[1:] == ts_s[:-1]
    pos = np.flatnonzero(same)  # sorted position of the first row of each equal pair
    first, later = order[pos], order[pos + 1]  # stable sort: ``later`` is later in the file
    conflict = (v[first] != v[later]).any(axis=1)
    if conflict.any():
        k = int(np.where(conflict, later, ts.size).argmin())
        i, j = int(first[k]), int(later[k])
        raise rule_error(f"ts {iso_utc(ts[j])} appears again with different values (row "
                    f"{first_row + i}: {_row_text(v, i)}; this row: {_row_text(v, j)})",
                    source, "duplicate_conflict", row=first_row + j, ts=int(ts[j]))
    keep = np.concatenate([[True], ~same])
    return order[keep], int(pos.size), reordered


def step_problems(ts: np.ndarray, timeframe: str) -> tuple[int | None, np.ndarray]:
    """Check the steps of strictly increasing open times ``ts``.

    Returns
    -------
    (bad, gap_after) : ``bad`` is the index of the first candle whose step from its predecessor is
        not a positive multiple of the timeframe (or, for ``1M``, that does not open at a month
        start), else ``None``; ``gap_after`` holds the indices ``i`` where candles are missing
        between ``ts[i]`` and ``ts[i + 1]``.
    """
    if is_calendar(timeframe):
        months = ts.astype("datetime64[ms]").astype("datetime64[M]")
        off_grid = months.astype("datetime64[ms]").astype(np.int64) != ts
        if off_grid.any():
            return int(off_grid.argmax()), np.empty(0, dtype=np.int64)
        return None, np.flatnonzero(np.diff(months.astype(np.int64)) > 1)
    step = np.diff(ts)
    tf = timeframe_ms(timeframe)
    bad = step % tf != 0
    if bad.any():
        return int(bad.argmax()) + 1, np.empty(0, dtype=np.int64)
    return None, np.flatnonzero(step > tf)


def gap_ranges(ts: np.ndarray, timeframe: str, gap_after: np.ndarray) -> tuple[int, list]:
    """Return (missing candle count, ``(from_ts, to_ts)`` of the first gaps) for ``gap_after``."""
    if is_calendar(timeframe):
        months = ts.astype("datetime64[ms]").astype("datetime64[M]")
        missing = int((np.diff(months.astype(np.int64))[gap_after] - 1).sum())
        lo = (months[gap_after] + 1).astype("datetime64[ms]").astype(np.int64)
        hi = (months[gap_after + 1] - 1).astype("datetime64[ms]").astype(np.int64)
    else:
        tf = timeframe_ms(timeframe)
        missing = int(((ts[gap_after + 1] - ts[gap_after]) // tf - 1).sum())
        lo, hi = ts[gap_after] + tf, ts[gap_after + 1] - tf
    pairs = [(int(a), int(b)) for a, b in zip(lo[:MAX_GAPS_LISTED], hi[:MAX_GAPS_LISTED])]
    return missing, pairs


def _step_error(ts: np.ndarray, i: int, timeframe: str, source, row) -> DataValidationError:
    if is_calendar(timeframe):
        why = "1M candles must open at 00:00 UTC on the first day of a month"
    else:
        step = int(ts[i] - ts[i - 1])
        why = (f"the step from {iso_utc(ts[i - 1])} is {step} ms, not a positive multiple of "
               f"{timeframe} ({timeframe_ms(timeframe)} ms); are the timestamps epoch ms?")
    return rule_error(f"candle at {iso_utc(ts[i])}: {why}", source, "step", row=row, ts=int(ts[i]))


def _grid_step(timeframe: str) -> int:
    """The grid candles of a fixed timeframe open on: its length, a day for ``1w`` (sources
    disagree on the weekday a week opens, Monday or Sunday, but not on midnight)."""
    return timeframe_ms("1d") if timeframe == "1w" else timeframe_ms(timeframe)


def _check_grid(ts: np.ndarray, timeframe: str, source, row_of) -> None:
    """Refuse candles off the timeframe's grid (1m candles 30 s off the minute, say).

    Steps that are whole multiples of the timeframe are not enough: a file shifted as a whole
    passes them. Called once the steps are known to be such multiples, so the first candle
    decides for all of them. ``1M`` is checked by :func:`step_problems` (month starts).
    """
    if is_calendar(timeframe) or ts.size == 0:
        return
    grid = _grid_step(timeframe)
    off = ts[:1] % grid
    if off.any():
        i = 0
        floor = ts[i] - off[i]
        raise rule_error(f"candle at {iso_utc(ts[i])} opens {int(off[i]) / 1000:g} s after the "
                         f"{timeframe} grid ({timeframe} candles open at {iso_utc(floor)}, "
                         f"{iso_utc(floor + grid)}, ...)", source, "off_grid",
                         row=row_of(i), ts=int(ts[i]))


def _check_ms(unit: str, ts: pl.Series, source, first_row: int) -> None:
    """A frame holds epoch ms unless told otherwise: a frame of microseconds is refused."""
    if unit in ("ms", "iso", "datetime"):
        return
    raise rule_error(f"ts {ts[0]} looks like epoch {UNIT_NAMES[unit]}, but candles are "
                     f"epoch milliseconds; convert them or declare ts_unit={unit!r}", source,
                     "ts_units", row=first_row)


#: fewest steps that make "few steps are one timeframe" evidence of another timeframe: a live
#: feed's backfill after dropped candles is a handful of candles with gaps, and must pass
TIMEFRAME_FIT_MIN_STEPS = 8


def _check_timeframe_fits(ts: np.ndarray, timeframe: str, gap_after: np.ndarray,
                          source) -> None:
    """Catch a file of another timeframe: its steps are all valid multiples, but few are 1x."""
    n_steps = ts.size - 1
    if n_steps < TIMEFRAME_FIT_MIN_STEPS or 2 * gap_after.size <= n_steps:
        return
    median = int(np.median(np.diff(ts)))
    guess = next((name for name, ms in TIMEFRAME_MS.items() if ms == median), f"{median} ms")
    raise rule_error(f"only {n_steps - gap_after.size} of {n_steps} steps are one {timeframe}; the "
                f"typical step is {guess}. Is --timeframe right?", source, "timeframe_mismatch")


def validate_candles(frame: pl.DataFrame, timeframe: str, source="<frame>", *,
                     first_row: int = 1,
                     ts_unit: str | None = None) -> tuple[pl.DataFrame, ValidationReport]:
    """Validate candles and return them sorted, without exact duplicates, with a report.

    Parameters
    ----------
    frame : columns ts (epoch ms) and open, high, low, close, volume, in file order.
    timeframe : e.g. ``"1m"``, ``"1d"``, ``"1M"``.
    source : the file or feed name used in error messages.
    first_row : the row number a user sees for ``frame`` row 0 (see the module docstring).
    ts_unit : the unit of integer ts (``s``, ``ms``, ``us``, ``ns``), converted to ms. ``None``:
        epoch ms between 1971 and 2199, and a ts that looks like another unit is refused
        (a push feed sending microseconds); declaring ``"ms"`` admits any date in years 1..9999.

    Returns
    -------
    (clean, report) : ``clean`` has exactly the six OHLCV columns, ts strictly increasing.

    Raises
    ------
    DataValidationError : naming the source, row, ts and the rule (see :data:`RULES`).
    ParameterError : the timeframe is not known.
    """
    validate_timeframe(timeframe)
    check_ts_unit(ts_unit)
    typed, unit = typed_frame(frame, source, first_row, ts_unit)
    ts = typed["ts"].to_numpy()
    if ts_unit is None:
        _check_ms(unit, frame["ts"], source, first_row)
    v = typed.select(VALUE_COLUMNS).to_numpy()
    _check_values(ts, v, source, first_row)
    take, dropped, reordered = _dedupe(ts, v, source, first_row)
    ts_u = ts if take is None else ts[take]
    def row_of(i: int) -> int:
        return first_row + (i if take is None else int(take[i]))
    bad, gap_after = step_problems(ts_u, timeframe)
    if bad is not None:
        raise _step_error(ts_u, bad, timeframe, source, row_of(bad))
    _check_grid(ts_u, timeframe, source, row_of)
    _check_timeframe_fits(ts_u, timeframe, gap_after, source)
    # ts is now strictly increasing: flag it so later sorts (the store's insert) are no-ops
    clean = (typed if take is None else typed[take]).with_columns(pl.col("ts").set_sorted())
    missing, pairs = gap_ranges(ts_u, timeframe, gap_after)
    report = ValidationReport(ts.size, int(ts_u.size), dropped, reordered, int(gap_after.size),
                              missing, pairs, int(ts_u[0]), int(ts_u[-1]))
    return clean, report


# -- ingest -----------------------------------------------------------------------------------
def file_hash(path) -> str:
    """Return the sha256 hex digest of a file's bytes (the ingest cache key)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _merge(existing: pl.DataFrame, clean: pl.DataFrame, parsed: ParsedFile, timeframe: str,
           source) -> pl.DataFrame:
    """Union a validated file with the stored series; a stored candle may not change."""
    if existing.height == 0:
        return clean
    both = clean.join(existing, on="ts", how="inner", suffix="_stored")
    differs = pl.any_horizontal([pl.col(c) != pl.col(f"{c}_stored") for c in VALUE_COLUMNS])
    conflicts = both.filter(differs)
    if conflicts.height:
        ts = int(conflicts["ts"].min())
        row = parsed.first_row + int(np.flatnonzero(parsed.frame["ts"].to_numpy() == ts)[0])
        raise rule_error(f"candle at {iso_utc(ts)} differs from the stored one; the stored series is "
                    "kept (delete it first to replace it)", source, "conflicts_with_store",
                    row=row, ts=ts)
    merged = pl.concat([existing, clean.join(existing, on="ts", how="anti")]).sort("ts")
    ts_m = merged["ts"].to_numpy()
    bad, _ = step_problems(ts_m, timeframe)
    if bad is not None:
        hit = np.flatnonzero(parsed.frame["ts"].to_numpy() == ts_m[bad])
        row = parsed.first_row + int(hit[0]) if hit.size else None
        raise _step_error(ts_m, bad, timeframe, f"{source} (merged with the stored series)", row)
    return merged


def _cached_summary(store: Store, path: Path, symbol: str, timeframe: str, digest: str,
                    rows: int, t0: float) -> IngestSummary | None:
    series = store.series().filter((pl.col("symbol") == symbol) & (pl.col("timeframe") == timeframe))
    if series.height == 0:  # the cache row outlived its series: ingest again
        return None
    return IngestSummary(str(path), symbol, timeframe, "cached", rows, 0, 0, 0, 0, [],
                         int(series["first_ts"][0]), int(series["last_ts"][0]),
                         time.perf_counter() - t0, digest)


def ingest_file(store: Store, path, symbol: str, timeframe: str, force_refresh: bool = False, *,
                ts_unit: str | None = None) -> IngestSummary:
    """Validate a candle file and merge it into the series ``(symbol, timeframe)`` atomically.

    The whole file is validated first; then, in one store transaction, the stored series is read,
    merged with the file (a stored candle whose values differ is an error), the summary is built
    and rendered (so nothing that can fail runs after the commit) and the series is replaced,
    and the file's sha256 is recorded. A failing file writes nothing. Ingesting the same file
    again is a no-op reported as ``'cached'`` unless ``force_refresh``, which re-reads it (and
    still adds no duplicate rows).

    Parameters
    ----------
    ts_unit : the unit of integer ts in the file (``s``, ``ms``, ``us``, ``ns``); ``None`` infers
        it where the magnitude leaves no doubt (:mod:`workbench.data.epoch`). A declared unit is
        part of the cache key: the same bytes read in another unit are other candles.

    Raises
    ------
    DataValidationError : the file breaks a rule of :data:`RULES`.
    NotFoundError : the file does not exist.
    ParameterError : the symbol is empty, the timeframe or ``ts_unit`` unknown.
    StoreBusyError : another process kept the store locked past its busy timeout.
    """
    t0 = time.perf_counter()
    check_symbol(symbol)
    validate_timeframe(timeframe)
    check_ts_unit(ts_unit)
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"file {path} does not exist")
    digest = file_hash(path)
    key = digest if ts_unit is None else f"{digest}+ts_unit={ts_unit}"
    hit = None if force_refresh else store.cached_ingest(key, symbol, timeframe)
    if hit is not None:
        cached = _cached_summary(store, path, symbol, timeframe, digest, int(hit["rows"]), t0)
        if cached is not None:
            return cached
    parsed = read_candle_file(path, ts_unit)
    clean, report = validate_candles(parsed.frame, timeframe, path, first_row=parsed.first_row,
                                     ts_unit=None if ts_unit is None else "ms")
    done: list[IngestSummary] = []

    def merge(existing: pl.DataFrame) -> pl.DataFrame:
        merged = _merge(existing, clean, parsed, timeframe, path)
        summary = IngestSummary(str(path), symbol, timeframe, "ingested", report.rows_in,
                                merged.height - existing.height, report.duplicates_dropped,
                                report.gaps, report.missing_candles, report.gap_ranges,
                                report.first_ts, report.last_ts, 0.0, digest, parsed.ts_unit)
        summary.to_dict()  # renders every ts inside the transaction: a failure rolls back
        done.append(summary)
        return merged
    store.merge_series(symbol, timeframe, merge,
                       cache_row={"content_hash": key, "path": str(path), "rows": report.rows_in})
    done[0].seconds = time.perf_counter() - t0
    return done[0]


def ingest_shipped(store: Store, force_refresh: bool = False) -> list[IngestSummary]:
    """Ingest the five real series shipped in ``data/`` (:data:`workbench.paths.SHIPPED_SERIES`)."""
    return [ingest_file(store, DATA_DIR / name, symbol, tf, force_refresh)
            for name, symbol, tf in SHIPPED_SERIES]
