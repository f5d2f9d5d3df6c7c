"""Sweep benchmark: Ray scaling of an 8-trial tiny sweep, and the sweep machinery's overhead.

All in this one process, on a throw-away store holding a real ETH/USDT 1m slice:

* **scaling**: the same 8-trial sweep (tiny LSTM, 2 walk-forward folds per trial, random
  sampler with a fixed seed, so both runs try the same parameters) with 1 and with 2 Ray
  workers (trials in flight) on one local Ray of 2 CPUs. Goal: >= 1.7x on 2 cores. Ray's own
  start (``ray.init`` and the workers' one-off import of torch and Lightning, see
  ``research.sweep.ray_session``) is timed apart, printed, and left out of the ratio.
* **overhead**: per-trial wall time inside the 1-worker sweep (Ray task + Optuna ask/tell +
  DuckDB rows + run folders) against the same trials' evaluations run directly in this process
  (``research.evaluate.evaluate`` with each trial's parameters: a trial's work depends on them,
  e.g. how often its model trades), half just before and half just after the 1-worker sweep
  (after one unmeasured warm-up run). Goal: <= 10 %.

* **ceiling**: what two cores give this work without any sweep machinery: the same 8 trials
  evaluations in two plain processes at once (a spawn process pool, 4 trials each, no Ray, no
  Optuna), against the direct trials one after the other. The sweep's speedup is also given as a
  fraction of this ceiling: the part of the goal the machine leaves to the sweep code.

Each round measures the direct trials, the 1-worker and the 2-worker sweep back to back
(``--rounds``, default 5), alternating which sweep goes first; the ratios are given per round
and as their median, with each round's load. This machine's speed drifts: the same pure-Python
loop takes 0.21 to 0.31 s from one second to the next on an idle machine, and the same direct
trial 1.0 to 2.1 s, which is why the sides of each ratio are measured next to each other.

Run: ``.venv/bin/python bench/research.py [--trials 8] [--rounds 5]``; writes
``reports/bench/research.json``. The machine is shared: compare the ratios, and read the load.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_report  # noqa: E402

SPACE = "training.learning_rate: {low: 0.001, high: 0.01, log: true}\n" \
        "training.weight_decay: {low: 0.0, high: 0.01}\n"
TRIAL = {"model": {"type": "lstm", "window": 16, "d_model": 8, "n_layers": 1},
         "training": {"num_epochs": 2, "batch_size": 32, "num_threads": 1},
         "data": {"max_windows": 300, "labels": "rule"},
         "callbacks": {"tensorboard": False, "progress": False}}


def _store(root: Path):
    from workbench.data.store import Store
    from workbench.paths import DATA_DIR

    store = Store(root / "wb.duckdb")
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet").slice(20_000, 3_000)
    store.replace_series("ETH/USDT", "1m", eth)
    return store


def _space(root: Path) -> list:
    from workbench.research.space import load_space

    space_file = root / "space.yaml"
    space_file.write_text(SPACE)
    return load_space(space_file)


def _base(store) -> dict:
    """The trial's config on this store, before a trial's parameters."""
    return {**TRIAL, "data": {**TRIAL["data"], "db": str(store.path)}}


def _sweep(store, space: list, workers: int, trials: int) -> dict:
    from workbench.research.evaluate import EvaluateSpec
    from workbench.research.sweep import SweepSpec, sweep

    spec = SweepSpec(trials=trials, workers=workers, sampler="random", prune=False,
                     evaluation=EvaluateSpec(folds=2, draws=100))
    started = time.perf_counter()
    out = sweep(_base(store), space, spec, store)  # joins the running local Ray
    done = time.perf_counter()
    return {"workers": workers, "sweep_s": done - started,
            "trial_s": [t["seconds"] for t in out["trials"]], "sweep_id": out["sweep_id"],
            "params": [t["params"] for t in out["trials"]],
            "states": sorted({t["state"] for t in out["trials"]})}


def _trial_params(space: list, trials: int) -> list[dict]:
    """The parameters the sweeps try, in order: their random sampler (seed 0) asked the same way
    as ``research.sweep`` asks it, without training anything (checked against the sweeps)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [{d.key: d.suggest(trial) for d in space} for trial in (study.ask()
                                                                   for _ in range(trials))]


def _direct(store, params: list[dict]) -> list[float]:
    """Run the evaluation of each parameter set directly in this process; return the times."""
    from workbench.research.evaluate import EvaluateSpec, evaluate
    from workbench.train.config import config_from_dict, merge_overrides

    times = []
    for one in params:
        config = config_from_dict(merge_overrides(_base(store), list(one.items())))
        t0 = time.perf_counter()
        evaluate(config, EvaluateSpec(folds=2, draws=100), store)
        times.append(time.perf_counter() - t0)
    return times


def _direct_in_process(job: tuple[str, list[dict]]) -> float:
    """A pool process's part of the ceiling: ``_direct`` on the store at ``job[0]``, with a runs
    folder of its own (an evaluation holds its runs folder's one-active-run lock)."""
    from workbench.data.store import Store
    from workbench.ui.kernel_startup import quiet_libraries

    quiet_libraries()
    os.environ["WORKBENCH_RUNS"] = str(Path(job[0]).parent / f"runs-{os.getpid()}")
    return sum(_direct(Store(Path(job[0])), job[1]))


def _in_two_processes(pool, store, params: list[dict]) -> float:
    """Wall time of the trials run directly in the pool's two processes at once."""
    t0 = time.perf_counter()
    list(pool.map(_direct_in_process, [(str(store.path), params[0::2]),
                                       (str(store.path), params[1::2])]))
    return time.perf_counter() - t0


