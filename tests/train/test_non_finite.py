"""Nothing non-finite passes for a result: diverged runs fail, NaN weights are never
checkpointed, NaN model outputs are errors of the session and the backtest, never signals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.live._live_helpers import quick_run, tiny_handle
from tests.train.conftest import tiny_dict
from workbench.cli import app
from workbench.errors import NonFiniteError
from workbench.train.checkpoints import AtomicCheckpointIO, atomic_save, load_checkpoint
from workbench.train.config import config_from_dict
from workbench.train.handle import load_model
from workbench.train.models import build_model
from workbench.train.runs import read_run, run_path, train

SYMBOL, TF = "ETH/USDT", "1m"


def _poison(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        next(module.parameters()).fill_(float("nan"))
    return module


def test_diverging_learning_rate_fails_the_run_naming_epoch_and_step(db):
    """Was: learning_rate=inf 'completed' with an all-NaN best.ckpt (1e30 is finite, so the
    config accepts it; the loss check must catch the divergence)."""
    cfg = config_from_dict(tiny_dict(db, training={"learning_rate": 1e30, "grad_clip": 0.0}))
    with pytest.raises(NonFiniteError, match=r"train loss is nan at epoch 0, step \d+"):
        train(cfg)
    record = next(r for r in map(json.loads, _run_jsons()) if r["status"] != "completed")
    assert record["status"] == "failed" and "NonFiniteError" in record["error"]
    assert "epoch 0" in record["error"]
    assert not list((run_path(record["run_id"]) / "checkpoints").glob("*.ckpt"))


def _run_jsons():
    from workbench.paths import runs_dir

    return [p.read_text() for p in runs_dir().glob("*/run.json")]


def test_a_nan_model_fails_at_its_first_step_and_writes_no_checkpoint(db):
    cfg = config_from_dict(tiny_dict(db))
    with pytest.raises(NonFiniteError, match=r"epoch 0, step 0 \(batch 0\)"):
        train(cfg, model=_poison(build_model(cfg.model)))
    (record,) = map(json.loads, _run_jsons())
    assert record["status"] == "failed" and "step 0" in record["error"]
    assert not list((run_path(record["run_id"]) / "checkpoints").glob("*.ckpt"))


def test_checkpoint_with_non_finite_weights_is_never_written(tmp_path, tiny):
    tmp_path = tmp_path / "checkpoints"
    good = {f"model.{k}": v for k, v in build_model(tiny.model).state_dict().items()}
    AtomicCheckpointIO().save_checkpoint({"state_dict": good, "epoch": 0}, tmp_path / "last.ckpt")
    before = (tmp_path / "last.ckpt").read_bytes()
    bad = dict(good)
    name = next(iter(bad))
    bad[name] = bad[name].clone().fill_(float("inf"))
    for path in (tmp_path / "best.ckpt", tmp_path / "last.ckpt"):
        with pytest.raises(NonFiniteError, match=f"{path.name} not saved.*{name}.*epoch 3"):
            AtomicCheckpointIO().save_checkpoint({"state_dict": bad, "epoch": 3,
                                                  "global_step": 21}, path)
    assert not (tmp_path / "best.ckpt").exists()
    assert (tmp_path / "last.ckpt").read_bytes() == before  # the previous one is kept
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left


def test_nan_model_outputs_are_a_typed_error_not_a_prediction():
    handle = tiny_handle()
    _poison(handle.model)
    handle.publish()
    with pytest.raises(NonFiniteError, match="produced NaN or inf for 2 of 2 window"):
        handle.predict(np.zeros((2, handle.window, 8), np.float32))


def test_non_finite_loss_in_a_live_train_step_takes_no_step():
    handle = tiny_handle()
    before, version = handle.state_dict_snapshot(), handle.version
    windows = np.zeros((1, handle.window, 8), np.float32)
    with pytest.raises(NonFiniteError, match="no step taken"):
        handle.train_step(windows, [0], np.full((1, 4), np.nan, np.float32),
                          operation="per_candle", session="test")
    after = handle.state_dict_snapshot()
    assert handle.version == version and all(torch.equal(before[k], after[k]) for k in before)


@pytest.fixture
def nan_run(eth_store):
    """A run whose best.ckpt holds NaN weights (as runs trained before the fix did)."""
    run_id = quick_run(eth_store, max_windows=200)
    path = run_path(run_id) / "checkpoints" / "best.ckpt"
    ckpt = load_checkpoint(path)
    key = next(k for k in ckpt["state_dict"] if k.startswith("model."))
    ckpt["state_dict"][key] = ckpt["state_dict"][key].clone().fill_(float("nan"))
    atomic_save(ckpt, path)  # written behind the engine's back
    return run_id, eth_store, eth_store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()


def test_live_on_a_nan_model_counts_errors_and_never_trades(nan_run):
    """Was: `workbench live` on an all-NaN best.ckpt emitted BUY on every candle, 0 errors."""
    run_id, store, ts = nan_run
    out = CliRunner().invoke(app, ["--db", str(store.path), "live", "--model", run_id,
                                   "--symbol", SYMBOL, "--timeframe", TF, "--start",
                                   str(int(ts[600])), "--end", str(int(ts[640])), "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["candles"] == 41 and payload["predictions"] == 0
    assert payload["errors"] == 41 and payload["signals"]["BUY"] == 0
    assert payload["pnl"]["fills"] == 0
    assert "NonFiniteError" in payload["recent_errors"][-1]["error"]
    human = CliRunner().invoke(app, ["--db", str(store.path), "live", "--model", run_id,
                                     "--symbol", SYMBOL, "--timeframe", TF, "--start",
                                     str(int(ts[600])), "--end", str(int(ts[610]))])
    assert "errors         11" in human.output and "NaN or inf" in human.output


def test_backtest_of_a_nan_model_is_a_clear_error(nan_run):
    run_id, store, ts = nan_run
    out = CliRunner().invoke(app, ["--db", str(store.path), "backtest", "--model", run_id,
                                   "--symbol", SYMBOL, "--timeframe", TF, "--start",
                                   str(int(ts[600])), "--end", str(int(ts[700])), "--json"])
    assert out.exit_code == 2 and "NaN or inf" in out.stderr and out.stdout == ""
    assert store.backtests().height == 0
    assert load_model(run_id).version == 0  # the run itself is left as it was
    assert read_run(run_id)["status"] == "completed"
