"""Read candle files: Parquet, CSV and Binance kline CSV, into typed OHLCV frames.

Three layouts are read:

* Parquet or CSV with columns ``ts, open, high, low, close, volume`` (extra columns are ignored),
  where ``ts`` is the candle open time as an integer epoch time or ISO-8601 text **with** a zone
  (``2025-05-20T00:00:00Z``, ``...+02:00``); a Parquet ``Datetime`` column needs a time zone;
* the 12-column Binance kline CSV, with or without its header (open times in ms, or in
  microseconds as in Binance's newer dumps).

Integer ts may be epoch seconds, milliseconds, microseconds or nanoseconds: the unit is declared
(``ts_unit``, ``workbench data ingest --ts-unit``) or inferred only where the magnitude leaves no
doubt, for every row, whatever the file's size (:mod:`workbench.data.epoch`); else the file is
refused naming the unit it looks like. A header line repeated inside the data and a header naming
a column twice are refused too.

The layout is sniffed from the bytes (Parquet magic, then the CSV's first line), not the file name.
Errors name the row as the user sees it: the **line number** in a CSV file (the header, when there
is one, is line 1) and the 1-based row in a Parquet file. Value rules (NaN, OHLC order, steps...)
are checked later by :func:`workbench.data.ingest.validate_candles`.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from workbench.data.epoch import (TS_UNITS, UNIT_NAMES, in_iso_range, plausible_unit, readings,
                                  to_ms, unit_at)
from workbench.data.store import OHLCV_COLUMNS
from workbench.errors import DataValidationError, NotFoundError, ParameterError

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
BINANCE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                   "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
# a zone must follow a time of day: "2025-05-20" alone ends in "-20", which is a day, not an offset
_ZONE_RE = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
# what a header's ts cell reads like, lower-cased without spaces, underscores and quotes
_HEADER_TS_CELLS = ("ts", "opentime")


@dataclass(frozen=True)
class ParsedFile:
    """A file read into ``frame`` (ts Int64 ms + Float64 values, file order).

    ``ts_unit`` is the unit the file's ts was read in: one of :data:`TS_UNITS` (declared or
    inferred), ``"iso"`` for ISO-8601 text or ``"datetime"`` for a Parquet datetime column.
    """

    frame: pl.DataFrame  # ts (Int64) + values (Float64), in file order
    first_row: int  # the row number a user sees for frame row 0
    ts_unit: str = "ms"


def rule_error(message: str, source, rule: str, row=None, ts=None) -> DataValidationError:
    """Return the DataValidationError for breaking ``rule`` at ``source``/``row``/``ts``."""
    return DataValidationError(message, path=str(source), row=row, ts=ts, rule=rule)


def read_candles(path, ts_unit: str | None = None) -> pl.DataFrame:
    """Read a Parquet, CSV or Binance kline CSV file into ``ts, open, high, low, close, volume``.

    Rows keep the file's order (sorting is :func:`validate_candles`'s job). ``ts`` is Int64 epoch
    ms, the rest Float64. Integer ts are read in ``ts_unit`` (``s``, ``ms``, ``us``, ``ns``) or,
    when ``None``, in the one unit their magnitude leaves no doubt about
    (:mod:`workbench.data.epoch`).

    Raises
    ------
    NotFoundError : the file does not exist.
    ParameterError : ``ts_unit`` is not a known unit, or is given for a file whose ts is not an
        integer.
    DataValidationError : the file is empty, unreadable, lacks columns or holds non-numbers
        (rules ``empty``, ``format``, ``columns``, ``header_repeated``, ``missing_value``,
        ``non_numeric``, ``ts_format``, ``ts_units``, ``ts_range``).
    """
    return read_candle_file(path, ts_unit).frame


def read_candle_file(path, ts_unit: str | None = None) -> ParsedFile:
    """:func:`read_candles` that also returns the first row number and the ts unit read."""
    check_ts_unit(ts_unit)
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"file {path} does not exist")
    if path.stat().st_size == 0:
        raise rule_error("the file is empty", path, "empty")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return _read_parquet(path, ts_unit)
    return _read_csv(path, ts_unit)


def check_ts_unit(ts_unit: str | None) -> None:
    """Raise ParameterError unless ``ts_unit`` is ``None`` or one of :data:`TS_UNITS`."""
    if ts_unit is not None and ts_unit not in TS_UNITS:
        raise ParameterError(f"--ts-unit {ts_unit!r} is not a unit; use one of "
                             f"{', '.join(TS_UNITS)}")


def _read_parquet(path: Path, ts_unit: str | None) -> ParsedFile:
    try:
        raw = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a damaged file
        raise rule_error(f"cannot read Parquet: {exc}", path, "format") from None
    frame, unit = typed_frame(raw, path, 1, ts_unit)
    return ParsedFile(frame, first_row=1, ts_unit=unit)


def _first_line(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        line = fh.readline().strip().lstrip("\ufeff")
    return [f.strip().strip('"') for f in line.split(",")]


def _is_int_text(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _read_csv(path: Path, ts_unit: str | None) -> ParsedFile:
    fields = _first_line(path)
    binance_header = len(fields) == 12 and re.sub(r"[\s_]", "", fields[0].lower()) == "opentime"
    binance = len(fields) == 12 and (_is_int_text(fields[0]) or binance_header)
    has_header = not (binance and _is_int_text(fields[0]))
    if has_header and not binance:
        _refuse_repeated_columns(fields, path)
    ts_name = "open_time" if binance else "ts"
    raw = _csv_frame(path, has_header, ts_name, list(BINANCE_COLUMNS) if binance else None)
    first_row = 2 if has_header else 1
    if ts_name in raw.columns:
        _refuse_header_rows(raw[ts_name], path, first_row)
    if binance:
        raw = raw.select(pl.col("open_time").alias("ts"), *VALUE_COLUMNS)
    frame, unit = typed_frame(raw, path, first_row, ts_unit)
    return ParsedFile(frame, first_row, unit)


def _refuse_repeated_columns(fields: list[str], path: Path) -> None:
    """A header naming a column twice leaves it open which one holds the candles' values."""
    seen: dict[str, int] = {}
    for k, name in enumerate(fields, start=1):
        key = name.lower()
        if key in seen:
            raise rule_error(f"column {name!r} appears twice in the header (columns {seen[key]} "
                             f"and {k}); keep one", path, "columns", row=1)
        seen[key] = k


