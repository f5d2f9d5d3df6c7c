"""Sweeps: Optuna proposes configurations, Ray runs them as tasks, DuckDB keeps every trial.

``sweep`` asks an Optuna study (TPE by default) for one parameter set per trial from a search
space (:mod:`workbench.research.space`), runs each trial as a Ray task with declared resources
(``cpus_per_trial``, ``gpus_per_trial``) and tells the study the trial's objective
(:data:`OBJECTIVES`; by default the out-of-sample Sharpe of a walk-forward evaluation,
:func:`workbench.research.evaluate.evaluate`). Ray is local by default (``num_cpus = workers``);
``address`` joins an existing cluster (``docs/research.md``).

* **One active job.** The sweep holds the project's active-run lock under its id for its whole
  length; every fold run of every trial trains under it (``train(under_job=)``) and carries the
  sweep id, the trial number and, in ``config.json``, its parameters.
* **Workers.** Local Ray runs its workers at normal priority and warms them (torch and
  Lightning imported) before the first trial; each trial trains with as many torch threads as
  CPUs it declares (:func:`ray_session`, :func:`trial_threads`).
* **Pruning.** The first fold of a trial (the same data for every trial) reports ``val_loss``
  per epoch through optuna-integration's ``PyTorchLightningPruningCallback``; the median pruner
  stops trials that fall behind. A pruned trial's run is recorded as failed with ``TrialPruned``,
  the trial as pruned.
* **Resumable.** The study lives in an Optuna journal file beside the database
  (``<db folder>/optuna.journal``, study name = sweep id); ``study=ID`` continues it up to
  ``trials`` finished trials. Trials left running by a killed sweep are marked failed.
* **Statistics.** Over the completed trials' out-of-sample return series (aligned on candle
  time): the Deflated Sharpe Ratio of the best trial and the PBO by CSCV
  (:mod:`workbench.research.overfitting`). Trials land in ``sweep_trials``, the sweep in ``sweeps``.
* **Trial rows.** Each finished trial's row goes into the study's journal at once (a user
  attribute of the trial, an append to a file) and into ``sweep_trials`` at most every
  :data:`ROWS_EVERY_S` seconds and at the end, in one transaction each: the driver does not take
  the DuckDB file from the workers after every short trial. A resumed sweep writes the rows of
  the trials its killed predecessor finished, from the journal.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from lightning.pytorch.callbacks import Callback

from workbench.errors import ParameterError, RunError, WorkbenchError
from workbench.paths import PROJECT_ROOT, resolve_db_path
from workbench.research.evaluate import (EvaluateSpec, active_job, evaluate, plan_folds,
                                         require_candles)
from workbench.research.trials import sweep_statistics, trials_frame

SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class Objective:
    """What a trial is scored by: a direction and a function of its evaluation summary."""

    direction: str
    score: Callable[[dict], float]
    description: str


def _mean_val_loss(summary: dict) -> float:
    values = [f["val_loss"] for f in summary["folds"] if f.get("val_loss") is not None]
    return sum(values) / len(values) if values else float("nan")


#: objectives by name (``--objective``): out-of-sample metrics or a validation metric
OBJECTIVES: dict[str, Objective] = {
    "oos_sharpe": Objective("maximize", lambda s: s["oos"]["sharpe"],
                            "annualised Sharpe ratio of the chained out-of-sample folds"),
    "oos_return": Objective("maximize", lambda s: s["oos"]["return_pct"],
                            "total return of the chained out-of-sample folds"),
    "val_loss": Objective("minimize", _mean_val_loss,
                          "mean best validation loss of the fold runs"),
}


def get_objective(name: str) -> Objective:
    """Return a registered objective; raises ParameterError naming the known ones."""
    if name not in OBJECTIVES:
        raise ParameterError(f"objective {name!r} is not known; known objectives: "
                             f"{', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


@dataclass(frozen=True)
class SweepSpec:
    """How to run a sweep (see the module docstring)."""

    trials: int
    workers: int = 1
    address: str | None = None
    objective: str = "oos_sharpe"
    sampler: str = "tpe"
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    prune: bool = True
    evaluation: EvaluateSpec = field(default_factory=EvaluateSpec)

    def __post_init__(self):
        if self.trials < 1 or self.workers < 1:
            raise ParameterError(f"trials ({self.trials}) and workers ({self.workers}) must "
                                 "be >= 1")
        if self.sampler not in SAMPLERS:
            raise ParameterError(f"sampler {self.sampler!r} is not known; known: {SAMPLERS}")
        get_objective(self.objective)


def new_sweep_id() -> str:
    """Return a fresh sweep id: ``sw-YYYYmmdd-HHMMSS-<6 hex>``."""
    return f"sw-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def storage_path(db) -> Path:
    """Return the Optuna journal file of a database: ``optuna.journal`` beside it."""
    return resolve_db_path(db).parent / "optuna.journal"


def _storage(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def _pruner(prune: bool):
    """The study's pruner: the median rule after two trials and one epoch, or none.

    Optuna does not store the pruner with the study, so the trial's worker builds it again here
    (:func:`_pruning`) instead of getting ``load_study``'s default.
    """
    import optuna

    return (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if prune
            else optuna.pruners.NopPruner())


def _study(sweep_id: str, spec: SweepSpec, path: Path, resume: bool):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(path)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if resume and sweep_id not in names:
        raise ParameterError(f"no sweep {sweep_id!r} in {path} to resume")
    sampler = (optuna.samplers.TPESampler(seed=spec.seed) if spec.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=spec.seed))
    study = optuna.create_study(study_name=sweep_id, storage=storage, sampler=sampler,
                                pruner=_pruner(spec.prune),
                                direction=get_objective(spec.objective).direction,
                                load_if_exists=True)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left by a killed sweep
    return study


# -- the Ray task ---------------------------------------------------------------------------------
def run_trial(payload: dict) -> dict:
    """Run one trial (in a Ray worker): a walk-forward evaluation of the trial's config.

    Returns ``{state, value?, summary?, error?, seconds}``; never raises for a trial's own
    failure, so one bad configuration does not end the sweep.
    """
    import optuna

    os.environ.update(payload["env"])
    from workbench.data.store import Store
    from workbench.train.config import config_from_dict

    t0 = time.perf_counter()
    callbacks = _pruning(payload) if payload["prune"] else None
    try:
        config = config_from_dict(payload["config"])
        summary = evaluate(config, payload["evaluation"], Store(payload["db"]), db=payload["db"],
                           under_job=payload["sweep_id"], fold_callbacks=callbacks,
                           tags={"sweep_id": payload["sweep_id"], "trial": payload["trial"],
                                 "params": payload["params"]})
    except WorkbenchError as exc:  # the run re-raises the pruning callback's TrialPruned
        pruned = isinstance(exc.__cause__, optuna.TrialPruned)
        return {"state": "PRUNED" if pruned else "FAIL",
                "error": str(exc.__cause__) if pruned else f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0}
    summary.pop("oos_returns")
    value = float(get_objective(payload["objective"]).score(summary))
    state = "COMPLETE" if math.isfinite(value) else "FAIL"
    return {"state": state, "value": value, "summary": summary,
            "error": None if state == "COMPLETE" else f"objective is {value}",
            "seconds": time.perf_counter() - t0}


NEG_VAL_LOSS = "neg_val_loss"


def _pruning(payload: dict):
    """Return ``fn(fold) -> callbacks``: the pruning callback for the first fold, none after.

    The callback reports the first fold's validation loss per epoch to the trial. The pruner
    keeps the trials that are better in the study's direction, so a maximised study (the
    out-of-sample Sharpe) is given ``-val_loss``: reported as is, the pruner would stop the
    trials with the *lowest* loss.
    """
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    study = optuna.load_study(study_name=payload["sweep_id"],
                              storage=_storage(Path(payload["storage"])),
                              pruner=_pruner(payload["prune"]))
    trial = optuna.trial.Trial(study, payload["trial_id"])
    if get_objective(payload["objective"]).direction == "minimize":
        callbacks = [PyTorchLightningPruningCallback(trial, "val_loss")]
    else:
        callbacks = [_NegatedValLoss(), PyTorchLightningPruningCallback(trial, NEG_VAL_LOSS)]
    # only the first fold: every trial sees the same data there, so its curves compare
    return lambda fold: callbacks if fold == 0 else []


class _NegatedValLoss(Callback):
    """Add ``neg_val_loss`` (``-val_loss``) to the trainer's callback metrics."""

    def on_validation_end(self, trainer, pl_module) -> None:
        loss = trainer.callback_metrics.get("val_loss")
        if loss is not None:
            trainer.callback_metrics[NEG_VAL_LOSS] = -loss


