"""What the ledger page shows: the ledger aggregated per run and per session, not per version.

A live session that trains publishes a new model version per step, so a ledger soon holds
hundreds of versions with a handful of frames each; a table or a legend per version is unreadable
and every row has n = 1. These pure polars functions aggregate the rows of
:meth:`Store.read_ledger` by the columns that name a run or a session (and any lineage column a
later ledger adds, see :data:`GROUP_COLUMNS`), keep the range of model versions as two columns,
bucket confidence into at most ten buckets for a reliability diagram and bin time for a hit rate
over time. Counts are ``Int64`` (never a ``decimal[38,0]``).

A prediction is a hit when its action equals the realised one
(:func:`workbench.actions.realised_actions`: BUY above ``+hold_band`` percent, SELL below
``-hold_band``, HOLD in between), as in :func:`workbench.live.ledger.ledger_summary`.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from workbench.actions import ACTIONS, HOLD_BAND, realised_actions
from workbench.errors import ParameterError

#: the columns a ledger can be grouped by, coarsest first; absent ones are skipped
GROUP_COLUMNS = ("run_id", "parent_run_id", "session_id")
MAX_BUCKETS = 10


def group_columns(ledger: pl.DataFrame) -> list[str]:
    """The :data:`GROUP_COLUMNS` this ledger has (a lineage column counts once it exists)."""
    return [c for c in GROUP_COLUMNS if c in ledger.columns]


def scored(ledger: pl.DataFrame, hold_band: float = HOLD_BAND) -> pl.DataFrame:
    """Rows whose outcome is known, with ``realised_action`` and ``hit`` (bool) added.

    The realised action is :func:`workbench.actions.realised_actions`, the rule the store's
    ledger SQL and the live labels use.
    """
    known = ledger.filter(pl.col("realised_move").is_not_null())
    names = np.asarray(ACTIONS)[realised_actions(known["realised_move"].to_numpy(), hold_band)]
    return known.with_columns(pl.Series("realised_action", names, dtype=pl.String)) \
        .with_columns((pl.col("predicted_action") == pl.col("realised_action")).alias("hit"))


def summary_by(rows: pl.DataFrame, by: str | list[str]) -> pl.DataFrame:
    """Per group: frames, hits, hit rate, mean confidence, the time span and model versions.

    ``rows`` come from :func:`scored`; groups are ordered by their first prediction.
    """
    keys = [by] if isinstance(by, str) else list(by)
    _check(rows, keys)
    return rows.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("hit").sum().cast(pl.Int64).alias("hits"),
        pl.col("hit").mean().alias("hit_rate"),
        pl.col("confidence").mean().alias("mean_confidence"),
        (pl.col("pred_close") - pl.col("actual_close")).abs().mean().alias("mae_close"),
        pl.col("prediction_ts").min().alias("first_ts"),
        pl.col("prediction_ts").max().alias("last_ts"),
        pl.col("model_version").min().alias("first_version"),
        pl.col("model_version").max().alias("last_version"),
        pl.col("model_version").n_unique().cast(pl.Int64).alias("versions"),
    ).sort("first_ts")


def by_action(rows: pl.DataFrame) -> pl.DataFrame:
    """Per predicted action over all rows: n, hits, hit rate, mean confidence."""
    _check(rows, ["predicted_action"])
    return rows.group_by("predicted_action").agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("hit").sum().cast(pl.Int64).alias("hits"),
        pl.col("hit").mean().alias("hit_rate"),
        pl.col("confidence").mean().alias("mean_confidence")).sort("predicted_action")


def reliability(rows: pl.DataFrame, by: str, buckets: int = MAX_BUCKETS) -> pl.DataFrame:
    """Per group and confidence bucket: n, mean confidence and realised accuracy.

    Confidence in [0, 1] is cut into ``buckets`` equal buckets (at most :data:`MAX_BUCKETS`);
    a confidence of exactly 1 falls in the top bucket.
    """
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ParameterError(f"buckets {buckets} must lie in 1..{MAX_BUCKETS} (a reliability "
                             "diagram with more buckets has too few frames per point)")
    _check(rows, [by])
    bucket = (pl.col("confidence") * buckets).floor().clip(0, buckets - 1).cast(pl.Int64)
    return rows.with_columns(bucket.alias("bucket")).group_by(by, "bucket").agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("confidence").mean().alias("mean_confidence"),
        pl.col("hit").mean().alias("accuracy")).sort(by, "bucket")


def hit_rate_over_time(rows: pl.DataFrame, by: str, bins: int = 20) -> pl.DataFrame:
    """Per group and time bin (``bins`` equal spans of the whole range): n and hit rate."""
    _check(rows, [by])
    if rows.height == 0:
        return pl.DataFrame(schema={by: rows.schema[by], "ts": pl.Int64, "n": pl.Int64,
                                    "hit_rate": pl.Float64})
    t0, t1 = int(rows["prediction_ts"].min()), int(rows["prediction_ts"].max())
    width = max(1, -(-(t1 - t0 + 1) // max(1, bins)))
    return rows.with_columns(
        (t0 + (pl.col("prediction_ts") - t0) // width * width).alias("ts")
    ).group_by(by, "ts").agg(pl.len().cast(pl.Int64).alias("n"),
                             pl.col("hit").mean().alias("hit_rate")).sort(by, "ts")


def _check(rows: pl.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ParameterError(f"ledger rows lack column(s) {missing}; they have "
                             f"{', '.join(rows.columns)}")
