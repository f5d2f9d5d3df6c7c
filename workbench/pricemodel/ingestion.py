"""Ingestion stage: candles from the store, resampled, joined with exogenous features, cached.

The stage turns ``(symbol, timeframe, start, end)`` into one polars frame
``ts, open, high, low, close, volume[, exogenous columns...]``. It never touches the network
(the original downloader and Fear & Greed fetch are replaced by the store and an optional local
file).

Source series
    If the requested timeframe is stored, it is read directly; otherwise the finest stored
    timeframe of the symbol that divides it is resampled with
    :func:`workbench.data.resample.resample_ohlcv`.

Deterministic cache
    The result is written to ``<cache_dir>/<key>.parquet`` (plus a ``.json`` sidecar) where the
    key hashes the symbol, both timeframes, the range, a fingerprint of the source rows computed
    inside the store (:meth:`Store.ohlcv_fingerprint`: count, first/last ts and a sum of row
    hashes, so a hit never transfers the source rows) and, when given, a SHA-256 of the
    exogenous file. Unchanged inputs therefore map to the same file and are read
    back instead of being recomputed; changed inputs map to a new key. ``force_refresh`` rebuilds
    the entry. :data:`COUNTERS` counts the expensive steps so tests can prove a hit did no work.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from workbench.data.resample import resample_ohlcv
from workbench.data.store import OHLCV_COLUMNS, Store
from workbench.data.timeframes import TIMEFRAME_MS, is_calendar, timeframe_ms, validate_timeframe
from workbench.errors import DataValidationError, NotFoundError, ParameterError

#: how often each expensive step ran in this process
#: (``source_read``, ``resample``, ``exog_join``, ``cache_write``)
COUNTERS: Counter = Counter()
_CACHE_VERSION = 1  # bump when the cached frame's layout changes


@dataclass(frozen=True)
class IngestRequest:
    """What to ingest: a symbol, a timeframe and an inclusive epoch-ms range."""

    symbol: str
    timeframe: str
    start_ms: int
    end_ms: int
    exog_file: Path | None = None


@dataclass(frozen=True)
class IngestResult:
    """The ingested frame and where it came from.

    Attributes
    ----------
    frame : ``ts`` + OHLCV (+ exogenous columns), sorted by ts.
    cache_hit : True when the frame was read back from the cache.
    cache_path : the parquet file of this key.
    source_timeframe : the stored timeframe the candles were read from.
    source_hash : SHA-256 of the source rows' fingerprint (hex).
    exog_columns : names of the joined exogenous columns.
    """

    frame: pl.DataFrame
    cache_hit: bool
    cache_path: Path
    source_timeframe: str
    source_hash: str
    exog_columns: tuple[str, ...] = ()


def date_to_ms(value: str, *, end_of_day: bool = False) -> int:
    """Parse ``YYYY-MM-DD`` (UTC) to epoch ms; ``end_of_day`` gives the day's last millisecond.

    Raises
    ------
    ParameterError : when ``value`` is not an ISO date.
    """
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise ParameterError(f"date {value!r} is not in YYYY-MM-DD form") from None
    ms = int(day.timestamp() * 1000)
    return ms + 86_400_000 - 1 if end_of_day else ms


def find_source_timeframe(store: Store, symbol: str, timeframe: str) -> str:
    """Return the stored timeframe to read: ``timeframe`` itself, else the finest that divides it.

    Raises
    ------
    NotFoundError : when the symbol has no stored series that can produce ``timeframe``.
    """
    validate_timeframe(timeframe)
    series = store.series().filter(pl.col("symbol") == symbol)
    stored = set(series["timeframe"].to_list())
    if timeframe in stored:
        return timeframe
    target = timeframe_ms(timeframe)
    usable = sorted((TIMEFRAME_MS[tf], tf) for tf in stored
                    if tf in TIMEFRAME_MS and not is_calendar(timeframe)
                    and TIMEFRAME_MS[tf] < target and target % TIMEFRAME_MS[tf] == 0)
    if not usable:
        have = ", ".join(sorted(stored)) or "none"
        raise NotFoundError(f"no stored series of {symbol!r} can give timeframe {timeframe!r} "
                            f"(stored timeframes: {have})")
    return usable[0][1]


def source_fingerprint(store: Store, symbol: str, timeframe: str, start_ms: int,
                       end_ms: int) -> str:
    """Return a SHA-256 identifying the stored source rows of a range, computed in the store.

    Raises
    ------
    NotFoundError : when the range holds no candles.
    """
    fp = store.ohlcv_fingerprint(symbol, timeframe, start_ms, end_ms)
    if not fp["rows"]:
        raise NotFoundError(f"{symbol!r} {timeframe} has no candles between ts {start_ms} and "
                            f"{end_ms}")
    return hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataValidationError("exogenous feature file does not exist", path=path,
                                  rule="exog_exists")
    return path


def _hash_file(path: Path) -> str:
    return hashlib.sha256(_require_file(path).read_bytes()).hexdigest()


def cache_key(req: IngestRequest, source_tf: str, source_hash: str, exog_hash: str | None) -> str:
    """Return the deterministic cache key of one ingestion (a readable prefix + a short hash)."""
    parts = [str(_CACHE_VERSION), req.symbol, req.timeframe, source_tf, str(req.start_ms),
             str(req.end_ms), source_hash, exog_hash or "-"]
    short = hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]
    safe_symbol = "".join(ch if ch.isalnum() else "-" for ch in req.symbol)
    return f"{safe_symbol}_{req.timeframe}_{req.start_ms}_{req.end_ms}_{short}"


def _resample(frame: pl.DataFrame, from_tf: str, to_tf: str) -> pl.DataFrame:
    COUNTERS["resample"] += 1
    return resample_ohlcv(frame, from_tf, to_tf)


def read_exog(path: Path) -> pl.DataFrame:
    """Read an exogenous feature file (parquet or CSV): ``ts`` (epoch ms) + numeric columns.

    Raises
    ------
    DataValidationError : naming the file, row and rule when the file is missing, has no ``ts``,
        no numeric column, unsorted/duplicate ts or a null/non-finite value.
    """
    path = _require_file(Path(path))
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    if "ts" not in frame.columns or not frame["ts"].dtype.is_integer():
        raise DataValidationError("needs an integer 'ts' column (epoch ms)", path=path,
                                  rule="exog_ts_column")
    values = [c for c in frame.columns if c != "ts" and frame[c].dtype.is_numeric()]
    if not values:
        raise DataValidationError("has no numeric feature column besides 'ts'", path=path,
                                  rule="exog_numeric_column")
    frame = frame.select(pl.col("ts").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in values])
    _check_exog_rows(frame, path)
    return frame


def _check_exog_rows(frame: pl.DataFrame, path: Path) -> None:
    ts = frame["ts"].to_numpy()
    bad = np.flatnonzero(np.diff(ts) <= 0)
    if bad.size:
        raise DataValidationError("ts must be strictly increasing", path=path, row=int(bad[0] + 1),
                                  ts=int(ts[bad[0] + 1]), rule="exog_sorted_unique")
    values = frame.drop("ts").to_numpy()
    rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if rows.size:
        raise DataValidationError("feature values must be finite and not null", path=path,
                                  row=int(rows[0]), ts=int(ts[rows[0]]), rule="exog_finite")


def join_exog(candles: pl.DataFrame, exog: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Attach to each candle the latest exogenous row with ``exog.ts <= candle.ts`` (no lookahead).

    Raises
    ------
    DataValidationError : when the first candle has no exogenous value at or before it.
    """
    COUNTERS["exog_join"] += 1
    joined = candles.join_asof(exog, on="ts", strategy="backward")
    missing = joined.select(pl.any_horizontal(pl.all().is_null()).arg_true()).to_series()
    if missing.len():
        row = int(missing[0])
        raise DataValidationError("exogenous file does not cover this candle (no value at or "
                                  "before it)", path=path, row=row, ts=int(joined["ts"][row]),
                                  rule="exog_coverage")
    return joined


