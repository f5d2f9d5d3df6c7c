"""Resample candles to a coarser timeframe with correct OHLCV aggregation.

Buckets are aligned to the Unix epoch (``floor(ts / bucket) * bucket``), so 1h buckets start on the
hour, 4h buckets at 00, 04, ... UTC and 1d buckets at 00:00 UTC. Per bucket: the first open, the
highest high, the lowest low, the last close and the summed volume.

Which buckets are kept
----------------------
A bucket inside the series is kept even when a gap leaves it with fewer source candles (a market
closure is not a reason to lose a bar); the resampled series thereby has the same gaps as its
source, reported by ``workbench data info``. The **last** bucket is dropped when its last expected
source candle (``bucket_start + to - from``) is missing: that bar has not closed yet and its close
and high/low could still change. Likewise the **first** bucket is dropped when its first expected
source candle is missing, because its open would not be the bar's open.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.data.guards import refuse_non_finite
from workbench.data.store import OHLCV_COLUMNS, Store
from workbench.data.timeframes import is_calendar, timeframe_ms, validate_timeframe
from workbench.errors import NotFoundError, ParameterError

#: the target timeframes ``workbench data resample --to`` accepts
RESAMPLE_TARGETS = ("5m", "15m", "1h", "4h", "1d")


def _check_pair(from_tf: str, to_tf: str) -> tuple[int, int]:
    validate_timeframe(from_tf)
    if to_tf not in RESAMPLE_TARGETS:
        raise ParameterError(f"cannot resample to {to_tf!r}; targets: {', '.join(RESAMPLE_TARGETS)}")
    if is_calendar(from_tf):
        raise ParameterError(f"cannot resample from the calendar timeframe {from_tf}")
    src, dst = timeframe_ms(from_tf), timeframe_ms(to_tf)
    if dst <= src or dst % src:
        raise ParameterError(f"{to_tf} is not a whole multiple (> 1) of {from_tf}")
    return src, dst


def resample_ohlcv(frame: pl.DataFrame, from_tf: str, to_tf: str) -> pl.DataFrame:
    """Aggregate candles of ``from_tf`` into ``to_tf`` buckets (see the module docstring).

    Parameters
    ----------
    frame : validated candles ``ts, open, high, low, close, volume``, ts strictly increasing.
    from_tf, to_tf : source and target timeframe; ``to_tf`` is one of :data:`RESAMPLE_TARGETS`
        and a whole multiple of ``from_tf``.

    Returns
    -------
    pl.DataFrame with the six OHLCV columns, one row per kept bucket, ``ts`` = bucket open time.

    Raises
    ------
    ParameterError : the pair of timeframes cannot be resampled.
    DataValidationError : a bucket's value is not finite (rule ``not_finite``: finite volumes
        whose sum overflows to inf), naming the bucket's ts and the column.
    """
    src, dst = _check_pair(from_tf, to_tf)
    off_grid = (frame["ts"] % src) != 0
    if off_grid.any():
        i = int(off_grid.arg_max())
        raise ParameterError(f"candle at ts {frame['ts'][i]} (row {i}) is not on the {from_tf} grid "
                             f"(ts % {src} != 0); {to_tf} buckets would mix candles across bucket "
                             "edges")
    out = (
        frame.lazy()
        .with_columns(bucket=(pl.col("ts") // dst) * dst)
        .group_by("bucket", maintain_order=True)
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
             pl.col("close").last(), pl.col("volume").sum(),
             first_src=pl.col("ts").first(), last_src=pl.col("ts").last())
        .collect()
    )
    if out.height == 0:
        return out.select(pl.col("bucket").alias("ts"), *OHLCV_COLUMNS[1:])
    keep = np.ones(out.height, dtype=bool)
    keep[0] = out["first_src"][0] == out["bucket"][0]
    keep[-1] &= out["last_src"][-1] == out["bucket"][-1] + dst - src
    out = out.filter(pl.Series(keep)).select(pl.col("bucket").alias("ts"), *OHLCV_COLUMNS[1:])
    refuse_non_finite(out, OHLCV_COLUMNS[1:], f"resample {from_tf} -> {to_tf}")
    return out


def resample_series(store: Store, symbol: str, from_tf: str, to_tf: str,
                    persist: bool = True) -> pl.DataFrame:
    """Resample a stored series and, when ``persist``, store the result as series ``(symbol, to_tf)``.

    A persisted result replaces any stored ``(symbol, to_tf)`` series in one transaction.

    Raises
    ------
    NotFoundError : the source series is not stored.
    ParameterError : the pair of timeframes cannot be resampled.
    DataValidationError : a resampled value is not finite; nothing is stored.
    """
    _check_pair(from_tf, to_tf)
    frame = store.read_ohlcv(symbol, from_tf)
    if frame.height == 0:
        raise NotFoundError(f"no stored series {symbol} {from_tf}; ingest it first "
                            "(workbench data ingest PATH --symbol S --timeframe TF)")
    out = resample_ohlcv(frame, from_tf, to_tf)
    if persist:
        store.replace_series(symbol, to_tf, out)
    return out
