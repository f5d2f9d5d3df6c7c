"""Parity inside the workbench: a live replay in mode ``none`` equals the backtest signal path.

Both paths gather the same windows (``gather_windows`` over ``candle_features`` of the same rows:
the range plus ``window - 1`` candles of history) and call ``ModelHandle.predict``. The one
difference found was batching: torch computes a ``Linear`` on a *single* row (the model's output
heads when B = 1) with a matrix-vector kernel whose summation order differs from the
matrix-matrix kernel used for B >= 2, so a live session (one window per candle) and the backtest
(2048 windows per call) differed in the last float bit (about 1e-7) of some probabilities. With
the same batching, one window per call (``chunk=1``), the two paths are bit-identical, which is
what these tests hold them to; the backtest keeps its large default chunk for speed.
"""
from __future__ import annotations

import numpy as np
import pytest

from workbench.backtest.engine import BacktestConfig, run_backtest
from workbench.backtest.signals import model_signals
from workbench.features.windows import candle_features
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession
from workbench.live.walk_forward import run_walk_forward
from workbench.train.handle import load_model

from ._live_helpers import quick_run

SYMBOL, TF = "ETH/USDT", "1m"


@pytest.fixture
def trained_run(eth_store):
    """A quick-trained tiny transformer run on the ETH slice; returns (run_id, store)."""
    return quick_run(eth_store), eth_store


def _backtest_path(handle, store, first: int, last: int, chunk: int):
    """The backtest's model path on rows [first, last] of the stored series."""
    frame = store.read_ohlcv(SYMBOL, TF)
    lo = first - (handle.window - 1)
    frame = frame.slice(lo, last - lo + 1)
    feats = candle_features(*frame.select("open", "high", "low", "close", "volume")
                            .to_numpy().T)
    rows = np.arange(first - lo, frame.height)
    return frame["ts"].to_numpy()[rows], model_signals(handle, feats, rows, chunk=chunk)


def _live_path(handle, store, first: int, last: int):
    ts = store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    session = LiveSession(handle, store, SYMBOL, TF, TrainingMode.NONE, int(ts[first]),
                          int(ts[last]), config=None)
    session.run()
    preds = {p["ts"]: p for p in session.snapshot()["predictions"]}
    return session, preds


def test_live_none_and_backtest_signal_path_give_identical_predictions(trained_run):
    run_id, store = trained_run
    first, last = 500, 800
    session, preds = _live_path(load_model(run_id), store, first, last)
    ts, out = _backtest_path(load_model(run_id), store, first, last, chunk=1)
    assert len(preds) == len(ts) == 301
    live_probs = np.array([preds[int(t)]["probs"] for t in ts], dtype=np.float32)
    live_candle = np.array([preds[int(t)]["candle_pct"] for t in ts], dtype=np.float32)
    assert np.array_equal(live_probs, out.action_probs)  # bit for bit
    assert np.array_equal(live_candle, out.candle)
    live_signal = np.array([session.signals()[int(t)] for t in ts], dtype=np.int8)
    assert np.array_equal(live_signal, out.signal)
    assert len(set(out.signal.tolist())) >= 2  # the comparison covers more than one action
    assert {p["model_version"] for p in preds.values()} == {out.model_version} == {0}


def test_batch_size_is_the_only_source_of_difference(trained_run):
    """The default large chunk differs from one-window calls by float rounding only."""
    run_id, store = trained_run
    handle = load_model(run_id)
    _, single = _backtest_path(handle, store, 500, 800, chunk=1)
    _, batched = _backtest_path(handle, store, 500, 800, chunk=2048)
    assert np.abs(single.action_probs - batched.action_probs).max() <= 1e-6
    _, pairs = _backtest_path(handle, store, 500, 801, chunk=2)  # 302 rows: never a 1-row chunk
    _, big = _backtest_path(handle, store, 500, 801, chunk=2048)
    assert np.array_equal(pairs.action_probs, big.action_probs)  # B >= 2 is batch-invariant


def test_walk_forward_in_mode_none_equals_the_engine_backtest_signals(trained_run):
    run_id, store = trained_run
    ts = store.read_ohlcv(SYMBOL, TF)["ts"].to_numpy()
    cfg = BacktestConfig(SYMBOL, TF, int(ts[500]), int(ts[800]), model=run_id, chunk=1,
                         persist=False)
    engine = run_backtest(cfg, store=store)
    calls = []
    walk = run_walk_forward(BacktestConfig(SYMBOL, TF, int(ts[500]), int(ts[800]), model=run_id,
                                           train_during=TrainingMode.NONE.value, persist=False),
                            store=store, progress=lambda *a: calls.append(a))
    assert np.array_equal(walk, engine.equity["signal"].to_numpy().astype(np.int8))
    assert calls[-1] == ("signals", 301, 301)
