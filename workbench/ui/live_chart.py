"""A live chart that updates in place: a plotly ``FigureWidget`` fed candle by candle.

The control panel and notebook 03 show a session while it runs. Re-rendering a figure (or a PNG)
per refresh flickers, resets the viewer's zoom and grows the notebook; :class:`LiveChart` instead
keeps one widget and, per refresh, writes the visible window into its traces inside one
``batch_update`` (a single message to the browser). It keeps at most ``max_candles`` candles and
the predictions inside them, so its memory and the message size stay flat however long the session
runs. The panes and colours are :mod:`workbench.ui.plots`'s, so live and report charts read alike.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl

from workbench.errors import ParameterError
from workbench.ui import plots

_EMPTY_CANDLES = np.empty((0, 6))
_EMPTY_SIGNALS = np.empty((0, 2))


def _rows(values, width: int, name: str) -> np.ndarray:
    """Return candles/signals (a frame, a list of tuples or an array) as float64 (n, width)."""
    if values is None:
        return np.empty((0, width))
    if isinstance(values, pl.DataFrame):
        values = values.to_numpy()
    out = np.asarray(values, dtype=np.float64)
    if out.size == 0:
        return np.empty((0, width))
    if out.ndim != 2 or out.shape[1] < width:
        raise ParameterError(f"live chart {name} need {width} columns per row, got shape "
                             f"{out.shape}")
    return out[:, :width]


class LiveChart:
    """Candles, volume, predicted BUY/SELL, an SMA and the ghost candle, updated in place.

    Parameters
    ----------
    max_candles : how many recent candles stay visible (and in memory).
    title : the chart's title.
    overlay : an indicator column drawn over the price (``sma_20``), ``None`` for none.
    equity_pane : add an equity pane on the same time axis (:meth:`show_equity`), e.g. a
        session's paper equity.

    Attributes
    ----------
    widget : the ``go.FigureWidget`` to display (an anywidget: JupyterLab, Voila).
    """

    def __init__(self, *, max_candles: int = 300, title: str = "",
                 overlay: str | None = "sma_20", equity_pane: bool = False):
        if max_candles < 2:
            raise ParameterError(f"max_candles {max_candles} must be at least 2")
        self.max_candles = int(max_candles)
        self.overlay = overlay
        self._candles, self._signals, self._ghost = _EMPTY_CANDLES, _EMPTY_SIGNALS, None
        panes = ["price", "volume"] + (["equity"] if equity_pane else [])
        fig, _ = plots.pane_layout(panes, title=title, height=620 if equity_pane else 520)
        empty = pl.DataFrame({c: [] for c in ("ts", "open", "high", "low", "close", "volume")},
                             schema={"ts": pl.Int64, **{c: pl.Float64 for c in
                                                        ("open", "high", "low", "close",
                                                         "volume")}})
        price, volume = plots.candle_traces(empty)
        fig.add_trace(price, row=1, col=1)
        fig.add_trace(volume, row=2, col=1)
        buy, sell = plots.prediction_traces(empty, pl.DataFrame(
            {"ts": [], "signal": []}, schema={"ts": pl.Int64, "signal": pl.Int8}))
        fig.add_traces([buy, sell], rows=1, cols=1)
        fig.add_trace(plots.ghost_trace(0, dict(open=None, high=None, low=None, close=None)),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name=(overlay or "").upper().replace(
            "_", " "), line=dict(width=1.3, color="#3949ab"), visible=overlay is not None),
            row=1, col=1)
        if equity_pane:
            fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="paper equity",
                                     line=dict(color=plots.EQUITY, width=1.6),
                                     hovertemplate="equity %{y:,.2f}<extra></extra>"),
                          row=3, col=1)
        fig.update_xaxes(type="date")  # a time axis even while a pane is still empty
        self.widget = go.FigureWidget(fig)

    @property
    def n_candles(self) -> int:
        """Candles currently held (never more than ``max_candles``)."""
        return int(self._candles.shape[0])

    def append(self, candles=None, signals=None, ghost=None) -> None:
        """Append newer candles (ts, o, h, l, c, v) and signals (ts, s) and redraw in place.

        Rows not newer than the last held candle/signal are ignored, so a caller may pass
        overlapping batches. ``ghost`` is the predicted next candle ``(ts, o, h, l, c)``.
        """
        new = _rows(candles, 6, "candles")
        if self._candles.shape[0]:
            new = new[new[:, 0] > self._candles[-1, 0]]
        sig = _rows(signals, 2, "signals")
        if self._signals.shape[0]:
            sig = sig[sig[:, 0] > self._signals[-1, 0]]
        self._store(np.concatenate([self._candles, new]), np.concatenate([self._signals, sig]),
                    ghost)

    def show_snapshot(self, snapshot: dict) -> None:
        """Draw a :meth:`LiveSession.snapshot` (candles, signals, ghost), replacing what is held
        (a snapshot without a ghost clears the one drawn)."""
        self._ghost = None
        self._store(_rows(snapshot.get("candles"), 6, "candles"),
                    _rows(snapshot.get("signals"), 2, "signals"), snapshot.get("ghost"))

    def _store(self, candles: np.ndarray, signals: np.ndarray, ghost) -> None:
        """Keep the last ``max_candles`` candles and the signals inside them; redraw."""
        candles = candles[-self.max_candles:]
        if candles.shape[0]:
            signals = signals[signals[:, 0] >= candles[0, 0]]
        self._candles, self._signals = candles, signals
        self._ghost = tuple(ghost) if ghost is not None else self._ghost
        self._redraw()

    def show_equity(self, ts, equity, name: str | None = None) -> None:
        """Draw ``equity`` over ``ts`` (epoch ms) in the equity pane, from the first candle held
        on (the panes share one time axis); ``name`` renames the curve in the legend. Raises
        ParameterError without an equity pane."""
        if len(self.widget.data) < 7:
            raise ParameterError("this live chart has no equity pane (equity_pane=False)")
        ts, equity = np.asarray(ts, dtype=np.int64), np.asarray(equity, dtype=np.float64)
        if self._candles.shape[0]:
            keep = ts >= self._candles[0, 0]
            ts, equity = ts[keep], equity[keep]
        self.widget.data[6].update(x=plots.to_datetime(ts), y=equity)
        if name is not None:
            self.widget.data[6].name = name

    def frame(self) -> pl.DataFrame:
        """The candles held (ts, open, high, low, close, volume), oldest first."""
        return pl.DataFrame(self._candles, schema=["ts", "open", "high", "low", "close",
                                                   "volume"],
                            orient="row").with_columns(pl.col("ts").cast(pl.Int64))

    def _redraw(self) -> None:
        c = self._candles
        if not c.shape[0]:
            return
        frame = self.frame()
        signals = pl.DataFrame(self._signals, schema=["ts", "signal"], orient="row") \
            .with_columns(pl.col("ts").cast(pl.Int64), pl.col("signal").cast(pl.Int8))
        price, volume = plots.candle_traces(frame)
        buy, sell = plots.prediction_traces(frame, signals)
        data = self.widget.data
        with self.widget.batch_update():
            for trace, new in ((data[0], price), (data[1], volume), (data[2], buy),
                               (data[3], sell)):
                trace.update(x=new.x, **_values(new))
            if self._ghost is not None:
                ts, o, h, lo, cl = self._ghost
                data[4].update(x=plots.to_datetime([ts]), open=[o], high=[h], low=[lo],
                               close=[cl])
                band, label = plots.ghost_marks(int(ts), float(h), plots.step_of(c[:, 0]))
                self.widget.layout.shapes, self.widget.layout.annotations = [band], [label]
            else:
                data[4].update(x=[], open=[], high=[], low=[], close=[])
                self.widget.layout.shapes, self.widget.layout.annotations = [], []
            if self.overlay:
                with_sma = plots.with_indicators(frame, [self.overlay])
                data[5].update(x=price.x, y=with_sma[self.overlay].to_numpy())


def save_state(widget: go.FigureWidget) -> None:
    """Make ``widget``'s synced state (what a new view starts from) its current figure.

    A ``FigureWidget`` sends changes to the views that exist as deltas, and refreshes the state a
    new view starts from (``_widget_data``, ``_widget_layout``) only when it is displayed on its
    own. Inside a box (the control panel) every later view (a Voila page, a report's static
    snapshot) would start from the figure as it was built; call this when the figure settles.
    """
    figure = widget.to_dict()
    with widget.hold_sync():  # one message
        widget._widget_data, widget._widget_layout = figure["data"], figure["layout"]


def _values(trace) -> dict:
    """The data fields of a candlestick, bar or scatter trace, to copy into the widget's one."""
    if isinstance(trace, go.Candlestick):
        return dict(open=trace.open, high=trace.high, low=trace.low, close=trace.close)
    if isinstance(trace, go.Bar):
        return dict(y=trace.y, marker_color=trace.marker.color)
    return dict(y=trace.y)
