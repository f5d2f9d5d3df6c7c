"""The TensorFlow price-model pipeline: ``run_training_pipeline(TrainingConfig) -> TrainingResult``.

Stages, each a module with explicit inputs and outputs, timed and logged one line each:

=============  ===========================================================================
ingestion      store → (resample) → (exogenous join) → deterministic parquet cache
features       polars MinMax scaling fitted on the training rows only
dataset        vectorised windows, train/val/test by target row, ``tf.data`` streams
training       Conv1D + GRU/LSTM, EarlyStopping / ModelCheckpoint / ReduceLROnPlateau / TensorBoard
evaluation     RMSE / MAE on the test split, in price units
plots          predicted-vs-actual and loss-curve PNGs            (``skip_plots``)
robustness     RMSE under Gaussian input noise at several levels  (``skip_robustness``)
onnx           ``model.onnx`` + onnxruntime parity ≤ 1e-4         (``skip_onnx``)
artifacts      ``model.keras``, ``scaler.json``, ``metadata.json``
=============  ===========================================================================

Defaults reproduce the pipeline's historical behaviour (300 epochs, 120-step windows, batch 32,
every diagnostic and the ONNX export on), so an unattended job gets the full artifact set.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from workbench.data.store import Store
from workbench.data.timeframes import validate_timeframe
from workbench.errors import ParameterError
from workbench.paths import resolve_db_path
from workbench.pricemodel import artifacts, datasets, diagnostics, features, ingestion, runner
from workbench.pricemodel._runs import active_run

STAGES = ("ingestion", "features", "dataset", "training", "evaluation", "plots", "robustness",
          "onnx", "artifacts")
#: the config flag that skips each optional stage
SKIP_FLAGS = {"plots": "skip_plots", "robustness": "skip_robustness", "onnx": "skip_onnx"}

Log = Callable[[str], None]


@dataclass
class TrainingConfig:
    """Everything one price-model run needs; defaults are the historical ones."""

    symbol: str
    timeframe: str
    start_date: str  # YYYY-MM-DD, UTC, inclusive
    end_date: str  # YYYY-MM-DD, UTC, inclusive (the whole day)
    epochs: int = 300  # EarlyStopping (patience below) ends most runs long before this
    batch_size: int = 32
    sequence_length: int = 120
    skip_plots: bool = False
    skip_robustness: bool = False
    skip_onnx: bool = False  # ONNX stays on by default: live and backtest consumers load .onnx
    force_refresh: bool = False
    mixed_precision: bool = True  # only takes effect when a GPU is present
    xla: bool = True  # XLA-compile the train step (CPU and GPU); False: Keras' default
    exog_file: str | None = None
    model_type: str = "gru"
    units: int = 32
    learning_rate: float = 1e-3
    early_stopping_patience: int = 10
    seed: int = 42
    train_frac: float = 0.7
    val_frac: float = 0.15
    noise_levels: tuple[float, ...] = diagnostics.NOISE_LEVELS
    db_path: str | None = None  # None: --db / $WORKBENCH_DB / data/workbench.duckdb
    cache_dir: str | None = None  # None: <db folder>/cache/pricemodel

    def validate(self) -> "TrainingConfig":
        """Return self; ParameterError names the first impossible setting."""
        validate_timeframe(self.timeframe)
        for name in ("epochs", "batch_size", "units", "early_stopping_patience"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sequence_length < 2:
            raise ParameterError(f"sequence_length must be at least 2, got {self.sequence_length}")
        self._check_floats()
        if ingestion.date_to_ms(self.end_date) < ingestion.date_to_ms(self.start_date):
            raise ParameterError(f"end date {self.end_date} is before start date {self.start_date}")
        runner.get_model_builder(self.model_type)
        return self

    def _check_floats(self) -> None:
        """Non-finite or out-of-range rates would train a NaN model that passes for a result."""
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ParameterError(f"learning_rate must be a finite number > 0, got "
                                 f"{self.learning_rate}")
        for name in ("train_frac", "val_frac"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value < 1):
                raise ParameterError(f"{name} must be a finite number in (0, 1), got {value}")
        if self.train_frac + self.val_frac >= 1:
            raise ParameterError(f"train_frac + val_frac must be < 1 (a test split must remain), "
                                 f"got {self.train_frac} + {self.val_frac}")
        bad = [x for x in self.noise_levels if not (math.isfinite(x) and x >= 0)]
        if bad:
            raise ParameterError(f"noise_levels must be finite numbers >= 0, got {bad[0]}")

    def resolved_cache_dir(self) -> Path:
        """Return the ingestion cache folder."""
        if self.cache_dir:
            return Path(self.cache_dir)
        return resolve_db_path(self.db_path).parent / "cache" / "pricemodel"

    def fit_settings(self) -> runner.FitSettings:
        return runner.FitSettings(epochs=self.epochs, learning_rate=self.learning_rate,
                                  early_stopping_patience=self.early_stopping_patience,
                                  seed=self.seed, jit_compile=True if self.xla else "auto")


@dataclass
class TrainingResult:
    """What a finished run produced (the same facts as its ``metadata.json``)."""

    run_id: str
    run_dir: Path
    metrics: dict
    cache_hit: bool
    stage_timings: dict[str, float]
    stages_run: dict[str, bool]
    artifacts: dict[str, str]
    precision: dict
    epochs_run: int
    total_s: float
    onnx_parity: dict | None = None
    robustness: list | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["run_dir"] = str(self.run_dir)
        return out


@dataclass
class StageClock:
    """Times stages with ``perf_counter`` and logs one line per stage (or per skip)."""

    log: Log
    timings: dict[str, float] = field(default_factory=dict)
    ran: dict[str, bool] = field(default_factory=dict)

    def run(self, name: str, fn: Callable, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = time.perf_counter() - t0
        self.ran[name] = True
        self.log(f"[{name}] {self.timings[name]:.2f} s")
        return out

    def skip(self, name: str, flag: str) -> None:
        self.ran[name] = False
        self.log(f"[{name}] skipped (--{flag.replace('_', '-')})")


def _ingest(config: TrainingConfig, log: Log) -> ingestion.IngestResult:
    req = ingestion.IngestRequest(
        config.symbol, config.timeframe, ingestion.date_to_ms(config.start_date),
        ingestion.date_to_ms(config.end_date, end_of_day=True),
        Path(config.exog_file) if config.exog_file else None)
    result = ingestion.ingest(Store(config.db_path), req, config.resolved_cache_dir(),
                              force_refresh=config.force_refresh)
    how = ("reused" if result.cache_hit else
           "rebuilt (--force-refresh)" if config.force_refresh else "built (miss)")
    log(f"cache {how}: {result.cache_path.name} ({result.frame.height} candles, source "
        f"{result.source_timeframe})")
    return result


def _dataset(fm: features.FeatureMatrix, config: TrainingConfig):
    x, y = datasets.make_windows(fm.values, config.sequence_length, fm.target_index)
    windows = datasets.split_windows(x, y, config.sequence_length, fm.split)
    train = datasets.make_tf_dataset(windows.train, config.batch_size, shuffle=True,
                                     seed=config.seed)
    val = datasets.make_tf_dataset(windows.val, config.batch_size, shuffle=False, seed=config.seed)
    return windows, train, val


def _train(config: TrainingConfig, fm, train_ds, val_ds, run_dir: Path, log: Log):
    settings = config.fit_settings()
    model = runner.build_compiled_model(config.model_type, config.sequence_length,
                                        len(fm.columns), settings, config.units)
    history = runner.fit(model, train_ds, val_ds, settings,
                         runner.make_callbacks(run_dir, settings, log))
    return runner.for_inference(model), history


def _diagnose(clock: StageClock, config: TrainingConfig, model, fm, windows, history,
              run_dir: Path) -> dict:
    test = windows.test
    pred = clock.run("evaluation", diagnostics.predict, model, test.x)
    out = {"metrics": diagnostics.regression_metrics(test.y, pred, fm.scaler), "robustness": None}
    _write_predictions(fm, test, pred, run_dir)
    if config.skip_plots:
        clock.skip("plots", "skip_plots")
    else:
        clock.run("plots", _plots, fm, test, pred, history, run_dir)
    if config.skip_robustness:
        clock.skip("robustness", "skip_robustness")
    else:
        out["robustness"] = clock.run("robustness", diagnostics.robustness, model, test.x, test.y,
                                      fm.scaler, levels=tuple(config.noise_levels),
                                      seed=config.seed)
    if config.skip_onnx:
        clock.skip("onnx", "skip_onnx")
        out["onnx"] = None
    else:
        out["onnx"] = clock.run("onnx", _onnx, model, test.x, run_dir)
    return out


def _plots(fm, test, pred, history, run_dir: Path) -> list[str]:
    plots = run_dir / "plots"
    a = diagnostics.plot_predictions(fm.ts[test.target_rows], fm.scaler.inverse(test.y),
                                     fm.scaler.inverse(pred), plots / "predictions.png")
    b = diagnostics.plot_loss(history, plots / "loss.png")
    return [str(a.relative_to(run_dir)), str(b.relative_to(run_dir))]


def _write_predictions(fm, test, pred, run_dir: Path) -> None:
    """Keep the test split's predicted and actual target (prices) for the notebook's chart."""
    pl.DataFrame({"ts": np.asarray(fm.ts[test.target_rows], dtype=np.int64),
                  "actual": fm.scaler.inverse(test.y).reshape(-1),
                  "predicted": fm.scaler.inverse(pred).reshape(-1)}) \
        .write_parquet(run_dir / "predictions.parquet")


def _onnx(model, x, run_dir: Path) -> dict:
    path = artifacts.export_onnx(model, run_dir)
    return artifacts.onnx_parity(path, model, x[:256])


def _metadata(config, record, ingest, fm, windows, history, diag, precision, clock) -> dict:
    frame = ingest.frame
    return {
        "run_id": record.run_id, "kind": "pricemodel", "config": asdict(config),
        "data": {"symbol": config.symbol, "timeframe": config.timeframe,
                 "source_timeframe": ingest.source_timeframe, "rows": frame.height,
                 "first_ts": int(frame["ts"][0]), "last_ts": int(frame["ts"][-1]),
                 "start_date": config.start_date, "end_date": config.end_date,
                 "source_hash": ingest.source_hash, "exog_columns": list(ingest.exog_columns),
                 "cache": {"hit": ingest.cache_hit, "path": str(ingest.cache_path),
                           "force_refresh": config.force_refresh},
                 "split_rows": asdict(fm.split),
                 "windows": {k: len(getattr(windows, k)) for k in ("train", "val", "test")}},
        "features": list(fm.columns), "target": features.TARGET_COLUMN,
        "scaler": fm.scaler.state_dict(),
        "metrics": {"test": diag["metrics"], "epochs_run": len(history.get("loss", [])),
                    "best_val_loss": min(history.get("val_loss", [float("nan")]))},
        "history": history, "robustness": diag["robustness"],
        "onnx": None if diag["onnx"] is None else {"path": "model.onnx", "parity": diag["onnx"]},
        "precision": {**asdict(precision), "jit_compile": config.xla},
        "stages_run": {s: clock.ran.get(s, False) for s in STAGES},
        "diagnostics": {k: clock.ran.get(k, False) for k in SKIP_FLAGS},
        "stage_timings_s": dict(clock.timings), "versions": artifacts.versions(),
    }


def _save(model, run_dir: Path, meta: dict) -> dict[str, str]:
    artifacts.save_keras(model, run_dir)
    artifacts.write_json(run_dir / "scaler.json", meta["scaler"])
    artifacts.write_json(run_dir / "config.json", meta["config"])
    names = ["model.keras", "scaler.json", "config.json", "metadata.json", "run.json",
             "predictions.parquet"]
    names += ["model.onnx"] if meta["onnx"] else []
    names += ["plots/predictions.png", "plots/loss.png"] if meta["diagnostics"]["plots"] else []
    return {n: str(run_dir / n) for n in names}


def _file_logger(log: Log, path: Path) -> Log:
    path.parent.mkdir(parents=True, exist_ok=True)

    def both(line: str) -> None:
        log(line)
        with path.open("a") as fh:
            fh.write(line + "\n")

    return both


def _default_log(line: str) -> None:
    print(line, flush=True)


def run_training_pipeline(config: TrainingConfig, log: Log | None = None) -> TrainingResult:
    """Run every stage of one price-model training run and return its result.

    Raises
    ------
    ParameterError : for an impossible configuration or too little data for the window.
    NotFoundError : when the symbol/timeframe/range has no candles.
    ActiveRunError : when another training run is active.
    ExportError : when the ONNX export or its parity check fails.
    """
    config.validate()
    t_start = time.perf_counter()
    with active_run(asdict(config), db=config.db_path) as record:
        run_dir = record.run_dir
        log = _file_logger(log or _default_log, run_dir / "logs" / "training.log")
        log(f"run {record.run_id}: {config.symbol} {config.timeframe} "
            f"{config.start_date}..{config.end_date} → {run_dir}")
        precision = runner.apply_precision(config.mixed_precision)
        log(f"precision: {precision.describe()}; train step XLA-compiled: {config.xla}")
        try:
            result = _run_stages(config, record, precision, log, t_start)
        finally:
            runner.reset_precision()
        record.update(final_metrics=result.metrics)
    return result


def _run_stages(config, record, precision, log: Log, t_start: float) -> TrainingResult:
    run_dir = record.run_dir
    clock = StageClock(log)
    runner.seed_everything(config.seed)  # before the dataset: tf.data seeds mix in the global seed
    ingest = clock.run("ingestion", _ingest, config, log)
    fm = clock.run("features", features.build_features, ingest.frame, config.sequence_length,
                   train_frac=config.train_frac, val_frac=config.val_frac)
    windows, train_ds, val_ds = clock.run("dataset", _dataset, fm, config)
    model, history = clock.run("training", _train, config, fm, train_ds, val_ds, run_dir, log)
    diag = _diagnose(clock, config, model, fm, windows, history, run_dir)
    meta = _metadata(config, record, ingest, fm, windows, history, diag, precision, clock)
    paths = clock.run("artifacts", _save, model, run_dir, meta)
    meta["stage_timings_s"] = dict(clock.timings)
    meta["stages_run"] = {s: clock.ran.get(s, False) for s in STAGES}
    total = time.perf_counter() - t_start
    meta["total_s"] = total
    artifacts.write_json(run_dir / "metadata.json", meta)
    log(f"[total] {total:.2f} s — test RMSE {diag['metrics']['rmse']:.4f}, "
        f"MAE {diag['metrics']['mae']:.4f}")
    return TrainingResult(record.run_id, run_dir, diag["metrics"], ingest.cache_hit,
                          dict(clock.timings), meta["stages_run"], paths, meta["precision"],
                          meta["metrics"]["epochs_run"], total, diag["onnx"], diag["robustness"])
