"""Runs: artifacts via the real CLI, reproducibility, kill-and-resume, one active run, failures."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.train.conftest import cli, tiny_dict
from workbench.errors import ActiveRunError, NotFoundError, RunError
from workbench.paths import CONFIGS_DIR, runs_dir
from workbench.train.config import config_from_dict
from workbench.train.runs import (KILL_AT_STEP_ENV, list_runs, read_run, run_path, show_run,
                                  start_training, train, wait_for)


def _epochs(run_id) -> list[dict]:
    return json.loads((run_path(run_id) / "metrics.json").read_text())["epochs"]


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 200, "..", "a\x00b"])
def test_run_ids_cannot_escape_the_runs_folder(bad):
    with pytest.raises(RunError, match="invalid run id"):
        run_path(bad)
    assert run_path("20260101-000000-lstm-abc123").parent == runs_dir().resolve()


def test_cli_quick_run_writes_every_artifact_and_lists_completed(db):
    out = cli("--db", str(db), "train", "--config", str(CONFIGS_DIR / "transformer.yaml"),
              "--quick", "--set", "callbacks.progress=false", "--json")
    record = json.loads(out.stdout)
    folder = run_path(record["run_id"])
    assert record["status"] == "completed" and record["epochs_run"] == 3
    for name in ("run.json", "config.json", "metrics.json", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "logs/training.log"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((folder / "config.json").read_text())["model"]["window"] == 64
    assert len(_epochs(record["run_id"])) == 3
    assert "epoch 2" in (folder / "logs" / "training.log").read_text()
    for key in ("started_at", "ended_at", "final_metrics", "best_metrics", "best_epoch"):
        assert record[key] is not None, key
    assert {"val_rmse", "val_pearson", "val_r2", "val_snr_db", "val_acc", "val_f1",
            "train_mse", "train_mae"} <= set(record["final_metrics"])
    listed = json.loads(cli("runs", "list", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [(record["run_id"], "completed")]
    shown = cli("runs", "show", record["run_id"]).stdout
    assert "completed" in shown and "checkpoints/best.ckpt" in shown


def test_same_seed_same_metrics_other_seed_other_metrics(db):
    first = train(config_from_dict(tiny_dict(db)))
    second = train(config_from_dict(tiny_dict(db)))
    other = train(config_from_dict(tiny_dict(db, training={"seed": 7})))
    assert _epochs(first["run_id"]) == _epochs(second["run_id"])
    assert first["test_metrics"] == second["test_metrics"]
    assert _epochs(other["run_id"])[-1]["val_loss"] != _epochs(first["run_id"])[-1]["val_loss"]


def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(db, tmp_path):
    cfg = tiny_dict(db, training={"num_epochs": 3},
                    callbacks={"tensorboard": False, "progress": False,
                               "lr_scheduler": {"scheduler": "cosine"}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    full = train(config_from_dict(cfg))
    steps_per_epoch = full["global_step"] // 3
    # 7 steps per epoch: killed at step 10, in the middle of the second epoch
    killed = cli("--db", str(db), "train", "-c", str(path), check=False,
                 env={KILL_AT_STEP_ENV: str(steps_per_epoch + 3)})
    assert killed.returncode == -signal.SIGKILL
    victim = next(r for r in list_runs() if r["run_id"] != full["run_id"])
    assert victim["status"] == "failed" and "process died" in victim["error"]
    assert len(_epochs(victim["run_id"])) == 1  # only the first epoch had finished
    resumed = json.loads(cli("--db", str(db), "train", "--resume", victim["run_id"],
                             "--json").stdout)
    assert resumed["status"] == "completed" and resumed["resumed_at"]
    assert _epochs(victim["run_id"]) == _epochs(full["run_id"])
    assert resumed["final_metrics"] == full["final_metrics"]
    assert resumed["test_metrics"] == full["test_metrics"]
    with pytest.raises(RunError, match="already completed"):
        train(resume=victim["run_id"])


def _spawn_long_run(db, tmp_path) -> subprocess.Popen:
    path = tmp_path / "long.yaml"
    never_ends = tiny_dict(db, training={"num_epochs": 10_000},
                           callbacks={"tensorboard": False, "progress": False,
                                      "early_stopping": {"enabled": False}})
    path.write_text(yaml.safe_dump(never_ends))
    return subprocess.Popen([sys.executable, "-c", "from workbench.cli import main; main()",
                             "--db", str(db), "train", "-c", str(path)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_second_run_is_refused_and_a_killed_runs_lock_is_recovered(db, tmp_path):
    proc = _spawn_long_run(db, tmp_path)
    try:
        assert wait_for(lambda: any(r["status"] == "running" for r in list_runs()), 120)
        active = list_runs()[0]
        refused = cli("--db", str(db), "train", "-c", str(tmp_path / "long.yaml"), check=False)
        assert refused.returncode == 2
        assert f"training run '{active['run_id']}' (pid {proc.pid} on" in refused.stderr
        assert "is active" in refused.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = train(config_from_dict(tiny_dict(db, training={"num_epochs": 1})))
    assert done["status"] == "completed"
    dead = read_run(active["run_id"])
    assert dead["status"] == "failed" and f"pid {proc.pid}" in dead["error"]
    assert "process died" in dead["error"]


def test_background_run_reports_progress_and_blocks_a_second_run(db):
    handle = start_training(config_from_dict(tiny_dict(db)))
    with pytest.raises(ActiveRunError, match=handle.run_id):
        train(config_from_dict(tiny_dict(db)))
    record = handle.wait(120)
    assert handle.status() == "completed" and record["epochs_run"] == 2
    assert handle.progress()["epoch"] == 2 and "val_loss" in handle.progress()["metrics"]
    assert show_run(handle.run_id)["epochs"][-1]["epoch"] == 1


def test_a_failing_run_is_recorded_failed_and_releases_the_lock(db):
    with pytest.raises(NotFoundError, match="BTC/USDT"):
        train(config_from_dict(tiny_dict(db, data={"symbol": "BTC/USDT"})))
    failed = list_runs()[0]
    assert failed["status"] == "failed" and "BTC/USDT" in failed["error"]
    assert failed["ended_at"]
    with pytest.raises(RunError, match="no checkpoints/last.ckpt"):
        train(resume=failed["run_id"])
    with pytest.raises(NotFoundError):
        train(resume="20990101-000000-transformer-000000")
    assert train(config_from_dict(tiny_dict(db, training={"num_epochs": 1})))["status"] \
        == "completed"


def test_stop_ends_a_background_run_early_as_completed(db):
    cfg = config_from_dict(tiny_dict(db, training={"num_epochs": 500},
                                     callbacks={"tensorboard": False, "progress": False,
                                                "early_stopping": {"enabled": False}}))
    handle = start_training(cfg)
    assert wait_for(lambda: handle.progress().get("epoch", 0) >= 1, 120)
    handle.stop()
    record = handle.wait(120)
    assert record["status"] == "completed" and 1 <= record["epochs_run"] < 500
    assert (run_path(handle.run_id) / "checkpoints" / "last.ckpt").is_file()


def test_runs_created_within_one_second_list_newest_first(tmp_path):
    from workbench.runs import now_iso, update_run

    db = tmp_path / "w.duckdb"
    # ids in reverse alphabetical order of creation, so folder order cannot pass for time order
    ids = [f"run-{letter}" for letter in "edcba"]
    for run_id in ids:
        update_run(run_id, db, status="completed", created_at=now_iso())
        time.sleep(0.003)
    assert [run["run_id"] for run in list_runs(db)] == ids[::-1]
