"""Checks every write of candles and derived rows passes, whichever path it comes by.

Ingest validates files with every rule of :data:`workbench.data.ingest.RULES`; the store runs
these few checks on every write as well (appends from a push feed, a resampled series, indicator
and pivot persistence), so that nothing non-finite, no ts that cannot be written as a date and no
nameless series is ever stored. Each raises the same typed errors as ingest.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from workbench.data.epoch import in_iso_range, iso_utc
from workbench.errors import DataValidationError, ParameterError


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it can name a series, else raise ParameterError.

    A symbol is non-empty, printable and has no surrounding spaces: ``""`` or ``"ETH "`` would
    store a series no command can address by name.
    """
    if not isinstance(symbol, str) or not symbol:
        raise ParameterError(f"symbol {symbol!r} is empty; name the market, e.g. ETH/USDT")
    if symbol != symbol.strip() or not symbol.isprintable():
        raise ParameterError(f"symbol {symbol!r} has surrounding spaces or control characters; "
                             "name the market, e.g. ETH/USDT")
    return symbol


def _ts_of(frame: pl.DataFrame, i: int) -> int | None:
    return int(frame["ts"][i]) if "ts" in frame.columns else None


def refuse_non_finite(frame: pl.DataFrame, columns: Sequence[str], source: str,
                      first_row: int = 1) -> None:
    """Raise DataValidationError (rule ``not_finite``) at the first NaN or inf of ``columns``.

    Nulls pass: they mean "not defined yet" (an indicator's warm-up), never a number. The error
    names ``source``, the row (``first_row`` for frame row 0), its ts and the column.
    """
    if frame.height == 0:
        return
    values = frame.select(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in columns).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(bad.any(axis=1).argmax())
        col = columns[int(bad[i].argmax())]
        ts = _ts_of(frame, i)
        raise DataValidationError(f"{col} is {values[i, int(bad[i].argmax())]!r} at "
                                  f"{iso_utc(ts)}; only finite values are stored", path=source,
                                  row=first_row + i, ts=ts, rule="not_finite")


def refuse_unwritable_ts(frame: pl.DataFrame, source: str, first_row: int = 1) -> None:
    """Raise DataValidationError (rule ``ts_range``) at the first ts outside years 1..9999."""
    ts = frame["ts"].to_numpy()
    bad = ~in_iso_range(ts)
    if bad.any():
        i = int(bad.argmax())
        raise DataValidationError(f"ts {int(ts[i])} is not epoch ms of a date in years 1..9999",
                                  path=source, row=first_row + i, ts=int(ts[i]), rule="ts_range")
