"""The control panel's chart: the picked range, a live session as it runs, a backtest's result.

:class:`PanelChart` owns one plotly ``FigureWidget`` (:class:`workbench.ui.live_chart.LiveChart`:
candles, volume, predicted BUY/SELL, SMA 20 and the ghost candle, updated in place) and its
caption. While a session runs it holds the stored candles before the session's first one, then
appends what each :meth:`LiveSession.snapshot <workbench.live.session.LiveSession.snapshot>`
adds, so the chart is full from the first candle and its memory stays flat (``candles`` kept).
A pane below shows the paper equity of a paper-trading session (:meth:`show_equity`; one figure
for the panel: plotly's widget bundle mixes up several ``FigureWidget`` models on one page, so a
second figure would leave the first one's updates unseen). Over the candles it draws what the
session learnt from: manual labels (written above their candle),
training events (ticks below the window-end candle of each trained frame) and, in pivot mode,
the pivots confirmed by then (detected on the drawn candles only: nothing after "now"). It
redraws only when the newest candle or the number of training steps changed. A backtest is
drawn on the same widget: its last candles, signals and trades as entry→exit segments.
Static exports (overview.png) stay with matplotlib in :mod:`workbench.ui.charts`.
"""
from __future__ import annotations

import contextlib

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import polars as pl

from workbench.data.store.schema import OHLCV_COLUMNS
from workbench.live.modes import TrainingMode
from workbench.ui import plots
from workbench.ui.live_chart import LiveChart, save_state

_MARK = "#6a1b9a"  # manual labels
_EVENT = "#00838f"  # training events
_EMPTY_TRADES = pl.DataFrame(schema={"entry_ts": pl.Int64, "exit_ts": pl.Int64,
                                     "entry_price": pl.Float64, "exit_price": pl.Float64,
                                     "is_open": pl.Boolean, "pnl": pl.Float64,
                                     "side": pl.String, "return_pct": pl.Float64})


def _overlay_traces() -> list[go.Scatter]:
    """The panel's traces over :class:`LiveChart`'s: labels, events, pivots, three trade kinds."""
    return [go.Scatter(x=[], y=[], mode="markers+text", name="manual label",
                       textposition="top center", textfont=dict(color=_MARK, size=11),
                       marker=dict(symbol="star", size=11, color=_MARK)),
            go.Scatter(x=[], y=[], mode="markers", name="training event",
                       marker=dict(symbol="line-ns", size=9, color=_EVENT,
                                   line=dict(width=1.6, color=_EVENT))),
            go.Scatter(x=[], y=[], mode="markers", name="pivots (confirmed)",
                       marker=dict(size=10, color="#424242", line=dict(width=1.5))),
            *plots.trade_traces(_EMPTY_TRADES, 0, 0.0)]


