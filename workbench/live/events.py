"""The two events of the live path: a candle closed, a pivot was confirmed.

A feed (:mod:`workbench.live.feed`) emits, for every closed candle, first one
:class:`CandleCompletionEvent` and then the :class:`PivotEvent` s that this close confirms, in
timestamp order. The candle event also carries those pivot events (``event.pivots``): the feed's
pivot detector is the only one of a series, and whoever receives the candle knows what its close
confirmed without detecting pivots again. Both are small slots dataclasses: they carry values,
never arrays, so a subscriber may keep them.

Delivery is shared by every emitter of the live path (feed, coordinator, session update hooks):
:class:`Subscription` is the one handle type, :func:`dispatch` the one loop that calls
subscribers, and :class:`SubscriberErrors` the bookkeeping for the rule "an exception in one
subscriber is logged, counted and reported, and never stops the emitter or the other
subscribers".
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

_log = logging.getLogger("workbench.live")


@dataclass(slots=True)
class CandleCompletionEvent:
    """Emitted once when a candle has closed.

    Attributes
    ----------
    symbol, timeframe : the series.
    ts : open time of the closed candle (epoch ms); this is the candle's key everywhere.
    close_ts : its close time (epoch ms); the feed clock reads this value while the event is
        delivered, and nothing later than it is known yet.
    open, high, low, close, volume : the candle.
    index : the candle's row in the feed's :class:`~workbench.features.windows.SeriesArrays`.
    pivots : the :class:`PivotEvent` s this close confirms (lowest level first), ``()`` if none.
    """

    symbol: str
    timeframe: str
    ts: int
    close_ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    index: int
    pivots: tuple = ()

    @property
    def ohlcv(self) -> tuple[float, float, float, float, float]:
        """The candle as ``(open, high, low, close, volume)``."""
        return (self.open, self.high, self.low, self.close, self.volume)


@dataclass(slots=True)
class PivotEvent:
    """Emitted when the close of a candle confirms a pivot.

    Attributes
    ----------
    symbol, timeframe : the series.
    pivot_ts : open time of the pivot candle (epoch ms).
    confirmed_ts : close time of the candle whose close confirmed it; the label is revealed then.
    pivot_type : ``L{level}H`` or ``L{level}L``.
    level, price, strength : as in :class:`workbench.features.pivots.Pivot`.
    index : the confirming candle's row in the feed's series arrays.
    """

    symbol: str
    timeframe: str
    pivot_ts: int
    confirmed_ts: int
    pivot_type: str
    level: int
    price: float
    strength: int
    index: int

    @property
    def is_high(self) -> bool:
        """True for ``L{n}H`` pivots."""
        return self.pivot_type.endswith("H")


@dataclass(slots=True, eq=False)
class Subscription:
    """Handle of one subscriber of an emitter; :meth:`unsubscribe` stops delivery.

    Attributes
    ----------
    target : the subscriber: a callable for feed and update subscriptions, an object with
        ``on_*`` hooks for coordinator subscriptions (see :func:`dispatch`).
    kind : what it receives (``"candle"``, ``"pivot"``, ``"frames"``, ``"update"``).
    pivot_types : pivot types delivered (``None`` = every type).
    candles, pivots : whether candle and pivot deliveries reach it (coordinator subscriptions
        may switch either off).
    """

    target: object
    kind: str
    pivot_types: frozenset | None = None
    candles: bool = True
    pivots: bool = True
    active: bool = True
    _on_remove: Callable | None = None

    @property
    def callback(self):
        """The subscribed callable (feed subscriptions)."""
        return self.target

    @property
    def subscriber(self):
        """The subscribed object (coordinator subscriptions)."""
        return self.target

    def wants(self, pivot_type: str) -> bool:
        """True when pivots of ``pivot_type`` are delivered to this subscription."""
        return self.pivots and (self.pivot_types is None or pivot_type in self.pivot_types)

    def unsubscribe(self) -> None:
        """Stop delivering events to this subscriber (idempotent)."""
        if self.active:
            self.active = False
            if self._on_remove is not None:
                self._on_remove(self)


def pivot_filter(pivot_types: Iterable[str] | None) -> frozenset | None:
    """Return the frozen set of ``pivot_types`` (``None`` stays ``None``: every type)."""
    return None if pivot_types is None else frozenset(pivot_types)


def dispatch(subscriptions, hook: str | None, args: tuple, errors: "SubscriberErrors",
             event_ts: int) -> None:
    """Call every subscription's target with ``args``, isolating each one's failures.

    ``hook`` ``None`` calls the target itself; otherwise the target's method named ``hook`` is
    looked up (Lightning's dispatch by hook name) and a target without it is skipped, so a
    subscriber implements only the hooks it needs. An exception is recorded in ``errors`` under
    ``event_ts`` and the next subscription is called: isolation is the contract.
    """
    for sub in subscriptions:
        target = sub.target
        fn = target if hook is None else getattr(target, hook, None)
        if fn is None:
            continue
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - isolation is the contract
            errors.record(describe(target), event_ts, exc)


@dataclass(slots=True)
class SubscriberError:
    """One exception raised by a subscriber: who, at which event ts, and what."""

    subscriber: str
    event_ts: int
    error: str


class SubscriberErrors:
    """Count, log and keep the most recent subscriber exceptions.

    Parameters
    ----------
    owner : name used in log messages (``"feed ETH/USDT 1m"``).
    keep : how many recent errors :meth:`report` returns.
    log_first : tracebacks logged per subscriber; later errors are only counted, so a subscriber
        that fails on every candle cannot flood the log.
    """

    def __init__(self, owner: str, keep: int = 100, log_first: int = 3):
        self.owner, self.log_first = owner, log_first
        self.total = 0
        self.by_subscriber: dict[str, int] = {}
        self.recent: deque[SubscriberError] = deque(maxlen=keep)

    def record(self, subscriber: str, event_ts: int, exc: BaseException) -> None:
        """Record one exception raised by ``subscriber`` while handling the event at ``event_ts``."""
        self.total += 1
        n = self.by_subscriber.get(subscriber, 0) + 1
        self.by_subscriber[subscriber] = n
        self.recent.append(SubscriberError(subscriber, int(event_ts), repr(exc)))
        if n <= self.log_first:
            _log.error("%s: subscriber %s raised at event ts %s (%d so far)", self.owner,
                       subscriber, event_ts, n, exc_info=exc)

    def report(self) -> dict:
        """Return ``{"total", "by_subscriber", "recent"}`` (recent as plain dicts)."""
        return {"total": self.total, "by_subscriber": dict(self.by_subscriber),
                "recent": [{"subscriber": e.subscriber, "event_ts": e.event_ts, "error": e.error}
                           for e in self.recent]}


def describe(callback) -> str:
    """Return a readable name for a callback or subscriber object (for error reports)."""
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    if owner is not None and not isinstance(owner, type):
        return f"{type(owner).__qualname__}.{getattr(callback, '__name__', name)}"
    return name
