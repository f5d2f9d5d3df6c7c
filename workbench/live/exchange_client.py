"""ccxt clients for the exchange source: creation, URL override, the closed flag, retries.

Two clients of the same exchange serve one source: the synchronous REST client (``ccxt.<id>``)
for the exchange clock and paginated ``fetch_ohlcv`` backfills, and the ``ccxt.pro`` client for
``watch_ohlcv``. Both have ccxt's rate limiter on (``enableRateLimit``), need no API key (market
data is public) and can be pointed elsewhere with one base URL (:func:`rebase_urls`): the local
exchange of ``workbench exchange-sim``, or a proxy.

ccxt's ``watch_ohlcv`` returns ``[ts, o, h, l, c, v]`` rows and drops whether a candle has
closed. :func:`pro_client` subclasses the exchange's pro class to keep that flag where the
exchange sends it (Binance's kline ``"x"``) together with the exchange's event time (``"E"``),
so closed candles arrive as the exchange closes them; exchanges without the flag are followed
by the rule "a candle has closed once a later one is open" (see ``exchange_source``).
"""
from __future__ import annotations

import time
from typing import Callable

from workbench.errors import LiveSourceError, NotFoundError

#: per-exchange client options: market data of spot symbols needs only the spot markets, and
#: Binance otherwise also loads its futures markets (two more endpoints) on ``load_markets``.
CLIENT_OPTIONS = {"binance": {"fetchMarkets": {"types": ["spot"]}}}


def rebase_urls(urls, base: str):
    """Return ``urls`` (ccxt's ``urls['api']``, nested) with every host replaced by ``base``.

    ``https://api.binance.com/api/v3`` becomes ``<base>/api/v3`` and
    ``wss://stream.binance.com:9443/ws`` becomes ``<ws base>/ws``, where the websocket base is
    ``base`` with ``http`` turned into ``ws``: the paths stay the exchange's own.
    """
    from urllib.parse import urlsplit

    base = base.rstrip("/")
    ws_base = "ws" + base[4:] if base.startswith("http") else base
    if isinstance(urls, dict):
        return {k: rebase_urls(v, base) for k, v in urls.items()}
    if not isinstance(urls, str) or "://" not in urls:
        return urls
    parts = urlsplit(urls)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return (ws_base if parts.scheme in ("ws", "wss") else base) + path


def _options(exchange: str, url: str | None) -> dict:
    return {"enableRateLimit": True, "options": dict(CLIENT_OPTIONS.get(exchange, {}))}


def rest_client(exchange: str, url: str | None = None):
    """The synchronous ccxt client of ``exchange`` (rate limited, optionally re-pointed).

    Raises NotFoundError naming the exchange when ccxt does not know it.
    """
    import ccxt

    cls = getattr(ccxt, exchange, None)
    if cls is None or exchange not in ccxt.exchanges:
        raise NotFoundError(f"exchange {exchange!r} is not a ccxt exchange id (e.g. binance, "
                            "kraken, coinbase)")
    client = cls(_options(exchange, url))
    if url:
        client.urls["api"] = rebase_urls(client.urls["api"], url)
    return client


def pro_client(exchange: str, url: str | None = None):
    """The ``ccxt.pro`` client of ``exchange`` keeping each kline's closed flag, or ``None``
    when ccxt has no websocket client (or no ``watchOHLCV``) for it.

    The client's ``closed_klines()`` returns and clears the ``(event_ms, [ts, o, h, l, c, v])``
    of every kline received with ``"x": true`` since the last call; ``event_ms`` is also kept as
    ``last_event_ms``, the exchange clock the websocket has shown. ``disconnects`` counts the
    connections that closed under it (each is dialled again by the next ``watch_ohlcv``).
    """
    import ccxt.pro

    base = getattr(ccxt.pro, exchange, None)
    if base is None:
        return None

    class Client(base):
        def __init__(self, config):
            super().__init__(config)
            self._closed, self.last_event_ms, self.disconnects = [], None, 0

        def on_close(self, client, error):
            # a connection the server (or the network) closed; the next watch dials again
            self.disconnects += 1
            return super().on_close(client, error)

        def handle_ohlcv(self, client, message):
            kline = message.get("k") if isinstance(message, dict) else None
            event_ms = message.get("E") if isinstance(message, dict) else None
            if isinstance(event_ms, int):
                self.last_event_ms = max(event_ms, self.last_event_ms or event_ms)
            if isinstance(kline, dict) and kline.get("x") is True:
                row = [int(kline["t"]), *(float(kline[k]) for k in ("o", "h", "l", "c", "v"))]
                self._closed.append((event_ms, row))
            return super().handle_ohlcv(client, message)

        def closed_klines(self) -> list:
            out, self._closed = self._closed, []
            return out

    client = Client(_options(exchange, url))
    if not client.has.get("watchOHLCV"):
        return None
    if url:
        client.urls["api"] = rebase_urls(client.urls["api"], url)
    return client


class Retrying:
    """Call ccxt with backoff: rate limits (HTTP 429) and network errors are retried.

    ``delay`` doubles from ``first_s`` up to ``max_s`` per consecutive failure; after
    ``max_failures`` consecutive failures the source gives up with LiveSourceError. Errors no
    retry can fix (an unknown symbol, an exchange error) raise at once, typed.
    ``stopped()`` is polled while waiting so a stop is never delayed by a backoff.
    """

    def __init__(self, first_s: float, max_s: float, max_failures: int,
                 stopped: Callable[[], bool]):
        self.first_s, self.max_s, self.max_failures = first_s, max_s, max_failures
        self.stopped = stopped
        self.rate_limited = self.network_errors = 0
        self.last_error: str | None = None

    def delay(self, failures: int) -> float:
        """The backoff before retry number ``failures`` (1-based)."""
        return min(self.max_s, self.first_s * 2 ** (failures - 1))

    def sleep(self, seconds: float) -> None:
        """Sleep in short steps, returning early when the source is stopped."""
        end = time.monotonic() + seconds
        while not self.stopped() and time.monotonic() < end:
            time.sleep(min(0.05, end - time.monotonic()))

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """Return ``fn(*args, **kwargs)``, retrying transient ccxt errors with backoff."""
        import ccxt

        failures = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except ccxt.BadSymbol as exc:
                raise NotFoundError(f"{what}: {exc}") from None
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as exc:
                self.rate_limited += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            except ccxt.NetworkError as exc:
                self.network_errors += 1
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            except ccxt.BaseError as exc:
                raise LiveSourceError(f"{what}: {type(exc).__name__}: {exc}") from None
            failures += 1
            if failures > self.max_failures:
                raise LiveSourceError(f"{what}: gave up after {failures} failures in a row "
                                      f"(last: {self.last_error})")
            if self.stopped():
                raise LiveSourceError(f"{what}: stopped while retrying ({self.last_error})")
            self.sleep(self.delay(failures))
