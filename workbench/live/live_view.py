"""What the control panel needs to run and show a live session over history or an exchange.

The panel (issue 12) offers a source choice, *history replay* or *exchange*, and during a
session shows the open position, its unrealised PnL, the paper equity curve and, for an
exchange, the connection status. This module is that surface, free of widgets:

* :data:`SOURCES` and :func:`open_session` build a :class:`~workbench.live.session.LiveSession`
  for either source, with a :class:`~workbench.live.paper.PaperBroker` attached when ``paper``;
* :func:`live_view` is one thread-safe dict per refresh: the session's snapshot, the paper view
  (position, entry price, unrealised PnL, equity curve) and the source status (connected, last
  candle, lag, backfilled candles, reconnects);
* :func:`close_session` stops the session and flushes the paper rows.

Example::

    live = open_session(handle, store, "ETH/USDT", "1m", "none", source="exchange",
                        exchange="binance", url="http://127.0.0.1:8765", max_candles=500)
    live.session.start()            # background thread
    view = live_view(live)          # on every panel refresh
    close_session(live)
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import ParameterError

#: the panel's source choice: stored history, or an exchange through ccxt
SOURCES = ("replay", "exchange")


@dataclass
class LiveRun:
    """A session, its paper broker (or None), its feed and the source it follows."""

    session: object
    broker: object | None
    source: str = "replay"  # one of SOURCES: the one place that says what the feed is

    @property
    def feed(self):
        return self.session.feed


def open_session(handle, store, symbol: str, timeframe: str, mode, *, source: str = "replay",
                 start=None, end=None, speed=None, paper: bool = True, config=None,
                 **exchange_options) -> LiveRun:
    """Build a live session on ``source`` (see :data:`SOURCES`), not started yet.

    ``exchange_options`` are :class:`~workbench.live.exchange_source.ExchangeSourceConfig`
    fields (``exchange``, ``url``, ``until``, ``max_candles``, ...) for ``source="exchange"``.
    Raises ParameterError for an unknown source, or exchange options with a replay.
    """
    from workbench.live.paper import PaperBroker
    from workbench.live.session import LiveSession

    if source not in SOURCES:
        raise ParameterError(f"source {source!r} is not known; known sources: "
                             f"{', '.join(SOURCES)}")
    feed = None
    if source == "exchange" and (start is not None or end is not None):
        raise ParameterError("an exchange session follows new candles: bound it with until / "
                             "max_candles, not start / end")
    if source == "exchange":
        from workbench.live.exchange_source import exchange_feed

        exchange_options.setdefault("history", max(1000, handle.window))
        feed = exchange_feed(store, symbol, timeframe, **exchange_options)
    elif exchange_options:
        raise ParameterError(f"options {sorted(exchange_options)} apply to the exchange source "
                             "only")
    session = LiveSession(handle, store, symbol, timeframe, mode, start, end, speed,
                          config=config, feed=feed)
    return LiveRun(session, PaperBroker.attach(session) if paper else None, source)


def live_view(run: LiveRun) -> dict:
    """One refresh of the panel: ``session`` (snapshot), ``paper`` and ``source`` dicts.

    ``paper`` holds ``position, entry_price, mark_price, unrealised_pnl, cash, equity, fills,
    fees, open_order, equity_curve [(ts, equity)]`` (None without a broker); ``source`` the
    exchange status (None for a replay).
    """
    return {"session": run.session.snapshot(), **paper_and_source(run)}


def paper_and_source(run: LiveRun) -> dict:
    """The ``paper`` and ``source`` parts of :func:`live_view`, without the session snapshot
    (for a caller that took one already this refresh)."""
    return {"paper": run.broker.view() if run.broker is not None else None,
            "source": run.feed.status() if run.source == "exchange" else None}


def close_session(run: LiveRun, timeout: float | None = 30.0) -> dict:
    """Stop the session (after its current candle), flush the paper rows; return its stats."""
    stats = run.session.stop(timeout=timeout)
    if run.broker is not None:
        run.broker.close()
    return stats
