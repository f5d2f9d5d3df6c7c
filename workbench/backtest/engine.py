"""The backtest engine: "Backtest Visible Chart" of seed 000, the batched twin of a live session.

:func:`run_backtest` reads the candles of a symbol/timeframe/range from the store, gets one
signal per candle from a model (batched inference only: no weight update, no training lock) or
from a signal file, simulates the trades (:mod:`workbench.backtest.simulate`), computes the
statistics (:mod:`workbench.backtest.stats`) and persists the result:

* ``trades.parquet`` and ``equity.parquet`` in ``<runs_dir>/<run_id>/backtests/<backtest_id>/``
  for a model, or ``data/backtests/<backtest_id>/`` (beside the database) for a signal file;
* one summary row through :meth:`Store.save_backtest`, queryable with :meth:`Store.backtests`.

Files are written to a temporary folder and renamed into place before the summary row is
inserted; if the insert fails the folder is removed, so a backtest is stored whole or not at all.
A caller that stores several backtests with rows of its own (a walk-forward evaluation) runs them
with ``persist=False`` and uses :func:`write_backtest_files` and :func:`backtest_row`.

Signals may also be given by the caller (``run_backtest(config, signals=...)``): an array with one
signal per candle of the range, or a :data:`SignalSource` called with the configuration. That is
how walk-forward (``train_during`` set to a training mode other than ``none``) runs: its signals
come from a live session that trains as it replays, so it lives above this module, in
:mod:`workbench.live.walk_forward`; this package never imports the live layer.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from workbench.backtest import signals as sig
from workbench.backtest.simulate import SimConfig, simulate
from workbench.data.ranges import load_range
from workbench.backtest.stats import (BacktestStats, compute_stats, equity_frame, headline,
                                      trades_frame)
from workbench.data.store import Store
from workbench.data.timeframes import validate_timeframe
from workbench.errors import ConfigError, ParameterError
from workbench.features.windows import candle_features
from workbench.paths import resolve_db_path, runs_dir

ProgressFn = Callable[[str, int, int], None]
#: ``source(config, store, progress) -> signals`` (one per candle of the range): the signals of a
#: backtest computed by its caller, e.g. walk-forward (:mod:`workbench.live.walk_forward`)
SignalSource = Callable[["BacktestConfig", Store, "ProgressFn | None"], np.ndarray]
#: the phases reported to a progress callback, in order
PHASES = ("load", "signals", "simulate", "persist")


@dataclass(frozen=True)
class BacktestConfig:
    """What to backtest. Exactly one of ``model`` (a run id) and ``signals_path`` is set.

    ``start``/``end`` are inclusive epoch-ms candle open times (``None``: the whole series).
    """

    symbol: str
    timeframe: str
    start: int | None = None
    end: int | None = None
    model: str | None = None
    signals_path: str | None = None
    sim: SimConfig = field(default_factory=SimConfig)
    threshold: float | None = None  # minimum top probability for a model BUY/SELL
    train_during: str | None = None  # a TrainingMode value; None/"none" = inference only
    # windows per predict call: bounds memory, not results. 64 measured fastest on 2 CPU cores
    # (224 vs 146 windows/s at 2048, 0.7 vs 3.5 GB peak: attention is chunk x N x N floats)
    chunk: int = 64
    persist: bool = True

    def __post_init__(self):
        if (self.model is None) == (self.signals_path is None):
            raise ParameterError("give exactly one signal source: a model run id or a signal "
                                 "file")
        validate_timeframe(self.timeframe)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ParameterError(f"start {self.start} is after end {self.end}")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ParameterError(f"threshold {self.threshold} must lie in [0, 1]")

    @property
    def walk_forward(self) -> bool:
        """True when the model trains during the backtest (any mode but ``none``)."""
        return self.train_during is not None and str(getattr(self.train_during, "value",
                                                             self.train_during)) != "none"

    def params(self) -> dict:
        """Return the configuration as a JSON-ready dict (stored with the summary row)."""
        out = asdict(self)
        out["train_during"] = None if self.train_during is None else str(
            getattr(self.train_during, "value", self.train_during))
        return out


@dataclass
class BacktestResult:
    """A finished backtest: its statistics, trades, equity curve and where they are stored."""

    backtest_id: str
    config: BacktestConfig
    stats: BacktestStats
    trades: pl.DataFrame
    equity: pl.DataFrame
    model_version: int | None = None
    trades_path: Path | None = None
    equity_path: Path | None = None
    training_steps: int | None = None  # walk-forward: steps the model trained while replaying
    run_dir: Path | None = None  # the model's run folder: its files go under <run_dir>/backtests

    def summary(self) -> dict:
        """Return a JSON-ready summary: id, source, range, the ``stats`` block and file paths.

        ``stats`` carries backtesting.py's keys (ISO-8601 times and durations, NaN as ``None``);
        ``annualisation`` says how the annual figures were computed.
        """
        eq = self.equity["ts"]
        return {"backtest_id": self.backtest_id, "run_id": self.config.model,
                "signals_path": self.config.signals_path, "symbol": self.config.symbol,
                "timeframe": self.config.timeframe, "start_ts": int(eq[0]),
                "end_ts": int(eq[-1]), "model_version": self.model_version,
                "n_bars": self.equity.height, "cash": self.config.sim.cash,
                "stats": self.stats.to_json(),
                "annualisation": self.stats.annualisation.to_json(),
                "training_steps": self.training_steps,
                "trades_path": str(self.trades_path) if self.trades_path else None,
                "equity_path": str(self.equity_path) if self.equity_path else None}

    def open_trades_note(self) -> str | None:
        """Say, in words, that trades were still open at the last candle (``None`` if none).

        The statistics follow backtesting.py: an open trade moves Return and the equity curve
        but is not in # Trades, Win Rate or Exposure Time, so "# Trades 0" can stand beside a
        return that is not 0.
        """
        n = int(self.trades["is_open"].sum()) if self.trades.height else 0
        if n == 0:
            return None
        what = "1 trade was" if n == 1 else f"{n} trades were"
        return (f"{what} still open at the last candle: counted in Return and Equity, not in "
                "# Trades, Win Rate or Exposure Time (backtesting.py's convention)")

    def headline(self) -> dict:
        """Return the stored summary columns (fractions; see :func:`stats.headline`) plus
        ``buy_hold_return`` (a fraction), for code that chains or ranks backtests."""
        return {**headline(self.stats, self.config.sim.cash),
                "buy_hold_return": self.stats["Buy & Hold Return [%]"] / 100}


def _report(progress: ProgressFn | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _load_candles(store: Store, cfg: BacktestConfig, history: int) -> tuple[pl.DataFrame, int]:
    """Return the candles of the range with ``history`` rows before it, and the range's row."""
    return load_range(store, cfg.symbol, cfg.timeframe, cfg.start, cfg.end, history)