# -- the driver -----------------------------------------------------------------------------------
@contextlib.contextmanager
def ray_session(workers: int, address: str | None = None, *, warm: bool = True):
    """Start local Ray with ``workers`` CPUs (or join ``address``) quietly; shut it down after.

    Local Ray runs its workers at normal priority: Ray's default (``worker_niceness`` 15) lets
    every other process on a shared machine go first, which made a trial in a sweep much slower
    than the same trial run directly. The ``workers`` worker processes are started and have
    imported the trial code (torch, Lightning) before the session is handed out
    (:func:`warm_workers`; ``warm=False`` leaves that to the caller, e.g. a benchmark timing
    it apart), so that one-off cost is paid once per session, not inside a trial.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
          "configure_logging": True}
    kw.update({"address": address} if address else {"num_cpus": workers,
                                                    "_system_config": {"worker_niceness": 0}})
    _init_ray(ray, kw)
    try:
        if warm:
            warm_workers(ray, workers)
        yield ray
    finally:
        ray.shutdown()


def _import_trial_code() -> int:
    """The warm-up task: import what :func:`run_trial` needs; return the worker's pid.

    Running it imports this module (the evaluation, the backtest engine, torch and Lightning);
    the task imports what a trial imports on first use: Optuna, its Lightning pruning callback
    and the model loader of the backtests.
    """
    import optuna  # noqa: F401
    import optuna_integration  # noqa: F401
    import workbench.train.handle  # noqa: F401

    return os.getpid()


def warm_workers(ray, workers: int) -> set[int]:
    """Start ``workers`` Ray worker processes and import the trial code in each, in parallel.

    Ray keeps idle workers and reuses them for later tasks of the same job (nothing here sets
    ``max_calls`` or a per-task ``runtime_env``), so every trial after this finds torch and
    Lightning imported. Returns the workers' pids.
    """
    task = ray.remote(_import_trial_code).options(num_cpus=1)
    return set(ray.get([task.remote() for _ in range(workers)]))


def _init_ray(ray, kw: dict, attempts: int = 5) -> None:
    """``ray.init`` with retries: Ray gives its raylet a fixed 30 s to register, which a busy
    machine can miss; a failed start is cleaned up before the next attempt."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**kw)
            return
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - Ray raises plain Exception
            ray.shutdown()
            if attempt == attempts:
                where = kw.get("address") or "a local Ray"
                raise RunError(f"Ray did not start ({where}) after {attempts} attempts: "
                               f"{exc}") from None