def _refuse_header_rows(ts: pl.Series, path: Path, first_row: int) -> None:
    """A header line inside the data (files concatenated with their headers) is refused."""
    if ts.dtype != pl.String:
        return
    cells = ts.str.to_lowercase().str.replace_all(r"[\s_\"]", "")
    hit = cells.is_in(_HEADER_TS_CELLS).to_numpy()
    if hit.any():
        i = int(hit.argmax())
        raise rule_error("this line repeats the header (were files concatenated with their "
                         "headers?); remove it", path, "header_repeated", row=first_row + i)


def _csv_frame(path: Path, has_header: bool, ts_name: str, names) -> pl.DataFrame:
    """Read a CSV typed (fast) when every cell parses, else as text so the bad cell is named."""
    numbers = {c: pl.Float64 for c in VALUE_COLUMNS}
    for overrides in ({ts_name: pl.Int64, **numbers}, numbers):
        with contextlib.suppress(Exception):  # polars raises several types; fall back to text
            return pl.read_csv(path, has_header=has_header, infer_schema=False,
                               new_columns=names, schema_overrides=overrides)
    try:
        return pl.read_csv(path, has_header=has_header, infer_schema=False, new_columns=names)
    except Exception as exc:
        raise rule_error(f"cannot read CSV: {exc}".splitlines()[0], path, "format") from None