def _model_signals(cfg: BacktestConfig, store: Store, progress, handle=None) -> tuple:
    from workbench.train.handle import load_model

    if handle is None:
        handle = load_model(cfg.model, store.path)  # the runs beside this store's database
    frame, first = _load_candles(store, cfg, handle.window - 1)
    feats = candle_features(*frame.select("open", "high", "low", "close", "volume")
                            .to_numpy().T)
    rows = np.arange(first, frame.height)
    out = sig.model_signals(handle, feats, rows, chunk=cfg.chunk, threshold=cfg.threshold,
                            progress=progress)
    return frame.slice(first), out.signal, out.model_version, handle


def _given_signals(cfg: BacktestConfig, store: Store, progress, signals) -> tuple:
    """Return the candles of the range and the caller's signals for them (checked)."""
    frame, _ = _load_candles(store, cfg, 0)
    values = signals(cfg, store, progress) if callable(signals) else signals
    signal = np.asarray(values)
    if signal.shape != (frame.height,):
        raise ParameterError(f"{cfg.symbol} {cfg.timeframe}: signals of shape {signal.shape} "
                             f"given for the {frame.height} candles of the range")
    if not np.isin(signal, (-1, 0, 1)).all():
        raise ParameterError("given signals must be -1 (sell), 0 (keep) or +1 (buy)")
    return frame, signal.astype(np.int8)


def _signals(cfg: BacktestConfig, store: Store, progress, signals=None, handle=None):
    """Return (candles of the range, int8 signals, model_version, run dir or None)."""
    if cfg.walk_forward and cfg.model is None:
        raise ParameterError("--train-during needs a model (--model RUN_ID)")
    if signals is not None:
        frame, signal = _given_signals(cfg, store, progress, signals)
        run_dir = runs_dir(store.path) / cfg.model if cfg.model is not None else None
        return frame, signal, None, run_dir
    if cfg.walk_forward:
        raise ConfigError(f"--train-during {cfg.params()['train_during']} (walk-forward) trains "
                          "while it replays: its signals come from the live layer; call "
                          "workbench.live.walk_forward.run_walk_forward_backtest")
    if cfg.model is not None:
        frame, signal, version, handle = _model_signals(cfg, store, progress, handle)
        run_dir = getattr(handle, "run_dir", None) or runs_dir(store.path) / cfg.model
        return frame, signal, version, Path(run_dir)
    frame, _ = _load_candles(store, cfg, 0)
    table = sig.read_signal_file(cfg.signals_path)
    signal = sig.align_signals(table, frame["ts"].to_numpy(), source=cfg.signals_path)
    _report(progress, "signals", 1, 1)
    return frame, signal, None, None


