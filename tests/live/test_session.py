"""LiveSession: what one closed candle produces, lifecycle, several sessions, views, PnL."""
from __future__ import annotations

import threading
import time

import numpy as np
import polars as pl
import pytest

from tests.conftest import BTC_FILE
from workbench.backtest.simulate import SimConfig, simulate
from workbench.errors import NotFoundError, ParameterError
from workbench.features.windows import gather_windows
from workbench.live.modes import TrainingMode
from workbench.live.pnl import PnLTracker
from workbench.live.session import LiveSession, SessionConfig, parse_speed

from ._live_helpers import tiny_handle

ETH, BTC, TF, MINUTE = "ETH/USDT", "BTC/USDT", "1m", 60_000


def _ts(store, symbol=ETH):
    return store.read_ohlcv(symbol, TF)["ts"].to_numpy()


def _wait(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.01)
    return predicate()


def test_each_closed_candle_predicts_registers_signals_and_exposes_the_ghost(eth_store):
    ts = _ts(eth_store)
    handle = tiny_handle()
    seen = []
    session = LiveSession(handle, eth_store, ETH, TF, TrainingMode.NONE, int(ts[100]),
                          int(ts[150]), on_update=lambda s, info: seen.append(info))
    stats = session.run()
    assert stats["candles"] == stats["predictions"] == 51 == len(seen)
    assert stats["frames"]["registered"] == 51 and stats["frames"]["matched_candle"] == 50
    assert sum(stats["signals"].values()) == 51
    snap = session.snapshot()
    last = snap["predictions"][-1]
    # the prediction is the model's on the window ending at the candle, from its snapshot
    series = session.series
    row = series.index_of(int(ts[150]))
    windows, _ = gather_windows(series.features, np.array([row]), handle.window)
    pred = handle.predict(windows)
    assert last["probs"] == tuple(pred.action_probs[0].tolist())
    assert last["action"] == ["BUY", "SELL", "HOLD"][int(pred.action_probs[0].argmax())]
    assert last["confidence"] == pytest.approx(float(pred.action_probs[0].max()))
    close = float(series.ohlcv[row, 3])
    ghost = close * (1.0 + pred.candle[0].astype(np.float64) / 100.0)
    assert snap["ghost"][0] == int(ts[150]) + MINUTE
    assert np.allclose(snap["ghost"][1:], ghost, rtol=0, atol=1e-9)
    assert [c[0] for c in snap["candles"]] == [int(t) for t in ts[100:151]]
    assert len(snap["equity"]) == len(snap["signals"]) == 51
    ref = session.coordinator  # frames are closed into the ledger path at the end
    assert ref.stats()["live"] == 0 and session.state == "finished"


def test_unknown_speed_or_empty_range_is_a_clear_error(eth_store):
    assert parse_speed("max") is None and parse_speed("1x") == 1.0 and parse_speed("60x") == 60
    with pytest.raises(ParameterError, match="'fast'"):
        parse_speed("fast")
    with pytest.raises(ParameterError, match="> 0"):
        parse_speed("0x")
    with pytest.raises(NotFoundError, match="no ETH/USDT 1m candles"):
        LiveSession(tiny_handle(), eth_store, ETH, TF, TrainingMode.NONE, 4_000_000_000_000,
                    None)
    with pytest.raises(ParameterError, match="training mode 'turbo'"):
        LiveSession(tiny_handle(), eth_store, ETH, TF, "turbo", None, None)


def test_pause_resume_and_stop_in_a_background_thread(eth_store):
    ts = _ts(eth_store)
    session = LiveSession(tiny_handle(), eth_store, ETH, TF, TrainingMode.EVERY_CANDLE,
                          int(ts[100]), int(ts[2000]), speed="3000x")  # 20 ms per candle
    session.start()
    assert _wait(lambda: session.counts["candles"] >= 5)
    session.pause()
    assert _wait(lambda: session.state == "paused")
    time.sleep(0.1)  # let the candle being processed finish
    paused_at = session.counts["candles"]
    time.sleep(0.4)
    assert session.counts["candles"] == paused_at  # nothing happens while paused
    snap = session.snapshot()  # views work while paused
    assert snap["state"] == "paused" and len(snap["candles"]) == paused_at
    session.resume()
    assert _wait(lambda: session.counts["candles"] >= paused_at + 5)
    stats = session.stop()
    assert stats["state"] == "stopped" and stats["errors"] == 0
    assert 10 <= stats["candles"] < 1901
    assert stats["training_steps"] == stats["candles"] - 1
    assert not session._thread.is_alive()
    assert session.stop()["candles"] == stats["candles"]  # idempotent
    with pytest.raises(ParameterError, match="already been started"):
        session.start()