class PanelChart:
    """The panel's chart widget and caption (trait sets only: safe from any thread).

    Attributes
    ----------
    widget : the ``FigureWidget``; caption : an ``HTML`` saying what is drawn.
    """

    def __init__(self, candles: int):
        self.candles = candles
        self.chart = LiveChart(max_candles=candles, overlay="sma_20", equity_pane=True)
        self.widget = self.chart.widget
        self.widget.add_traces(_overlay_traces(), rows=1, cols=1)
        self._slots = self.widget.data[-6:]  # labels, events, pivots, won, lost, open trade
        self.widget.add_class("wb-chart")
        self.caption = w.HTML().add_class("wb-chart-caption")
        self.session = None
        self._drawn = (0, 0)
        self._paper = False  # the equity pane shows paper equity (else the session's own)
        self._settled = False  # the widget's synced state is the figure (see settle)

    @contextlib.contextmanager
    def _changing(self):
        """Change the figure in one message; a later :meth:`settle` saves it again."""
        with self.widget.batch_update():
            yield
        self._settled = False

    # -- what is drawn ---------------------------------------------------------------------------
    def _show(self, frame: pl.DataFrame, title: str, signals=None) -> None:
        """Replace the candles (and signals) held; clear every overlay; set the title."""
        with self._changing():
            self.chart.show_snapshot({"candles": frame.select(
                "ts", "open", "high", "low", "close", "volume"), "signals": signals})
            for slot in self._slots:
                slot.update(x=[], y=[], text=None)
            self.chart.show_equity([], [])
            self.widget.layout.title.text = title

    def _fill(self, slot, x, y, text=None) -> None:
        slot.update(x=plots.to_datetime(x) if len(x) else [], y=y, text=text)

    # -- a live session --------------------------------------------------------------------------
    def start(self, store, session) -> None:
        """Follow ``session``: draw the stored candles before its first one (the last
        ``candles`` of them, read by their times in the session's series)."""
        self.session, self._drawn, self._paper = session, (0, 0), False
        ts, last = session.series.ts, session.feed.last_index
        if last >= 0:
            first = last + 1 - self.candles  # < 0: the session holds fewer, read them all
            frame = store.read_ohlcv(session.symbol, session.timeframe,
                                     int(ts[first]) if first >= 0 else None,
                                     int(ts[last])).tail(self.candles)
        else:  # nothing before its first candle (a feed with no history): an empty chart
            frame = pl.DataFrame(schema={c: pl.Int64 if c == "ts" else pl.Float64
                                         for c in OHLCV_COLUMNS})
        self._show(frame, f"{session.symbol} {session.timeframe} · {session.mode}")

    def invalidate(self) -> None:
        """Redraw at the next :meth:`update` (a manual label was added)."""
        self._drawn = (0, 0)

    def update(self, snap: dict, label: str) -> None:
        """Append a session snapshot's news when its newest candle or training steps changed."""
        key = (snap["candles"][-1][0] if snap["candles"] else 0,
               self.session.counts["training_steps"])
        if snap["candles"] and key != self._drawn:
            self._draw(snap, label)
            self._drawn = key

    def marks(self) -> pl.DataFrame:
        """Manual labels and training events of the session, by window-end candle."""
        from workbench.live.session import MANUAL_STEP

        rows = [(ts, "manual" if r.operation == MANUAL_STEP else r.operation,
                 action if r.operation == MANUAL_STEP else r.operation)
                for r in list(self.session.training_log)[-5 * self.candles:]
                for ts, action in zip(r.frame_end_ts, r.actions)]
        return pl.DataFrame(rows, schema={"ts": pl.Int64, "kind": pl.String, "text": pl.String},
                            orient="row")

    def _draw(self, snap: dict, label: str) -> None:
        from workbench.features.pivots import pivots_from_frame

        with self._changing():
            self.chart.append(snap["candles"], snap["signals"], snap["ghost"])
            frame = self.chart.frame()
            shown = self.marks().join(frame.select("ts", "high", "low"), on="ts", how="inner")
            pad = float(frame["high"].max() - frame["low"].min()) * 0.04
            manual = shown.filter(pl.col("kind") == "manual")
            events = shown.filter(pl.col("kind") != "manual")
            self._fill(self._slots[0], manual["ts"], manual["high"].to_numpy() + pad,
                       manual["text"].to_list())
            self._fill(self._slots[1], events["ts"], events["low"].to_numpy() - pad)
            pivots = None
            if self.session.mode is TrainingMode.PIVOTS_ONLY:  # confirmed by now: no lookahead
                pivots = pivots_from_frame(frame, snap["timeframe"])
                self._slots[2].update(marker_symbol=np.where(
                    pivots["pivot_type"].str.ends_with("H").to_numpy(), "triangle-down-open",
                    "triangle-up-open"))
                self._fill(self._slots[2], pivots["ts"], pivots["price"].to_numpy())
            self.widget.layout.title.text = (f"{snap['symbol']} {snap['timeframe']} · "
                                             f"{snap['mode']} · {label}")
            if not self._paper and snap.get("equity"):
                ts, equity = zip(*snap["equity"])
                self.chart.show_equity(ts, equity, name="session equity")
        n_pred = len([p for p in snap["predictions"] if p["ts"] >= frame["ts"][0]])
        self.caption.value = (
            f"live chart: {frame.height} candles, {n_pred} predictions, ghost candle "
            f"{'shown' if snap['ghost'] else 'pending'}, {manual.height} manual labels, "
            f"{events.height} training events"
            + (f", {pivots.height} pivots" if pivots is not None else ""))

    def show_equity(self, ts, equity) -> None:
        """Draw the paper equity curve (epoch-ms ``ts``) for the candles shown (in place of the
        session's own equity from then on)."""
        self._paper = True
        with self._changing():
            self.chart.show_equity(ts, equity, name="paper equity")

    # -- before a session, after a backtest ------------------------------------------------------
    def draw_range(self, store, symbol: str, timeframe: str, candles: int) -> None:
        """Draw the last candles of the picked range, the last ``candles`` of the series (the
        chart before anything runs); the caption says why when there are none."""
        from workbench.errors import WorkbenchError
        from workbench.ui.prepare import pick_range

        try:
            first, last = pick_range(store, symbol, timeframe, candles=candles)
        except WorkbenchError as exc:
            self.caption.value = str(exc)
            return
        frame = store.read_ohlcv(symbol, timeframe, first, last)
        self._show(frame.tail(self.candles), f"{symbol} {timeframe}")
        self.caption.value = f"visible range: {symbol} {timeframe}, {frame.height} candles"
        self.settle()

    def draw_backtest(self, store, config, result, label: str) -> None:
        """Draw a backtest's last candles with its signals and its trades (entry→exit)."""
        frame = store.read_ohlcv(config.symbol, config.timeframe, config.start, config.end)
        shown = frame.tail(self.candles)
        trades = result.trades.filter(pl.col("entry_ts") >= shown["ts"][0])
        with self._changing():  # one message: candles, signals and trades
            self._show(shown, f"backtest of {label}: signals and trades",
                       signals=result.equity.select("ts", "signal"))
            for slot, trace in zip(self._slots[3:], plots.trade_traces(
                    trades, int(shown["ts"][-1]), float(shown["close"][-1]))):
                slot.update(x=trace.x, y=trace.y, text=trace.text, name=trace.name)
            self.chart.show_equity(result.equity["ts"].to_numpy(),
                                   result.equity["equity"].to_numpy(), name="backtest equity")
        self.caption.value = (f"backtest {result.backtest_id} of {label}: last "
                              f"{shown.height} candles, {trades.height} trades")
        self.settle()

    def settle(self) -> None:
        """Save what is drawn as the state a new view starts from (after a range, a backtest or
        a session: not per live update, which goes to the views as a delta); nothing to do
        when the figure has not changed since (a whole ``to_dict`` of it saved)."""
        if not self._settled:
            save_state(self.widget)
            self._settled = True


