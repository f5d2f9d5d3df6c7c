"""Model lineage and compatibility: saved runs stay immutable, trained weights become new runs.

A saved run's checkpoints are never written after the run completes. Whatever trains a loaded
model (a live session, "Train Model", a walk-forward backtest) trains the in-memory copy that
:func:`~workbench.train.handle.load_model` built; ``handle.version`` counts the steps published
since the load. :func:`save_as_run` turns that copy into a *new* run whose ``run.json`` names its
parent (``parent_run_id``), the session, the mode, the series and candle range it was trained on
and the number of training steps, so every weight set a report shows can be traced back.

A run records what it was trained on (:func:`trained_on`: symbol, timeframe, features, window).
:func:`mismatch` says in words when a model is used on another series, and
:func:`check_compatible` turns that into a :class:`~workbench.errors.ModelMismatchError` unless
the caller allows it (the CLI's ``--allow-mismatch``; the panel only warns). :func:`check_length`
refuses a series shorter than the model's window before anything starts: such a session would
emit candles and never a prediction.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from workbench.errors import ModelMismatchError
from workbench.features.windows import FEATURES
from workbench.runs import now_iso, read_run, run_path, update_run, write_json_atomic
from workbench.train.checkpoints import atomic_save

CHECKPOINTS = ("best.ckpt", "last.ckpt")


def trained_on(run_id: str, db=None) -> dict:
    """Return ``{symbol, timeframe, features, window}`` a run's weights were trained on.

    Runs written before the ``trained_on`` record existed are read from their frozen config.
    """
    record = read_run(run_id, db)
    if record.get("trained_on"):
        return dict(record["trained_on"])
    from workbench.train.runs import load_run_config

    config = load_run_config(run_id, db)
    return describe_training(config.data.symbol, config.data.timeframe, config.model.window)


def describe_training(symbol: str, timeframe: str, window: int) -> dict:
    """The ``trained_on`` record of a run trained on ``symbol`` ``timeframe`` windows."""
    return {"symbol": symbol, "timeframe": timeframe, "features": list(FEATURES),
            "window": int(window)}


def mismatch(run_id: str, trained: dict, symbol: str, timeframe: str) -> str:
    """Return why using ``run_id`` on ``symbol`` ``timeframe`` is suspect ('' when it is not)."""
    differs = [(k, trained.get(k), v) for k, v in (("symbol", symbol), ("timeframe", timeframe))
               if trained.get(k) not in (None, v)]
    if list(trained.get("features") or FEATURES) != list(FEATURES):
        differs.append(("features", trained.get("features"), list(FEATURES)))
    if not differs:
        return ""
    what = ", ".join(f"{k} {want} (trained on {had})" for k, had, want in differs)
    return f"model {run_id} was trained on {trained.get('symbol')} {trained.get('timeframe')}; " \
           f"used on {what}"


def check_compatible(run_id: str, db, symbol: str, timeframe: str, *,
                     allow_mismatch: bool = False) -> str:
    """Raise ModelMismatchError when the run was trained on another series, unless allowed.

    Returns the mismatch text ('' when compatible) so an allowed mismatch can still be reported.
    """
    why = mismatch(run_id, trained_on(run_id, db), symbol, timeframe)
    if why and not allow_mismatch:
        raise ModelMismatchError(f"{why}; pass --allow-mismatch to use it anyway")
    return why


def check_length(run_id: str, window: int, symbol: str, timeframe: str, rows: int) -> None:
    """Raise ModelMismatchError when ``rows`` candles cannot fill one ``window``."""
    if rows < window:
        raise ModelMismatchError(
            f"{symbol} {timeframe} has {rows} candle(s) up to the end of the range; model "
            f"{run_id} needs a window of {window}: no prediction is possible")


def _new_child_id(parent: str, model_type: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{model_type}-child-{secrets.token_hex(3)}"


def _checkpoint(handle, session: str) -> dict:
    """The handle's published weights and its optimizer state, read under its lock."""
    with handle.lock.hold("save_as_run", session):
        weights = handle.state_dict_snapshot()
        optimizer = handle.optimizer.state_dict()
    return {"state_dict": {f"model.{k}": v for k, v in weights.items()},
            "optimizer_states": [optimizer], "global_step": handle.version}


def save_as_run(handle, db=None, *, session_id: str, mode: str, symbol: str, timeframe: str,
                first_ts: int | None, last_ts: int | None, training_steps: int | None = None
                ) -> dict:
    """Write the handle's current weights as a new completed run and return its ``run.json``.

    The new run holds ``config.json`` (the parent's, so ``load_model`` rebuilds the same
    architecture), ``checkpoints/best.ckpt`` and ``last.ckpt`` (the same weights and the
    optimizer's moments) and a ``run.json`` with the lineage fields ``parent_run_id``,
    ``session_id``, ``mode``, ``symbol``, ``timeframe``, ``candle_range`` and ``training_steps``
    (default: ``handle.steps``, the steps since the parent's saved weights). The parent run is only read.
    """
    from workbench.train.runs import load_run_config

    parent = handle.run_id
    config = load_run_config(parent, db) if parent else handle.config
    run_id = _new_child_id(parent or "fresh", handle.model_type)
    folder = run_path(run_id, db)
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", config.to_dict())
    ckpt = _checkpoint(handle, session_id)
    for name in CHECKPOINTS:
        atomic_save(ckpt, folder / "checkpoints" / name)
    steps = handle.steps if training_steps is None else int(training_steps)
    now = now_iso()
    return update_run(
        run_id, db, status="completed", kind="session", created_at=now, ended_at=now,
        model_type=handle.model_type, symbol=symbol, timeframe=timeframe,
        parent_run_id=parent, session_id=session_id, mode=str(getattr(mode, "value", mode)),
        candle_range=[first_ts, last_ts], training_steps=steps, model_version=handle.version,
        trained_on=describe_training(symbol, timeframe, handle.window))
