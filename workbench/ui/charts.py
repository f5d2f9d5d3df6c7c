"""Static plot functions: each takes data and returns a matplotlib ``Figure`` (or writes a PNG).

Interactive charts (the control panel's live chart, report pages) are plotly, in
:mod:`workbench.ui.plots` and :mod:`workbench.ui.live_chart`; matplotlib stays for static
exports such as ``overview.png`` and the training curves of notebook 02.

The functions build figures with :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state),
so they are safe under the Agg backend, in worker threads, in papermill runs and in Voila. A
caller shows a figure in a notebook by leaving it as the cell's value, or writes it with
``fig.savefig(path)``.

Each plot function is self-contained; shared helpers are the private ``_``-prefixed ones below.
Candles are drawn with plain matplotlib (wick lines plus body bars on a date axis) rather than
mplfinance, because pivot markers and confirmation lines sit at arbitrary times, including
between the candles of a resampled view.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from workbench.errors import ParameterError

_MS_PER_DAY = 86_400_000.0
_UP, _DOWN = "#26a69a", "#ef5350"
#: marker size and colour per pivot level (levels above 3 reuse the last style)
_LEVEL_STYLE = {1: (28, "#7e57c2"), 2: (70, "#fb8c00"), 3: (140, "#1565c0")}


def _x(ts_ms) -> np.ndarray:
    """Epoch-ms timestamps as matplotlib date numbers (days since 1970-01-01)."""
    return np.asarray(ts_ms, dtype=np.float64) / _MS_PER_DAY


def _candle_width_days(ts: np.ndarray) -> float:
    step = float(np.median(np.diff(ts))) if ts.shape[0] > 1 else 60_000.0
    return 0.7 * step / _MS_PER_DAY


def _draw_candles(ax, frame: pl.DataFrame) -> None:
    """Draw OHLC candles of ``frame`` (ts, open, high, low, close) on a date axis."""
    ts = frame["ts"].to_numpy()
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    x = _x(ts)
    colours = np.where(c >= o, _UP, _DOWN)
    ax.vlines(x, lo, h, colors=colours, linewidth=0.8, zorder=2)
    body = np.maximum(np.abs(c - o), (h.max() - lo.min()) * 1e-4)  # doji stay visible
    ax.bar(x, body, bottom=np.minimum(o, c), width=_candle_width_days(ts), color=colours,
           edgecolor=colours, linewidth=0.4, zorder=3)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_xlim(x[0] - _candle_width_days(ts), x[-1] + _candle_width_days(ts))
    ax.grid(True, color="#e0e0e0", linewidth=0.6, zorder=0)


def _draw_pivots(ax, pivots: pl.DataFrame, offset: float) -> list:
    """Mark pivots at their pivot time and draw a line to their confirmation; return handles."""
    handles = []
    for level in sorted(set(pivots["level"].to_list())):
        size, colour = _LEVEL_STYLE.get(level, _LEVEL_STYLE[3])
        for kind, marker, sign in (("H", "v", 1.0), ("L", "^", -1.0)):
            sel = pivots.filter(pl.col("pivot_type") == f"L{level}{kind}")
            if sel.height == 0:
                continue
            x0, x1 = _x(sel["ts"].to_numpy()), _x(sel["confirmed_ts"].to_numpy())
            price = sel["price"].to_numpy()
            # confirmation: a thin line at the pivot price from pivot time to confirmed_ts
            ax.hlines(price, x0, x1, colors=colour, linewidth=0.6 + 0.3 * level,
                      linestyles=(0, (3, 2)), alpha=0.8, zorder=4)
            ax.scatter(x1, price, marker="|", s=size * 0.8, color=colour, zorder=5)
            ax.scatter(x0, price + sign * offset * level, marker=marker, s=size, color=colour,
                       edgecolors="black", linewidths=0.4, zorder=6)
            handles.append(Line2D([], [], linestyle="none", marker=marker, color=colour,
                                  markeredgecolor="black", markersize=np.sqrt(size),
                                  label=f"L{level}{kind} ({sel.height})"))
    handles.append(Line2D([], [], color="grey", linestyle=(0, (3, 2)), marker="|",
                          label="pivot → confirmed_ts"))
    return handles


def plot_candles_with_pivots(frame: pl.DataFrame, pivots: pl.DataFrame, title: str = "",
                             *, figsize: tuple[float, float] = (16, 8)) -> Figure:
    """Plot candles with pivots marked at their pivot time and their confirmation time shown.

    Highs are marked above the candle (``v``), lows below (``^``); marker size and colour grow
    with the level. A dashed line at the pivot price runs from the pivot candle to
    ``confirmed_ts`` and ends in a tick: the pivot is usable only from there on.

    Parameters
    ----------
    frame : candles with ts (epoch ms), open, high, low, close.
    pivots : frame with ts, confirmed_ts, price, pivot_type, level (as from
        :func:`workbench.features.pivots.detect_pivots`); may be empty.
    title : figure title.
    figsize : figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ParameterError
        When ``frame`` has no rows.
    """
    if frame.height == 0:
        raise ParameterError("plot_candles_with_pivots needs at least one candle")
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    _draw_candles(ax, frame)
    span = float(frame["high"].max() - frame["low"].min()) or 1.0
    offset = span * 0.012  # markers sit this far (times the level) beyond the candle
    handles = _draw_pivots(ax, pivots, offset) if pivots.height else []
    top_level = int(pivots["level"].max()) if pivots.height else 0
    lo, hi = float(frame["low"].min()), float(frame["high"].max())
    margin = span * 0.04 + offset * top_level
    ax.set_ylim(lo - margin, hi + margin)
    ax.set_ylabel("price")
    ax.set_title(title)
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=9, ncols=len(handles) // 2 + 1,
                  framealpha=0.9)
    return fig


def overview_png(store_or_frame, path: str | Path, *, symbol: str = "ETH/USDT",
                 timeframe: str = "1m", view_timeframe: str = "15m", days: float = 3.0,
                 history_days: float = 21.0, strength: int = 2, levels: int = 3) -> Path:
    """Write the overview chart: the last ``days`` of a series with L1..L``levels`` pivots.

    The 1m candles are resampled to ``view_timeframe`` so that candles stay readable; pivots are
    detected on the resampled series over ``history_days`` (so higher levels have history) and
    the last ``days`` are shown.

    Parameters
    ----------
    store_or_frame : a :class:`workbench.data.store.Store` holding ``(symbol, timeframe)``, or a
        candle frame of that timeframe.
    path : PNG file to write (parent folders are created).

    Returns
    -------
    Path of the written PNG.

    Raises
    ------
    NotFoundError
        When the store has no candles for ``(symbol, timeframe)``.
    """
    from workbench.data.resample import resample_ohlcv
    from workbench.errors import NotFoundError
    from workbench.features.pivots import pivots_from_frame

    candles = _recent_candles(store_or_frame, symbol, timeframe, history_days)
    if candles.height == 0:
        raise NotFoundError(f"no stored candles for {symbol} {timeframe}; ingest them first")
    view = (resample_ohlcv(candles, timeframe, view_timeframe)
            if view_timeframe != timeframe else candles)
    pivots = pivots_from_frame(view, view_timeframe, strength=strength, levels=levels)
    start = int(view["ts"][-1] - days * _MS_PER_DAY)
    shown = view.filter(pl.col("ts") >= start)
    fig = plot_candles_with_pivots(
        shown, pivots.filter(pl.col("ts") >= start),
        title=(f"{symbol} {view_timeframe} (resampled from {timeframe}), last {days:g} days · "
               f"pivots L1–L{levels} (strength {strength}) at pivot time, dashed to confirmation"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _recent_candles(store_or_frame, symbol: str, timeframe: str, days: float) -> pl.DataFrame:
    if isinstance(store_or_frame, pl.DataFrame):
        frame = store_or_frame.sort("ts")
    else:
        last = store_or_frame.last_ts(symbol, timeframe)
        if last is None:
            return pl.DataFrame()
        frame = store_or_frame.read_ohlcv(symbol, timeframe, start=int(last - days * _MS_PER_DAY))
    if frame.height == 0:
        return frame
    return frame.filter(pl.col("ts") >= frame["ts"][-1] - days * _MS_PER_DAY)


# -- notebooks: training curves ----------------------------------------------------------------
def plot_metric_curves(epochs: list[dict], metrics=("loss", "acc", "rmse"),
                       title: str = "", *, figsize=(14, 3.5)) -> Figure:
    """Plot train/val curves per epoch, one panel per metric (``train_<m>`` and ``val_<m>``).

    ``epochs`` is the ``epochs`` list of a run's ``metrics.json``; missing metrics are skipped.
    """
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = [e.get("epoch", i) for i, e in enumerate(epochs)]
    for ax, metric in zip(axes, metrics):
        for split, style in (("train", "-o"), ("val", "--s")):
            y = [e.get(f"{split}_{metric}", np.nan) for e in epochs]
            if epochs and not np.all(np.isnan(np.asarray(y, dtype=float))):
                ax.plot(x, y, style, markersize=3, label=f"{split}_{metric}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(True, color="#e0e0e0")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig
