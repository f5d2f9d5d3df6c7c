"""Walk-forward evaluation: a fresh run per fold, its out-of-sample backtest, baselines beside.

:func:`evaluate` cuts the series into :func:`~workbench.research.folds.fold_ranges`, trains one
new run per fold on the fold's training rows through the torch engine
(:func:`workbench.train.runs.train`, each run tagged with the evaluation id and the fold in its
``run.json``), backtests the model on the following out-of-sample rows
(:func:`workbench.backtest.engine.run_backtest`) and chains the folds' per-bar returns into one
out-of-sample equity curve. The baselines of :mod:`workbench.research.baselines` run on exactly
the same windows. The result is stored in the ``evaluations`` and ``folds`` tables, with the
folds' backtests in ``backtest_results``, in one transaction (a failed evaluation leaves no fold
backtest behind), and the curve in ``<runs>/evaluations/<id>/oos_equity.parquet``. The series
is read from the store once (:class:`~workbench.data.store.snapshot.SeriesSnapshot`): every fold
sees the same candles.

An evaluation is the project's one active job: it holds the active-run lock (under its own id)
for its whole length and its fold runs train under it. Inside a sweep, the sweep holds the lock
and passes its id as ``under_job``.
"""
from __future__ import annotations

import contextlib
import copy
import secrets
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from workbench.backtest.engine import (BacktestConfig, backtest_row, run_backtest,
                                       write_backtest_files)
from workbench.backtest.simulate import SimConfig
from workbench.data.store.snapshot import SeriesSnapshot
from workbench.errors import NotFoundError, ParameterError
from workbench.research import baselines as bl
from workbench.research.folds import fold_ranges, min_purge
from workbench.research.overfitting import return_intervals
from workbench.runs import ActiveRunLock, runs_dir, update_run
from workbench.train.runs import train
from workbench.units import finite_or_none


@dataclass(frozen=True)
class EvaluateSpec:
    """How to cut and score an evaluation (``None`` sizes: derived, see :func:`plan_folds`)."""

    folds: int = 3
    scheme: str = "rolling"
    purge: int | None = None  # default: the window length plus the label horizon
    embargo: int = 0
    train_size: int | None = None
    test_size: int | None = None
    sim: SimConfig = field(default_factory=SimConfig)
    draws: int = 100  # random-entry baseline draws
    seed: int = 0


def new_evaluation_id() -> str:
    """Return a fresh evaluation id: ``ev-YYYYmmdd-HHMMSS-<6 hex>``."""
    return f"ev-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def label_horizon(data_cfg) -> int:
    """Rows a label looks ahead: the next candle, or the pivot confirmation (strength) rows."""
    return 1 + (data_cfg.pivot_strength if "pivot" in data_cfg.label_sources else 0)


