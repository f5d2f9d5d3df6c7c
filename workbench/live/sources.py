"""Live data sources: where a session's candles come from, registered by name.

A source is a factory ``factory(store, symbol, timeframe, request) -> CandleFeed`` registered with
:func:`register_source`; a session opens the one named by ``SessionConfig.source`` through
:func:`open_feed`. Every source returns a :class:`~workbench.live.feed.CandleFeed`, so the
coordinator and the session see one emit path whatever the origin of the candles.

=========  ===========================================================================
``replay``  the stored candles of ``[start, end]`` replayed at ``speed``
            (:meth:`ReplayFeed.from_store <workbench.live.feed.ReplayFeed.from_store>`)
``push``    candles pushed by an external client after the stored ones, validated like
            ingestion and appended to the store
            (:meth:`PushFeed.from_store <workbench.live.feed.PushFeed.from_store>`)
``exchange`` an exchange's closed candles through ccxt, backfilled then followed
            (:func:`workbench.live.exchange_source.exchange_source`, docs/live_exchange.md)
=========  ===========================================================================

Adding a source, e.g. an exchange client, is one factory and one registration; the factory
usually builds a ``PushFeed`` and starts whatever pushes into it::

    def exchange_source(store, symbol, timeframe, request):
        feed = PushFeed.from_store(store, symbol, timeframe, history=request.history + 1,
                                   pivot_strength=request.pivot_strength,
                                   pivot_levels=request.pivot_levels)
        ...  # a client that calls feed.push(candle) for each closed candle
        return feed

    register_source("exchange", exchange_source)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from workbench.live.feed import CandleFeed, PushFeed, ReplayFeed
from workbench.registry import Registry


@dataclass(frozen=True)
class FeedRequest:
    """What a session asks of its source.

    ``start``/``end`` are inclusive epoch-ms open times (a replay's range; live sources ignore
    them); ``history`` is the number of stored candles (rows) the feed must hold before the first
    emitted one, so the first window is full; ``speed`` is the replay pace (``None``: maximum).
    """

    start: int | None = None
    end: int | None = None
    history: int = 0
    speed: float | None = None
    pivot_strength: int = 2
    pivot_levels: int = 3


SourceFactory = Callable[..., CandleFeed]
#: live data sources by name
SOURCES: Registry[SourceFactory] = Registry("live data source")


def register_source(name: str, factory: SourceFactory) -> SourceFactory:
    """Register ``factory(store, symbol, timeframe, request: FeedRequest) -> CandleFeed``."""
    return SOURCES.register(name, factory)


def open_feed(name: str, store, symbol: str, timeframe: str,
              request: FeedRequest | None = None) -> CandleFeed:
    """Build the feed of source ``name`` for one series.

    Raises
    ------
    UnknownNameError : (a ParameterError) naming the source and the registered ones; whatever
        the factory raises (NotFoundError for a replay range without candles).
    """
    return SOURCES.get(name)(store, symbol, timeframe, request or FeedRequest())


def _replay(store, symbol: str, timeframe: str, request: FeedRequest) -> ReplayFeed:
    return ReplayFeed.from_store(store, symbol, timeframe, request.start, request.end,
                                 history=request.history, speed=request.speed,
                                 pivot_strength=request.pivot_strength,
                                 pivot_levels=request.pivot_levels)


def _push(store, symbol: str, timeframe: str, request: FeedRequest) -> PushFeed:
    # the newest stored candle is the last history row: the first pushed one is the first emitted
    return PushFeed.from_store(store, symbol, timeframe, history=request.history + 1,
                               pivot_strength=request.pivot_strength,
                               pivot_levels=request.pivot_levels)


register_source("replay", _replay)
register_source("push", _push)


def _exchange(store, symbol: str, timeframe: str, request: FeedRequest):
    # imported on use: the exchange source pulls in ccxt only when a session asks for it
    from workbench.live.exchange_source import exchange_source

    return exchange_source(store, symbol, timeframe, request)


register_source("exchange", _exchange)
