"""Sweeps on a real local Ray: trials in DuckDB and run folders, resume, DSR/PBO; space errors.

The slow test starts its own ``ray start --head`` on 127.0.0.1 (a private temp dir and port) and
joins it with ``--address``; it skips where Ray cannot start.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from workbench.errors import ConfigError, ParameterError, RunError
from workbench.paths import PROJECT_ROOT
from workbench.research.evaluate import EvaluateSpec
from workbench.research.space import check_space, load_space
from workbench.research.sweep import (SweepSpec, ray_session, storage_path, sweep, trial_threads,
                                      warm_workers)
from workbench.runs import list_runs
from workbench.train.runs import load_run_config

SPACE = "training.learning_rate: {low: 0.001, high: 0.01, log: true}\nmodel.d_model: [4, 8]\n"


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return load_space(path)


@pytest.fixture(scope="module")
def local_ray():
    pytest.importorskip("ray")
    try:
        session = ray_session(1)  # sweeps inside join it; it shuts down after the module
        ray = session.__enter__()
    except RunError as exc:  # Ray's raylet missed its fixed start timeout (an overloaded box)
        pytest.skip(str(exc))
    yield ray
    session.__exit__(None, None, None)


def _spec(trials: int) -> SweepSpec:
    return SweepSpec(trials=trials, workers=1, prune=False,
                     evaluation=EvaluateSpec(folds=2, draws=20))


def _stored_trials(store) -> int:
    return store.query("SELECT count(*) AS n FROM sweep_trials")["n"][0]


def test_sweep_on_local_ray_stores_trials_and_resumes(local_ray, eth_store, tiny_lstm, space,
                                                      monkeypatch):
    import workbench.research.sweep as sweep_module

    # rows written after every trial when they have waited ROWS_EVERY_S (here: always)
    monkeypatch.setattr(sweep_module, "ROWS_EVERY_S", 0.0)
    seen = []
    # a base config asking for 3 torch threads: each 1-CPU trial still trains on 1
    base = {**tiny_lstm, "training": {**tiny_lstm["training"], "num_threads": 3}}
    out = sweep(base, space, _spec(2), eth_store,
                progress=lambda number, _out: seen.append(_stored_trials(eth_store)))
    assert seen == [1, 2]
    assert out["n_trials"] == 2 and {t["state"] for t in out["trials"]} == {"COMPLETE"}, \
        [t.get("error") for t in out["trials"]]
    rows = eth_store.sweep_trials(out["sweep_id"]).to_dicts()
    for row in rows:
        params = json.loads(row["params"])
        assert 0.001 <= params["training.learning_rate"] <= 0.01
        assert params["model.d_model"] in (4, 8)
    best = max(rows, key=lambda r: r["value"])
    assert out["best_trial"] == best["trial"] and out["best_params"] == json.loads(best["params"])
    assert 0.0 <= out["deflated_sharpe"] <= 1.0 and 0.0 <= out["pbo"] <= 1.0
    assert out["luck"].startswith("After 2 tries, the chance this best result is luck is")
    assert eth_store.sweeps().row(0, named=True)["pbo"] == pytest.approx(out["pbo"])
    # every fold run carries the sweep id, its trial and the trial's parameters
    runs = [r for r in list_runs(eth_store.path) if r.get("sweep_id") == out["sweep_id"]]
    assert len(runs) == 4 and {r["trial"] for r in runs} == {0, 1}
    by_trial = {t["trial"]: t["params"] for t in out["trials"]}
    assert all(r["params"] == by_trial[r["trial"]] for r in runs)
    assert {load_run_config(r["run_id"], eth_store.path).training.num_threads
            for r in runs} == {1}
    assert storage_path(eth_store.path).is_file()
    # a sweep killed before its rows were written: they are in the journal, and resuming
    # writes them with the new trial's (the default wait: none written before the end)
    with eth_store.transaction() as con:
        con.execute("DELETE FROM sweep_trials")
    monkeypatch.setattr(sweep_module, "ROWS_EVERY_S", 30.0)
    seen.clear()
    again = sweep(tiny_lstm, space, _spec(3), eth_store, sweep_id=out["sweep_id"],
                  progress=lambda number, _out: seen.append(_stored_trials(eth_store)))
    assert again["n_trials"] == 3 and [t["trial"] for t in again["trials"]] == [0, 1, 2]
    assert seen == [0]
    stored = eth_store.sweep_trials(out["sweep_id"])
    assert stored["trial"].to_list() == [0, 1, 2] and stored["value"].is_not_null().all()
    assert [json.loads(p) for p in stored["params"]] == [t["params"] for t in again["trials"]]


def test_local_ray_workers_run_at_normal_priority_and_are_reused(local_ray):
    warm = warm_workers(local_ray, 1)  # the session warmed its one worker already
    assert len(warm) == 1 and warm_workers(local_ray, 1) == warm
    niceness = local_ray.remote(lambda: (os.getpid(), os.nice(0))).options(num_cpus=1)
    assert local_ray.get(niceness.remote()) == (next(iter(warm)), os.nice(0))
    assert trial_threads(SweepSpec(trials=1, cpus_per_trial=2)) == 2
    assert trial_threads(SweepSpec(trials=1, cpus_per_trial=0.5)) == 1


def test_resuming_an_unknown_sweep_is_refused(local_ray, eth_store, tiny_lstm, space):
    with pytest.raises(ParameterError, match="no sweep 'sw-nope'"):
        sweep(tiny_lstm, space, _spec(1), eth_store, sweep_id="sw-nope")


def test_a_sweep_of_a_series_without_candles_is_refused_before_ray_starts(tmp_path, tiny_lstm,
                                                                          space):
    from workbench.data.store import Store
    from workbench.errors import NotFoundError

    empty = Store(tmp_path / "empty.duckdb")
    with pytest.raises(NotFoundError, match="has no candles; ingest them first"):
        sweep(tiny_lstm, space, _spec(2), empty)
    assert not storage_path(empty.path).exists()  # no study was started


def test_space_errors_name_the_file_and_key(tmp_path, tiny_lstm):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model.d_model: {low: 32, high: 8}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: key 'model.d_model' needs low < high"):
        load_space(bad)
    bad.write_text("training.learnin_rate: [0.1]\n")
    with pytest.raises(ConfigError, match="key 'training.learnin_rate'.*unknown"):
        check_space(load_space(bad), tiny_lstm, str(bad))
    with pytest.raises(ParameterError, match="objective 'sortino'"):
        SweepSpec(trials=1, objective="sortino")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_head(exe: str, env: dict, temp: str, attempt: int):
    """Start ``ray start --head --block``; return (process, port) once the whole node is up,
    or (None, log text) when it died starting (a raylet on a busy machine can miss Ray's fixed
    wait for its metrics agent and abort)."""
    port = _free_port()
    # its output goes to a file: an unread pipe fills up and blocks the head's processes
    path = os.path.join(temp, f"ray-start-{attempt}.log")
    with open(path, "wb") as log:
        proc = subprocess.Popen([exe, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                                 f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                                 "--disable-usage-stats", f"--temp-dir={temp}"], env=env,
                                start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, "rb") as fh:
            if b"Ray runtime started" in fh.read():
                return proc, port
        time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        proc.wait(timeout=60)
    with open(path, "rb") as fh:
        return None, fh.read().decode(errors="replace")[-500:]


@pytest.fixture
def ray_head():
    exe = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    if not os.path.exists(exe):
        pytest.skip("the ray command is not installed")
    temp = tempfile.mkdtemp(prefix="wbray", dir="/tmp")  # Ray's socket paths must be < 108 bytes
    # Ray >= 2.52 can require a token between the head and its drivers: share one explicitly
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = {**os.environ, **auth, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        proc, port = _start_head(exe, env, temp, attempt)
        if proc is not None:
            break
    else:
        shutil.rmtree(temp, ignore_errors=True)
        pytest.skip(f"ray start --head failed 3 times: {port}")
    yield f"127.0.0.1:{port}", auth
    os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
    proc.wait(timeout=60)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_sweep_against_a_ray_start_head_cluster(ray_head, eth_store, tiny_lstm, tmp_path):
    address, auth = ray_head
    cfg, space = tmp_path / "tiny.yaml", tmp_path / "space.yaml"
    cfg.write_text(json.dumps(tiny_lstm))
    space.write_text(SPACE)
    proc = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", "--db",
         str(eth_store.path), "sweep", "--config", str(cfg), "--space", str(space), "--trials",
         "2", "--address", address, "--folds", "2", "--draws", "20", "--no-prune", "--json"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, **auth, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["n_trials"] == 2 and out["pbo"] is not None
    assert eth_store.sweep_trials(out["sweep_id"]).height == 2


def test_a_trial_behind_the_median_is_pruned_in_its_first_fold(eth_store, tiny_lstm, monkeypatch):
    """``run_trial`` (the Ray task's body, here in-process): the pruner built in the worker is
    the study's (median rule after 2 trials and 1 epoch), and a trial it stops is PRUNED."""
    import optuna
    from workbench.research.evaluate import active_job
    from workbench.research.sweep import _payload, _study, run_trial

    for key in ("WORKBENCH_RUNS", "OMP_NUM_THREADS", "PYTHONPATH"):  # run_trial sets them
        monkeypatch.setenv(key, os.environ.get(key, ""))
    spec = SweepSpec(trials=3, prune=True, evaluation=EvaluateSpec(folds=2, draws=20))
    base = {**tiny_lstm, "training": {**tiny_lstm["training"], "num_epochs": 2}}
    study = _study("sw-prune", spec, storage_path(eth_store.path), resume=False)
    for _ in range(2):  # two finished trials whose validation loss was 0 at both epochs
        study.add_trial(optuna.trial.create_trial(
            value=1.0, intermediate_values={0: 0.0, 1: 0.0},
            distributions={}, params={}))
    trial = study.ask()
    with active_job("sw-prune", eth_store.path):
        out = run_trial(_payload(base, spec, eth_store.path, "sw-prune", trial, {}))
    assert out["state"] == "PRUNED", out
    assert "pruned at epoch 1" in out["error"]
