"""Seed 000's original bug: batch training, per-candle training and inference on one model.

The run length is ``$WORKBENCH_STRESS_SECONDS`` (3 s by default; ``bench/live.py`` runs 60 s).
Before the engine's lock callback held the lock from batch start, this failed within a second
with "one of the variables needed for gradient computation has been modified by an inplace
operation"; while the engine still trained the live model in place, Lightning's unlocked
``zero_grad()`` before validation raced the per-candle steps and crashed the process (segfault /
"free(): corrupted unsorted chunks") about once in three 5-second runs.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from workbench.live.stress import AuditedHandle, StressConfig, run_stress, weights_checksum
from workbench.train.runs import run_path

from ._live_helpers import tiny_config

SECONDS = float(os.environ.get("WORKBENCH_STRESS_SECONDS", "3"))


def test_batch_per_candle_and_inference_at_once_on_one_model(eth_store):
    # short epochs: Lightning's between-batch work (validation, zero_grad) happens every few
    # steps, which is where training the live model in place crashed (see live/batch.py)
    report = run_stress(tiny_config(), eth_store,
                        StressConfig(duration_s=SECONDS, max_windows=300, batch_size=16))
    assert report["errors"] == [], report["errors"][0]["traceback"]
    assert report["weights_finite"] and report["violations"] == []
    inference, session, batch = report["inference"], report["session"], report["batch"]
    assert inference["probe_mismatches"] == [] and inference["probes"] > 10
    assert inference["versions_seen"] > 1
    assert session["steps"] > 0 and session["errors"] == 0
    assert batch["status"] == "completed" and batch["global_step"] > 0
    # every published version came from one lock acquisition: batch steps + per-candle steps
    # (+ one to copy the live weights when Train Model starts)
    assert report["lock"]["acquisitions"] == report["versions_published"] + 1
    assert report["versions_published"] == batch["global_step"] + session["steps"]
    assert report["lock_sessions"][batch["run_id"]]["acquisitions"] == batch["global_step"]
    assert report["ok"]
    folder = run_path(batch["run_id"])
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert (folder / "checkpoints" / "last.ckpt").is_file()


def test_audit_detects_a_snapshot_changed_after_publishing(eth_store):
    """The audit can fail: a published snapshot mutated in place no longer matches its record."""
    handle = AuditedHandle.from_config(tiny_config())
    handle.set_probe(np.random.default_rng(0).normal(size=(1, 32, 8)).astype(np.float32))
    checksum, probs, _ = handle.records[0]
    with torch.no_grad():
        next(handle._snapshot.model.parameters()).add_(1.0)  # what a torn update would do
    assert weights_checksum(handle._snapshot.model) != checksum
    assert not np.array_equal(handle.predict(handle.probe).action_probs, probs)
    handle.publish()  # outside the training lock: recorded as a violation
    assert handle.violations == ["version 1 published without the training lock"]


def test_store_used_from_several_threads_at_once(eth_store):
    """Regression found by the stress run: a live session and batch training reading the store at
    the same moment failed with DuckDB's "Unique file handle conflict" (connect racing the close
    of the process's last connection), and concurrent writers aborted each other."""
    import threading

    import polars as pl

    from workbench.data.store import Store

    errors, ts = [], eth_store.read_ohlcv("ETH/USDT", "1m")["ts"].to_list()

    def work(k: int) -> None:
        store = Store(eth_store.path)
        for i in range(60):
            try:
                assert store.read_ohlcv("ETH/USDT", "1m", ts[i], ts[i + 50]).height == 51
                if i % 6 == 0:
                    store.add_annotations("ETH/USDT", "1m", pl.DataFrame(
                        {"ts": [ts[k * 100 + i]], "action": ["BUY"], "source": ["manual"]}))
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert eth_store.read_annotations("ETH/USDT", "1m", sources=["manual"]).height == 40


def test_train_model_trains_a_working_copy_and_writes_back_under_the_lock(eth_store):
    """Lightning never touches the live tensors: no gradient ever lands on the live model, yet
    its weights are the run's, published once per step."""
    from workbench.live.batch import start_batch_training

    from ._live_helpers import tiny_handle

    handle = tiny_handle()
    run = start_batch_training(handle, eth_store, "ETH/USDT", "1m", overrides={
        "training.num_epochs": 2, "training.batch_size": 32, "data.max_windows": 200,
        "callbacks.tensorboard": False, "callbacks.progress": False})
    record = run.wait(300)
    assert record["status"] == "completed" and record["global_step"] > 4
    assert all(p.grad is None for p in handle.model.parameters())
    assert handle.version == record["global_step"]
    snapshot = handle.state_dict_snapshot()
    assert all(torch.equal(v, snapshot[k]) for k, v in handle.model.state_dict().items())
    assert handle.lock.stats(run.run_id)["acquisitions"] == record["global_step"]
    assert not handle.lock.locked()