def _build(req: IngestRequest, source_tf: str, source: pl.DataFrame,
           exog: pl.DataFrame | None) -> pl.DataFrame:
    frame = source if source_tf == req.timeframe else _resample(source, source_tf, req.timeframe)
    frame = frame.select(OHLCV_COLUMNS).filter(pl.col("ts").is_between(req.start_ms, req.end_ms))
    if exog is not None:
        frame = join_exog(frame, exog, req.exog_file)
    return frame


def _write_cache(path: Path, frame: pl.DataFrame, info: dict) -> None:
    """Write parquet + sidecar atomically (temp file, then ``os.replace``)."""
    COUNTERS["cache_write"] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    side = path.with_suffix(".json")
    tmp_side = side.with_suffix(f".{os.getpid()}.tmp")
    tmp_side.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(tmp_side, side)


def ingest(store: Store, req: IngestRequest, cache_dir: Path, *,
           force_refresh: bool = False) -> IngestResult:
    """Return the candles of ``req``, from the cache when its inputs are unchanged.

    Raises
    ------
    NotFoundError : when the symbol has no usable series or the range holds no candles.
    DataValidationError : for a bad exogenous file.
    """
    if req.end_ms < req.start_ms:
        raise ParameterError(f"end {req.end_ms} is before start {req.start_ms}")
    source_tf = find_source_timeframe(store, req.symbol, req.timeframe)
    source_hash = source_fingerprint(store, req.symbol, source_tf, req.start_ms, req.end_ms)
    exog_hash = _hash_file(Path(req.exog_file)) if req.exog_file else None
    path = Path(cache_dir) / f"{cache_key(req, source_tf, source_hash, exog_hash)}.parquet"
    if path.is_file() and not force_refresh:
        frame = pl.read_parquet(path)
        exog_cols = tuple(c for c in frame.columns if c not in OHLCV_COLUMNS)
        return IngestResult(frame, True, path, source_tf, source_hash, exog_cols)
    COUNTERS["source_read"] += 1
    source = store.read_ohlcv(req.symbol, source_tf, req.start_ms, req.end_ms)
    exog = read_exog(Path(req.exog_file)) if req.exog_file else None
    frame = _build(req, source_tf, source, exog)
    if frame.height == 0:
        raise NotFoundError(f"{req.symbol!r} {req.timeframe} has no complete candles in the range")
    info = {"symbol": req.symbol, "timeframe": req.timeframe, "source_timeframe": source_tf,
            "start_ms": req.start_ms, "end_ms": req.end_ms, "source_hash": source_hash,
            "exog_file": str(req.exog_file) if req.exog_file else None, "exog_hash": exog_hash,
            "rows": frame.height}
    _write_cache(path, frame, info)
    exog_cols = tuple(c for c in frame.columns if c not in OHLCV_COLUMNS)
    return IngestResult(frame, False, path, source_tf, source_hash, exog_cols)
