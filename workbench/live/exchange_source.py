"""The exchange source of the live path: closed candles from an exchange through ccxt (issue 15).

:class:`ExchangeFeed` is a :class:`~workbench.live.feed.PushFeed` that fetches its own candles,
so a session follows an exchange exactly as it replays history: the same validation, store
append and emit path. ``run()`` (the session's thread) does

1. **backfill**: from the candle after the last stored one (or ``since``, or the last
   ``history`` candles when the store holds none) up to the exchange clock, by paginated REST
   ``fetch_ohlcv`` (``page`` candles a request);
2. **follow**: ccxt.pro's ``watch_ohlcv`` where the exchange has it, else REST polling every
   ``poll_s`` seconds;

until ``until`` / ``max_candles`` is reached or :meth:`stop` (Ctrl-C ends it cleanly too).

Rules, in one place:

* **Closed only.** A candle is closed when the exchange says so (Binance's kline flag), when a
  later candle is open, or, over REST, when its close time is not after the exchange clock
  (``fetch_time``). Open candles are never pushed; REST rows are validated like ingest.
* **Once each, in order.** The push feed ignores a re-sent identical candle and keeps the first
  value of a revised one (counted and logged: ``revisions``); a gap (a dropped message, a
  reorder, an outage) calls the REST backfill before the feed goes on.
* **Faults.** A websocket error or disconnect is retried with exponential backoff
  (``backoff_s`` doubling to ``max_backoff_s``) and followed by a REST catch-up; rate limits are
  ccxt's ``enableRateLimit`` plus the same backoff on HTTP 429. A websocket that stays silent
  for ``poll_s`` triggers a REST check, so a dropped last close is not waited for forever.

:meth:`ExchangeFeed.status` reports connected, last candle, lag behind the exchange clock,
backfilled candles and reconnects (the CLI's ``--json`` and the panel show it).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import polars as pl

from workbench.data.timeframes import is_calendar, timeframe_ms
from workbench.errors import ParameterError
from workbench.features.windows import SeriesArrays
from workbench.live.exchange_client import Retrying, pro_client, rest_client
from workbench.live.feed import PushFeed

TRANSPORTS = ("auto", "ws", "rest")
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def check_exchange_fields(exchange: str | None, url: str | None) -> tuple[str, str | None]:
    """Return the stripped exchange id and URL (None when empty).

    Raises
    ------
    ParameterError : an empty exchange id, or a URL that is not ``http(s)://host[:port][/path]``
        (checked here, before any request: ccxt would retry a bad URL as a network fault).
    """
    exchange, url = (exchange or "").strip(), (url or "").strip()
    if not exchange:
        raise ParameterError("exchange id is empty: type a ccxt exchange id, e.g. binance")
    if not url:
        return exchange, None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ParameterError(f"exchange URL {url!r} is not valid: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ParameterError(f"exchange URL {url!r} is not an http(s) URL such as "
                             "http://127.0.0.1:8765 (leave it empty for the exchange's own)")
    return exchange, url


@dataclass(frozen=True)
class ExchangeSourceConfig:
    """Where the candles come from and how faults are handled.

    ``url`` re-points the client (the local exchange, a proxy); ``None`` is the exchange's own
    public endpoints. ``since`` (epoch ms) is the first candle to fetch when the store holds
    none of the series (default: the last ``history`` candles).
    """

    exchange: str = "binance"
    url: str | None = None
    transport: str = "auto"  # auto: websocket where ccxt.pro has watchOHLCV, else REST polling
    page: int = 1000  # candles per REST request (Binance's maximum)
    poll_s: float = 2.0  # REST poll interval; a websocket silent this long triggers a REST check
    backoff_s: float = 0.5  # first retry delay; doubles per consecutive failure
    max_backoff_s: float = 30.0
    max_failures: int = 12  # consecutive failures before the source gives up (LiveSourceError)
    since: int | None = None
    until: int | None = None  # last candle (open time, epoch ms) to emit
    max_candles: int | None = None  # candles to emit, backfill included
    history: int = 1000  # stored candles loaded for windows and pivots

    def __post_init__(self):
        exchange, url = check_exchange_fields(self.exchange, self.url)
        object.__setattr__(self, "exchange", exchange)
        object.__setattr__(self, "url", url)
        if self.transport not in TRANSPORTS:
            raise ParameterError(f"transport {self.transport!r} is not known; known: "
                                 f"{', '.join(TRANSPORTS)}")
        if not 1 <= self.page <= 1000:
            raise ParameterError(f"page {self.page} must lie in [1, 1000] candles")
        if self.max_candles is not None and self.max_candles < 1:
            raise ParameterError(f"max candles {self.max_candles} must be >= 1")
        if not self.poll_s > 0 or not self.backoff_s > 0:
            raise ParameterError("poll_s and backoff_s must be > 0 seconds")


class ExchangeFeed(PushFeed):
    """A push feed that backfills and follows one exchange series (see the module docstring).

    Build it with :meth:`from_store`; run it through a
    :class:`~workbench.live.session.LiveSession` (``feed=``) or on its own (:meth:`run`).
    """

    def __init__(self, store, series: SeriesArrays, config: ExchangeSourceConfig, **kwargs):
        super().__init__(store, series, backfill=self._backfill_gap, **kwargs)
        self.cfg, self.tf_ms = config, timeframe_ms(series.timeframe)
        self.source = f"{config.exchange}:{series.symbol}:{series.timeframe}"
        self._stop_requested = False
        self.retry = Retrying(config.backoff_s, config.max_backoff_s, config.max_failures,
                              lambda: self._stop_requested)
        self._rest = None
        self.transport: str | None = None
        self.connected = False
        self.reconnects = self.caught_up = 0
        self.exchange_clock: int | None = None  # newest exchange time seen (ms)
        self.state_name = "idle"
        self.elapsed_s = 0.0

    @classmethod
    def from_store(cls, store, symbol: str, timeframe: str, config=None, **kwargs
                   ) -> "ExchangeFeed":
        """Load the last ``config.history`` stored candles and follow the exchange from there."""
        config = config or ExchangeSourceConfig()
        base = PushFeed.from_store(store, symbol, timeframe, history=config.history)
        return cls(store, base.series, config, **kwargs)

    # -- limits --------------------------------------------------------------------------------
    def last_ts(self) -> int | None:
        """Open time of the newest candle held (stored or emitted), None when there is none."""
        return int(self.series.ts[-1]) if self.series.length else None

    def _limit_ts(self) -> int | None:
        """Open time of the last candle this feed may still emit (``until``, ``max_candles``)."""
        bound = self.cfg.until
        left = None if self.cfg.max_candles is None else self.cfg.max_candles - \
            self.candles_emitted
        last = self.last_ts()
        if left is not None and last is not None and not is_calendar(self.timeframe):
            by_count = last + left * self.tf_ms
            bound = by_count if bound is None else min(bound, by_count)
        return bound

    def next_open(self) -> int | None:
        """Open time of the candle expected next (None before any candle)."""
        last = self.last_ts()
        return None if last is None else self._close_ts(last)

    def done(self) -> bool:
        """True once stopped or a limit (``until``, ``max_candles``) is reached."""
        if self._stop_requested:
            return True
        if self.cfg.max_candles is not None and self.candles_emitted >= self.cfg.max_candles:
            return True
        last = self.last_ts()
        return self.cfg.until is not None and last is not None and last >= self.cfg.until

    def _within_limits(self, frame: pl.DataFrame) -> pl.DataFrame:
        bound = self._limit_ts()
        frame = frame if bound is None else frame.filter(pl.col("ts") <= bound)
        if self.cfg.max_candles is not None:  # calendar timeframes: count, not time
            frame = frame.head(max(0, self.cfg.max_candles - self.candles_emitted))
        return frame

    # -- REST ----------------------------------------------------------------------------------
    def _client(self):
        if self._rest is None:
            self._rest = rest_client(self.cfg.exchange, self.cfg.url)
            self.retry.call(f"{self.source} load_markets", self._rest.load_markets)
            self.connected = True
        return self._rest

    def _server_time(self) -> int:
        now = int(self.retry.call(f"{self.source} fetch_time", self._client().fetch_time))
        self.exchange_clock = max(now, self.exchange_clock or now)
        return now

    def fetch_closed(self, first_ts: int, next_ts: int | None = None) -> pl.DataFrame:
        """Closed candles from ``first_ts`` (before ``next_ts`` when given), paginated REST."""
        client, now = self._client(), self._server_time()
        rows, since = {}, int(first_ts)
        while True:
            page = self.retry.call(f"{self.source} fetch_ohlcv", client.fetch_ohlcv,
                                   self.symbol, self.timeframe, since=since, limit=self.cfg.page)
            page = sorted((r for r in page if r[0] >= since), key=lambda r: r[0])
            closed = [r for r in page if r[0] + self.tf_ms <= now
                      and (next_ts is None or r[0] < next_ts)]
            for r in closed:
                rows.setdefault(int(r[0]), r)  # a row repeated inside a page: the first stands
            if not closed or len(closed) < len(page) or len(page) < self.cfg.page:
                break
            since = int(closed[-1][0]) + self.tf_ms
        return self._frame(list(rows.values()))

    @staticmethod
    def _frame(rows: list) -> pl.DataFrame:
        return pl.DataFrame([[int(r[0]), *(float(x) for x in r[1:6])] for r in rows],
                            schema={c: (pl.Int64 if c == "ts" else pl.Float64) for c in _COLUMNS},
                            orient="row")

    def _backfill_gap(self, first_ts: int, next_ts: int) -> pl.DataFrame:
        return self.fetch_closed(first_ts, next_ts)

    def catch_up(self) -> int:
        """Push every closed candle after the last one up to the exchange clock; return them."""
        last = self.last_ts()
        if self.done():
            return 0
        first = self.next_open() if last is not None else self._first_fetch()
        frame = self._within_limits(self.fetch_closed(first))
        pushed = self.push_many(frame) if frame.height else 0
        self.caught_up += frame.height
        return pushed

    def _first_fetch(self) -> int:
        if self.cfg.since is not None:
            return int(self.cfg.since)
        return self._server_time() - (self.cfg.history + 1) * self.tf_ms

    def push_closed(self, rows: list) -> int:
        """Push closed ``[ts, o, h, l, c, v]`` rows (any order, repeats allowed) within limits."""
        unique = {}
        for r in sorted(rows, key=lambda r: r[0]):
            first = unique.setdefault(int(r[0]), r)
            if first is not r:  # a repeat inside one update: counted like a re-sent candle
                same = list(map(float, first[1:6])) == list(map(float, r[1:6]))
                self.duplicates += same
                self.revisions += not same
        frame = self._within_limits(self._frame(list(unique.values())))
        return self.push_many(frame) if frame.height else 0

    # -- following -----------------------------------------------------------------------------
    def run(self) -> dict:
        """Backfill, then follow until a limit or :meth:`stop`; Ctrl-C stops cleanly."""
        t0 = time.perf_counter()
        self.state_name = "running"
        try:
            self.catch_up()
            if not self.done():
                self._follow()
        except KeyboardInterrupt:
            self._stop_requested = True
        finally:
            self.elapsed_s += time.perf_counter() - t0
            self.connected = False
            self.state_name = "stopped" if self._stop_requested else "finished"
        return self.stats()

    def _follow(self) -> None:
        watcher = None
        if self.cfg.transport != "rest":
            watcher = pro_client(self.cfg.exchange, self.cfg.url)
            if watcher is None and self.cfg.transport == "ws":
                raise ParameterError(f"ccxt has no websocket watch_ohlcv for "
                                     f"{self.cfg.exchange}; use transport rest")
        if watcher is None:
            self.transport = "rest"
            self._poll()
        else:
            self.transport = "ws"
            asyncio.run(self._watch(watcher))

    def _poll(self) -> None:
        while not self.done():
            self.catch_up()
            self.retry.sleep(self.cfg.poll_s)

    async def _watch(self, client) -> None:
        from workbench.live.exchange_watch import watch_loop

        await watch_loop(self, client)

    def stop(self) -> None:
        """Stop after the candle being processed (thread-safe)."""
        self._stop_requested = True

    @property
    def state(self) -> str:
        """``idle``, ``running``, ``stopped`` or ``finished``."""
        return self.state_name

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict:
        """What the panel and ``--json`` show about the connection.

        ``lag_ms`` is the exchange clock minus the close of the last emitted candle: about one
        candle at most while following, more while catching up.
        """
        last = self.last_ts() if self.candles_emitted else None
        last_close = None if last is None else self._close_ts(last)
        lag = None if last_close is None or self.exchange_clock is None \
            else self.exchange_clock - last_close
        return {"exchange": self.cfg.exchange, "url": self.cfg.url, "transport": self.transport,
                "connected": self.connected, "state": self.state, "last_candle_ts": last,
                "exchange_clock": self.exchange_clock, "lag_ms": lag,
                "backfilled": self.caught_up + self.backfilled, "gap_backfilled": self.backfilled,
                "reconnects": self.reconnects, "rate_limited": self.retry.rate_limited,
                "network_errors": self.retry.network_errors, "duplicates": self.duplicates,
                "revisions": self.revisions, "last_error": self.retry.last_error}

    def stats(self) -> dict:
        """Feed stats with :meth:`status` under ``source``."""
        out = super().stats()
        out.update(state=self.state, elapsed_s=round(self.elapsed_s, 6), source=self.status())
        return out


def exchange_feed(store, symbol: str, timeframe: str, *, pivot_strength: int = 2,
                  pivot_levels: int = 3, **options) -> ExchangeFeed:
    """Build the exchange feed of one series: ``options`` are :class:`ExchangeSourceConfig`
    fields (``exchange``, ``url``, ``until``, ``max_candles``, ``history``, ...)."""
    return ExchangeFeed.from_store(store, symbol, timeframe, ExchangeSourceConfig(**options),
                                   pivot_strength=pivot_strength, pivot_levels=pivot_levels)


def exchange_source(store, symbol: str, timeframe: str, request) -> ExchangeFeed:
    """The ``exchange`` entry of the live data-source registry: ``factory(store, symbol,
    timeframe, request)``. ``request`` gives ``history`` (rows before the first emitted candle)
    and the pivot parameters; exchange options, when the request carries them, come as a dict
    ``request.options`` (default: Binance's public endpoints, until stopped)."""
    options = dict(getattr(request, "options", None) or {})
    options.setdefault("history", max(int(request.history) + 1, 1000))
    return exchange_feed(store, symbol, timeframe, pivot_strength=request.pivot_strength,
                         pivot_levels=request.pivot_levels, **options)

