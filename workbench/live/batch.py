"""The "Train Model" action: batch-train a loaded model on a range's annotations, in the background.

:func:`start_batch_training` trains a live :class:`~workbench.train.handle.ModelHandle` *in place*
with the torch engine (:func:`workbench.train.runs.start_training`): the run gets its own folder
with every artifact (``run.json``, ``config.json``, metrics, checkpoints, logs), every optimizer
step holds the handle's :class:`~workbench.live.lock.TrainingLock` (the engine's lock-taking
callback) and publishes a new snapshot, so live sessions on the same handle keep predicting and
training while it runs. The label source is the engine's ``data.labels``: ``rule`` or ``pivot``
(derived and written back as annotations) or ``manual`` (the annotations a person made).
"""
from __future__ import annotations

from workbench.train.config import config_from_dict


def batch_config(handle, store, symbol: str, timeframe: str, start=None, end=None, *,
                 labels: str = "rule", overrides: dict | None = None):
    """Return the handle's config retargeted at a series, range and label source.

    ``overrides`` are dotted keys (``{"training.num_epochs": 2}``); the model section stays the
    handle's, so the run trains exactly the loaded architecture. Early stopping does not restore
    the best epoch's weights (that would write the live weights outside the training lock); the
    run's ``best.ckpt`` still holds them. Raises ConfigError for a bad key.
    """
    raw = handle.config.to_dict()
    # restoring the best epoch would rewrite a live model's weights outside the training lock
    raw["callbacks"]["early_stopping"]["restore_best"] = False
    raw["data"].update(db=str(store.path), symbol=symbol, timeframe=timeframe,
                       start=None if start is None else int(start),
                       end=None if end is None else int(end), labels=labels)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if not raw["output"]["run_name"]:
        raw["output"]["run_name"] = "batch"
    return config_from_dict(raw)


def start_batch_training(handle, store, symbol: str, timeframe: str, start=None, end=None, *,
                         labels: str = "rule", overrides: dict | None = None, db=None):
    """Start "Train Model" in a background thread and return the engine's ``RunHandle``.

    The run trains ``handle.model`` in place through ``handle.lock``, publishing a snapshot after
    every step; ``RunHandle.stop()`` ends it after the current batch, ``wait()`` returns its
    ``run.json``.

    Raises
    ------
    ActiveRunError : when another run is active. ConfigError : for a bad override.
    """
    from workbench.train.runs import start_training

    config = batch_config(handle, store, symbol, timeframe, start, end, labels=labels,
                          overrides=overrides)
    return start_training(config, db=db, model=handle.model, lock=handle.lock,
                          publish=handle.publish, store=store)
