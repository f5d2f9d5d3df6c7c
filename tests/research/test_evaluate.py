"""Walk-forward evaluation on the real ETH slice: fold runs, OOS backtests, baselines, DuckDB."""
from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.errors import ActiveRunError, ParameterError
from workbench.research.baselines import BASELINES, RANDOM
from workbench.research.evaluate import EvaluateSpec, evaluate, plan_folds
from workbench.train.config import config_from_dict
from workbench.runs import ActiveRunLock, read_run


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