# -- the status line -----------------------------------------------------------------------------
def lock_status(handle) -> str:
    """``free``, or ``held by OPERATION of SESSION`` with how many wait for it."""
    lock = handle.lock if handle is not None else None
    holder = lock.holder if lock is not None else None
    if holder is None:
        return "free"
    waiting = f", {lock.waiting} waiting" if lock.waiting else ""
    return f"held by {holder.operation} of {holder.session}{waiting}"


def session_status(session, snap: dict, alive: bool) -> tuple[list[str], float | None]:
    """The status parts of a live session and the fraction of its candles replayed (None for
    a session that follows an exchange until stopped)."""
    pnl = session.pnl.summary()
    feed, done = session.feed, session.counts["candles"]
    total = feed.end_index - feed.start_index if hasattr(feed, "end_index") else None
    # a replay run in the caller's thread reports "idle" until it ends; ours runs in "live"
    state = "running" if alive and snap["state"] == "idle" else snap["state"]
    return [f"<b>session</b>: {snap['mode']} ({state})",
            f"<b>candle</b>: {done}/{total}" if total is not None
            else f"<b>candle</b>: {done} (until Stop)",
            f"<b>predictions</b>: {session.counts['predictions']}",
            f"<b>training steps</b>: {session.counts['training_steps']}",
            f"<b>PnL</b>: equity {pnl['equity']:.2f} ({pnl['return_pct']:+.3f}%)",
            f"<b>model</b>: v{snap['model_version']}"], \
        None if total is None else done / max(total, 1)


def training_status(run_handle) -> tuple[list[str], float]:
    """The status part of a "Train Model" run (epochs finished / planned) and that fraction."""
    progress = run_handle.progress()
    total = max(1, progress.get("num_epochs") or 1)
    epoch = progress.get("epoch")
    done = 0 if epoch is None else min(total, epoch + 1)  # epochs finished so far
    return [f"<b>training</b>: run {run_handle.run_id} epoch {done}/{total}"], done / total


def stats_table(stats, backtest_id: str, label: str) -> str:
    """A backtest's statistics block as an HTML table captioned with the model it ran:
    backtesting.py's names, values with units, and how the annual figures were annualised."""
    from html import escape

    from workbench.backtest.stats import format_stats

    rows = "".join(f"<tr><td>{escape(k)}</td><td data-key='{escape(k)}'>{escape(v)}</td></tr>"
                   for k, v in format_stats(stats))
    return (f"<table class='wb-backtest-table'><caption>backtest {backtest_id} of "
            f"{escape(label)}</caption><tr><th>statistic</th><th>value</th></tr>{rows}</table>"
            f"<p class='wb-annualisation'>{escape(stats.annualisation.describe())}</p>")
