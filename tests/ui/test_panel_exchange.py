"""The control panel on the exchange source with paper trading, against ``workbench exchange-sim``.

Nothing is mocked: the panel's widgets are set and clicked in-process, the session's candles come
through the real ccxt client from the local exchange (its own process on 127.0.0.1), and what the
panel shows of the paper account is compared with the paper tables in DuckDB.
"""
from __future__ import annotations

import html
import re
import time

import numpy as np
import polars as pl
import pytest

from workbench.data.store import Store
from workbench.errors import NotFoundError, ParameterError
from workbench.live.paper import paper_view
from workbench.ui.panel import ControlPanel
from workbench.ui.panel_live import paper_cells
from workbench.ui.panel_state import Button
from workbench.units import human_number, human_time

from .test_panel import wait_until

SYM, TF = "ETH/USDT", "1m"
SERVED, LIVE_FROM = 200, 110  # rows the exchange serves; the first not closed at its start


def cell(html: str, key: str) -> str:
    """The text of the value cell ``key`` in the panel's live view."""
    found = re.search(rf"data-key='{re.escape(key)}'>([^<]*)<", html)
    assert found, f"no {key!r} in {html!r}"
    return found.group(1)


@pytest.fixture
def exchange_panel(tmp_path, eth_slice, eth_1m, exchange_sim, quick_model):
    """A panel on its own store (the exchange appends candles) and the local exchange, which
    serves the last 100 stored candles, 10 more closed at its start and 90 live ones."""
    store = Store(tmp_path / "wb.duckdb")
    store.replace_series(SYM, TF, eth_slice)  # rows 20000..22999 of the shipped series
    served = eth_1m.slice(22_900, SERVED)
    url = exchange_sim(served, SYM, TF, "--start-index", str(LIVE_FROM))
    panel = ControlPanel(db=str(store.path), model=quick_model, chart_candles=60,
                         source="exchange", exchange="binance", url=url, paper=True)
    panel.show()
    yield panel, store, served
    panel.stop()
    assert panel.wait_idle(30)


def test_exchange_session_with_paper_trading_shows_status_position_and_equity(exchange_panel):
    panel, store, served = exchange_panel
    manual = panel.buttons[Button.LIVE_MANUAL]
    assert manual.disabled and "history replay" in manual.tooltip  # manual labels a replay
    panel.buttons[Button.LIVE_NONE].click()
    session = panel.session
    assert wait_until(lambda: session.counts["candles"] == SERVED - 100, 60)
    assert all(panel.buttons[b].layout.display == "none"  # an exchange cannot pause or step
               for b in (Button.PAUSE, Button.RESUME, Button.STEP))
    last = int(served["ts"][-1])
    assert wait_until(lambda: "wb-exchange-view" in panel.live.view.value
                      and cell(panel.live.view.value, "last candle") == human_time(last), 10)
    view = panel.live.view.value
    assert cell(view, "connected") == "yes" and cell(view, "reconnects") == "0"
    assert int(cell(view, "backfilled")) >= LIVE_FROM - 100 and cell(view, "lag") != "–"
    assert cell(view, "exchange").startswith("binance via ws")
    assert "wb-paper-view" in view and "(until Stop)" in panel.status.value
    chart = panel.chart.data[0]  # the plotly chart follows the exchange's candles
    assert wait_until(lambda: chart.x[-1] == np.datetime64(last, "ms"), 5) and len(chart.x) == 60

    time.sleep(0.5)  # the session now waits for candles the exchange does not have yet
    t0 = time.monotonic()
    panel.buttons[Button.STOP].click()
    assert panel.wait_idle(10)
    # idle includes closing ccxt's websocket, flushing the paper rows and reading them back:
    # about 0.6 s here, 2 s on a loaded 2-core machine; a silent socket's poll_s (2 s) is not
    # waited for
    assert time.monotonic() - t0 < 3.0
    assert session.stats()["state"] == "stopped" and panel.log_lines[-1].endswith("stopped")

    # what the panel shows of the paper account is what DuckDB holds
    stored = paper_view(store, session.session_id)
    position = stored["position"]
    assert position is not None and stored["equity"].height == SERVED - 100
    view = panel.live.view.value
    assert paper_cells(position) in view
    assert cell(view, "equity") == human_number(position["equity"])
    assert cell(view, "unrealised PnL") == human_number(position["unrealised_pnl"])
    assert cell(view, "position") == human_number(position["position"], digits=4)
    assert int(cell(view, "fills")) == stored["fills"].height
    curve = next(t for t in panel.chart.data if t.name == "paper equity")  # the equity pane
    shown = stored["equity"].filter(pl.col("ts") >= int(served["ts"][-60]))  # 60 candles drawn
    assert list(curve.y) == shown["equity"].to_list() and len(curve.x) == 60
    # the exchange's candles were stored after the slice
    assert store.read_ohlcv(SYM, TF).tail(100).equals(served.slice(100))


@pytest.mark.parametrize("exchange, url, error, message", [
    ("", "", ParameterError, "exchange id is empty"),
    ("  ", "http://127.0.0.1:1", ParameterError, "exchange id is empty"),
    ("nosuchexchange", "", NotFoundError, "'nosuchexchange' is not a ccxt exchange id"),
    ("binance", "127.0.0.1:8765", ParameterError, "is not an http(s) URL"),
    ("binance", "ftp://127.0.0.1/", ParameterError, "is not an http(s) URL"),
    ("binance", "http://127.0.0.1:port", ParameterError, "is not valid"),
])
def test_bad_exchange_input_is_a_message_in_the_panel_not_a_session(ui_db, quick_model,
                                                                     exchange, url, error,
                                                                     message):
    panel = ControlPanel(db=str(ui_db), model=quick_model, source="exchange")
    panel.live.controls.exchange.value, panel.live.controls.url.value = exchange, url
    panel.buttons[Button.LIVE_NONE].click()
    assert panel.session is None and panel.slot.live is None and panel.wait_idle(5)
    assert message in html.unescape(panel.live.controls.message.value)
    assert panel.log_lines[-1].split(" ", 1)[1].startswith("live session not started:")
    assert not panel.buttons[Button.LIVE_NONE].disabled  # nothing runs: fix it and start
    with pytest.raises(error, match=re.escape(message)):
        panel.live.controls.choice()
    panel.live.controls.source.value = "replay"  # the fields do not apply to a replay
    assert panel.live.controls.choice().source == "replay"
    assert panel.live.controls.message.value == ""