def typed_candles(raw: pl.DataFrame, source, first_row: int,
                  ts_unit: str | None = None) -> pl.DataFrame:
    """Check the columns and return ts as Int64 ms and the values as Float64.

    Integer ts are read in ``ts_unit``, or in the unit inferred from their magnitude when
    ``None`` (see :func:`ts_to_epoch_ms`).
    """
    return typed_frame(raw, source, first_row, ts_unit)[0]


def typed_frame(raw: pl.DataFrame, source, first_row: int,
                ts_unit: str | None) -> tuple[pl.DataFrame, str]:
    """:func:`typed_candles` that also returns the unit the ts were read in (see
    :class:`ParsedFile`)."""
    if raw.height == 0:
        raise rule_error("the file has no data rows", source, "empty")
    missing = [c for c in OHLCV_COLUMNS if c not in raw.columns]
    if missing:
        raise rule_error(f"missing column(s) {', '.join(missing)}; found {', '.join(raw.columns)}. "
                    "Expected a header ts,open,high,low,close,volume or a 12-column Binance "
                    "kline CSV", source, "columns")
    ts, unit = _epoch_ms(raw["ts"], source, first_row, ts_unit)
    ts_np = ts.to_numpy()
    values = [_numeric(raw[c], source, first_row, ts_np) for c in VALUE_COLUMNS]
    return pl.DataFrame([ts, *values]), unit


def _null_error(series: pl.Series, source, first_row: int, ts=None) -> None:
    nulls = series.is_null().to_numpy()
    if nulls.any():
        i = int(nulls.argmax())
        raise rule_error(f"column {series.name} is empty", source, "missing_value", row=first_row + i,
                    ts=None if ts is None else int(ts[i]))


def _numeric(series: pl.Series, source, first_row: int, ts: np.ndarray) -> pl.Series:
    _null_error(series, source, first_row, ts)
    if series.dtype.is_numeric():
        return series.cast(pl.Float64)
    if series.dtype != pl.String:
        raise rule_error(f"column {series.name} has type {series.dtype}, not a number", source,
                    "non_numeric")
    out = series.str.strip_chars().cast(pl.Float64, strict=False)
    bad = out.is_null().to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise rule_error(f"column {series.name} holds {series[i]!r}, not a number", source,
                    "non_numeric", row=first_row + i, ts=int(ts[i]))
    return out


def ts_to_epoch_ms(series: pl.Series, source, first_row: int,
                   ts_unit: str | None = None) -> pl.Series:
    """Return a ts column as Int64 epoch ms: integers, zoned datetimes, ISO-8601 text.

    Integers are read in ``ts_unit`` or, when ``None``, in the unit their magnitude leaves no
    doubt about (see :mod:`workbench.data.epoch`).

    Raises
    ------
    DataValidationError : naming the file and the first bad row: a null, a datetime or ISO text
        without a time zone, text that is not a timestamp (rule ``ts_format``); integers of no
        plausible unit or outside years 1..9999 (``ts_range``); mixed units or a microsecond /
        nanosecond ts that is not a whole millisecond (``ts_units``).
    ParameterError : ``ts_unit`` is given for ts that are not integers.
    """
    return _epoch_ms(series, source, first_row, ts_unit)[0]


def _epoch_ms(series: pl.Series, source, first_row: int,
              ts_unit: str | None) -> tuple[pl.Series, str]:
    _null_error(series, source, first_row)
    if series.dtype.is_integer():
        return _integer_ms(series.cast(pl.Int64), source, first_row, ts_unit)
    if series.dtype == pl.String and _is_int_text(series.str.strip_chars()[0]):
        text = series.str.strip_chars()
        out = text.cast(pl.Int64, strict=False)
        _first_bad(out.is_null(), text, source, first_row, "is not an integer epoch time")
        return _integer_ms(out, source, first_row, ts_unit)
    if ts_unit is not None:
        raise ParameterError(f"--ts-unit {ts_unit} applies to integer epoch timestamps; the ts of "
                             f"{source} are {series.dtype} values, which carry their own unit")
    return _zoned_ms(series, source, first_row)


