"""Interactive charts: panes on one linked time axis, every candle and trade drawn, colours that
do not read as candles, ISO UTC hover, offline rendering; the live chart appends in place with
a flat memory."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest
from jupyter_client.jsonutil import json_clean

from workbench.backtest.signals import sma_cross_signals
from workbench.backtest.simulate import SimConfig, simulate
from workbench.backtest.stats import equity_frame, trades_frame
from workbench.errors import ParameterError
from workbench.features.pivots import pivots_from_frame
from workbench.ui import plots
from workbench.ui.live_chart import LiveChart


@pytest.fixture(scope="module")
def backtest(eth_1m):
    candles = eth_1m.slice(20_000, 1_500)
    sig = sma_cross_signals(candles["close"].to_numpy(), 10, 30)
    sim = simulate(candles["open"].to_numpy(), candles["close"].to_numpy(), sig, SimConfig())
    ts = candles["ts"].to_numpy()
    return candles, trades_frame(sim, ts), equity_frame(sim, ts, sig)


def _by_name(fig, prefix):
    return [t for t in fig.data if (t.name or "").startswith(prefix)]


def _segment_count(trace) -> int:
    return sum(v is None for v in trace.x)


def test_backtest_chart_shows_every_candle_and_every_trade_on_linked_panes(backtest):
    candles, trades, equity = backtest
    last = candles.row(-1, named=True)
    ghost = {"open": last["close"], "high": last["close"] + 5, "low": last["close"] - 2,
             "close": last["close"] + 3}
    fig = plots.market_figure(candles, trades=trades, equity=equity, ghost=ghost,
                              predictions=equity.select("ts", "signal"), title="bt")
    assert isinstance(fig, go.Figure)
    (price,) = _by_name(fig, "candles")
    assert len(price.x) == 1_500 and price.x[0] == np.datetime64(int(candles["ts"][0]), "ms")
    drawn = sum(_segment_count(t) for t in _by_name(fig, "winning") + _by_name(fig, "losing")
                + _by_name(fig, "open trade"))
    assert drawn == trades.height > 16  # every trade, not a tail of them
    # five panes (price, volume, RSI, equity, drawdown), all matched to the bottom x axis
    axes = [k for k in fig.layout if k.startswith("xaxis")]
    assert len(axes) == 5
    assert [fig.layout[a].matches for a in sorted(axes)] == ["x5"] * 4 + [None]
    assert fig.layout.xaxis.rangeselector.buttons[-1].step == "all"
    assert fig.layout.hovermode == "x unified" and "UTC" in fig.layout.xaxis.hoverformat
    # the ghost sits one bar after the last candle
    (g,) = _by_name(fig, "ghost")
    assert g.x[0] == np.datetime64(int(candles["ts"][-1]) + 60_000, "ms")
    assert [a.text for a in fig.layout.annotations] == ["predicted"]


def test_signal_ghost_and_trade_colours_differ_from_the_candles(backtest):
    candles, trades, equity = backtest
    fig = plots.market_figure(candles, trades=trades, predictions=equity.select("ts", "signal"),
                              ghost={"open": 1, "high": 2, "low": 0.5, "close": 1.5})
    (price,) = _by_name(fig, "candles")
    candle_colours = {price.increasing.fillcolor.lower(), price.decreasing.fillcolor.lower()}
    others = [t.marker.color for t in _by_name(fig, "predicted")]
    others += [t.line.color for t in _by_name(fig, "winning") + _by_name(fig, "losing")]
    others += [_by_name(fig, "ghost")[0].increasing.line.color]
    assert len({c.lower() for c in others}) == len(others) == 5
    assert not candle_colours & {c.lower() for c in others}


def test_pivots_are_drawn_at_their_time_with_their_confirmation(eth_slice):
    frame = eth_slice.head(400)
    pivots = pivots_from_frame(frame, "1m", strength=2, levels=2)
    fig = plots.market_figure(frame, pivots=pivots, rsi=False, overlays=())
    markers = _by_name(fig, "pivots L")
    assert sum(len(t.x) for t in markers) == pivots.height
    lines = [t for t in fig.data if (t.name or "").endswith("confirmation")]
    ends = [x for t in lines for x in t.x[1::3]]
    assert sorted(ends) == sorted(plots.to_datetime(pivots["confirmed_ts"]).astype(object))
    assert len([k for k in fig.layout if k.startswith("xaxis")]) == 2  # price + volume


def test_indicators_are_overlaid_and_toggleable(eth_slice):
    fig = plots.market_figure(eth_slice.head(300), overlays=("sma_20", "ema_50"))
    names = [t.name for t in fig.data]
    assert {"SMA 20", "EMA 50", "RSI 14"} <= set(names)
    assert fig.layout.legend.itemclick == "toggle"
    (sma,) = _by_name(fig, "SMA 20")
    values = np.asarray(sma.y, dtype=float)
    assert np.isnan(values[:19]).all() and np.isfinite(values[19:]).all()


def test_figures_serialise_with_iso_times_and_render_offline(backtest):
    candles, trades, equity = backtest
    fig = plots.equity_figure(equity, candles, title="equity")
    assert {t.name for t in fig.data} == {"equity", "buy & hold", "drawdown"}
    doc = json.loads(fig.to_json())
    assert doc["data"][0]["x"][0].startswith("2025-06-0")
    bundle = plots._renderer().to_mimebundle(fig.to_dict())
    assert "application/vnd.plotly.v1+json" in bundle
    assert "https://" not in bundle["text/html"] and "Plotly.newPlot" in bundle["text/html"]


def test_predictions_figure_and_bad_input():
    fig = plots.predictions_figure([0, 60_000, 120_000], [1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    assert list(fig.data[2].y) == [0.5, 0.0, -1.0]
    with pytest.raises(ParameterError, match="equal"):
        plots.predictions_figure([0], [1.0], [1.0, 2.0])
    with pytest.raises(ParameterError, match="at least one candle"):
        plots.market_figure(pl.DataFrame(schema={"ts": pl.Int64, "open": pl.Float64}))


def test_live_chart_appends_in_place_and_stays_within_its_cap(eth_slice):
    chart = LiveChart(max_candles=120, title="live")
    widget = chart.widget
    rows = eth_slice.head(1_000).select("ts", "open", "high", "low", "close", "volume")
    signals = np.column_stack([rows["ts"].to_numpy(), np.tile([1, 0, -1, 0], 250)])
    for start in range(0, 1_000, 50):
        chart.append(rows.slice(start, 50), signals[start:start + 50],
                     ghost=(int(rows["ts"][start + 49]) + 60_000, 1.0, 2.0, 0.5, 1.5))
        assert chart.n_candles == min(start + 50, 120)
    assert chart.widget is widget  # the same widget, updated, never replaced
    price, volume, buy, sell, ghost, sma = widget.data
    assert len(price.x) == len(volume.x) == 120
    assert price.x[-1] == np.datetime64(int(rows["ts"][-1]), "ms")
    assert len(buy.x) == len(sell.x) == 30  # only the signals of the visible candles
    assert ghost.x[0] == np.datetime64(int(rows["ts"][-1]) + 60_000, "ms")
    (band,) = widget.layout.shapes  # one band marks the ghost's bar, moved, not piled up
    assert np.datetime64(band.x0) < ghost.x[0] < np.datetime64(band.x1)
    json_clean(widget.layout.to_plotly_json())  # what a kernel sends to the browser: plain JSON
    assert len(sma.y) == 120
    chart.append(rows.tail(10))  # old rows again: ignored
    assert chart.n_candles == 120 and len(widget.data[0].x) == 120


def test_live_chart_draws_a_session_snapshot(eth_slice):
    rows = [tuple(r) for r in eth_slice.head(200).iter_rows()]
    chart = LiveChart(max_candles=50, overlay=None)
    chart.show_snapshot({"candles": rows, "signals": [(rows[-1][0], 1)], "ghost": None})
    assert chart.n_candles == 50 and len(chart.widget.data[2].x) == 1
    with pytest.raises(ParameterError, match="6 columns"):
        chart.append([(1, 2)])