def trial_threads(spec: SweepSpec) -> int:
    """Return the torch threads of one trial: the CPUs it declares to Ray (at least 1)."""
    return max(1, int(spec.cpus_per_trial))


def _payload(config_raw: dict, spec: SweepSpec, db: Path, sweep_id: str, trial, params) -> dict:
    from workbench.train.config import merge_overrides
    from workbench.runs import runs_dir

    config = merge_overrides(config_raw, list(params.items()))
    config.setdefault("data", {})["db"] = str(db)
    # a trial computes on the CPUs it declared to Ray, no more: two 1-CPU trials on 2 cores with
    # more torch threads each would oversubscribe the cores and slow each other down
    threads = trial_threads(spec)
    config.setdefault("training", {})["num_threads"] = threads
    env = {"WORKBENCH_RUNS": str(runs_dir(db)), "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    return {"config": config, "evaluation": spec.evaluation, "db": str(db), "sweep_id": sweep_id,
            "trial": trial.number, "params": params, "trial_id": trial._trial_id,
            "prune": spec.prune,
            "storage": str(storage_path(db)), "objective": spec.objective, "env": env}


def _tell(study, trial, out: dict) -> None:
    import optuna

    states = {"COMPLETE": optuna.trial.TrialState.COMPLETE,
              "PRUNED": optuna.trial.TrialState.PRUNED, "FAIL": optuna.trial.TrialState.FAIL}
    if out["state"] == "COMPLETE":
        study.tell(trial, out["value"])
    else:
        study.tell(trial, state=states[out["state"]])


def _trial_row(sweep_id: str, number: int, params: dict, out: dict) -> dict:
    summary = out.get("summary") or {}
    oos = summary.get("oos", {})
    return {"sweep_id": sweep_id, "trial": number, "state": out["state"], "params": params,
            "value": out.get("value"), "evaluation_id": summary.get("evaluation_id"),
            "oos_return": oos.get("return_pct"), "oos_sharpe": oos.get("sharpe"),
            "oos_max_drawdown": oos.get("max_drawdown"),
            "val_loss": _mean_val_loss(summary) if summary else None,
            "seconds": out.get("seconds"), "error": out.get("error")}


#: the most seconds a finished trial's row waits before it is written to ``sweep_trials``
ROWS_EVERY_S = 30.0
#: the user attribute of a finished trial in the study's journal holding its ``sweep_trials`` row
ROW_ATTR = "sweep_trials_row"


