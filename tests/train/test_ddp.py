"""Two-process CPU DDP (gloo) through the real CLI: it completes, its metrics equal a
single-process evaluation, and a rank killed mid-run leaves the run ``failed``.

Lightning starts rank 1 by re-running the command line, so these tests run
``python -m workbench.cli`` (a ``python -c`` line cannot be re-run). A DDP deadlock ignores
SIGTERM, so a timed-out run is killed with its whole process group.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys

import lightning as L
import pytest
import yaml

from tests.train.conftest import tiny_dict
from workbench.train.checkpoints import load_checkpoint
from workbench.train.config import config_from_dict
from workbench.train.datamodule import WindowDataModule
from workbench.train.module import ForecastModule
from workbench.train.runs import KILL_AT_STEP_ENV, KILL_RANK_ENV, list_runs, run_path

DDP = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "num_threads": 1}


def _ddp_config(db, tmp_path, **training) -> tuple[dict, str]:
    # 320 windows: the test split holds 48, an even count, so DistributedSampler pads nothing
    raw = tiny_dict(db, training={**DDP, "num_epochs": 2, **training},
                    data={"max_windows": 320}, callbacks={"tensorboard": False})
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return raw, str(path)


def _workbench(*args, env=None, timeout=150) -> subprocess.CompletedProcess:
    """``python -m workbench.cli ARGS`` in its own process group, killed whole on timeout."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"DDP run hung for {timeout} s (killed):\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _single_process_test_metrics(raw: dict, run_id: str) -> dict:
    """Evaluate the run's best.ckpt on the test split in this process (one device)."""
    cfg = config_from_dict(raw | {"training": {**raw["training"], "devices": 1,
                                               "strategy": "auto"}})
    module = ForecastModule(cfg)
    module.load_state_dict(load_checkpoint(run_path(run_id) / "checkpoints" / "best.ckpt")
                           ["state_dict"])
    dm = WindowDataModule(cfg.data, cfg.model.window, cfg.training.batch_size, cfg.training.seed)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    (metrics,) = trainer.test(module, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in metrics.items()}


def test_two_process_ddp_completes_with_the_metrics_of_one_process(db, tmp_path):
    """Was: the shipped DDP command hung at the end of epoch 0 (Lightning issue 21264:
    rank 0 in the progress bar's all_reduce, rank 1 in the torchmetrics all_gather)."""
    raw, path = _ddp_config(db, tmp_path)
    raw["callbacks"]["progress"] = True  # the bar is what deadlocked
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(raw))
    out = _workbench("--db", str(db), "train", "-c", path, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout)  # exactly one JSON document: the bars went to stderr
    assert record["status"] == "completed" and record["epochs_run"] == 2
    assert record["data"]["test"]["windows"] % 2 == 0
    epochs = json.loads((run_path(record["run_id"]) / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert all(math.isfinite(e[k]) for e in epochs for k in ("train_loss", "val_loss", "val_r2"))
    single = _single_process_test_metrics(raw, record["run_id"])
    assert single.keys() == record["test_metrics"].keys()
    for key, value in single.items():
        assert record["test_metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    assert "Traceback" not in out.stderr


def test_a_ddp_rank_killed_mid_run_leaves_the_run_failed(db, tmp_path):
    _, path = _ddp_config(db, tmp_path, num_epochs=1)
    out = _workbench("--db", str(db), "train", "-c", path,
                     env={KILL_AT_STEP_ENV: "1", KILL_RANK_ENV: "1"})
    assert out.returncode == 2
    (run,) = list_runs()
    assert run["status"] == "failed" and run["ended_at"]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: run {run['run_id']} failed") and "training.log" in last
    assert "Traceback" not in out.stderr
