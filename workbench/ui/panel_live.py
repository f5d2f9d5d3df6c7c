"""The control panel's live session: where its candles come from, paper trading, what it shows.

The panel offers the sources of :data:`workbench.live.live_view.SOURCES`: *history replay* (the
picked range of stored candles, at the picked speed) or *exchange* (closed candles of a ccxt
exchange, backfilled from the last stored one and followed until Stop; an exchange id and an
optional base URL, e.g. a local ``workbench exchange-sim``; market data needs no API key), and a
*paper trading* toggle. :class:`PanelLive` opens the session through
:func:`~workbench.live.live_view.open_session`, the path ``workbench live`` takes, runs it in the
panel's ``live`` job and renders each :func:`~workbench.live.live_view.live_view` refresh:

* for an exchange, its status: connected, last candle, lag behind the exchange clock,
  backfilled candles, reconnects (and the last network error, if any);
* with paper trading, the open position, entry and mark price, unrealised PnL, equity and fills,
  and the paper equity curve in the equity pane of the panel's chart (its time axis, in place).

When a session ends its paper rows are flushed (:func:`~workbench.live.live_view.close_session`)
and the paper view is read back from DuckDB (:func:`~workbench.live.paper.paper_view`), so what
the panel shows last is what the store holds.

Bad widget input (an empty or unknown exchange id, a URL that is not http(s)) raises
:class:`~workbench.errors.ParameterError` / ``NotFoundError`` naming the field before anything
starts; the panel shows the message, never a traceback.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import timedelta

import ipywidgets as w

from workbench.errors import ParameterError, WorkbenchError
from workbench.live.live_view import SOURCES
from workbench.live.modes import TrainingMode
from workbench.ui.panel_log import PredictionSummary
from workbench.units import human_duration, human_number, human_time

_LABELS = {"replay": "history replay", "exchange": "exchange"}
CURVE_POINTS = 2000  # paper equity points drawn (a PaperBroker keeps as many in memory)
_ERROR = "<div style='color:#b71c1c'>&#9888; {}</div>"


@dataclass(frozen=True)
class SourceChoice:
    """A validated source choice: ``source`` (see SOURCES), the exchange and URL, paper on/off."""

    source: str = "replay"
    exchange: str | None = None
    url: str | None = None
    paper: bool = False

    @property
    def options(self) -> dict:
        """The exchange options of ``open_session`` ({} for a replay)."""
        return {} if self.source != "exchange" else {"exchange": self.exchange, "url": self.url}


def check_exchange(exchange: str, url: str) -> tuple[str, str | None]:
    """Return the stripped exchange id and URL (None when empty) of the panel's fields.

    Raises
    ------
    ParameterError : an empty exchange id, or a URL that is not ``http(s)://host[:port][/path]``
        (:func:`~workbench.live.exchange_source.check_exchange_fields`, as on the command line).
    NotFoundError : an exchange id ccxt does not know.
    """
    from workbench.live.exchange_client import rest_client
    from workbench.live.exchange_source import check_exchange_fields

    exchange, url = check_exchange_fields(exchange, url)
    rest_client(exchange)  # raises NotFoundError naming an id ccxt does not know
    return exchange, url


class SourceControls:
    """The source choice, exchange id and URL fields and the paper toggle (one row)."""

    def __init__(self, source: str = "replay", exchange: str = "binance", url: str = "",
                 paper: bool = False):
        self.source = w.ToggleButtons(options=[(_LABELS[s], s) for s in SOURCES],
                                      value=source if source in SOURCES else SOURCES[0],
                                      description="source").add_class("wb-source")
        self.exchange = w.Text(value=exchange, description="exchange",
                               placeholder="ccxt id, e.g. binance").add_class("wb-exchange")
        self.url = w.Text(value=url, description="URL", layout=w.Layout(width="320px"),
                          placeholder="optional, e.g. http://127.0.0.1:8765").add_class("wb-url")
        self.paper = w.Checkbox(value=paper, indent=False,
                                description="paper trading").add_class("wb-paper-toggle")
        self.message = w.HTML().add_class("wb-source-message")
        self.fields = w.HBox([self.exchange, self.url])
        self.box = w.VBox([w.HBox([self.source, self.paper]), self.fields, self.message])
        self.source.observe(lambda _c: self._show_fields(), names="value")
        self._show_fields()

    @property
    def pickers(self) -> tuple:
        """The widgets disabled while work runs."""
        return self.source, self.exchange, self.url, self.paper

    @property
    def exchange_chosen(self) -> bool:
        return self.source.value == "exchange"

    def _show_fields(self) -> None:
        self.fields.layout.display = None if self.exchange_chosen else "none"

    def choice(self) -> SourceChoice:
        """The validated choice; the message line shows why when it is not valid (raises)."""
        try:
            exchange, url = (check_exchange(self.exchange.value, self.url.value)
                             if self.exchange_chosen else (None, None))
        except WorkbenchError as exc:
            self.message.value = _ERROR.format(html.escape(str(exc)))
            raise
        self.message.value = ""
        return SourceChoice(self.source.value, exchange, url, self.paper.value)


def _cells(kind: str, pairs) -> str:
    """``name value`` pairs as one line of cells, each value under ``data-key`` (for tests)."""
    cells = " &nbsp; ".join(f"{html.escape(k)} <b data-key='{html.escape(k)}'>"
                            f"{html.escape(v)}</b>" for k, v in pairs)
    return f"<div class='wb-{kind}-view'><b>{kind}</b>: {cells}</div>"


def source_cells(status: dict) -> str:
    """The exchange status as HTML cells: connected, last candle, lag, backfilled, reconnects."""
    lag = status["lag_ms"]
    pairs = [("exchange", f"{status['exchange']} via {status['transport'] or '…'}"),
             ("connected", "yes" if status["connected"] else "no"),
             ("last candle", human_time(status["last_candle_ts"])),
             ("lag", "–" if lag is None else human_duration(timedelta(milliseconds=lag))),
             ("backfilled", human_number(status["backfilled"])),
             ("reconnects", human_number(status["reconnects"]))]
    if status.get("last_error"):
        pairs.append(("last error", status["last_error"]))
    return _cells("exchange", pairs)


def paper_cells(position: dict) -> str:
    """The paper position as HTML cells (a ``PaperBroker.view`` or a ``paper_positions`` row)."""
    return _cells("paper", [
        ("position", human_number(position["position"], digits=4)),
        ("entry", human_number(position["entry_price"])),
        ("mark", human_number(position["mark_price"])),
        ("unrealised PnL", human_number(position["unrealised_pnl"])),
        ("equity", human_number(position["equity"])), ("fills", str(position["fills"]))])


class PanelLive:
    """The panel's live session on the chosen source, and its exchange and paper views.

    Parameters
    ----------
    store : the panel's Store; keep : recent candles the session keeps for the chart.
    chart : the panel's chart (its ``show_equity(ts, equity)`` draws the paper equity).
    source : the initial choice (:class:`SourceControls`' parameters).
    """

    def __init__(self, store, keep: int, chart, **source):
        self.store, self.keep, self.chart = store, keep, chart
        self.controls = SourceControls(**source)
        self.view = w.HTML().add_class("wb-live-view")
        self.run = self.summary = None
        self._source = ""  # the exchange status cells last shown
        self._curve_key = None  # (points, last point) of the paper equity curve last drawn

    @property
    def session(self):
        return self.run.session if self.run is not None else None

    def open(self, handle, symbol: str, timeframe: str, mode, first: int, last: int,
             speed: str):
        """Open (not start) a session in ``mode`` on the chosen source; return it.

        A replay covers ``[first, last]`` at ``speed``; an exchange session follows new candles
        until stopped. Raises a WorkbenchError (shown by the controls) for bad source input.
        """
        from workbench.live.live_view import open_session
        from workbench.live.session import SessionConfig

        choice = self.controls.choice()
        span = {} if choice.source == "exchange" else {"start": first, "end": last,
                                                      "speed": speed}
        self.run = open_session(handle, self.store, symbol, timeframe, mode,
                                source=choice.source, paper=choice.paper,
                                config=SessionConfig(ledger=True, keep=self.keep),
                                **span, **choice.options)
        self.summary = PredictionSummary()
        self._curve_key = None
        self.session.add_update_hook(self.summary)
        if mode is TrainingMode.MANUAL:
            self.session.pause()
        self.view.value = ""
        return self.session

    def describe(self, speed: str) -> str:
        """Where the session's candles come from (and whether it paper-trades), for the log."""
        feed = self.session.feed
        if self.run.source != "exchange":
            text = f"history replay of {feed.end_index - feed.start_index} candles at {speed}"
        else:
            text = (f"exchange {feed.cfg.exchange}" + (f" at {feed.cfg.url}" if feed.cfg.url
                                                       else "") + " until Stop")
        return (text + (", paper trading" if self.run.broker is not None else "")
                + (" (paused: Step or Resume)" if self.session.mode is TrainingMode.MANUAL
                   else ""))

    def drain(self, log) -> None:
        """Write the summary lines buffered since the last call to ``log``."""
        for line in self.summary.drain() if self.summary is not None else ():
            log(line)

    def run_to_end(self) -> dict:
        """Run the session here (the panel's ``live`` job); flush and show the paper rows."""
        from workbench.live.live_view import close_session

        try:
            self.session.run()
        finally:
            stats = close_session(self.run)
            self.show()
            if self.run.broker is not None:
                self.show_stored()
        return stats

    def show(self) -> None:
        """Refresh the exchange and paper views from the running session (any thread); the
        paper equity curve is redrawn only when it changed."""
        from workbench.live.live_view import paper_and_source

        view = paper_and_source(self.run)
        self._source = source_cells(view["source"]) if view["source"] else ""
        paper = view["paper"]
        if paper is not None:
            curve = paper["equity_curve"]
            key = (len(curve), curve[-1] if curve else None)
            if key != self._curve_key:
                self.chart.show_equity([t for t, _ in curve], [e for _, e in curve])
                self._curve_key = key
        self.view.value = self._source + (paper_cells(paper) if paper is not None else "")

    def show_stored(self) -> None:
        """Show the paper position and equity curve as DuckDB holds them (after the session)."""
        from workbench.live.paper import paper_view

        stored = paper_view(self.store, self.session.session_id)
        position = stored["position"]
        if position is not None:
            self.view.value = self._source + paper_cells(position)
        equity = stored["equity"].tail(CURVE_POINTS)
        self.chart.show_equity(equity["ts"].to_numpy(), equity["equity"].to_numpy())

    def emitted_range(self) -> tuple[int | None, int | None]:
        """Open times of the first and last candle the session saw (None, None before any)."""
        feed = self.session.feed
        n = feed.candles_emitted
        if n <= 0:
            return None, None
        ts = self.session.series.ts
        return int(ts[feed.last_index + 1 - n]), int(ts[feed.last_index])