def _zoned_ms(series: pl.Series, source, first_row: int) -> tuple[pl.Series, str]:
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone is None:
            raise rule_error("ts is a datetime without a time zone; store it with a zone (UTC) or as "
                        "epoch ms", source, "ts_format", row=first_row)
        return series.dt.convert_time_zone("UTC").dt.epoch("ms").alias("ts"), "datetime"
    if series.dtype != pl.String:
        raise rule_error(f"ts has type {series.dtype}; use epoch ms integers or ISO-8601 with a zone",
                    source, "ts_format", row=first_row)
    text = series.str.strip_chars().str.replace(r"\s*UTC$", "Z")  # "... 00:00:00 UTC" is zoned
    _first_bad(~text.str.contains(_ZONE_RE), text, source, first_row,
               "has no time zone; write it like 2025-05-20T00:00:00Z")
    parsed = text.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
    _first_bad(parsed.is_null(), text, source, first_row, "is not an ISO-8601 timestamp")
    return parsed.dt.epoch("ms").alias("ts"), "iso"


def _integer_ms(series: pl.Series, source, first_row: int,
                ts_unit: str | None) -> tuple[pl.Series, str]:
    """Integer ts in ``ts_unit`` (or the inferred unit) as epoch ms; see :mod:`epoch`."""
    raw = series.to_numpy()
    unit = ts_unit or _inferred_unit(raw, source, first_row)
    if unit == "ms":  # the common case: no arithmetic, no copy
        ms, whole = raw, np.ones(1, dtype=bool)
    else:
        ms, whole = to_ms(raw, unit)
    if not whole.all():
        i = int((~whole).argmax())
        what = ("is not a whole millisecond" if unit in ("us", "ns")
                else "is too large for an epoch time")
        raise rule_error(f"ts {raw[i]} read as epoch {UNIT_NAMES[unit]} {what}", source,
                         "ts_units" if unit in ("us", "ns") else "ts_range", row=first_row + i)
    if not in_iso_range(np.array([ms.min(), ms.max()])).all():
        i = int((~in_iso_range(ms)).argmax())
        raise rule_error(f"ts {raw[i]} read as epoch {UNIT_NAMES[unit]} is not a date in years "
                         f"1..9999 ({readings(int(raw[i]))}); check --ts-unit", source,
                         "ts_range", row=first_row + i)
    return (series if unit == "ms" else pl.Series(ms, dtype=pl.Int64)).alias("ts"), unit


def _inferred_unit(raw: np.ndarray, source, first_row: int) -> str:
    """The one unit every ts is plausible in, else a ``ts_range`` / ``ts_units`` error."""
    ends = plausible_unit(np.array([raw.min(), raw.max()]))
    if ends[0] == ends[1] >= 0:  # each unit's range is an interval: both ends in it, all in it
        return unit_at(ends[0])
    kind = plausible_unit(raw)
    none = kind < 0
    if none.any():
        i = int(none.argmax())
        raise rule_error(
            f"ts {raw[i]} is not a candle time between 1971 and 2199 in seconds, milliseconds, "
            f"microseconds or nanoseconds ({readings(int(raw[i]))}); if it is right, declare "
            "the unit with --ts-unit s|ms|us|ns", source, "ts_range", row=first_row + i)
    mixed = kind != kind[0]
    if mixed.any():
        i = int(mixed.argmax())
        unit, first_unit = unit_at(kind[i]), unit_at(kind[0])
        ms, _ = to_ms(raw[i:i + 1], unit)
        raise rule_error(f"ts {raw[i]} looks like epoch {UNIT_NAMES[unit]} but row {first_row} "
                         f"looks like epoch {UNIT_NAMES[first_unit]}; one file uses one unit",
                         source, "ts_units", row=first_row + i, ts=int(ms[0]))
    return unit_at(kind[0])


def _first_bad(mask: pl.Series, text: pl.Series, source, first_row: int, what: str) -> None:
    bad = mask.to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise rule_error(f"ts {text[i]!r} {what}", source, "ts_format", row=first_row + i)
