"""The model signal path: batched inference through the ModelHandle contract, inference only.

Each model is a real run trained for one tiny epoch on the real ETH slice.
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from workbench.backtest.engine import BacktestConfig, model_lookahead_check, run_backtest
from workbench.backtest.signals import actions_to_signals, model_signals
from workbench.data.store import Store
from workbench.features.windows import candle_features, gather_windows

WINDOW = 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory, eth_slice):
    """Train one tiny transformer and one tiny LSTM run; returns (runs dir, db, run ids)."""
    handle = pytest.importorskip("workbench.train.handle")  # noqa: F841 (issue 3's contract)
    from workbench.train.config import config_from_dict
    from workbench.train.runs import train

    base = tmp_path_factory.mktemp("model_runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_RUNS", str(base / "runs"))
    db = base / "wb.duckdb"
    Store(db).replace_series("ETH/USDT", "1m", eth_slice)
    torch.set_num_threads(1)
    ids = {}
    try:
        for mtype in ("transformer", "lstm"):
            cfg = config_from_dict({
                "model": {"type": mtype, "window": WINDOW, "d_model": 8, "n_heads": 2,
                          "n_layers": 1, "ff_dim": 16},
                "training": {"num_epochs": 1, "batch_size": 64},
                "data": {"db": str(db), "max_windows": 256},
                "callbacks": {"tensorboard": False, "progress": False}})
            ids[mtype] = train(cfg, db=db)["run_id"]
    finally:
        mp.undo()
    return base / "runs", db, ids


@pytest.fixture
def runs(trained, monkeypatch):
    runs_dir, db, ids = trained
    monkeypatch.setenv("WORKBENCH_RUNS", str(runs_dir))
    return Store(db), ids


@pytest.mark.parametrize("mtype", ["transformer", "lstm"])
def test_batched_signals_equal_one_window_at_a_time(runs, eth_slice, mtype):
    from workbench.train.handle import load_model

    _, ids = runs
    handle = load_model(ids[mtype])
    feats = candle_features(*eth_slice.select("open", "high", "low", "close", "volume")
                            .to_numpy().T)
    rows = np.arange(10, 400)
    out = model_signals(handle, feats, rows, chunk=64)
    assert (out.signal[: WINDOW - 1 - 10] == 0).all()  # no full window yet: HOLD
    assert np.isnan(out.action_probs[: WINDOW - 1 - 10]).all()
    for r in (WINDOW - 1, 100, 399):
        w, _ = gather_windows(feats, [r], WINDOW)
        one = handle.predict(w)
        np.testing.assert_allclose(out.action_probs[r - 10], one.action_probs[0], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(out.candle[r - 10], one.candle[0], rtol=1e-5, atol=1e-5)
    usable = out.action_probs[WINDOW - 1 - 10:]
    assert out.signal[WINDOW - 1 - 10:].tolist() == actions_to_signals(usable).tolist()
    assert out.model_version == handle.version == 0


def test_model_backtest_never_updates_weights_and_is_stored_with_the_run(runs, eth_slice):
    from workbench.train.handle import load_model
    from workbench.train.runs import run_path

    store, ids = runs
    before = load_model(ids["transformer"]).state_dict_snapshot()
    ts = eth_slice["ts"]
    calls = []
    res = run_backtest(BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[1000]),
                                      end=int(ts[1999]), model=ids["transformer"], chunk=256),
                       store=store, progress=lambda *a: calls.append(a))
    after = load_model(ids["transformer"]).state_dict_snapshot()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert res.model_version == 0 and res.equity.height == 1000
    # history before the range gives the first candle of the range a full window
    assert res.equity["ts"][0] == ts[1000]
    assert [c for c in calls if c[0] == "signals"][-1] == ("signals", 1000, 1000)
    assert len([c for c in calls if c[0] == "signals"]) == 4  # ceil(1000 / 256) chunks
    assert res.trades_path.is_relative_to(run_path(ids["transformer"]))
    row = store.backtests(run_id=ids["transformer"]).row(0, named=True)
    assert row["backtest_id"] == res.backtest_id


def test_model_signals_pass_the_lookahead_check(runs, eth_slice):
    store, ids = runs
    ts = eth_slice["ts"]
    cfg = BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[200]),
                         end=int(ts[700]), model=ids["lstm"], persist=False)
    report = model_lookahead_check(cfg, store, samples=4)
    assert report.passed and len(report.sample_times) == 4
    assert min(report.sample_times) >= ts[200]


def test_cli_backtest_model_and_lookahead_check_json(runs, eth_slice):
    from workbench.cli import app

    store, ids = runs
    ts = eth_slice["ts"]
    common = ["--symbol", "ETH/USDT", "--timeframe", "1m", "--start", str(ts[500]), "--end",
              str(ts[900]), "--json"]
    out = CliRunner().invoke(app, ["--db", str(store.path), "backtest", "--model",
                                   ids["transformer"], "--threshold", "0.4", *common])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["run_id"] == ids["transformer"] and summary["n_bars"] == 401
    out = CliRunner().invoke(app, ["--db", str(store.path), "lookahead-check", "--model",
                                   ids["transformer"], "--samples", "3", *common])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["passed"] is True


def test_live_replay_in_mode_none_gives_the_backtest_signals(runs, eth_slice):
    """Parity inside the workbench: the replay path (mode none) and the batched path agree."""
    session = pytest.importorskip("workbench.live.walk_forward")
    store, ids = runs
    ts = eth_slice["ts"]
    cfg = BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[1200]),
                         end=int(ts[1239]), model=ids["transformer"], persist=False)
    batched = run_backtest(cfg, store=store).equity["signal"].to_numpy()
    replayed = session.run_walk_forward(cfg, store=store)
    assert replayed.tolist() == batched.tolist()
    assert len(set(batched.tolist())) > 1  # a constant signal would prove little


def test_train_during_runs_the_replay_path_and_is_stored(runs, eth_slice):
    walk_forward = pytest.importorskip("workbench.live.walk_forward")
    from workbench.train.handle import load_model

    store, ids = runs
    ts = eth_slice["ts"]
    before = load_model(ids["transformer"]).state_dict_snapshot()
    res = walk_forward.run_walk_forward_backtest(
        BacktestConfig(symbol="ETH/USDT", timeframe="1m", start=int(ts[1300]), end=int(ts[1329]),
                       model=ids["transformer"], train_during="pivots_only"), store=store)
    assert res.equity.height == 30 and res.equity["signal"].len() == 30
    row = store.backtests(run_id=ids["transformer"]).filter(
        pl.col("backtest_id") == res.backtest_id).row(0, named=True)
    assert json.loads(row["params"])["train_during"] == "pivots_only"
    after = load_model(ids["transformer"]).state_dict_snapshot()  # the run itself is untouched
    assert all(torch.equal(before[k], after[k]) for k in before)
