"""The exchange source end to end: the real ccxt client against ``workbench exchange-sim``.

Nothing is mocked: the local exchange is the ``workbench exchange-sim`` command (a subprocess
serving a real slice of the shipped ETH/USDT 1m data in Binance's formats, every fault kind on),
and the session's candles come through ccxt's REST and websocket clients pointed at it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import polars as pl
import pytest

from workbench.exchange.sim import FAULTS
from workbench.live.exchange_source import ExchangeFeed, ExchangeSourceConfig
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig

from ._live_helpers import tiny_handle

SYM, TF = "ETH/USDT", "1m"
STORED, LIVE_FROM, TOTAL = 100, 150, 400  # rows stored before, first row open at sim start, rows


@pytest.fixture
def candles(eth_1m) -> pl.DataFrame:
    return eth_1m.slice(40_000, TOTAL)


@pytest.fixture
def sim(exchange_sim, candles):
    """The local exchange with every fault on, 3000x real time, live from row LIVE_FROM."""
    return exchange_sim(candles, SYM, TF, "--speed", "3000x", "--faults", ",".join(FAULTS),
                        "--start-index", str(LIVE_FROM), "--seed", "7")


class Witness:
    """Records each emitted candle with the exchange clock the source had seen at emission."""

    def __init__(self, feed):
        self.feed, self.rows, self.clock = feed, [], []
        feed.subscribe_candle_completion(self.on_close, SYM, TF)

    def on_close(self, ev):
        self.rows.append((ev.ts, *ev.ohlcv))
        self.clock.append((ev.close_ts, self.feed.exchange_clock))


def test_live_session_through_ccxt_against_the_faulty_local_exchange(sim, tmp_store, candles):
    tmp_store.replace_series(SYM, TF, candles.head(STORED))
    feed = ExchangeFeed.from_store(tmp_store, SYM, TF, ExchangeSourceConfig(
        url=sim, max_candles=TOTAL - STORED, poll_s=0.5, backoff_s=0.05, page=64))
    witness = Witness(feed)
    session = LiveSession(tiny_handle(3), tmp_store, SYM, TF, TrainingMode.NONE, feed=feed,
                          config=SessionConfig(keep=TOTAL))
    stats = session.run()

    # every candle emitted exactly once and in order, with its recorded values
    assert [r[0] for r in witness.rows] == candles["ts"][STORED:].to_list()
    assert witness.rows == candles.slice(STORED).rows()
    # the stored series equals the source data bit for bit
    stored = tmp_store.read_ohlcv(SYM, TF)
    assert stored.columns == candles.columns and stored["ts"].equals(candles["ts"])
    for col in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(stored[col].to_numpy().view(np.uint64),
                              candles[col].to_numpy().view(np.uint64)), col
    # no frame was built from a candle that had not closed on the exchange clock
    assert all(clock is not None and close <= clock for close, clock in witness.clock)
    # the faults happened and were handled
    with urllib.request.urlopen(f"{sim}/sim/stats") as r:
        injected = json.load(r)["faults"]
    assert all(injected[k] > 0 for k in FAULTS), injected
    src = feed.status()
    assert src["transport"] == "ws" and src["reconnects"] >= 1 and src["rate_limited"] >= 1
    assert src["backfilled"] >= LIVE_FROM - STORED and src["lag_ms"] == 0
    assert stats["errors"] == 0 and stats["candles"] == TOTAL - STORED

    # the session's predictions equal a replay of the same candles by the same model
    replay_store = type(tmp_store)(tmp_store.path.with_name("replay.duckdb"))
    replay_store.replace_series(SYM, TF, candles)
    replay = LiveSession(tiny_handle(3), replay_store, SYM, TF, TrainingMode.NONE,
                         int(candles["ts"][STORED]), int(candles["ts"][-1]),
                         config=SessionConfig(history=STORED, keep=TOTAL))
    replay.run()
    live_preds = session.snapshot()["predictions"]
    replay_preds = replay.snapshot()["predictions"]
    assert len(live_preds) == len(replay_preds) == TOTAL - STORED
    for a, b in zip(live_preds, replay_preds):
        assert (a["ts"], a["probs"], a["candle_pct"], a["signal"]) == \
            (b["ts"], b["probs"], b["candle_pct"], b["signal"])


def _interrupt_when_stored(proc, store, last_ts) -> tuple[str, str]:
    """Send Ctrl-C (SIGINT) to ``proc`` once ``last_ts`` is stored; return its output."""
    import signal
    import time

    deadline = time.monotonic() + 120
    while store.last_ts(SYM, TF) != last_ts and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the session now waits for candles the exchange does not have yet
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)


def test_cli_follows_the_local_exchange_with_paper_trading_and_stops_on_ctrl_c(eth_store,
                                                                                 eth_1m):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.exchange.sim import ExchangeSim, ExchangeSimConfig, SimThread

    from ._live_helpers import quick_run

    run_id = quick_run(eth_store, max_windows=200)  # the store holds rows 20000..22999
    served = eth_1m.slice(22_900, 200)  # the exchange: 100 stored rows, then 100 new ones
    sim = ExchangeSim(served, ExchangeSimConfig(SYM, TF, start_index=110))
    args = ["--db", str(eth_store.path), "live", "--model", run_id, "--symbol", SYM,
            "--timeframe", TF, "--source", "exchange", "--paper", "--json"]
    # a URL that is not http(s) fails at once, before any request (ccxt would retry it)
    started = time.monotonic()
    bad = CliRunner().invoke(app, [*args, "--exchange-url", "ftp://127.0.0.1:1/"])
    assert bad.exit_code == 2 and "is not an http(s) URL" in bad.output
    assert "Traceback" not in bad.output and time.monotonic() - started < 30
    with SimThread(sim) as url:
        result = CliRunner().invoke(app, [*args, "--exchange-url", url, "--max-candles", "40"])
        assert result.exit_code == 0, result.output
        # unbounded: runs until Ctrl-C, which ends it cleanly with its report
        proc = subprocess.Popen(
            [sys.executable, "-c", "from workbench.cli import main; main()", *args,
             "--exchange-url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()})
        out, err = _interrupt_when_stored(proc, eth_store, served["ts"][-1])
    payload = json.loads(result.stdout)
    assert payload["candles"] == payload["predictions"] == 40 and payload["errors"] == 0
    src = payload["source"]
    assert src["transport"] == "ws" and src["backfilled"] >= 10
    assert src["last_candle_ts"] == served["ts"][139] and src["lag_ms"] is not None
    equity = eth_store.read_paper("equity", payload["session_id"])
    assert equity.height == 40 and equity["equity"][-1] == payload["paper"]["equity"]

    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    stopped = json.loads(out)
    assert stopped["state"] == "stopped" and stopped["candles"] == 60 and stopped["errors"] == 0
    assert eth_store.read_paper("equity", stopped["session_id"]).height == 60  # flushed
    assert eth_store.read_ohlcv(SYM, TF).tail(100).equals(served.slice(100))


def test_bad_source_options_fail_typed(eth_store):
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.errors import ParameterError
    from workbench.live.exchange_source import ExchangeSourceConfig

    with pytest.raises(ParameterError, match="transport"):
        ExchangeSourceConfig(transport="pigeon")
    with pytest.raises(ParameterError, match="exchange id is empty"):
        ExchangeSourceConfig(exchange="  ")
    with pytest.raises(ParameterError, match="'127.0.0.1:8765' is not an http"):
        ExchangeSourceConfig(url="127.0.0.1:8765")
    config = ExchangeSourceConfig(exchange=" binance ", url=" http://127.0.0.1:8765 ")
    assert (config.exchange, config.url) == ("binance", "http://127.0.0.1:8765")
    assert ExchangeSourceConfig(url="  ").url is None
    result = CliRunner().invoke(app, ["--db", str(eth_store.path), "exchange-sim", "--data",
                                      "data/binance_ethusdt_1m.parquet", "--symbol", SYM,
                                      "--timeframe", TF, "--faults", "drop,flood"])
    assert result.exit_code == 2 and "flood" in result.output and "known faults" in result.output
    result = CliRunner().invoke(app, ["exchange-sim", "--data", "data/binance_ethusdt_1m.parquet",
                                      "--symbol", "ETHUSDT", "--timeframe", TF])
    assert result.exit_code == 2 and "BASE/QUOTE" in result.output


def test_rest_polling_follows_the_exchange_without_a_websocket(tmp_store, candles):
    from workbench.exchange.sim import ExchangeSim, ExchangeSimConfig, SimThread, parse_faults

    tmp_store.replace_series(SYM, TF, candles.head(STORED))
    sim = ExchangeSim(candles.head(220), ExchangeSimConfig(SYM, TF, speed=6000.0,
                                                           faults=parse_faults("429"),
                                                           start_index=180))
    with SimThread(sim) as url:
        feed = ExchangeFeed.from_store(tmp_store, SYM, TF, ExchangeSourceConfig(
            url=url, transport="rest", until=int(candles["ts"][219]), poll_s=0.05,
            backoff_s=0.02, page=50))
        witness = Witness(feed)
        feed.run()
    assert witness.rows == candles.slice(STORED, 120).rows()
    assert all(close <= clock for close, clock in witness.clock)
    assert feed.status()["transport"] == "rest" and feed.status()["rate_limited"] >= 1
    assert tmp_store.read_ohlcv(SYM, TF).equals(candles.head(220))


def test_the_exchange_is_a_registered_live_data_source(tmp_store, candles):
    from workbench.live.sources import SOURCES, FeedRequest, open_feed

    tmp_store.replace_series(SYM, TF, candles.head(STORED))
    assert "exchange" in SOURCES.names()
    feed = open_feed("exchange", tmp_store, SYM, TF, FeedRequest(history=31, pivot_strength=3))
    assert isinstance(feed, ExchangeFeed) and feed.series.length == STORED
    assert feed.cfg.exchange == "binance" and feed.cfg.url is None  # the real one by default


def test_stop_during_a_reconnect_backoff_ends_the_feed_at_once(tmp_store, candles):
    """After a websocket disconnect the feed waits ``backoff_s`` (here 30 s) before it
    reconnects; a stop in that wait ends the run within a second, not after the backoff."""
    import threading

    from workbench.exchange.sim import ExchangeSim, ExchangeSimConfig, SimThread

    def wait_for(condition) -> bool:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        return condition()

    tmp_store.replace_series(SYM, TF, candles.head(STORED))
    server = SimThread(ExchangeSim(candles, ExchangeSimConfig(SYM, TF, speed=60.0,
                                                              start_index=LIVE_FROM)))
    with server as url:
        feed = ExchangeFeed.from_store(tmp_store, SYM, TF, ExchangeSourceConfig(
            url=url, transport="ws", poll_s=60.0, backoff_s=30.0, max_backoff_s=30.0))
        runner = threading.Thread(target=feed.run, daemon=True)
        runner.start()
        live = int(candles["ts"][LIVE_FROM])  # the first candle the websocket closes
        assert wait_for(lambda: (feed.status()["last_candle_ts"] or 0) >= live)
        server.disconnect()
        assert wait_for(lambda: feed.retry.network_errors >= 1)  # in the 30 s backoff now
        time.sleep(0.5)
        stopped_at = time.monotonic()
        feed.stop()
        runner.join(timeout=10)
        took = time.monotonic() - stopped_at
    assert not runner.is_alive() and took < 2.0, took
    assert feed.state == "stopped" and not feed.connected