def test_two_sessions_on_two_symbols_share_one_model_through_its_lock(eth_store, tmp_path):
    btc = pl.read_parquet(BTC_FILE).slice(20_000, 400)
    eth_store.replace_series(BTC, TF, btc)
    handle = tiny_handle()
    eth_ts, btc_ts = _ts(eth_store), _ts(eth_store, BTC)
    a = LiveSession(handle, eth_store, ETH, TF, TrainingMode.EVERY_CANDLE, int(eth_ts[100]),
                    int(eth_ts[260]), config=SessionConfig(session_id="eth"))
    b = LiveSession(handle, eth_store, BTC, TF, TrainingMode.PIVOTS_ONLY, int(btc_ts[100]),
                    int(btc_ts[260]), config=SessionConfig(session_id="btc"))
    assert a.training_strategy is not b.training_strategy
    assert a.training_strategy.mode is TrainingMode.EVERY_CANDLE
    assert b.training_strategy.mode is TrainingMode.PIVOTS_ONLY
    a.start(), b.start()
    sa, sb = a.join(120), b.join(120)
    assert sa["state"] == sb["state"] == "finished"
    assert sa["errors"] == sb["errors"] == 0
    assert sa["per_candle"] == 160 and sa["pivot"] == 0
    assert sb["pivot"] > 10 and sb["per_candle"] == 0
    # every step of both went through the one lock, and each published one version
    assert handle.lock.stats("eth")["acquisitions"] == 160
    assert handle.lock.stats("btc")["acquisitions"] == sb["pivot"]
    assert handle.version == 160 + sb["pivot"] == handle.lock.stats()["acquisitions"]
    assert {r.operation for r in a.training_log} == {"per_candle"}
    assert {r.operation for r in b.training_log} == {"pivot"}
    for log in (a.training_log, b.training_log):
        versions = [r.model_version for r in log]
        assert versions == sorted(set(versions)) and versions[-1] <= handle.version


def test_update_hook_errors_are_counted_and_do_not_stop_the_session(eth_store):
    ts = _ts(eth_store)
    calls = []

    def bad_hook(session, info):
        calls.append(info["ts"])
        raise RuntimeError("widget gone")

    session = LiveSession(tiny_handle(), eth_store, ETH, TF, TrainingMode.NONE, int(ts[100]),
                          int(ts[120]), on_update=bad_hook)
    stats = session.run()
    assert len(calls) == stats["candles"] == 21
    assert stats["errors"] == 21 and "widget gone" in stats["recent_errors"][-1]["error"]


def test_snapshot_is_consistent_while_the_session_runs(eth_store):
    ts = _ts(eth_store)
    session = LiveSession(tiny_handle(), eth_store, ETH, TF, TrainingMode.NONE, int(ts[100]),
                          int(ts[500]), config=SessionConfig(keep=50))
    problems, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            snap = session.snapshot()
            if len(snap["candles"]) != len(snap["equity"]) or len(snap["candles"]) > 50:
                problems.append((len(snap["candles"]), len(snap["equity"])))
            time.sleep(0.001)

    t = threading.Thread(target=reader)
    t.start()
    session.run()
    stop.set()
    t.join()
    assert problems == [] and len(session.snapshot()["candles"]) == 50


@pytest.mark.parametrize("sim", [SimConfig(), SimConfig(fill="close", long_only=True),
                                 SimConfig(size_mode="fraction", size=0.5, fee=0.002),
                                 SimConfig(size_mode="fraction", size=0.8, slippage=0.0005),
                                 SimConfig(slippage=0.001, size=3)])
def test_pnl_tracking_equals_the_backtest_simulator(eth_slice, sim):
    rng = np.random.default_rng(3)
    frame = eth_slice.head(400)
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    signal = rng.choice([-1, 0, 0, 0, 1], size=400).astype(np.int8)
    tracker = PnLTracker(sim)
    live = np.array([tracker.on_bar(oi, ci, si) for oi, ci, si in zip(o, c, signal)])
    ref = simulate(o, c, signal, sim)
    assert np.array_equal(live, ref.equity)  # the same simulator code: bit for bit
    assert tracker.fills == ref.fill_idx.shape[0]
    step = tracker.result()
    for name in ("equity", "position", "fill_idx", "fill_units", "fill_price", "fill_fee"):
        assert np.array_equal(getattr(step, name), getattr(ref, name)), name
    assert step.trades.keys() == ref.trades.keys()
    assert all(np.array_equal(step.trades[k], ref.trades[k]) for k in ref.trades)


def test_a_push_feed_drives_a_session_candle_by_candle(tmp_store, eth_slice):
    from workbench.live.feed import PushFeed

    tmp_store.replace_series(ETH, TF, eth_slice.head(200))
    feed = PushFeed.from_store(tmp_store, ETH, TF, history=100)
    handle = tiny_handle()
    session = LiveSession(handle, tmp_store, ETH, TF, TrainingMode.EVERY_CANDLE, feed=feed)
    for row in eth_slice.slice(200, 20).iter_rows(named=True):
        feed.push(row)
    stats = session.stats()
    assert stats["predictions"] == 20 and stats["per_candle"] == 19 == handle.version
    assert session.snapshot()["ghost"][0] == int(eth_slice["ts"][219]) + MINUTE
    assert tmp_store.last_ts(ETH, TF) == int(eth_slice["ts"][219])
    with pytest.raises(ParameterError, match="push feed, which cannot pause"):
        session.pause()
    session.stop()
    feed.push(eth_slice.row(220, named=True))
    assert session.stats()["predictions"] == 20  # a stopped session no longer listens
    assert stats["errors"] == 0


def test_stopping_a_session_run_by_another_thread_keeps_every_frame_in_the_ledger(eth_store):
    # the control panel runs session.run() in its own worker thread and presses Stop from another
    ts = _ts(eth_store)
    session = LiveSession(tiny_handle(), eth_store, ETH, TF, TrainingMode.NONE, int(ts[100]),
                          int(ts[2500]), config=SessionConfig(ledger=True, session_id="stop-me"))
    worker = threading.Thread(target=session.run)
    worker.start()
    assert _wait(lambda: session.stats()["candles"] >= 20)
    assert session.state == "running"  # not "idle" while run() executes in a foreign thread
    session.stop(wait=False)
    worker.join(60)
    assert not worker.is_alive() and session.state == "stopped"
    stats = session.stats()
    rows = eth_store.read_ledger().filter(pl.col("session_id") == "stop-me")
    assert rows.height == stats["frames"]["registered"] == stats["predictions"]
