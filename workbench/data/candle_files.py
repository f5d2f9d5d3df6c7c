"""Read candle files: Parquet, CSV and Binance kline CSV, into typed OHLCV frames.

Three layouts are read:

* Parquet or CSV with columns ``ts, open, high, low, close, volume`` (extra columns are ignored),
  where ``ts`` is the candle open time as epoch milliseconds or ISO-8601 text **with** a zone
  (``2025-05-20T00:00:00Z``, ``...+02:00``); a Parquet ``Datetime`` column needs a time zone;
* the 12-column Binance kline CSV, with or without its header. Its open time is epoch ms, or epoch
  microseconds as in Binance's newer dumps (detected by magnitude, per file).

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

from workbench.data.store import OHLCV_COLUMNS
from workbench.errors import DataValidationError, NotFoundError

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
BINANCE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                   "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
# Epoch ms stays below 1e14 until the year 5138; Binance microsecond open times are ~1.7e15.
_MICROS_THRESHOLD = 10**14
# a zone must follow a time of day: "2025-05-20" alone ends in "-20", which is a day, not an offset
_ZONE_RE = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"

@dataclass(frozen=True)
class ParsedFile:
    """A file read into ``frame`` (ts Int64 ms + Float64 values, file order)."""

    frame: pl.DataFrame  # ts (Int64) + values (Float64), in file order
    first_row: int  # the row number a user sees for frame row 0


def rule_error(message: str, source, rule: str, row=None, ts=None) -> DataValidationError:
    """Return the DataValidationError for breaking ``rule`` at ``source``/``row``/``ts``."""
    return DataValidationError(message, path=str(source), row=row, ts=ts, rule=rule)


def read_candles(path) -> pl.DataFrame:
    """Read a Parquet, CSV or Binance kline CSV file into ``ts, open, high, low, close, volume``.

    Rows keep the file's order (sorting is :func:`validate_candles`'s job). ``ts`` is Int64 epoch
    ms, the rest Float64.

    Raises
    ------
    NotFoundError : the file does not exist.
    DataValidationError : the file is empty, unreadable, lacks columns or holds non-numbers
        (rules ``empty``, ``format``, ``columns``, ``missing_value``, ``non_numeric``,
        ``ts_format``, ``ts_units``).
    """
    return read_candle_file(path).frame


def read_candle_file(path) -> ParsedFile:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"file {path} does not exist")
    if path.stat().st_size == 0:
        raise rule_error("the file is empty", path, "empty")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return _read_parquet(path)
    return _read_csv(path)


def _read_parquet(path: Path) -> ParsedFile:
    try:
        raw = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a damaged file
        raise rule_error(f"cannot read Parquet: {exc}", path, "format") from None
    return ParsedFile(typed_candles(raw, path, first_row=1), first_row=1)


def _first_line(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        line = fh.readline().strip().lstrip("\ufeff")
    return [f.strip().strip('"') for f in line.split(",")]


def _is_int_text(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _read_csv(path: Path) -> ParsedFile:
    fields = _first_line(path)
    binance_header = len(fields) == 12 and re.sub(r"[\s_]", "", fields[0].lower()) == "opentime"
    binance = len(fields) == 12 and (_is_int_text(fields[0]) or binance_header)
    has_header = not (binance and _is_int_text(fields[0]))
    raw = _csv_frame(path, has_header, "open_time" if binance else "ts",
                     list(BINANCE_COLUMNS) if binance else None)
    first_row = 2 if has_header else 1
    if binance:
        raw = raw.select(pl.col("open_time").alias("ts"), *VALUE_COLUMNS)
        return ParsedFile(_binance_ts(typed_candles(raw, path, first_row), path, first_row), first_row)
    return ParsedFile(typed_candles(raw, path, first_row), first_row)


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


def _binance_ts(frame: pl.DataFrame, source, first_row: int) -> pl.DataFrame:
    """Convert microsecond open times to ms; the whole file must use one unit."""
    ts = frame["ts"].to_numpy()
    micros = ts >= _MICROS_THRESHOLD
    if not micros.any():
        return frame
    odd = (micros != micros[0]) | (micros & (ts % 1000 != 0))
    if odd.any():
        i = int(odd.argmax())
        raise rule_error(f"open time {ts[i]} mixes ms and microsecond units (row 1 uses "
                    f"{'microseconds' if micros[0] else 'ms'})", source, "ts_units",
                    row=first_row + i, ts=int(ts[i]))
    return frame.with_columns(pl.col("ts") // 1000)


def typed_candles(raw: pl.DataFrame, source, first_row: int) -> pl.DataFrame:
    """Check the columns and return ts as Int64 ms and the values as Float64."""
    if raw.height == 0:
        raise rule_error("the file has no data rows", source, "empty")
    missing = [c for c in OHLCV_COLUMNS if c not in raw.columns]
    if missing:
        raise rule_error(f"missing column(s) {', '.join(missing)}; found {', '.join(raw.columns)}. "
                    "Expected a header ts,open,high,low,close,volume or a 12-column Binance "
                    "kline CSV", source, "columns")
    ts = ts_to_epoch_ms(raw["ts"], source, first_row)
    ts_np = ts.to_numpy()
    values = [_numeric(raw[c], source, first_row, ts_np) for c in VALUE_COLUMNS]
    return pl.DataFrame([ts, *values])


def _ts_at(ts: np.ndarray | None, i: int) -> int | None:
    """The ms open time of row ``i`` for an error message (microseconds scaled down)."""
    if ts is None:
        return None
    value = int(ts[i])
    return value // 1000 if value >= _MICROS_THRESHOLD else value


def _null_error(series: pl.Series, source, first_row: int, ts=None) -> None:
    nulls = series.is_null().to_numpy()
    if nulls.any():
        i = int(nulls.argmax())
        raise rule_error(f"column {series.name} is empty", source, "missing_value", row=first_row + i,
                    ts=_ts_at(ts, i))


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
                    "non_numeric", row=first_row + i, ts=_ts_at(ts, i))
    return out


def ts_to_epoch_ms(series: pl.Series, source, first_row: int) -> pl.Series:
    """Return a ts column as Int64 epoch ms: integers as they are, zoned datetimes, ISO-8601 text.

    Raises DataValidationError (rule ``ts_format``) naming the file and the first bad row for a
    null, a datetime or ISO text without a time zone, or text that is not a timestamp.
    """
    _null_error(series, source, first_row)
    if series.dtype.is_integer():
        return series.cast(pl.Int64).alias("ts")
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone is None:
            raise rule_error("ts is a datetime without a time zone; store it with a zone (UTC) or as "
                        "epoch ms", source, "ts_format", row=first_row)
        return series.dt.convert_time_zone("UTC").dt.epoch("ms").alias("ts")
    if series.dtype != pl.String:
        raise rule_error(f"ts has type {series.dtype}; use epoch ms integers or ISO-8601 with a zone",
                    source, "ts_format", row=first_row)
    text = series.str.strip_chars().str.replace(r"\s*UTC$", "Z")  # "... 00:00:00 UTC" is zoned
    if _is_int_text(text[0]):
        out = text.cast(pl.Int64, strict=False)
        _first_bad(out.is_null(), text, source, first_row, "is not an epoch-ms integer")
        return out.alias("ts")
    _first_bad(~text.str.contains(_ZONE_RE), text, source, first_row,
               "has no time zone; write it like 2025-05-20T00:00:00Z")
    parsed = text.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
    _first_bad(parsed.is_null(), text, source, first_row, "is not an ISO-8601 timestamp")
    return parsed.dt.epoch("ms").alias("ts")


def _first_bad(mask: pl.Series, text: pl.Series, source, first_row: int, what: str) -> None:
    bad = mask.to_numpy()
    if bad.any():
        i = int(bad.argmax())
        raise rule_error(f"ts {text[i]!r} {what}", source, "ts_format", row=first_row + i)
