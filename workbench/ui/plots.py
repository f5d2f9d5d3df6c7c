"""Interactive charts (plotly): data in, ``go.Figure`` out, every pane on one linked time axis.

:func:`market_figure` builds the chart people trade from: candles with a volume pane, SMA/EMA
overlays and an RSI pane (legend entries toggle them), pivots with their confirmation, predicted
signals, the ghost candle (the predicted next candle), trades as entry→exit segments coloured by
PnL over a shading of the position held, and optionally equity beside buy & hold with a drawdown
pane. All panes share one time axis (zoom, pan, crosshair, a range selector) and hover shows
OHLC with ISO UTC times. :func:`equity_figure` is the equity + drawdown part alone,
:func:`predictions_figure` predicted against actual values (the price model).

Colours are chosen so that nothing is mistaken for a candle: candles teal/red, predicted BUY/SELL
blue/orange, the ghost candle violet, winning/losing trades dark green/dark red.

The functions are pure and build no widget; :mod:`workbench.ui.live_chart` wraps the same panes
in a ``FigureWidget`` that appends in place. :func:`setup_notebook` makes figures render offline
(plotly.js embedded once, no CDN); matplotlib stays in :mod:`workbench.ui.charts` for PNG exports.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from workbench.errors import ParameterError

UP, DOWN = "#26a69a", "#ef5350"
BUY, SELL = "#1e63d6", "#f39c12"
GHOST = "#8e24aa"
WIN, LOSS, OPEN_TRADE = "#1b5e20", "#b71c1c", "#616161"
EQUITY, BUY_HOLD = "#1565c0", "#9e9e9e"
#: overlay colours: SMA solid, EMA dotted (see :func:`_overlay_traces`)
_OVERLAY_COLOURS = {"sma_10": "#6d4c41", "sma_20": "#3949ab", "sma_50": "#00838f",
                    "ema_10": "#ad1457", "ema_20": "#5e35b1", "ema_50": "#c0ca33"}
DEFAULT_OVERLAYS = ("sma_20", "ema_50")
#: each pane and its relative height; a figure keeps the panes it has data for, in this order
PANES = {"price": 5.0, "volume": 1.2, "rsi": 1.5, "equity": 2.2, "drawdown": 1.2}
_PIVOT_SIZE = {1: 7, 2: 10, 3: 13}
#: pivots in greys, hollow: they must not read as a predicted BUY/SELL
_PIVOT_COLOUR = {1: "#9e9e9e", 2: "#616161", 3: "#212121"}
_HOVER_TIME = "%Y-%m-%d %H:%M UTC"


def to_datetime(ts_ms) -> np.ndarray:
    """Epoch-ms timestamps as ``datetime64[ms]`` (plotly writes them as ISO times, UTC)."""
    return np.asarray(ts_ms, dtype=np.int64).astype("datetime64[ms]")


def iso(ts_ms: int) -> str:
    """One epoch-ms time as ISO text, for layout values (shapes, ranges, annotations).

    A widget's layout travels as plain JSON, which has no numpy datetime scalar.
    """
    return str(np.datetime64(int(ts_ms), "ms"))


def step_of(ts) -> int:
    """The bar size in ms: the median step of ``ts`` (one minute for a single bar)."""
    ts = np.asarray(ts)
    return int(np.median(np.diff(ts))) if ts.size > 1 else 60_000


def _range_buttons(step_ms: int) -> list[dict]:
    """Range-selector buttons that suit the bar size (hours for minutes, years for days)."""
    if step_ms < 3_600_000:
        spans = [(1, "1h", "hour"), (6, "6h", "hour"), (1, "1d", "day"), (7, "1w", "day")]
    elif step_ms < 86_400_000:
        spans = [(1, "1d", "day"), (7, "1w", "day"), (1, "1m", "month"), (3, "3m", "month")]
    else:
        spans = [(1, "1m", "month"), (6, "6m", "month"), (1, "1y", "year"), (3, "3y", "year")]
    return [dict(count=c, label=label, step=step, stepmode="backward")
            for c, label, step in spans] + [dict(step="all", label="all")]


def pane_layout(panes: list[str], *, title: str = "", step_ms: int = 60_000,
                height: int | None = None) -> tuple[go.Figure, dict[str, int]]:
    """Return an empty figure with ``panes`` stacked on one shared time axis, and pane -> row.

    Raises
    ------
    ParameterError
        When a pane is not one of :data:`PANES`.
    """
    unknown = [p for p in panes if p not in PANES]
    if unknown:
        raise ParameterError(f"unknown pane(s) {unknown}; known panes: {', '.join(PANES)}")
    weights = [PANES[p] for p in panes]
    fig = make_subplots(rows=len(panes), cols=1, shared_xaxes=True, vertical_spacing=0.025,
                        row_heights=[w / sum(weights) for w in weights])
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=15)), template="plotly_white",
        height=height or int(140 + 70 * sum(weights)), hovermode="x unified",
        dragmode="pan", margin=dict(l=60, r=20, t=70, b=40),
        legend=dict(x=1.01, y=1.0, xanchor="left", yanchor="top", font=dict(size=11),
                    itemclick="toggle", groupclick="togglegroup"),
        uirevision="keep")  # a live update keeps the viewer's zoom
    fig.update_xaxes(showspikes=True, spikemode="across", spikethickness=1, spikedash="dot",
                     hoverformat=_HOVER_TIME, rangeslider_visible=False, type="date")
    fig.update_xaxes(rangeselector=dict(buttons=_range_buttons(step_ms), x=0, y=1.0,
                                        yanchor="bottom", font=dict(size=11)), row=1, col=1)
    titles = {"price": "price", "volume": "volume", "rsi": "RSI 14", "equity": "equity",
              "drawdown": "drawdown %"}
    for row, pane in enumerate(panes, start=1):
        fig.update_yaxes(title_text=titles[pane], row=row, col=1, title_font=dict(size=11))
    return fig, {p: i for i, p in enumerate(panes, start=1)}


def candle_traces(candles: pl.DataFrame) -> tuple[go.Candlestick, go.Bar]:
    """The candlestick and its volume bars (coloured by the candle's direction)."""
    x = to_datetime(candles["ts"])
    o, c = candles["open"].to_numpy(), candles["close"].to_numpy()
    price = go.Candlestick(
        x=x, open=o, high=candles["high"].to_numpy(), low=candles["low"].to_numpy(), close=c,
        name="candles", increasing=dict(line=dict(color=UP), fillcolor=UP),
        decreasing=dict(line=dict(color=DOWN), fillcolor=DOWN))
    volume = go.Bar(x=x, y=candles["volume"].to_numpy() if "volume" in candles.columns else
                    np.zeros(len(x)), name="volume", marker_color=np.where(c >= o, UP, DOWN),
                    opacity=0.55, showlegend=False, hovertemplate="volume %{y:,.4g}<extra></extra>")
    return price, volume


def _overlay_traces(frame: pl.DataFrame, overlays) -> list[go.Scatter]:
    x = to_datetime(frame["ts"])
    return [go.Scatter(x=x, y=frame[name].to_numpy(), mode="lines", name=name.upper().replace(
        "_", " "), line=dict(width=1.3, color=_OVERLAY_COLOURS.get(name),
                             dash="dot" if name.startswith("ema") else "solid"),
        hovertemplate=f"{name} %{{y:,.2f}}<extra></extra>") for name in overlays]


def _rsi_trace(frame: pl.DataFrame) -> go.Scatter:
    return go.Scatter(x=to_datetime(frame["ts"]), y=frame["rsi_14"].to_numpy(), mode="lines",
                      name="RSI 14", line=dict(width=1.2, color="#6a1b9a"),
                      hovertemplate="RSI %{y:.1f}<extra></extra>")


def with_indicators(candles: pl.DataFrame, names) -> pl.DataFrame:
    """Return ``candles`` with the indicator columns ``names`` (computed when missing)."""
    from workbench.features.indicators import add_indicators

    missing = [n for n in names if n not in candles.columns]
    return add_indicators(candles.select("ts", "open", "high", "low", "close", "volume")) \
        if missing else candles


def prediction_traces(candles: pl.DataFrame, predictions: pl.DataFrame) -> list[go.Scatter]:
    """Predicted BUY below the candle's low and SELL above its high, blue and orange."""
    joined = predictions.select("ts", "signal").join(candles.select("ts", "high", "low"),
                                                     on="ts", how="inner")
    pad = float(candles["high"].max() - candles["low"].min()) * 0.015 if candles.height else 0.0
    out = []
    for value, name, colour, symbol, col, sign in ((1, "predicted BUY", BUY, "triangle-up",
                                                    "low", -1), (-1, "predicted SELL", SELL,
                                                                 "triangle-down", "high", 1)):
        sel = joined.filter(pl.col("signal") == value)
        out.append(go.Scatter(x=to_datetime(sel["ts"]), y=sel[col].to_numpy() + sign * pad,
                              mode="markers", name=name,
                              marker=dict(symbol=symbol, size=8, color=colour,
                                          line=dict(width=0.6, color="white")),
                              hovertemplate=f"{name}<extra></extra>"))
    return out


def ghost_trace(ts: int, ghost: dict) -> go.Candlestick:
    """The predicted next candle: a violet, half-transparent candle one bar after the last."""
    return go.Candlestick(
        x=to_datetime([ts]), open=[ghost["open"]], high=[ghost["high"]], low=[ghost["low"]],
        close=[ghost["close"]], name="ghost (predicted next candle)", whiskerwidth=0.6,
        increasing=dict(line=dict(color=GHOST, width=2), fillcolor="rgba(142,36,170,0.35)"),
        decreasing=dict(line=dict(color=GHOST, width=2), fillcolor="rgba(142,36,170,0.35)"))


def pivot_traces(pivots: pl.DataFrame) -> list[go.Scatter]:
    """Per level: pivots marked at their time, a dotted line to their confirmation time."""
    out = []
    for level in sorted(set(pivots["level"].to_list())):
        sel = pivots.filter(pl.col("level") == level)
        colour, size = _PIVOT_COLOUR.get(level, "#212121"), _PIVOT_SIZE.get(level, 13)
        high = sel["pivot_type"].str.ends_with("H").to_numpy()
        out.append(go.Scatter(
            x=to_datetime(sel["ts"]), y=sel["price"].to_numpy(), mode="markers",
            name=f"pivots L{level}", legendgroup=f"pivot{level}",
            marker=dict(symbol=np.where(high, "triangle-down-open", "triangle-up-open"),
                        size=size, color=colour, line=dict(width=1.6, color=colour)),
            customdata=np.column_stack([sel["pivot_type"].to_numpy(),
                                        to_datetime(sel["confirmed_ts"]).astype(str)]),
            hovertemplate="%{customdata[0]} %{y:,.2f}, confirmed %{customdata[1]}"
                          "<extra></extra>"))
        xs = _segments(sel["ts"].to_numpy(), sel["confirmed_ts"].to_numpy())
        ys = _segments(sel["price"].to_numpy(), sel["price"].to_numpy(), times=False)
        out.append(go.Scatter(x=xs, y=ys, mode="lines+markers", legendgroup=f"pivot{level}",
                              name=f"L{level} confirmation", showlegend=False, hoverinfo="skip",
                              line=dict(color=colour, width=1, dash="dot"),
                              marker=dict(symbol="line-ns", size=8, color=colour,
                                          line=dict(width=1.5, color=colour)),
                              connectgaps=False))
    return out


def _segments(a, b, *, times: bool = True) -> np.ndarray:
    """Interleave ``a[i], b[i], None`` so one trace draws many separate segments."""
    a, b = np.asarray(a), np.asarray(b)
    if times:
        a, b = to_datetime(a).astype(object), to_datetime(b).astype(object)
    out = np.empty(a.shape[0] * 3, dtype=object)
    out[0::3], out[1::3], out[2::3] = a, b, None
    return out


def _trade_ends(trades: pl.DataFrame, last_ts: int, last_close: float) -> pl.DataFrame:
    """Trades with an exit time and price for every trade (an open one ends at the last bar)."""
    return trades.with_columns(
        pl.col("exit_ts").fill_null(last_ts).alias("end_ts"),
        pl.when(pl.col("is_open")).then(pl.lit(last_close)).otherwise(pl.col("exit_price"))
        .alias("end_price"))


def trade_traces(trades: pl.DataFrame, last_ts: int, last_close: float) -> list[go.Scatter]:
    """Entry→exit segments: winners dark green, losers dark red, the open trade grey dashed."""
    ends = _trade_ends(trades, last_ts, last_close)
    groups = (("winning trades", WIN, "solid", (~pl.col("is_open")) & (pl.col("pnl") > 0)),
              ("losing trades", LOSS, "solid", (~pl.col("is_open")) & (pl.col("pnl") <= 0)),
              ("open trade", OPEN_TRADE, "dash", pl.col("is_open")))
    out = []
    for name, colour, dash, where in groups:
        sel = ends.filter(where)
        text = [f"{side} {100 * r:+.2f} % ({_minutes(a, b)})" for side, r, a, b in
                zip(sel["side"], sel["return_pct"], sel["entry_ts"], sel["end_ts"])]
        out.append(go.Scatter(
            x=_segments(sel["entry_ts"].to_numpy(), sel["end_ts"].to_numpy()),
            y=_segments(sel["entry_price"].to_numpy(), sel["end_price"].to_numpy(), times=False),
            mode="lines+markers", name=f"{name} ({sel.height})", connectgaps=False,
            line=dict(color=colour, width=2.2, dash=dash),
            marker=dict(size=7, color=colour, symbol="diamond"),
            text=np.repeat(np.asarray(text, dtype=object), 3) if text else None,
            hovertemplate="%{text}<extra></extra>"))
    return out


def _minutes(a: int, b: int) -> str:
    from datetime import timedelta

    from workbench.units import human_duration

    return human_duration(timedelta(milliseconds=int(b - a)))


def position_traces(trades: pl.DataFrame, last_ts: int, low: float,
                    high: float) -> list[go.Scatter]:
    """Shade the time a position is held: light green while long, light red while short."""
    ends = trades.with_columns(pl.col("exit_ts").fill_null(last_ts).alias("end_ts"))
    out = []
    for side, colour in (("long", "rgba(46,125,50,0.09)"), ("short", "rgba(198,40,40,0.09)")):
        sel = ends.filter(pl.col("side") == side)
        a = to_datetime(sel["entry_ts"]).astype(object)
        b = to_datetime(sel["end_ts"]).astype(object)
        xs = np.empty(sel.height * 6, dtype=object)
        ys = np.empty(sel.height * 6, dtype=object)
        for k, (xv, yv) in enumerate(((a, low), (a, high), (b, high), (b, low), (a, low),
                                      (None, None))):
            xs[k::6], ys[k::6] = xv, yv
        out.append(go.Scatter(x=xs, y=ys, fill="toself", fillcolor=colour, mode="none",
                              name=f"{side} position", hoverinfo="skip", connectgaps=False))
    return out


def equity_traces(equity: pl.DataFrame, candles: pl.DataFrame | None) -> list[go.Scatter]:
    """Equity, buy & hold (the same cash in the instrument from the first close), drawdown."""
    x = to_datetime(equity["ts"])
    eq = equity["equity"].to_numpy()
    out = [go.Scatter(x=x, y=eq, mode="lines", name="equity", line=dict(color=EQUITY, width=1.6),
                      hovertemplate="equity %{y:,.2f}<extra></extra>")]
    if candles is not None and candles.height:
        close = equity.select("ts").join(candles.select("ts", "close"), on="ts", how="left")
        c = close["close"].to_numpy()
        first = c[np.flatnonzero(np.isfinite(c))[0]] if np.isfinite(c).any() else np.nan
        out.append(go.Scatter(x=x, y=eq[0] * c / first, mode="lines", name="buy & hold",
                              line=dict(color=BUY_HOLD, width=1.3, dash="dot"),
                              hovertemplate="buy & hold %{y:,.2f}<extra></extra>"))
    dd = (equity["drawdown"].to_numpy() if "drawdown" in equity.columns
          else 1.0 - eq / np.maximum.accumulate(eq))
    out.append(go.Scatter(x=x, y=-100.0 * dd, mode="lines", name="drawdown", fill="tozeroy",
                          line=dict(color=DOWN, width=1), fillcolor="rgba(239,83,80,0.35)",
                          showlegend=False, hovertemplate="drawdown %{y:.2f} %<extra></extra>"))
    return out


def market_figure(candles: pl.DataFrame, *, overlays=DEFAULT_OVERLAYS, rsi: bool = True,
                  pivots: pl.DataFrame | None = None, predictions: pl.DataFrame | None = None,
                  ghost: dict | None = None, trades: pl.DataFrame | None = None,
                  equity: pl.DataFrame | None = None, title: str = "",
                  window: int | None = None) -> go.Figure:
    """Return the linked chart of ``candles`` with whatever else is given.

    Parameters
    ----------
    candles : ts (epoch ms), open, high, low, close[, volume] and optionally indicator columns
        (computed with :func:`workbench.features.indicators.add_indicators` when missing).
    overlays : indicator columns drawn over the price (``sma_N``/``ema_N``); ``()`` for none.
    rsi : add the RSI 14 pane.
    pivots : ts, confirmed_ts, price, pivot_type, level (``detect_pivots``).
    predictions : ts, signal in {-1, 0, 1}: BUY/SELL markers.
    ghost : open, high, low, close of the predicted next candle, drawn one bar after the last
        (at ``ghost["ts"]`` when given).
    trades : a backtest's trades frame (:func:`workbench.backtest.stats.trades_frame`).
    equity : a backtest's equity frame (ts, equity[, drawdown]): adds equity and drawdown panes.
    title : the figure's title.
    window : show the last ``window`` candles first (every candle stays one zoom-out or the
        range selector's "all" away); ``None`` shows them all.

    Returns
    -------
    go.Figure

    Raises
    ------
    ParameterError
        When ``candles`` has no rows.
    """
    if candles.height == 0:
        raise ParameterError("market_figure needs at least one candle")
    ts = candles["ts"].to_numpy()
    step = step_of(ts)
    panes = ["price", "volume"] + (["rsi"] if rsi else []) + (
        ["equity", "drawdown"] if equity is not None and equity.height else [])
    fig, row = pane_layout(panes, title=title, step_ms=step)
    frame = with_indicators(candles, list(overlays) + (["rsi_14"] if rsi else []))
    low, high = float(candles["low"].min()), float(candles["high"].max())
    price, volume = candle_traces(candles)
    if trades is not None and trades.height:
        fig.add_traces(position_traces(trades, int(ts[-1]), low, high), rows=1, cols=1)
    fig.add_trace(price, row=1, col=1)
    fig.add_trace(volume, row=row["volume"], col=1)
    if overlays:
        fig.add_traces(_overlay_traces(frame, overlays), rows=1, cols=1)
    if rsi:
        fig.add_trace(_rsi_trace(frame), row=row["rsi"], col=1)
        for level in (30, 70):
            fig.add_hline(y=level, line=dict(color="#bdbdbd", width=1, dash="dash"),
                          row=row["rsi"], col=1)
        fig.update_yaxes(range=[0, 100], row=row["rsi"], col=1)
    if pivots is not None and pivots.height:
        fig.add_traces(pivot_traces(pivots), rows=1, cols=1)
    if predictions is not None and predictions.height:
        fig.add_traces(prediction_traces(candles, predictions), rows=1, cols=1)
    if trades is not None and trades.height:
        fig.add_traces(trade_traces(trades, int(ts[-1]), float(candles["close"][-1])),
                       rows=1, cols=1)
    if ghost is not None:
        _add_ghost(fig, ghost, int(ghost.get("ts") or ts[-1] + step), step)
    if "equity" in row:
        for trace in equity_traces(equity, candles):
            fig.add_trace(trace, row=row["drawdown" if trace.name == "drawdown" else "equity"],
                          col=1)
    fig.update_yaxes(range=_padded(low, high), row=1, col=1)
    if window and window < candles.height:
        _zoom_to(fig, candles.tail(window), step)
    return fig


def _zoom_to(fig: go.Figure, shown: pl.DataFrame, step: int) -> None:
    """Start zoomed on ``shown`` (its time span plus the ghost's bar, its price range)."""
    ts = shown["ts"].to_numpy()
    fig.update_xaxes(range=[iso(ts[0] - step // 2), iso(ts[-1] + 2 * step)])
    fig.update_yaxes(range=_padded(float(shown["low"].min()), float(shown["high"].max())),
                     row=1, col=1)


def _padded(low: float, high: float) -> list[float]:
    pad = (high - low) * 0.05 or abs(high) * 0.01 or 1.0
    return [low - pad, high + pad]


def ghost_marks(ts: int, high: float, step_ms: int) -> tuple[dict, dict]:
    """A violet band over the ghost's bar and a "predicted" label above it (shape, annotation).

    The band makes the predicted candle findable at a glance, however small its body.
    """
    band = dict(type="rect", xref="x", yref="y domain", x0=iso(ts - step_ms // 2),
                x1=iso(ts + step_ms // 2), y0=0, y1=1,
                fillcolor="rgba(142,36,170,0.12)", line_width=0, layer="below")
    label = dict(x=iso(ts), y=float(high), xref="x", yref="y", text="predicted",
                 showarrow=True, arrowhead=2, arrowcolor=GHOST, ax=0, ay=-28,
                 font=dict(color=GHOST, size=11))
    return band, label


def _add_ghost(fig: go.Figure, ghost: dict, ts: int, step_ms: int) -> None:
    """Add the ghost candle, its band and its label."""
    fig.add_trace(ghost_trace(ts, ghost), row=1, col=1)
    band, label = ghost_marks(ts, float(ghost["high"]), step_ms)
    fig.add_shape(band)
    fig.add_annotation(label)


def equity_figure(equity: pl.DataFrame, candles: pl.DataFrame | None = None, *,
                  title: str = "") -> go.Figure:
    """Return equity beside buy & hold with a drawdown pane below, on one time axis."""
    if equity.height == 0:
        raise ParameterError("equity_figure needs at least one equity row")
    fig, row = pane_layout(["equity", "drawdown"], title=title,
                           step_ms=step_of(equity["ts"].to_numpy()), height=420)
    for trace in equity_traces(equity, candles):
        fig.add_trace(trace, row=row["drawdown" if trace.name == "drawdown" else "equity"],
                      col=1)
    return fig


def predictions_figure(ts, actual, predicted, *, title: str = "",
                       name: str = "close") -> go.Figure:
    """Return predicted against actual values over time, with the error in a pane below."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ParameterError(f"predictions_figure needs equal, non-empty series (actual "
                             f"{actual.shape}, predicted {predicted.shape})")
    x = to_datetime(ts)
    fig, _ = pane_layout(["price", "drawdown"], title=title, step_ms=step_of(np.asarray(ts)),
                         height=460)
    fig.add_trace(go.Scatter(x=x, y=actual, mode="lines", name=f"actual {name}",
                             line=dict(color="#424242", width=1.4)), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=predicted, mode="lines", name=f"predicted {name}",
                             line=dict(color=BUY, width=1.4)), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=predicted - actual, name="error", marker_color=SELL,
                         hovertemplate="error %{y:,.2f}<extra></extra>"), row=2, col=1)
    fig.update_yaxes(title_text=name, row=1, col=1)
    fig.update_yaxes(title_text="predicted - actual", row=2, col=1)
    return fig


# -- showing figures offline --------------------------------------------------------------------
RENDERER = "workbench"
#: plotly.js options of every shown figure: wheel zoom, no logo, no cloud link
PLOT_CONFIG = {"scrollZoom": True, "displaylogo": False, "responsive": True}


def _renderer():
    """A renderer giving plotly's own mime type (JupyterLab) and offline HTML (reports, Voila).

    plotly's ``notebook`` renderer adds a MathJax script from a CDN to every figure; this one
    adds nothing external: the HTML part expects ``window.Plotly`` from :func:`setup_notebook`.
    In a dashboard kernel a figure is HTML only, drawn once the page has loaded plotly.js from
    the dashboard server (:func:`_dashboard_html`).
    """
    from plotly.io import to_html
    from plotly.io._base_renderers import PlotlyRenderer

    class OfflineRenderer(PlotlyRenderer):
        def to_mimebundle(self, fig_dict):
            if _in_dashboard():
                return {"text/html": _dashboard_html(fig_dict, self.config)}
            bundle = super().to_mimebundle(dict(fig_dict))
            bundle["text/html"] = to_html(fig_dict, config=self.config, include_plotlyjs=False,
                                          include_mathjax=False, full_html=False,
                                          default_width="100%", validate=False)
            return bundle

    return OfflineRenderer(config=PLOT_CONFIG)


def _in_dashboard() -> bool:
    """True in a dashboard (Voila) kernel (:data:`DASHBOARD_ENV`, set at its start-up)."""
    import os

    return os.environ.get(DASHBOARD_ENV) == "1"


def _plotly_loader_js() -> str:
    """JavaScript giving ``window.wbPlotly``: one promise of plotly.js, loaded from the server once.

    A page renders output HTML by inserting it, so a ``<script src>`` there loads asynchronously
    and a figure's own script cannot simply follow it; every figure waits on this promise. The
    load starts once Voila shows the page's cells (``#rendered_cells``): parsing plotly.js and
    drawing then no longer compete with Voila's own start-up, so text and tables appear first
    and the charts a moment later.
    """
    src = f"{PLOTLY_JS_ROUTE}plotly.min.js?v={plotly.__version__}"
    return ("window.wbPlotly = window.wbPlotly || new Promise(function (resolve, reject) {"
            " function load() { if (window.Plotly) { resolve(window.Plotly); return; }"
            " var s = document.createElement('script');"
            f" s.src = '{src}';"
            " s.onload = function () { resolve(window.Plotly); }; s.onerror = reject;"
            " document.head.appendChild(s); }"
            " (function whenShown() { var cells = document.getElementById('rendered_cells');"
            " if (!cells || cells.getBoundingClientRect().height > 0) {"
            " requestAnimationFrame(function () { setTimeout(load, 0); }); }"
            " else { setTimeout(whenShown, 50); } })(); });")


def _dashboard_html(fig_dict: dict, config: dict) -> str:
    """A figure's HTML for a dashboard page: its div and a script drawing it once plotly.js is in."""
    import json
    import uuid

    from plotly.io import to_json

    div_id = str(uuid.uuid4())
    height = fig_dict.get("layout", {}).get("height")
    style = f"height:{height}px; width:100%;" if height else "height:100%; width:100%;"
    figure_json = to_json(fig_dict, validate=False).replace("</", "<\\/")  # no early </script>
    return (f'<div id="{div_id}" class="plotly-graph-div" style="{style}"></div>'
            f"<script type='text/javascript'>{_plotly_loader_js()}"
            f" window.wbPlotly.then(function (Plotly) {{ var fig = {figure_json};"
            f' Plotly.newPlot("{div_id}", fig.data, fig.layout || {{}}, {json.dumps(config)}); }});'
            "</script>")


#: set in dashboard (Voila) kernels: figures go out as HTML only (the page's plotly mime renderer
#: raised "setData is not a function" in Voila 0.5.13), drawn by the plotly.js the page loads once
DASHBOARD_ENV = "WORKBENCH_DASHBOARD_KERNEL"
#: where the dashboard server serves plotly's own ``plotly.min.js`` (:mod:`workbench.ui.voila_app`)
PLOTLY_JS_ROUTE = "/workbench-static/"


def plotlyjs_dir() -> Path:
    """The folder of the installed plotly's ``plotly.min.js`` (the one its figures are made for)."""
    return Path(plotly.__file__).parent / "package_data"


def _plotlyjs_tag(dashboard: bool) -> str:
    """The script element that gives a page plotly.js.

    A report embeds plotly.js (about 5 MB) so that it renders offline. A dashboard page loads it
    from its own server with a versioned URL the browser caches (:func:`_plotly_loader_js`), so
    a page view does not carry and parse another 5 MB of inline script.
    """
    if dashboard:
        return f"<script type='text/javascript'>{_plotly_loader_js()}</script>"
    from plotly.offline import get_plotlyjs

    return f"<script type='text/javascript'>{get_plotlyjs()}</script>"


def setup_notebook(*, embed_plotlyjs: bool = True) -> None:
    """Make figures render in notebooks, Voila and HTML reports with nothing fetched from outside.

    Registers and selects the :data:`RENDERER` renderer and displays plotly.js once, so that
    every later figure draws: inline in suite kernels (exported HTML reports then render
    offline), from the dashboard server itself in dashboard kernels (:data:`DASHBOARD_ENV`).
    Call it once, in a notebook's first code cell; a figure is then shown by leaving it as a
    cell's value. ``embed_plotlyjs=False`` skips plotly.js where the page already has it.
    """
    import plotly.io as pio
    from IPython.display import HTML, display

    pio.renderers[RENDERER] = _renderer()
    pio.renderers.default = RENDERER
    if embed_plotlyjs:
        display(HTML(_plotlyjs_tag(_in_dashboard())))
