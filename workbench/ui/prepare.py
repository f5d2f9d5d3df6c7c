"""What every notebook needs before its own work: a store, a series, a range and a model.

Each notebook runs on its own (papermill, nbval, Voila, a quant in JupyterLab), so none may
assume another has run first. These helpers make the preconditions explicit and cheap:

* :func:`open_store` resolves the notebook's ``db`` parameter like the CLI's ``--db``;
* :func:`ensure_series` ingests the shipped file (or resamples the shipped 1m series) when the
  series is missing;
* :func:`pick_range` turns the ``start``/``end``/``candles`` parameters into epoch-ms bounds;
* :func:`ensure_model` returns the newest completed training run, training the ``--quick``
  model once when there is none. A file lock in the runs folder makes notebooks executed in
  parallel (nbval under xdist) train it once and share it.
* :func:`page_model` is what a report page calls instead: with ``read_only`` (set by the
  dashboard) it never ingests or trains; when the series or a model is missing it says so and
  stops the page (:func:`stop_page`).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from workbench.errors import NotFoundError, ParameterError
from workbench.paths import CONFIGS_DIR, DATA_DIR, SHIPPED_SERIES, resolve_db_path, runs_dir

BASE_TIMEFRAME = "1m"
MODEL_WAIT_S = 900  # a parallel notebook waits this long for the shared quick model


def open_store(db: str = ""):
    """Return a :class:`~workbench.data.store.Store` on ``db`` ("" : ``$WORKBENCH_DB`` or default)."""
    from workbench.data.store import Store

    return Store(resolve_db_path(db or None))


def _shipped(symbol: str, timeframe: str) -> Path | None:
    for name, sym, tf in SHIPPED_SERIES:
        if sym == symbol and tf == timeframe:
            return DATA_DIR / name
    return None


def shipped_file(symbol: str, timeframe: str) -> Path:
    """Return the shipped data file of ``(symbol, timeframe)``.

    Raises
    ------
    NotFoundError : when no shipped file holds that series; the message lists the shipped ones.
    """
    path = _shipped(symbol, timeframe)
    if path is None:
        known = ", ".join(f"{sym} {tf}" for _, sym, tf in SHIPPED_SERIES)
        raise NotFoundError(f"no shipped file for {symbol} {timeframe} (shipped: {known}); "
                            "pass the file to ingest as `source`")
    return path


def ensure_series(store, symbol: str, timeframe: str) -> int:
    """Make sure ``(symbol, timeframe)`` is stored; return its number of candles.

    A missing series is ingested from the shipped file, or resampled from the shipped 1m series.

    Raises
    ------
    NotFoundError : when the series is neither stored nor derivable from shipped data.
    """
    from workbench.data.ingest import ingest_file
    from workbench.data.resample import resample_series

    if store.last_ts(symbol, timeframe) is None:
        shipped = _shipped(symbol, timeframe)
        if shipped is not None:
            ingest_file(store, shipped, symbol, timeframe)
        elif _shipped(symbol, BASE_TIMEFRAME) is not None:
            ensure_series(store, symbol, BASE_TIMEFRAME)
            resample_series(store, symbol, BASE_TIMEFRAME, timeframe)
        else:
            raise NotFoundError(f"no stored series {symbol} {timeframe} and no shipped file "
                                f"for it; ingest one with `workbench data ingest`")
    return store.read_ohlcv(symbol, timeframe).height


def parse_time(text: str) -> int | None:
    """Parse ``YYYY-MM-DD`` / ISO-8601 text (UTC when no zone) to epoch ms; "" gives ``None``.

    Raises
    ------
    ParameterError : when the text is not a date.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"{text!r} is not a date (use YYYY-MM-DD or ISO-8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def pick_range(store, symbol: str, timeframe: str, *, start: str = "", end: str = "",
               candles: int = 0) -> tuple[int, int]:
    """Return inclusive ``(start_ms, end_ms)`` open times of the range a notebook works on.

    ``end`` defaults to the last stored candle; ``start`` defaults to ``candles`` candles before
    ``end`` (the whole series when ``candles`` is 0).

    Raises
    ------
    NotFoundError : when the range holds no candles.
    """
    frame = store.read_ohlcv(symbol, timeframe, None, parse_time(end))
    if not start and candles:
        frame = frame.tail(candles)
    elif start:
        frame = frame.filter(frame["ts"] >= parse_time(start))
    if frame.height == 0:
        raise NotFoundError(f"no {symbol} {timeframe} candles between {start or 'the start'} "
                            f"and {end or 'the end'}")
    return int(frame["ts"][0]), int(frame["ts"][-1])


def _matches(run: dict, symbol, timeframe, model_type) -> bool:
    wanted = {"symbol": symbol, "timeframe": timeframe, "model_type": model_type}
    return all(v is None or run.get(k) == v for k, v in wanted.items())


def latest_model(symbol: str | None = None, timeframe: str | None = None,
                 model_type: str | None = None, *, db=None) -> str | None:
    """Return the pinned report run (``workbench runs pin``) when it fits, else the newest
    completed run (optionally for a symbol/timeframe/model type), or None.

    ``db`` is the database whose runs folder is searched (runs live beside their database).
    """
    from workbench.runs import read_run, report_run

    pinned = report_run(db)  # the run chosen for reports (``workbench runs pin``) comes first
    if pinned and _matches(read_run(pinned, db), symbol, timeframe, model_type):
        return pinned
    # run.json carries symbol, timeframe and model type
    return next((run["run_id"] for run in completed_runs(db)
                 if _matches(run, symbol, timeframe, model_type)), None)


