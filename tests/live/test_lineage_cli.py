"""Lineage through the real CLI: ``live --save`` writes a child run and leaves the parent's bytes
alone; a model used on another series is refused unless ``--allow-mismatch``."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.resample import resample_ohlcv
from workbench.features.windows import SeriesArrays, gather_windows
from workbench.runs import run_path
from workbench.train.handle import load_model

from ._live_helpers import quick_run

SYMBOL = "ETH/USDT"


def _digests(run_id, db) -> dict:
    folder = run_path(run_id, db) / "checkpoints"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ckpt")}


def _cli(store, *args):
    return CliRunner().invoke(app, ["--db", str(store.path), *args])


def parent_features(store):
    return SeriesArrays.from_frame(SYMBOL, "1m", store.read_ohlcv(SYMBOL, "1m")).features


@pytest.fixture
def lineage_env(eth_store):
    run_id = quick_run(eth_store, max_windows=200)
    ts = eth_store.read_ohlcv(SYMBOL, "1m")["ts"].to_numpy()
    return run_id, eth_store, ts


def test_live_save_writes_a_child_run_and_the_parent_checkpoints_keep_their_bytes(lineage_env):
    run_id, store, ts = lineage_env
    before = _digests(run_id, store.path)
    result = _cli(store, "live", "--model", run_id, "--symbol", SYMBOL, "--timeframe", "1m",
                  "--mode", "every_candle", "--start", str(int(ts[600])),
                  "--end", str(int(ts[680])), "--save", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    child = payload["saved_run_id"]
    assert child and child != run_id and payload["training_steps"] == 80
    assert _digests(run_id, store.path) == before  # the saved run is immutable
    shown = json.loads(_cli(store, "runs", "show", child, "--json").stdout)
    assert shown["parent_run_id"] == run_id and shown["status"] == "completed"
    assert shown["mode"] == "every_candle" and shown["training_steps"] == 80
    assert shown["candle_range"] == [int(ts[600]), int(ts[680])]
    assert shown["session_id"] == payload["session_id"]
    assert shown["trained_on"]["symbol"] == SYMBOL and shown["trained_on"]["window"] == 32
    listed = _cli(store, "runs", "list").stdout
    assert f"parent {run_id}" in next(line for line in listed.splitlines() if child in line)
    # reports show the pinned run, not the newest (the child)
    from workbench.ui.prepare import latest_model

    assert latest_model(SYMBOL, "1m", db=store.path) == child
    assert _cli(store, "runs", "pin", run_id).exit_code == 0
    assert latest_model(SYMBOL, "1m", db=store.path) == run_id
    # the child holds the session's trained weights, the parent its own
    parent, trained = load_model(run_id, store.path), load_model(child, store.path)
    windows, _ = gather_windows(parent_features(store), np.arange(100, 110), 32)
    assert not np.array_equal(parent.predict(windows).action_probs,
                              trained.predict(windows).action_probs)


def test_another_series_is_refused_unless_allowed_and_a_short_series_always(lineage_env):
    run_id, store, _ts = lineage_env
    one_min = store.read_ohlcv(SYMBOL, "1m")
    store.replace_series(SYMBOL, "5m", resample_ohlcv(one_min, "1m", "5m"))
    store.replace_series(SYMBOL, "1d", resample_ohlcv(one_min, "1m", "1d"))
    args = ["live", "--model", run_id, "--symbol", SYMBOL, "--json"]
    refused = _cli(store, *args, "--timeframe", "5m")
    assert refused.exit_code == 2
    assert "trained on ETH/USDT 1m" in refused.output and "--allow-mismatch" in refused.output
    allowed = _cli(store, *args, "--timeframe", "5m", "--allow-mismatch")
    assert allowed.exit_code == 0, allowed.output
    assert "timeframe 5m" in json.loads(allowed.stdout)["mismatch"]
    short = _cli(store, *args, "--timeframe", "1d", "--allow-mismatch")
    assert short.exit_code == 2 and "needs a window of 32" in short.output
    backtest = ["backtest", "--model", run_id, "--symbol", SYMBOL, "--timeframe", "5m", "--json"]
    refused = _cli(store, *backtest)
    assert refused.exit_code == 2 and "trained on ETH/USDT 1m" in refused.output
    assert _cli(store, *backtest, "--allow-mismatch").exit_code == 0


def test_walk_forward_reports_its_training_steps_and_saves_a_child_run(lineage_env):
    run_id, store, ts = lineage_env
    before = _digests(run_id, store.path)
    args = ["backtest", "--model", run_id, "--symbol", SYMBOL, "--timeframe", "1m", "--start",
            str(int(ts[600])), "--end", str(int(ts[660])), "--train-during", "every_candle",
            "--json"]
    plain = json.loads(_cli(store, *args).stdout)
    assert plain["training_steps"] == 60 and plain["saved_run_id"] is None
    saved = _cli(store, *args, "--save")
    assert saved.exit_code == 0, saved.output
    child = json.loads(saved.stdout)["saved_run_id"]
    record = json.loads(_cli(store, "runs", "show", child, "--json").stdout)
    assert record["parent_run_id"] == run_id and record["training_steps"] == 60
    assert record["mode"] == "every_candle"
    assert record["candle_range"] == [int(ts[600]), int(ts[660])]
    assert _digests(run_id, store.path) == before
    inference = _cli(store, "backtest", "--model", run_id, "--symbol", SYMBOL, "--timeframe",
                     "1m", "--save", "--json")
    assert inference.exit_code == 2 and "--save needs --train-during" in inference.output
