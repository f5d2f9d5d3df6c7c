"""Walk-forward evaluation on the real ETH slice: fold runs, OOS backtests, baselines, DuckDB."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import polars as pl
import pytest
from lightning.pytorch.callbacks import Callback
from typer.testing import CliRunner

from workbench.cli import app
from workbench.errors import ActiveRunError, NotFoundError, ParameterError, RunError
from workbench.research.baselines import BASELINES, RANDOM
from workbench.research.evaluate import EvaluateSpec, evaluate, plan_folds
from workbench.train.config import config_from_dict
from workbench.runs import ActiveRunLock, read_run, runs_dir


def test_evaluate_cli_reports_folds_oos_stats_and_every_baseline(eth_store, tiny_lstm, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps(tiny_lstm))  # JSON is YAML
    out = CliRunner().invoke(app, ["--db", str(eth_store.path), "evaluate", "--config", str(cfg),
                                   "--folds", "2", "--draws", "100", "--json"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    s = json.loads(out.stdout)
    assert [f["fold"] for f in s["folds"]] == [0, 1]
    assert set(s["baselines"]) >= {"model", *BASELINES, RANDOM, "verdict"}
    assert s["baselines"][RANDOM]["draws"] == 100
    assert 0 <= s["baselines"][RANDOM]["model_percentile"] <= 100
    assert s["verdict"].startswith("The model (")
    oos = s["oos"]
    assert oos["sharpe_per_bar_ci"][0] <= oos["sharpe_per_bar"] <= oos["sharpe_per_bar_ci"][1]
    # stored: one evaluation, its folds, each fold a run tagged with the evaluation id
    row = eth_store.evaluations().row(0, named=True)
    assert row["evaluation_id"] == s["evaluation_id"] and row["folds"] == 2
    assert row["oos_return"] == pytest.approx(oos["return_pct"])
    folds = eth_store.folds(s["evaluation_id"])
    assert folds["run_id"].to_list() == [f["run_id"] for f in s["folds"]]
    for f in s["folds"]:
        run = read_run(f["run_id"], eth_store.path)
        assert run["status"] == "completed" and run["evaluation_id"] == s["evaluation_id"]
        assert f["train_end_ts"] < f["test_start_ts"]
    equity = pl.read_parquet(s["oos_equity_path"])
    assert equity.height == oos["n_bars"] and equity["fold"].unique().sort().to_list() == [0, 1]
    assert equity["equity"][-1] == pytest.approx(10_000 * (1 + oos["return_pct"]))
    # each fold's backtest is stored with the evaluation: its row and its files
    backtests = eth_store.backtests()
    assert sorted(backtests["backtest_id"]) == sorted(f["backtest_id"] for f in s["folds"])
    for row in backtests.to_dicts():
        assert row["run_id"] in folds["run_id"].to_list()
        assert Path(row["trades_path"]).is_file() and Path(row["equity_path"]).is_file()


def test_an_evaluation_opens_the_store_twice_and_stores_its_folds_labels(eth_store, tiny_lstm,
                                                                         file_opens):
    """One read of the series, one write of the whole result with the folds' derived labels.

    Every open of the DuckDB file costs about 35 ms of CPU, and the processes of a sweep take
    turns on its lock; a 2-fold evaluation opened it 12 times before the series snapshot, the
    one final transaction and the labels held until it.
    """
    s = evaluate(config_from_dict(tiny_lstm), EvaluateSpec(folds=2, draws=20), eth_store)
    assert len(file_opens) == 2, file_opens
    assert eth_store.backtests().height == 2 and eth_store.folds(s["evaluation_id"]).height == 2
    # each fold's rule labels of its training samples, as a plain training run writes them
    labels = eth_store.read_annotations("ETH/USDT", "1m", sources=["rule"])
    for fold in s["folds"]:
        inside = labels.filter(pl.col("ts").is_between(fold["train_start_ts"],
                                                       fold["train_end_ts"]))
        assert inside.height >= 200 and set(inside["action"]) <= {"BUY", "SELL", "HOLD"}


def test_a_failed_evaluation_leaves_no_fold_backtest_behind(eth_store, tiny_lstm):
    """A trial pruned or failing in its second fold: the first fold's backtest goes too."""

    class Fail(Callback):
        def on_train_start(self, trainer, pl_module):
            raise optuna.TrialPruned("pruned in fold 1")

    with pytest.raises(RunError, match="TrialPruned: pruned in fold 1"):
        evaluate(config_from_dict(tiny_lstm), EvaluateSpec(folds=2, draws=20), eth_store,
                 fold_callbacks=lambda fold: [Fail()] if fold == 1 else [])
    assert eth_store.backtests().height == 0 and eth_store.evaluations().height == 0
    assert list(runs_dir(eth_store.path).rglob("backtests/*")) == []
    assert eth_store.read_annotations("ETH/USDT", "1m").height == 0  # nor the folds' labels


def test_an_empty_series_is_refused_with_how_to_ingest_it(tmp_path, tiny_lstm):
    from workbench.data.store import Store

    with pytest.raises(NotFoundError, match=r"series ETH/USDT 1m in .*empty.duckdb has no "
                                            r"candles; ingest them first: workbench data ingest"):
        evaluate(config_from_dict(tiny_lstm), EvaluateSpec(folds=3),
                 Store(tmp_path / "empty.duckdb"))
    with pytest.raises(ParameterError, match="20 rows are too few for 3 folds with purge 17"):
        plan_folds(config_from_dict(tiny_lstm), EvaluateSpec(folds=3, purge=17), 20)


def test_fold_runs_never_train_on_rows_the_test_window_reads(eth_store, tiny_lstm):
    config = config_from_dict(tiny_lstm)
    folds = plan_folds(config, EvaluateSpec(folds=3), 3000)
    horizon = 1  # rule labels look one candle ahead
    for f in folds:
        assert f.train_end - 1 + horizon < f.test_start - config.model.window + 1
    with pytest.raises(ParameterError, match="purge 5 is below window 16"):
        plan_folds(config, EvaluateSpec(folds=3, purge=5), 3000)


def test_evaluation_is_refused_while_another_run_is_active(eth_store, tiny_lstm):
    lock = ActiveRunLock(eth_store.path)
    lock.acquire("someone-else")
    try:
        with pytest.raises(ActiveRunError, match="someone-else"):
            evaluate(config_from_dict(tiny_lstm), EvaluateSpec(folds=2), eth_store)
    finally:
        lock.release()
    assert eth_store.evaluations().height == 0
