"""The training test report: a run's test-split backtest beside every baseline, in run.json."""
from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from workbench.backtest.engine import BacktestConfig, run_backtest
from workbench.cli import app
from workbench.errors import ParameterError
from workbench.research.baselines import BASELINES, LABELS, RANDOM, SHOWN
from workbench.research.report import baselines_frame
from workbench.research.training_report import split_range, training_report
from workbench.runs import read_run, update_run


@pytest.fixture
def trained(eth_store, tiny_lstm, tmp_path) -> dict:
    """``workbench train --json`` of the tiny LSTM: the record it printed."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps(tiny_lstm))  # JSON is YAML
    out = CliRunner().invoke(app, ["--db", str(eth_store.path), "train", "--config", str(cfg),
                                   "--draws", "100", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _verdict_agrees(table: dict) -> None:
    """Each baseline is named among those the model 'does not beat' exactly when its return is
    at least the model's, and the random-entry percentile is quoted."""
    found = re.search(r"does not beat (?:any baseline: )?(.*?)(?:; it |\.$)", table["verdict"])
    lost = found.group(1) if found else ""
    model = table["model"]["return_pct"]
    for name in BASELINES:
        assert (f"{LABELS[name]} (" in lost) == (model <= table[name]["return_pct"]), \
            (name, table["verdict"])
    assert ("beats every baseline" in table["verdict"]) == (not lost)
    assert f"{table[RANDOM]['model_percentile']:.0f}th percentile" in table["verdict"]


def test_train_reports_the_test_split_beside_every_baseline(trained, eth_store):
    report = trained["test_report"]
    table = report["baselines"]
    assert set(table) == {"model", *BASELINES, RANDOM, "verdict"}
    assert report["verdict"] == table["verdict"] and report["verdict"].startswith("The model (")
    assert table[RANDOM]["draws"] == 100 and 0 <= table[RANDOM]["model_percentile"] <= 100
    for name in ("model", *BASELINES):
        assert set(table[name]) == set(SHOWN)
    assert table["flat"]["return_pct"] == 0 and table["flat"]["n_trades"] == 0
    _verdict_agrees(table)
    # the test split only: after every validation window, and exactly its candles
    data = trained["data"]
    assert (report["start_ts"], report["end_ts"]) == (data["test"]["first_ts"],
                                                      data["test"]["last_ts"])
    assert report["start_ts"] > data["val"]["last_ts"]
    assert report["test_metrics"] == trained["test_metrics"] and report["test_metrics"]
    # the model row is the run's own backtest of that range
    bt = run_backtest(BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=report["start_ts"],
                                     end=report["end_ts"], model=trained["run_id"], persist=False),
                      store=eth_store)
    assert report["n_bars"] == bt.equity.height == data["test"]["windows"]
    assert table["model"]["n_trades"] == bt.trades.height  # open ones included
    assert table["model"]["return_pct"] == pytest.approx(bt.headline()["return_pct"], abs=1e-9)
    # stored with the run, and shown as one row per baseline
    assert read_run(trained["run_id"], eth_store.path)["test_report"] == report
    frame = baselines_frame(table)
    assert frame.height == 2 + len(BASELINES) and frame["name"][0] == "model"


def test_verdict_names_what_the_model_loses_to():
    flat = {"return_pct": 0.0, "sharpe": 0.0, "max_drawdown": 0.0, "n_trades": 0}
    table = {"model": {**flat, "return_pct": 0.01, "n_trades": 4},
             **{n: dict(flat) for n in BASELINES},
             RANDOM: {"draws": 100, "model_percentile": 80.0}}
    table["buy_hold"]["return_pct"] = 0.05
    from workbench.research.baselines import verdict

    table["verdict"] = verdict(table)
    assert "does not beat buy & hold (+5.00%)" in table["verdict"]
    _verdict_agrees(table)


def test_a_run_without_a_test_split_has_no_report(trained, eth_store):
    with pytest.raises(ParameterError, match="no test split"):
        split_range({"run_id": "x", "data": {}})
    update_run(trained["run_id"], eth_store.path, status="failed")
    with pytest.raises(ParameterError, match="'failed'; a test report needs a completed run"):
        training_report(trained["run_id"], eth_store)
