"""The training test report: a run's model on its own test split, beside the baselines.

A training run's test metrics (loss, accuracy, F1 on the test split) say how well the model
predicts labels, not whether trading on it beats the obvious. :func:`training_report` backtests
the run's best weights on exactly the candles whose windows formed its test split (``data.test``
of ``run.json``: the first and last window end times) and puts the result beside the baselines
of :func:`workbench.research.baselines.backtest_baselines` on the same candles, with the verdict
in words. :func:`attach_training_report` stores it in ``run.json`` as ``test_report``; ``workbench
train`` and notebook 02 call it after a run completes.

It lives here, not in :mod:`workbench.train`, because it needs the backtest engine and the
baselines, which sit above the training layer (``.importlinter``).

No lookahead: the test split lies after every training and validation label
(:func:`workbench.train.datamodule.chronological_splits`); each backtest signal comes from the
window that ends at its candle (the engine's batched inference, checked by
:func:`workbench.backtest.engine.model_lookahead_check`) and every baseline rule is causal.
"""
from __future__ import annotations

from workbench.backtest.engine import BacktestConfig, run_backtest
from workbench.backtest.simulate import SimConfig
from workbench.errors import ParameterError
from workbench.research.baselines import backtest_baselines
from workbench.runs import read_run, update_run
from workbench.train.lineage import trained_on
from workbench.units import finite_or_none


def split_range(record: dict) -> tuple[int, int]:
    """Return the (first, last) candle time of a run's test split, from its ``run.json``.

    Raises
    ------
    ParameterError : when the run has not recorded its splits (not started, or a child run saved
        by a live session, which has no test split).
    """
    test = (record.get("data") or {}).get("test") or {}
    if "first_ts" not in test or "last_ts" not in test:
        raise ParameterError(f"run {record.get('run_id')!r} has no test split in its run.json "
                             "(data.test); only a trained run has a test report")
    return int(test["first_ts"]), int(test["last_ts"])


def training_report(run_id: str, store, *, db=None, sim: SimConfig | None = None,
                    draws: int = 100, seed: int = 0) -> dict:
    """Return the test report of a completed run: its test-split backtest beside the baselines.

    Parameters
    ----------
    run_id : the run; its ``run.json`` must hold ``data.test`` (a completed training run).
    store : the store holding the run's candles.
    db : the database whose runs folder holds the run (default: the store's).
    sim : the simulator settings (default: :class:`SimConfig`'s, as ``workbench backtest``).
    draws, seed : the random-entry baseline's draws and seed.

    Returns
    -------
    dict with ``symbol``, ``timeframe``, ``start_ts``, ``end_ts``, ``n_bars``, ``test_metrics``
    (the run's own), ``baselines`` (:func:`~workbench.research.baselines.compare`'s table, the
    model's row included) and ``verdict``; non-finite numbers are ``None``.
    """
    db = db or store.path
    record = read_run(run_id, db)
    if record.get("status") != "completed":
        raise ParameterError(f"run {run_id!r} is {record.get('status')!r}; a test report needs "
                             "a completed run")
    start, end = split_range(record)
    series = trained_on(run_id, db)
    result = run_backtest(BacktestConfig(symbol=series["symbol"], timeframe=series["timeframe"],
                                         start=start, end=end, model=run_id,
                                         sim=sim or SimConfig(), persist=False), store=store)
    table = backtest_baselines(result, store, draws=draws, seed=seed)
    return finite_or_none({"symbol": series["symbol"], "timeframe": series["timeframe"],
                           "start_ts": start, "end_ts": end, "n_bars": result.equity.height,
                           "test_metrics": record.get("test_metrics") or {},
                           "baselines": table, "verdict": table["verdict"]})


def attach_training_report(record: dict, store, *, db=None, draws: int = 100) -> dict:
    """Add :func:`training_report` to a completed run's ``run.json`` as ``test_report``.

    Returns the updated record; a run that did not complete is returned as it is (it has no
    test split to report on).
    """
    if record.get("status") != "completed":
        return record
    report = training_report(record["run_id"], store, db=db, draws=draws)
    return update_run(record["run_id"], db or store.path, test_report=report)
