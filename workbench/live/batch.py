"""The "Train Model" action: batch-train a loaded model on a range's annotations, in the background.

:func:`start_batch_training` trains a live :class:`~workbench.train.handle.ModelHandle` with the
torch engine (:func:`workbench.train.runs.start_training`): the run gets its own folder with every
artifact (``run.json``, ``config.json``, metrics, checkpoints, logs), every training batch holds the
handle's :class:`~workbench.train.lock.TrainingLock` (the engine's lock-taking callback) and
publishes a new snapshot, so live sessions on the same handle keep predicting and training while
it runs. The labels are the engine's ``data.labels``; "Train Model" takes all three sources by
default (issue 6: "all annotations for the chosen range"): ``manual`` (what a person annotated),
``pivot`` and ``rule`` (derived and written back as annotations), merged with the precedence
manual > pivot > rule (:mod:`workbench.train.labels`).

The engine trains a *working copy* synchronised with the live model under the lock at every
batch (:mod:`workbench.train.working_copy`, which says why: Lightning touching the live model
outside the lock crashed the stress test).
"""
from __future__ import annotations

from workbench.train.config import LABEL_SOURCES, config_from_dict
from workbench.train.working_copy import working_copy


#: "Train Model" trains on every annotation of the range (issue 6)
ALL_LABELS = LABEL_SOURCES


def batch_config(handle, store, symbol: str, timeframe: str, start=None, end=None, *,
                 labels=ALL_LABELS, overrides: dict | None = None):
    """Return the handle's config retargeted at a series, range and label sources.

    ``labels`` is one source or a sequence of them (``data.labels``).

    ``overrides`` are dotted keys (``{"training.num_epochs": 2}``); the model section stays the
    handle's, so the run trains exactly the loaded architecture. Early stopping does not restore
    the best epoch's weights (that would rewrite the live model behind the sessions' backs); the
    run's ``best.ckpt`` still holds them. Raises ConfigError for a bad key.
    """
    raw = handle.config.to_dict()
    raw["callbacks"]["early_stopping"]["restore_best"] = False
    raw["data"].update(db=str(store.path), symbol=symbol, timeframe=timeframe,
                       start=None if start is None else int(start),
                       end=None if end is None else int(end),
                       labels=labels if isinstance(labels, str) else list(labels))
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
                         labels=ALL_LABELS, overrides: dict | None = None, db=None):
    """Start "Train Model" in a background thread and return the engine's ``RunHandle``.

    ``labels``: the label sources (default all three, manual > pivot > rule where they overlap).

    The run trains a working copy of ``handle.model`` synchronised with it under ``handle.lock``
    at every batch (see the module docstring) and publishes a snapshot after every step;
    ``RunHandle.stop()`` ends it after the current batch, ``wait()`` returns its ``run.json``.

    Raises
    ------
    ActiveRunError : when another run is active. ConfigError : for a bad override.
    """
    from workbench.train.runs import start_training

    config = batch_config(handle, store, symbol, timeframe, start, end, labels=labels,
                          overrides=overrides)
    run = working_copy(handle, "batch_setup", "train-model")
    db = store.path if db is None else db  # the run lives beside the store it trains on
    lineage = {"parent_run_id": handle.run_id, "parent_steps": handle.steps}
    return start_training(config, db=db, store=store, lineage=lineage, **run.engine_kwargs())
