"""Walk-forward: a backtest whose signals come from a live session that trains as it replays.

The backtest (:mod:`workbench.backtest.engine`) simulates signals it is given; it never imports
the live layer. Walk-forward lives here, above it, with the code that produces its signals:

* :func:`run_walk_forward` replays ``[start, end]`` of a backtest configuration through a
  :class:`~workbench.live.session.LiveSession` in the ``train_during`` mode at maximum speed and
  returns one signal per candle (HOLD before a full window). With mode ``none`` its signals equal
  the batched backtest's (``tests/live/test_parity_live_backtest.py``).
* :func:`run_walk_forward_backtest` hands those signals to
  :func:`~workbench.backtest.engine.run_backtest`, which simulates, computes the statistics and
  stores the result like any backtest. The CLI's ``backtest --train-during`` and the panel call it.
"""
from __future__ import annotations

import numpy as np

from workbench.backtest.engine import BacktestConfig, BacktestResult, ProgressFn, run_backtest
from workbench.errors import ParameterError
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig


def run_walk_forward(cfg, *, store=None, progress=None, handle=None) -> np.ndarray:
    """Replay a backtest range in a training mode and return one int8 signal per candle.

    Parameters
    ----------
    cfg : a :class:`~workbench.backtest.engine.BacktestConfig` (``model``, ``symbol``,
        ``timeframe``, ``start``, ``end``, ``threshold``, ``train_during``).
    store : the Store (default: the resolved project store).
    progress : ``progress("signals", done, total)`` every 64 candles and at the end.
    handle : a ModelHandle to use instead of loading ``cfg.model`` (it is trained in place).

    Returns
    -------
    int8 (R,) signals for the R candles of ``[start, end]``, HOLD before a full window.
    """
    from workbench.data.store import Store

    store = store if store is not None else Store()
    if handle is None:
        from workbench.train.handle import load_model

        handle = load_model(cfg.model, store.path)  # the runs beside this store's database
    mode = TrainingMode.parse(cfg.train_during or TrainingMode.NONE)
    session = LiveSession(handle, store, cfg.symbol, cfg.timeframe, mode, cfg.start, cfg.end,
                          config=SessionConfig(threshold=cfg.threshold,
                                               session_id=f"walk-forward-{mode.value}"))
    total = session.feed.end_index - session.feed.start_index
    if progress is not None:
        session.add_update_hook(lambda s, info: (s.counts["candles"] % 64 == 0) and progress(
            "signals", s.counts["candles"], total))
    session.run()
    if progress is not None:
        progress("signals", total, total)
    ts = session.series.ts[session.feed.start_index: session.feed.end_index]
    signals = session.signals()
    return np.array([signals.get(int(t), 0) for t in ts.tolist()], dtype=np.int8)


def run_walk_forward_backtest(config: BacktestConfig, *, store=None,
                              progress: ProgressFn | None = None, handle=None) -> BacktestResult:
    """Run a backtest whose signals come from :func:`run_walk_forward` (``config.train_during``).

    The model run itself is never changed: the session trains ``handle`` (default: a handle
    loaded from ``config.model``), which the caller may save as a new run afterwards
    (``workbench backtest --train-during MODE --save``). The result's ``training_steps`` counts
    the steps it took. Raises what :func:`~workbench.backtest.engine.run_backtest` raises
    (ParameterError without a model).
    """
    from workbench.data.store import Store

    if config.model is None:
        raise ParameterError("--train-during needs a model (--model RUN_ID)")
    store = store if store is not None else Store()
    if handle is None:
        from workbench.train.handle import load_model

        handle = load_model(config.model, store.path)
    before = handle.steps
    result = run_backtest(config, store=store, progress=progress, signals=lambda cfg, st, pr:
                          run_walk_forward(cfg, store=st, progress=pr, handle=handle))
    result.training_steps = handle.steps - before
    result.model_version = handle.version
    return result