def _round(store, space: list, params: list[dict], index: int, pool) -> dict:
    """One side-by-side measurement: the 1- and the 2-worker sweep, and the same trials direct.

    The direct trials are the sweep's own parameter sets, half run right before and half right
    after the 1-worker sweep, and the order of the two sweeps alternates between rounds (1 then
    2 workers, then 2 then 1), so a drift of the machine's speed within a round (a shared VM's
    CPU speed moves by 20 % within seconds here) does not fall on one side of a ratio.
    """
    trials, half = len(params), len(params) // 2
    direct: list[float] = []
    if index % 2 == 0:
        direct += _direct(store, params[:half])
        one = _sweep(store, space, 1, trials)
        direct += _direct(store, params[half:])
        two = _sweep(store, space, 2, trials)
    else:
        two = _sweep(store, space, 2, trials)
        direct += _direct(store, params[:half])
        one = _sweep(store, space, 1, trials)
        direct += _direct(store, params[half:])
    parallel_s = _in_two_processes(pool, store, params)
    for sweep in (one, two):
        if sweep["params"] != params:
            raise SystemExit(f"the sweep tried {sweep['params']}, not the expected {params}")
    per_trial, direct_mean = one["sweep_s"] / trials, statistics.fmean(direct)
    return {"direct_trial_s": direct, "direct_mean_s": direct_mean,
            "load_avg_1m": os.getloadavg()[0], "sweep_1_worker": one, "sweep_2_workers": two,
            "speedup_2_vs_1": one["sweep_s"] / two["sweep_s"], "per_trial_in_sweep_s": per_trial,
            "overhead_fraction": per_trial / direct_mean - 1.0,
            "task_overhead_fraction": statistics.median(
                t / d for t, d in zip(one["trial_s"], direct)) - 1.0,
            "outside_tasks_per_trial_s": (one["sweep_s"] - sum(one["trial_s"])) / trials,
            "two_worker_task_slowdown": statistics.median(two["trial_s"])
            / statistics.median(one["trial_s"]),
            "direct_in_two_processes_s": parallel_s,
            "ceiling_2_vs_1": sum(direct) / parallel_s,
            "speedup_of_ceiling": one["sweep_s"] / two["sweep_s"] / (sum(direct) / parallel_s)}


def _print(report: dict) -> None:
    for i, r in enumerate(report["rounds"]):
        print(f"round {i} (load {r['load_avg_1m']:.1f}): direct {r['direct_mean_s']:.2f} s, "
              f"1-worker sweep {r['per_trial_in_sweep_s']:.2f} s per trial "
              f"({r['overhead_fraction']:+.1%}, in the task {r['task_overhead_fraction']:+.1%}, "
              f"outside {r['outside_tasks_per_trial_s']:.2f} s); 1 worker "
              f"{r['sweep_1_worker']['sweep_s']:.1f} s vs 2 workers "
              f"{r['sweep_2_workers']['sweep_s']:.1f} s -> {r['speedup_2_vs_1']:.2f}x; a trial "
              f"{r['two_worker_task_slowdown']:.2f}x as long with 2 in flight; the machine's "
              f"ceiling (direct trials in 2 plain processes) {r['ceiling_2_vs_1']:.2f}x")
    print(f"median over rounds: overhead {report['overhead_fraction']:+.1%} (goal <= +10%), "
          f"speedup 2 vs 1 worker {report['speedup_2_vs_1']:.2f}x (goal >= 1.7x), "
          f"{report['speedup_of_ceiling']:.0%} of the machine's ceiling "
          f"{report['ceiling_2_vs_1']:.2f}x; left out: "
          f"ray.init {report['ray_init_s']:.1f} s, 2 workers importing torch/Lightning "
          f"{report['worker_warm_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from workbench.ui.kernel_startup import quiet_libraries

    quiet_libraries()  # the direct trials' Lightning banners, as on the command line
    root = Path(tempfile.mkdtemp(prefix="bench-research-"))
    os.environ["WORKBENCH_RUNS"] = str(root / "runs")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    store = _store(root)
    space = _space(root)
    params = _trial_params(space, args.trials)
    _direct(store, params[:1])  # unmeasured: imports, first Lightning trainer, DuckDB schema
    pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(
        "spawn"))
    list(pool.map(_direct_in_process, [(str(store.path), params[:1])] * 2))  # the same, in both
    from workbench.research.sweep import ray_session, warm_workers

    t0 = time.perf_counter()
    # one local Ray with 2 CPUs: 1 worker = one trial in flight at a time
    with ray_session(2, warm=False) as ray:
        ray_init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm_workers(ray, 2)
        warm_s = time.perf_counter() - t0
        rounds = [_round(store, space, params, i, pool) for i in range(args.rounds)]
    pool.shutdown()
    report = {"trials": args.trials, "ray_init_s": ray_init_s, "worker_warm_s": warm_s,
              "rounds": rounds, "speedup_goal": 1.7, "overhead_goal": 0.10,
              **{k: statistics.median(r[k] for r in rounds)
                 for k in ("speedup_2_vs_1", "overhead_fraction", "task_overhead_fraction",
                           "outside_tasks_per_trial_s", "two_worker_task_slowdown",
                           "ceiling_2_vs_1", "speedup_of_ceiling")}}
    _print(report)
    write_report("research", report)


if __name__ == "__main__":
    main()