def model_lookahead_check(config: BacktestConfig, store: Store | None = None, *,
                          samples: int = 20, seed: int = 0):
    """Run :func:`workbench.backtest.lookahead.lookahead_check` on a model's signals.

    The frame is the range plus the ``N - 1`` candles of history its first window needs; the
    signal function runs the same batched inference as :func:`run_backtest`. Returns the
    :class:`~workbench.backtest.lookahead.LookaheadReport`; raises ParameterError without a model.
    """
    from workbench.backtest.lookahead import lookahead_check, sample_times
    from workbench.train.handle import load_model

    if config.model is None:
        raise ParameterError("the lookahead check needs a model (--model RUN_ID)")
    store = store or Store()
    handle = load_model(config.model, store.path)
    frame, first = _load_candles(store, config, handle.window - 1)

    def signal_fn(candles: pl.DataFrame) -> np.ndarray:
        feats = candle_features(*candles.select("open", "high", "low", "close", "volume")
                                .to_numpy().T)
        return sig.model_signals(handle, feats, np.arange(candles.height), chunk=config.chunk,
                                 threshold=config.threshold).signal

    times = sample_times(frame["ts"].to_numpy(), samples, min_row=max(first, handle.window - 1),
                         seed=seed)
    return lookahead_check(signal_fn, frame, times)


def new_backtest_id() -> str:
    """Return a fresh, sortable backtest id: ``bt-YYYYmmdd-HHMMSS-<8 hex>``."""
    return f"bt-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def write_backtest_files(result: BacktestResult, store: Store) -> Path:
    """Write ``trades.parquet`` and ``equity.parquet`` of a backtest; return their folder.

    The folder is ``<run_dir>/backtests/<backtest_id>`` (``data/backtests/`` beside the
    database when the signals came from a file). The files are written to a temporary folder
    renamed into place, so the folder is whole or absent; the result's ``trades_path`` and
    ``equity_path`` are set.
    """
    run_dir = result.run_dir
    base = (run_dir / "backtests") if run_dir else resolve_db_path(store.path).parent / "backtests"
    final = base / result.backtest_id
    tmp = base / f".{result.backtest_id}.tmp"
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        result.trades.write_parquet(tmp / "trades.parquet")
        result.equity.write_parquet(tmp / "equity.parquet")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.trades_path, result.equity_path = final / "trades.parquet", final / "equity.parquet"
    return final


def backtest_row(result: BacktestResult) -> dict:
    """Return the ``backtest_results`` row of a backtest whose files are written."""
    row = {k: v for k, v in {**result.summary(), **result.headline()}.items()
           if k in _SUMMARY_COLUMNS}
    row["params"] = result.config.params()
    return row


def _persist(result: BacktestResult, store: Store) -> None:
    """Write the Parquet files atomically, then the summary row; all or nothing."""
    final = write_backtest_files(result, store)
    try:
        store.save_backtest(backtest_row(result))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


_SUMMARY_COLUMNS = ("backtest_id", "run_id", "symbol", "timeframe", "start_ts", "end_ts",
                    "final_equity", "pnl", "return_pct", "n_trades", "win_rate", "max_drawdown",
                    "sharpe", "exposure", "trades_path", "equity_path")


def _calendar_ts(store: Store, cfg: BacktestConfig) -> np.ndarray:
    """The open times of the whole stored series: its weekends decide 365 or 252 days a year."""
    return store.read_ts(cfg.symbol, cfg.timeframe)["ts"].to_numpy()


def run_backtest(config: BacktestConfig, *, store: Store | None = None,
                 progress: ProgressFn | None = None,
                 signals: np.ndarray | SignalSource | None = None,
                 handle=None) -> BacktestResult:
    """Run one backtest and, unless ``config.persist`` is False, store it.

    Parameters
    ----------
    config : what to backtest.
    store : the store to read candles from and write the summary to (default: ``Store()``).
    progress : called as ``progress(phase, done, total)`` with ``phase`` in :data:`PHASES`;
        drives a progress bar (the ``signals`` phase reports once per inference chunk).
    signals : the signals to simulate instead of the configuration's model or file: one per
        candle of the range (-1, 0, +1), or a :data:`SignalSource` that returns them. Required
        for walk-forward (``config.train_during``), whose signals come from the live layer.
    handle : a loaded ModelHandle to backtest instead of the saved weights of ``config.model``
        (the panel's "Backtest current model": a session's unsaved weights; inference only).

    Returns
    -------
    BacktestResult

    Raises
    ------
    NotFoundError
        When the range holds no candles, the model run or the signal file does not exist.
    DataValidationError
        When the signal file breaks a rule (see :func:`signals.read_signal_file`).
    ParameterError
        When given signals do not match the range, or walk-forward has no model.
    ConfigError
        When walk-forward is asked for without its ``signals``.
    """
    store = store or Store()
    _report(progress, "load", 0, 1)
    frame, signal, version, run_dir = _signals(config, store, progress, signals, handle)
    _report(progress, "simulate", 0, 1)
    open_, close = frame["open"].to_numpy(), frame["close"].to_numpy()
    ts = frame["ts"].to_numpy()
    sim = simulate(open_, close, signal, config.sim)
    result = BacktestResult(
        backtest_id=new_backtest_id(), config=config, model_version=version,
        stats=compute_stats(sim, ts, close, calendar_ts=_calendar_ts(store, config)),
        trades=trades_frame(sim, ts), equity=equity_frame(sim, ts, signal), run_dir=run_dir)
    _report(progress, "simulate", 1, 1)
    if config.persist:
        _persist(result, store)
        _report(progress, "persist", 1, 1)
    return result
