"""The control panel's chart: the picked range, a live session as it runs, a backtest's result.

:class:`LiveChart` owns the chart ``Image`` and its caption. While a session runs it draws the
stored candles up to the session's newest close (full from the first candle on), the predicted
signals, the ghost candle, and what the session learnt from: manual labels (written above their
candle), training events (ticks below the window-end candle of each trained frame) and, in pivot
mode, the pivots confirmed by then (detected on the drawn candles only: nothing after "now").
It redraws only when the newest candle or the number of training steps changed.
"""
from __future__ import annotations

import io

import ipywidgets as w
import polars as pl

from workbench.live.modes import TrainingMode
from workbench.ui import charts


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


class LiveChart:
    """The panel's chart widget and caption (trait sets only: safe from any thread)."""

    def __init__(self, candles: int):
        self.candles = candles
        self.image = w.Image(format="png", layout=w.Layout(width="100%")).add_class("wb-chart")
        self.caption = w.HTML().add_class("wb-chart-caption")
        self.session = None
        self._frame: pl.DataFrame | None = None
        self._drawn = (0, 0)

    def start(self, store, session, last_ts: int, range_candles: int) -> None:
        """Follow ``session``: load the stored candles the chart shows as it advances."""
        self.session, self._drawn = session, (0, 0)
        self._frame = store.read_ohlcv(session.symbol, session.timeframe, None, last_ts).tail(
            range_candles + self.candles)

    def invalidate(self) -> None:
        """Redraw at the next :meth:`update` (a manual label was added)."""
        self._drawn = (0, 0)

    def update(self, snap: dict, label: str) -> None:
        """Redraw from a session snapshot when its newest candle or training steps changed."""
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

        now = snap["candles"][-1][0]
        frame = self._frame.filter(pl.col("ts") <= now).tail(self.candles)
        preds = pl.DataFrame(snap["signals"], schema=["ts", "signal"], orient="row")
        ghost = dict(zip(["ts", "open", "high", "low", "close"], snap["ghost"])) \
            if snap["ghost"] else None
        pivots = None
        if self.session.mode is TrainingMode.PIVOTS_ONLY:  # confirmed by now: no lookahead
            pivots = pivots_from_frame(frame, snap["timeframe"])
        marks = self.marks()
        self.image.value = _png(charts.plot_candles_with_signals(
            frame, predictions=preds, ghost=ghost, pivots=pivots, marks=marks,
            title=f"{snap['symbol']} {snap['timeframe']} · {snap['mode']} · {label}"))
        shown = marks.filter(pl.col("ts") >= frame["ts"][0])
        n_pred = len([p for p in snap["predictions"] if p["ts"] >= frame["ts"][0]])
        n_manual = shown.filter(pl.col("kind") == "manual").height
        self.caption.value = (
            f"live chart: {frame.height} candles, {n_pred} predictions, ghost candle "
            f"{'shown' if ghost else 'pending'}, {n_manual} manual labels, "
            f"{shown.height - n_manual} training events"
            + (f", {pivots.height} pivots" if pivots is not None else ""))

    def draw_range(self, store, symbol: str, timeframe: str, first: int, last: int) -> None:
        """Draw the picked range's last candles (the chart before anything runs)."""
        frame = store.read_ohlcv(symbol, timeframe, first, last)
        self.image.value = _png(charts.plot_candles_with_signals(
            frame.tail(self.candles), title=f"{symbol} {timeframe}"))
        self.caption.value = f"visible range: {symbol} {timeframe}, {frame.height} candles"

    def draw_backtest(self, store, config, result, label: str) -> None:
        """Draw a backtest's last candles with its signals and trades."""
        frame = store.read_ohlcv(config.symbol, config.timeframe, config.start, config.end)
        shown = frame.tail(self.candles)
        self.image.value = _png(charts.plot_candles_with_signals(
            shown, trades=result.trades.filter(pl.col("entry_ts") >= shown["ts"][0]),
            predictions=result.equity.select("ts", "signal"),
            title=f"backtest of {label}: signals and trades"))
        self.caption.value = (f"backtest {result.backtest_id} of {label}: last "
                              f"{shown.height} candles")


# -- the status line -----------------------------------------------------------------------------
def lock_status(handle) -> str:
    """``free``, or ``held by OPERATION of SESSION`` with how many wait for it."""
    lock = handle.lock if handle is not None else None
    holder = lock.holder if lock is not None else None
    if holder is None:
        return "free"
    waiting = f", {lock.waiting} waiting" if lock.waiting else ""
    return f"held by {holder.operation} of {holder.session}{waiting}"


def session_status(session, snap: dict, alive: bool) -> tuple[list[str], float]:
    """The status parts of a live session and the fraction of its candles replayed."""
    pnl = session.pnl.summary()
    done, total = session.counts["candles"], session.feed.end_index - session.feed.start_index
    # a replay run in the caller's thread reports "idle" until it ends; ours runs in "live"
    state = "running" if alive and snap["state"] == "idle" else snap["state"]
    return [f"<b>session</b>: {snap['mode']} ({state})",
            f"<b>candle</b>: {done}/{total}",
            f"<b>predictions</b>: {session.counts['predictions']}",
            f"<b>training steps</b>: {session.counts['training_steps']}",
            f"<b>PnL</b>: equity {pnl['equity']:.2f} ({pnl['return_pct']:+.3f}%)",
            f"<b>model</b>: v{snap['model_version']}"], done / max(total, 1)


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