def _journal_rows(study) -> list[dict]:
    """The ``sweep_trials`` rows the journal holds for the study's finished trials, in order."""
    return [t.user_attrs[ROW_ATTR] for t in study.get_trials(deepcopy=False)
            if ROW_ATTR in t.user_attrs]


def _drive(study, space, spec: SweepSpec, submit, store, make_payload, progress) -> None:
    """Keep ``spec.workers`` trials in flight until the study has ``spec.trials`` finished."""
    import ray

    finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    remaining, pending = max(0, spec.trials - finished), {}
    unwritten, written_at = [], time.monotonic()

    def fill() -> int:
        while len(pending) < spec.workers and len(pending) < remaining:
            trial = study.ask()
            params = {d.key: d.suggest(trial) for d in space}
            pending[submit(make_payload(trial, params))] = (trial, params)
        return len(pending)

    while fill():
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        trial, params = pending.pop(ref)
        remaining -= 1
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as exc:
            out = {"state": "FAIL", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        row = _trial_row(study.study_name, trial.number, params, out)
        trial.set_user_attr(ROW_ATTR, row)  # kept in the journal before the trial is told
        _tell(study, trial, out)
        fill()  # the next trial starts before this one's row is written
        unwritten.append(row)
        if time.monotonic() - written_at >= ROWS_EVERY_S:
            store.save_sweep_trials(unwritten)
            unwritten, written_at = [], time.monotonic()
        if progress is not None:
            progress(trial.number, out)


def sweep(config_raw: dict, space, spec: SweepSpec, store, *, sweep_id: str | None = None,
          progress=None) -> dict:
    """Run (or resume, with ``sweep_id``) a sweep and return its summary.

    Parameters
    ----------
    config_raw : the base training config as a dict (quick preset and ``--set`` applied).
    space : the :class:`~workbench.research.space.Dimension` list to search.
    spec : trials, workers, Ray address, objective, evaluation settings.
    store : the store with the candles; trials and the sweep row are written to it.
    progress : called as ``progress(trial_number, outcome)`` after each trial.

    Returns
    -------
    dict: ``sweep_id``, ``objective``, ``trials`` (rows), ``best_trial``, ``best_value``,
    ``best_params``, ``deflated_sharpe``, ``pbo``, ``luck`` (in words) and ``baselines`` (those
    of the best trial's windows).
    """
    db = resolve_db_path(store.path)
    _check_series(config_raw, spec, store)  # before Ray starts: not N trials failing alike
    resume = sweep_id is not None
    sweep_id = sweep_id or new_sweep_id()
    with active_job(sweep_id, db):
        study = _study(sweep_id, spec, storage_path(db), resume)
        with ray_session(spec.workers, spec.address) as ray:
            task = ray.remote(run_trial).options(num_cpus=spec.cpus_per_trial,
                                                 num_gpus=spec.gpus_per_trial)
            _drive(study, space, spec, task.remote, store,
                   lambda trial, params: _payload(config_raw, spec, db, sweep_id, trial, params),
                   progress)
    return _summarise(study, spec, store, sweep_id)


def _check_series(config_raw: dict, spec: SweepSpec, store) -> None:
    """Raise what every trial would raise when the base config's series cannot be evaluated:
    NotFoundError without candles, ParameterError when the folds do not fit."""
    from workbench.train.config import config_from_dict

    config = config_from_dict(config_raw)
    data = config.data
    n_rows = store.read_ohlcv(data.symbol, data.timeframe, data.start, data.end).height
    require_candles(data, store.path, n_rows)
    plan_folds(config, spec.evaluation, n_rows)


def _summarise(study, spec: SweepSpec, store, sweep_id: str) -> dict:
    """Compute the sweep's statistics; write every trial's row and the sweep's in one go."""
    trials = sorted(_journal_rows(study), key=lambda row: row["trial"])
    stats = sweep_statistics(trials_frame(trials), store.evaluations(sweep_id),
                             get_objective(spec.objective).direction)
    out = {"sweep_id": sweep_id, "objective": spec.objective,
           "direction": get_objective(spec.objective).direction, "n_trials": len(trials),
           "trials": trials, **stats, "storage": str(storage_path(store.path)),
           "spec": {k: v for k, v in asdict(spec).items() if k != "evaluation"}}
    store.save_sweep({"sweep_id": sweep_id, "objective": spec.objective,
                      "direction": out["direction"], "n_trials": len(trials),
                      "best_trial": stats["best_trial"], "best_value": stats["best_value"],
                      "deflated_sharpe": stats["deflated_sharpe"], "pbo": stats["pbo"],
                      "summary": {k: v for k, v in out.items() if k != "trials"}}, trials)
    return out