def plan_folds(config, spec: EvaluateSpec, n_rows: int):
    """Return the folds for a series of ``n_rows`` candles and a training config.

    The default training window is what the run would use anyway (``data.max_windows`` windows
    plus one window of history), the default test window a third of it; both fall back to
    :func:`fold_ranges`' defaults when the series is too short for them.

    Raises
    ------
    ParameterError : when ``purge`` is below the window length plus the label horizon.
    """
    need = min_purge(config.model.window, label_horizon(config.data))
    purge = need if spec.purge is None else spec.purge
    if purge < need:
        raise ParameterError(f"purge {purge} is below window {config.model.window} + label "
                             f"horizon {need - config.model.window} = {need}: a training label "
                             "would overlap the test window's inputs")
    train_size, test_size = spec.train_size, spec.test_size
    if train_size is None and config.data.max_windows:
        train_size = config.data.max_windows + config.model.window
        test_size = test_size or max(1, train_size // 3)
        if n_rows < train_size + purge + spec.folds * (test_size + spec.embargo):
            train_size = test_size = None if spec.test_size is None else test_size
    return fold_ranges(n_rows, spec.folds, test_size=test_size, train_size=train_size,
                       scheme=spec.scheme, purge=purge, embargo=spec.embargo)


def require_candles(data_cfg, path, n_rows: int) -> None:
    """Raise NotFoundError, saying how to ingest them, when the series has no candles."""
    if n_rows == 0:
        ranged = data_cfg.start is not None or data_cfg.end is not None
        raise NotFoundError(
            f"series {data_cfg.symbol} {data_cfg.timeframe} in {path} has no "
            f"candles{' in the chosen range' if ranged else ''}; ingest them first: workbench "
            f"data ingest FILE --symbol {data_cfg.symbol} --timeframe {data_cfg.timeframe} "
            "(make demo ingests the shipped data)")


def _fold_config(config, ts: np.ndarray, fold, evaluation_id: str):
    cfg = copy.deepcopy(config)
    cfg.data.start, cfg.data.end = int(ts[fold.train_start]), int(ts[fold.train_end - 1])
    cfg.callbacks.progress = False
    cfg.output.run_name = f"{evaluation_id}-f{fold.index}".replace(".", "-")
    return cfg


def _run_fold(config, frame: pl.DataFrame, fold, ctx: dict) -> tuple[dict, bl.Segment]:
    """Train the fold's run, backtest its test window; return the fold row and its segment.

    The backtest's files are written now; its summary row goes to ``ctx["backtests"]``, stored
    with the evaluation (:func:`_finish`).
    """
    ts = frame["ts"].to_numpy()
    extra = ctx["fold_callbacks"](fold.index) if ctx["fold_callbacks"] else ()
    record = train(_fold_config(config, ts, fold, ctx["id"]), db=ctx["db"], store=ctx["store"],
                   under_job=ctx["job"], callbacks=extra)
    update_run(record["run_id"], ctx["db"], evaluation_id=ctx["id"], fold=fold.index,
               **ctx["tags"])
    bt = run_backtest(BacktestConfig(
        symbol=config.data.symbol, timeframe=config.data.timeframe, start=int(ts[fold.test_start]),
        end=int(ts[fold.test_end - 1]), model=record["run_id"], sim=ctx["spec"].sim,
        persist=False), store=ctx["store"])
    ctx["folders"].append(write_backtest_files(bt, ctx["store"]))
    ctx["backtests"].append(backtest_row(bt))
    test = frame.slice(fold.test_start, fold.test_end - fold.test_start)
    open_, close = test["open"].to_numpy(), test["close"].to_numpy()
    segment = bl.Segment(open_, close, bt.equity["signal"].to_numpy())
    head = bt.headline()
    row = {"fold": fold.index, "run_id": record["run_id"], "backtest_id": bt.backtest_id,
           "train_start_ts": int(ts[fold.train_start]), "train_end_ts": int(ts[fold.train_end - 1]),
           "test_start_ts": int(ts[fold.test_start]), "test_end_ts": int(ts[fold.test_end - 1]),
           **{k: head[k] for k in ("return_pct", "sharpe", "max_drawdown", "n_trades",
                                   "buy_hold_return")},
           "val_loss": (record.get("best_metrics") or {}).get("val_loss")}
    return row, segment


@contextlib.contextmanager
def active_job(job_id: str, db=None, under_job: str | None = None):
    """Hold the project's active-run lock for job ``job_id`` (unless already under a job)."""
    if under_job is not None:
        ActiveRunLock(db).check_held_by(under_job)
        yield under_job
        return
    lock = ActiveRunLock(db)
    lock.acquire(job_id)
    try:
        yield job_id
    finally:
        lock.release()


def _oos_frame(frame: pl.DataFrame, folds, returns: np.ndarray, cash: float) -> pl.DataFrame:
    parts = [frame["ts"].slice(f.test_start, f.test_end - f.test_start) for f in folds]
    fold_of = np.concatenate([np.full(f.test_end - f.test_start, f.index) for f in folds])
    return pl.DataFrame({"ts": pl.concat(parts), "fold": fold_of, "returns": returns,
                         "equity": cash * np.cumprod(1.0 + returns)})


def evaluate(config, spec: EvaluateSpec, store, *, db=None, evaluation_id: str | None = None,
             under_job: str | None = None, tags: dict | None = None, progress=None,
             fold_callbacks=None) -> dict:
    """Run a walk-forward evaluation of ``config`` and store it; return its summary.

    Parameters
    ----------
    config : the training configuration (a :class:`~workbench.train.config.TrainConfig`).
    spec : folds, scheme, purge, embargo, sizes, simulator settings.
    store : the store holding the candles; the result is written to it.
    db : the database path whose runs folder holds the fold runs (default: the store's).
    under_job : run under this active job (a sweep) instead of taking the lock.
    tags : extra fields for each fold's ``run.json`` and the evaluation row (sweep id, trial).
    progress : called as ``progress(done, total)`` after each fold.
    fold_callbacks : ``fn(fold_index) -> [Lightning callbacks]`` for that fold's run (pruning).

    Returns
    -------
    dict with ``evaluation_id``, ``folds`` (one row per fold), ``oos`` (chained out-of-sample
    statistics with bootstrap CIs), ``baselines`` (:func:`baselines.compare` on the same
    windows, its ``verdict`` included), ``oos_returns`` (per-bar, for PBO/DSR) and paths.
    """
    db = db or store.path
    # one read of the series: the folds' runs and backtests slice it in memory
    store = SeriesSnapshot(store, config.data.symbol, config.data.timeframe)
    frame = store.read_ohlcv(config.data.symbol, config.data.timeframe, config.data.start,
                             config.data.end)
    require_candles(config.data, store.path, frame.height)
    folds = plan_folds(config, spec, frame.height)
    evaluation_id = evaluation_id or new_evaluation_id()
    rows, segments = [], []
    ctx = {"id": evaluation_id, "db": db, "store": store, "spec": spec, "tags": dict(tags or {}),
           "fold_callbacks": fold_callbacks, "backtests": [], "folders": []}
    try:
        with active_job(evaluation_id, db, under_job) as job:
            ctx["job"] = job
            for fold in folds:
                row, seg = _run_fold(config, frame, fold, ctx)
                rows.append(row)
                segments.append(seg)
                if progress is not None:
                    progress(fold.index + 1, len(folds))
        return _finish(config, spec, store, db, evaluation_id, frame, folds, rows, segments,
                       ctx)
    except BaseException:
        for folder in ctx["folders"]:  # the fold backtests are stored with the evaluation or not
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _finish(config, spec, store, db, evaluation_id, frame, folds, rows, segments, ctx) -> dict:
    table = bl.compare(segments, config.data.timeframe, spec.sim, draws=spec.draws,
                       seed=spec.seed)
    returns = np.concatenate([bl.bar_returns(s.open, s.close, s.signal, spec.sim)[0]
                              for s in segments])
    ci = return_intervals(returns, draws=500, seed=spec.seed)
    oos = {**table["model"], "n_bars": int(returns.size), "sharpe_per_bar": ci["sharpe"],
           "sharpe_per_bar_ci": ci["sharpe_ci"], "hit_rate": ci["hit_rate"],
           "hit_rate_ci": ci["hit_rate_ci"]}
    folder = runs_dir(db) / "evaluations" / evaluation_id
    folder.mkdir(parents=True, exist_ok=True)
    equity_path = folder / "oos_equity.parquet"
    _oos_frame(frame, folds, returns, spec.sim.cash).write_parquet(equity_path)
    summary = {"evaluation_id": evaluation_id, "symbol": config.data.symbol,
               "timeframe": config.data.timeframe, "model_type": config.model.type,
               "scheme": spec.scheme, "purge": folds[0].test_start - folds[0].train_end,
               "embargo": spec.embargo, "folds": rows, "oos": oos, "baselines": table,
               "verdict": table["verdict"], "oos_equity_path": str(equity_path), **ctx["tags"]}
    summary = finite_or_none(summary)
    # one transaction: the evaluation, its folds and the folds' backtests
    store.save_evaluation(_evaluation_row(summary, len(rows)), summary["folds"], ctx["backtests"])
    return {**summary, "oos_returns": returns}


def _evaluation_row(summary: dict, n_folds: int) -> dict:
    oos = summary["oos"]
    keep = ("evaluation_id", "sweep_id", "trial", "symbol", "timeframe", "model_type", "scheme",
            "purge", "embargo", "verdict")
    return {**{k: summary[k] for k in keep if k in summary}, "folds": n_folds,
            "oos_return": oos["return_pct"], "oos_sharpe": oos["sharpe"],
            "oos_max_drawdown": oos["max_drawdown"], "oos_n_trades": oos["n_trades"],
            "summary": {k: v for k, v in summary.items() if k != "folds"}}