def completed_runs(db=None) -> list[dict]:
    """The ``run.json`` of every completed run of a model type this package trains, newest first.

    Price-model (TF) runs share the runs folder and are skipped by their model type.
    """
    from workbench.train.models import known_models
    from workbench.train.runs import list_runs

    known = known_models()
    return [run for run in list_runs(db)
            if run.get("status") == "completed" and run.get("model_type") in known]


def quick_config(store, symbol: str, timeframe: str, *, start: int | None = None,
                 end: int | None = None, model_type: str = "transformer", epochs: int = 0,
                 max_windows: int = 0, quick: bool = True, labels: str = "rule"):
    """Return the training config a notebook uses: the shipped YAML with the ``--quick`` preset."""
    from workbench.train.config import load_config

    overrides = [("data.db", str(store.path)), ("data.symbol", symbol),
                 ("data.timeframe", timeframe), ("data.start", start), ("data.end", end),
                 ("data.labels", labels)]
    if epochs:
        overrides.append(("training.num_epochs", epochs))
    if max_windows:
        overrides.append(("data.max_windows", max_windows))
    return load_config(CONFIGS_DIR / f"{model_type}.yaml", overrides, quick=quick)


def ensure_model(store, symbol: str, timeframe: str, model: str = "", *,
                 model_type: str = "transformer") -> str:
    """Return ``model`` if given, else the newest completed run, else train the quick model.

    Raises
    ------
    NotFoundError : when ``model`` names a run that does not exist.
    """
    import filelock

    from workbench.train.runs import read_run, train

    if model:
        read_run(model, store.path)  # raises NotFoundError naming the run
        return model
    found = latest_model(symbol, timeframe, model_type, db=store.path)
    if found:
        return found
    folder = runs_dir(store.path)
    folder.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(folder / ".notebook-quick-model.lock"), timeout=MODEL_WAIT_S):
        found = latest_model(symbol, timeframe, model_type, db=store.path)  # trained meanwhile?
        if found:
            return found
        ensure_series(store, symbol, timeframe)
        record = train(quick_config(store, symbol, timeframe, model_type=model_type),
                       db=store.path)
        return record["run_id"]


def scripted_labels(store, symbol: str, timeframe: str, start: int, end: int, labels: str,
                    every: int) -> dict[int, str]:
    """Return ``{candle ts: action}``: the comma-separated ``labels`` applied in turn to every
    ``every``-th candle of the range, so a manual session runs headless (papermill, CI).

    Raises
    ------
    ParameterError : for an unknown action or ``every`` below 1.
    """
    from workbench.actions import ACTIONS

    actions = [a.strip().upper() for a in labels.split(",") if a.strip()]
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or every < 1:
        raise ParameterError(f"manual labels {labels!r} / every {every}: labels must be "
                             f"{', '.join(ACTIONS)} and every >= 1")
    ts = store.read_ohlcv(symbol, timeframe, start, end)["ts"].to_list()
    marks = ts[every - 1::every][:len(actions)] if actions else []
    return dict(zip(marks, actions))


def _skip_cell(lines: list[str]) -> list[str]:
    return []


def stop_page(message: str) -> None:
    """Show ``message`` and make every later cell of this kernel do nothing.

    A read-only page that would have to train or write to show its content stops here: the
    reader sees why and what to run, not an error. The rest of the calling cell still runs, so
    it must be harmless with the placeholder values the caller returns.
    """
    from IPython import get_ipython
    from IPython.display import Markdown, display

    display(Markdown(f"**Read-only page:** {message}"))
    shell = get_ipython()
    if shell is not None and _skip_cell not in shell.input_transformers_post:
        shell.input_transformers_post.append(_skip_cell)


def page_model(store, symbol: str, timeframe: str, model: str = "", *, read_only: bool = False,
               model_type: str = "transformer") -> str:
    """Return the run id a report page shows: :func:`ensure_series` + :func:`ensure_model`, or
    with ``read_only`` the stored series and an existing model only.

    With ``read_only`` and no stored series or no completed model, the page stops with a
    message naming the command that provides it, and ``""`` is returned.

    Raises
    ------
    NotFoundError : when ``model`` names a run that does not exist.
    """
    if not read_only:
        ensure_series(store, symbol, timeframe)
        return ensure_model(store, symbol, timeframe, model, model_type=model_type)
    if store.last_ts(symbol, timeframe) is None:
        stop_page(f"no {symbol} {timeframe} candles are stored yet; ingest them with "
                  f"`workbench data ingest` (or `make demo`).")
        return ""
    found = ensure_model(store, symbol, timeframe, model) if model else latest_model(
        symbol, timeframe, model_type, db=store.path)
    if not found:
        stop_page(f"no trained {model_type} model for {symbol} {timeframe} yet; train one with "
                  f"`workbench train -c configs/{model_type}.yaml --quick` or the control "
                  "panel's Train Model.")
        return ""
    return found
