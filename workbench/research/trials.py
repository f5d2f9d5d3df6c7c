"""A sweep's trials read back from the store: their out-of-sample returns and the statistics.

Each completed trial's evaluation wrote its chained out-of-sample returns to
``oos_equity.parquet``; :func:`trial_returns` aligns them on candle time (an inner join, since
trials whose window length differs test on slightly different rows) into a (T, N) matrix, which
is what the Deflated Sharpe Ratio and the PBO need (:func:`sweep_statistics`).
"""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl

from workbench.research import overfitting as of


def trial_returns(trials: pl.DataFrame, evaluations: pl.DataFrame) -> pl.DataFrame:
    """Return ``ts`` plus one column ``t<number>`` of per-bar OOS returns per completed trial.

    ``trials`` and ``evaluations`` are a sweep's rows as :meth:`Store.sweep_trials` and
    :meth:`Store.evaluations` return them.
    """
    evals = {r["evaluation_id"]: json.loads(r["summary"]) for r in evaluations.to_dicts()}
    wide = None
    for row in trials.filter(pl.col("state") == "COMPLETE").to_dicts():
        summary = evals.get(row["evaluation_id"])
        if summary is None:
            continue
        col = pl.read_parquet(summary["oos_equity_path"]).select(
            "ts", pl.col("returns").alias(f"t{row['trial']}"))
        wide = col if wide is None else wide.join(col, on="ts", how="inner")
    return wide if wide is not None else pl.DataFrame({"ts": []}, schema={"ts": pl.Int64})


def trials_frame(rows: list[dict]) -> pl.DataFrame:
    """Return trial rows (``params`` as a dict) as :meth:`Store.sweep_trials` would frame them."""
    return pl.DataFrame([{**r, "params": json.dumps(r["params"], sort_keys=True)} for r in rows],
                        schema_overrides={"trial": pl.Int64, "state": pl.String,
                                          "params": pl.String, "value": pl.Float64,
                                          "evaluation_id": pl.String}, infer_schema_length=None)


def _pbo_blocks(n_rows: int) -> int:
    blocks = min(10, n_rows // 2)
    return blocks - blocks % 2


def _best(trials: list[dict], direction: str) -> dict | None:
    done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: t["value"])


def sweep_statistics(trials: pl.DataFrame, evaluations: pl.DataFrame, direction: str) -> dict:
    """Return the best trial, its parameters, the DSR, the PBO and the luck sentence.

    ``trials`` and ``evaluations`` are the sweep's rows (:meth:`Store.sweep_trials`,
    :meth:`Store.evaluations` of the sweep id), read once by the caller. Values that cannot be
    computed (fewer than two completed trials for the PBO, say) are ``None`` with the reason
    under ``notes``; nothing non-finite is reported as a result.
    """
    rows = trials.to_dicts()
    best = _best(rows, direction)
    out = {"best_trial": None, "best_value": None, "best_params": None, "deflated_sharpe": None,
           "dsr": None, "pbo": None, "pbo_splits": None, "luck": None, "baselines": None,
           "verdict": None, "notes": []}
    if best is None:
        out["notes"].append("no trial completed")
        return out
    out.update(best_trial=best["trial"], best_value=best["value"],
               best_params=json.loads(best["params"]))
    _add_baselines(out, evaluations, best["evaluation_id"])
    wide = trial_returns(trials, evaluations)
    cols = [c for c in wide.columns if c != "ts"]
    if wide.height < 3 or not cols:
        out["notes"].append("too few aligned out-of-sample returns for the DSR")
        return out
    matrix = wide.select(cols).to_numpy()
    srs = np.array([of.sharpe_per_obs(matrix[:, j]) for j in range(len(cols))])
    dsr = of.deflated_sharpe(matrix[:, cols.index(f"t{best['trial']}")], srs,
                             n_trials=len(rows))
    if math.isfinite(dsr.deflated_sharpe):
        out.update(deflated_sharpe=dsr.deflated_sharpe, dsr=dsr.to_dict())
    out["luck"] = of.luck_sentence(dsr.deflated_sharpe, len(rows))
    _add_pbo(out, matrix)
    return out


def _add_pbo(out: dict, matrix: np.ndarray) -> None:
    blocks = _pbo_blocks(matrix.shape[0])
    if matrix.shape[1] < 2 or blocks < 2:
        out["notes"].append("the PBO needs at least two completed trials and four aligned bars")
        return
    result = of.pbo(matrix, n_blocks=blocks)
    out.update(pbo=result.pbo, pbo_splits=result.n_splits)


def _add_baselines(out: dict, evaluations: pl.DataFrame, evaluation_id: str) -> None:
    rows = evaluations.filter(pl.col("evaluation_id") == evaluation_id).to_dicts()
    if rows:
        summary = json.loads(rows[0]["summary"])
        out.update(baselines=summary.get("baselines"), verdict=summary.get("verdict"))
