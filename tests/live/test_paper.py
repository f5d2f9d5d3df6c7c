"""Paper trading: a session's signals through the backtest simulator's step form, kept in DuckDB.

Parity: a paper session over a replayed day gives the same trades and equity as the backtest of
the same model on the same candles (bit for bit: one window per predict on both sides, see
test_parity_live_backtest.py, and the same simulator code).
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.backtest.engine import BacktestConfig, run_backtest
from workbench.backtest.simulate import SimConfig
from workbench.backtest.stats import trades_frame
from workbench.live.modes import TrainingMode
from workbench.live.paper import PaperBroker, paper_view
from workbench.live.session import LiveSession, SessionConfig
from workbench.train.handle import load_model

from ._live_helpers import quick_run

SYM, TF = "ETH/USDT", "1m"
DAY = 1440


@pytest.fixture
def trained_run(eth_store):
    return quick_run(eth_store), eth_store


@pytest.mark.parametrize("sim", [SimConfig(), SimConfig(fill="close", slippage=0.0005, size=2)])
def test_paper_session_over_a_day_equals_the_backtest(trained_run, sim):
    run_id, store = trained_run
    ts = store.read_ohlcv(SYM, TF)["ts"].to_numpy()
    start, end = int(ts[1000]), int(ts[1000 + DAY - 1])
    session = LiveSession(load_model(run_id), store, SYM, TF, TrainingMode.NONE, start, end,
                          config=SessionConfig(sim=sim, session_id="paper-day"))
    broker = PaperBroker.attach(session, flush_every=100)
    session.run()
    broker.close()
    bt = run_backtest(BacktestConfig(SYM, TF, start, end, model=run_id, sim=sim, chunk=1,
                                     persist=False), store=store)

    bar_ts, result = broker.result()
    assert np.array_equal(bar_ts, bt.equity["ts"].to_numpy()) and bar_ts.size == DAY
    assert trades_frame(result, bar_ts).equals(bt.trades)  # same trades, bit for bit
    assert bt.trades.height >= 2  # the comparison covers real trading
    assert np.array_equal(result.equity, bt.equity["equity"].to_numpy())
    assert np.array_equal(result.position, bt.equity["position"].to_numpy())

    # what DuckDB holds is the same curve, every fill and its order
    equity = store.read_paper("equity", "paper-day")
    assert np.array_equal(equity["equity"].to_numpy(), bt.equity["equity"].to_numpy())
    assert equity["ts"].to_list() == bar_ts.tolist()
    fills = store.read_paper("fills", "paper-day")
    assert fills.height == result.fill_idx.size
    assert np.array_equal(fills["price"].to_numpy(), result.fill_price)
    assert fills["ts"].to_list() == bar_ts[result.fill_idx].tolist()
    orders = store.read_paper("orders", "paper-day")
    assert orders["status"].unique().to_list() in (["filled"], ["filled", "pending"],
                                                   ["pending", "filled"])
    assert orders.filter(pl.col("status") == "filled").height == fills.height
    view = paper_view(store, "paper-day")
    assert view["position"]["equity"] == bt.stats["Equity Final [$]"] == result.final_equity
    assert view["position"]["position"] == result.position[-1]
    live = broker.view()
    assert live["equity_curve"][-1] == (end, result.final_equity)
    if live["position"]:
        assert live["unrealised_pnl"] == pytest.approx(
            live["position"] * (live["mark_price"] - live["entry_price"]))


def test_the_panel_surface_replays_with_paper_trading_and_refuses_bad_sources(eth_store):
    from workbench.errors import ParameterError
    from workbench.live.live_view import close_session, live_view, open_session

    from ._live_helpers import tiny_handle

    ts = eth_store.read_ohlcv(SYM, TF)["ts"].to_numpy()
    run = open_session(tiny_handle(1), eth_store, SYM, TF, "none", start=int(ts[100]),
                       end=int(ts[299]), config=SessionConfig(session_id="panel"))
    run.session.run()
    stats = close_session(run)
    view = live_view(run)
    assert view["source"] is None and stats["candles"] == 200
    paper = view["paper"]
    assert len(paper["equity_curve"]) == 200 and paper["equity_curve"][-1][0] == int(ts[299])
    assert paper["equity"] == view["session"]["equity"][-1][1]  # the session's own PnL
    assert paper_view(eth_store, "panel")["equity"].height == 200
    with pytest.raises(ParameterError, match="known sources"):
        open_session(tiny_handle(1), eth_store, SYM, TF, "none", source="carrier-pigeon")
    with pytest.raises(ParameterError, match="until / max_candles"):
        open_session(tiny_handle(1), eth_store, SYM, TF, "none", source="exchange",
                     start=int(ts[100]))
