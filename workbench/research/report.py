"""What the research notebook shows: the leaderboard, Optuna's plots, per-fold equity curves.

Data functions return polars frames; figure functions return plotly figures. They read only
what a sweep stored (DuckDB rows, the Optuna journal, the evaluations' Parquet curves), so a
read-only dashboard can show the latest sweep without running anything.
"""
from __future__ import annotations

import json

import polars as pl

from workbench.research.baselines import LABELS, RANDOM, SHOWN
from workbench.research.sweep import storage_path

_METRICS = ("oos_return", "oos_sharpe", "oos_max_drawdown")


def latest_sweep(store) -> str | None:
    """Return the id of the newest stored sweep, or None."""
    sweeps = store.sweeps()
    return sweeps["sweep_id"][0] if sweeps.height else None


def sweep_summary(store, sweep_id: str) -> dict:
    """Return the stored summary of a sweep (what ``workbench sweep --json`` printed)."""
    rows = store.sweeps().filter(pl.col("sweep_id") == sweep_id).to_dicts()
    if not rows:
        from workbench.errors import NotFoundError

        raise NotFoundError(f"no sweep {sweep_id!r} in {store.path}")
    return json.loads(rows[0]["summary"])


def leaderboard(store, sweep_id: str) -> pl.DataFrame:
    """Return trials x out-of-sample metrics, best first, with the baselines as extra rows.

    The baselines are those of the best trial's windows (every trial tests on the same recent
    rows, up to its window length).
    """
    trials = store.sweep_trials(sweep_id)
    rows = [{"name": f"trial {r['trial']}", "state": r["state"], "value": r["value"],
             **{m: r[m] for m in _METRICS}, "params": r["params"]} for r in trials.to_dicts()]
    base = sweep_summary(store, sweep_id).get("baselines") or {}
    for name, label in LABELS.items():
        if name in base:
            b = base[name]
            rows.append({"name": label, "state": "baseline", "value": None,
                         "oos_return": b["return_pct"], "oos_sharpe": b["sharpe"],
                         "oos_max_drawdown": b["max_drawdown"], "params": None})
    if RANDOM in base:
        rows.append({"name": f"random entries (mean of {base[RANDOM]['draws']})",
                     "state": "baseline", "value": None, "oos_return": base[RANDOM]["return_pct"],
                     "oos_sharpe": None, "oos_max_drawdown": None, "params": None})
    frame = pl.DataFrame(rows, schema_overrides={"value": pl.Float64, "oos_sharpe": pl.Float64,
                                                 "oos_max_drawdown": pl.Float64})
    return frame.sort("oos_return", descending=True, nulls_last=True)


def baselines_frame(table: dict) -> pl.DataFrame:
    """Return :func:`~workbench.research.baselines.compare`'s table as rows to show: the model,
    each rule baseline, and the random entries (mean return; spread and the model's percentile
    in ``note``)."""
    rows = [{"name": "model", **{k: table["model"][k] for k in SHOWN}, "note": ""}]
    rows += [{"name": label, **{k: table[n][k] for k in SHOWN}, "note": ""}
             for n, label in LABELS.items() if n in table]
    if RANDOM in table:
        r = table[RANDOM]
        rows.append({"name": f"random entries (mean of {r['draws']})",
                     "return_pct": r["return_pct"], "sharpe": None, "max_drawdown": None,
                     "n_trades": r["n_trades"],
                     "note": f"5-95 %: {r['return_p05']:+.2%} .. {r['return_p95']:+.2%}; the "
                             f"model ranks at the {r['model_percentile']:.0f}th percentile"})
    return pl.DataFrame(rows, schema_overrides={"return_pct": pl.Float64, "sharpe": pl.Float64,
                                                "max_drawdown": pl.Float64})


def load_study(store, sweep_id: str):
    """Return the Optuna study of a sweep from the journal beside the database."""
    import optuna

    from workbench.research.sweep import _storage

    return optuna.load_study(study_name=sweep_id, storage=_storage(storage_path(store.path)))


def optuna_figures(study) -> dict:
    """Return Optuna's parameter-importance and parallel-coordinate plots (plotly), those that
    can be drawn: importances need two completed trials whose parameters differ."""
    from optuna import visualization as vis

    figures = {"parallel_coordinate": vis.plot_parallel_coordinate(study)}
    try:
        figures["param_importances"] = vis.plot_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        pass  # too few or identical trials: nothing to rank
    return figures


def best_evaluation_id(store, sweep_id: str) -> str | None:
    """Return the evaluation id of a sweep's best trial (None without a completed trial)."""
    best = sweep_summary(store, sweep_id).get("best_trial")
    rows = store.sweep_trials(sweep_id).filter(pl.col("trial") == best) if best is not None \
        else None
    return rows["evaluation_id"][0] if rows is not None and rows.height else None


def fold_equity(store, evaluation_id: str) -> pl.DataFrame:
    """Return the chained out-of-sample curve (ts, fold, returns, equity) of an evaluation."""
    rows = store.evaluations().filter(pl.col("evaluation_id") == evaluation_id).to_dicts()
    if not rows:
        return pl.DataFrame()
    return pl.read_parquet(json.loads(rows[0]["summary"])["oos_equity_path"])


def fold_equity_figure(curve: pl.DataFrame, title: str):
    """Return a plotly figure with one out-of-sample equity line per fold."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for (fold,), part in curve.group_by("fold", maintain_order=True):
        fig.add_trace(go.Scatter(x=pl.from_epoch(part["ts"], time_unit="ms").to_list(),
                                 y=part["equity"].to_list(), mode="lines", name=f"fold {fold}"))
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title="equity ($)",
                      yaxis_tickformat=",.0f")
    return fig
