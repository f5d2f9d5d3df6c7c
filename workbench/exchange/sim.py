"""A local exchange: recorded candles served in Binance's REST and websocket formats.

No machine here reaches an exchange, and users want a demo without one. :class:`ExchangeSim`
serves a recorded series on 127.0.0.1 with the endpoints ccxt's ``binance`` class uses for market
data, so the *real* ccxt client (REST and ``ccxt.pro``) can be pointed at it through
``exchange.urls['api']``:

* ``GET /api/v3/time`` -> ``{"serverTime": <sim clock>}``;
* ``GET /api/v3/exchangeInfo`` -> one spot market, enough for ``load_markets``;
* ``GET /api/v3/klines?symbol&interval&startTime&endTime&limit`` -> Binance's 12-column rows,
  ascending, including the candle still open at the sim clock (with partial values, as Binance
  does);
* websocket ``/ws/<n>``: ``{"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m"], "id": 1}``
  is answered ``{"result": null, "id": 1}``, then ``kline`` events follow: one mid-candle update
  (``"x": false``) and the final one (``"x": true``) at each close.

The **clock** is sim time (epoch ms). It stands at the open of candle ``start_index`` until a
client is caught up (it subscribes to the kline stream, or asks REST for candles from that open
on), so a client can backfill first, deterministically; then it advances
half a candle per step: ``speed=None`` ("max") as fast as the sockets take the messages, ``N``
N times faster than real time. Candles "close" in sim time; REST never shows a candle that has
not opened yet.

**Faults** (``--faults``), drawn from one seeded generator so a run is reproducible:
``drop`` skips a websocket message, ``duplicate`` sends it twice, ``reorder`` holds it back
behind the next one, ``disconnect`` closes every websocket (at a third of the run, then at
random), ``429`` answers a REST request with HTTP 429 and ``Retry-After`` (the second request,
then at random). ``GET /sim/stats``
(not a Binance path) reports the clock and the faults injected, for tests.
"""
from __future__ import annotations

import asyncio
import threading
import random
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from aiohttp import WSMsgType, web

from workbench.data.timeframes import timeframe_ms
from workbench.errors import ParameterError

FAULTS = ("drop", "duplicate", "reorder", "disconnect", "429")
#: probability of each fault per websocket message / REST request / closed candle
FAULT_RATES = {"drop": 0.05, "duplicate": 0.05, "reorder": 0.05, "disconnect": 0.01, "429": 0.2}
_MAX_LIMIT = 1000  # Binance's cap on klines per request


def parse_faults(text: str | None) -> frozenset:
    """Parse ``"drop,duplicate,..."`` (or ``"all"``) into a set of fault names.

    Raises ParameterError naming an unknown fault and the known ones.
    """
    if not text:
        return frozenset()
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if names == ["all"]:
        return frozenset(FAULTS)
    unknown = sorted(set(names) - set(FAULTS))
    if unknown:
        raise ParameterError(f"unknown fault(s) {unknown}; known faults: {', '.join(FAULTS)}")
    return frozenset(names)


def market_id(symbol: str) -> str:
    """Binance's id of a unified symbol: ``ETH/USDT`` -> ``ETHUSDT``."""
    return symbol.replace("/", "").upper()


def _num(x: float) -> str:
    # the shortest decimal that parses back to the same double: the client's floats are then
    # bit-identical to the recorded ones (Binance's fixed 8 decimals would round them)
    return repr(float(x))


@dataclass(frozen=True)
class ExchangeSimConfig:
    """What the local exchange serves and how its clock and faults behave.

    ``start_index`` is the first candle not yet closed when the server starts: the candles before
    it are history a client backfills over REST. ``None`` means half of the data.
    """

    symbol: str
    timeframe: str
    speed: float | None = None  # None: as fast as the sockets take it; N: N x real time
    faults: frozenset = field(default_factory=frozenset)
    start_index: int | None = None
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see ExchangeSim.port once started)


class _Faults:
    """The seeded fault generator and the count of each fault injected."""

    def __init__(self, kinds: frozenset, seed: int):
        self.kinds, self._rng = kinds, random.Random(seed)
        self.counts = {k: 0 for k in FAULTS}

    def hit(self, kind: str) -> bool:
        """Draw whether ``kind`` strikes now (always False when the kind is off)."""
        if kind in self.kinds and self._rng.random() < FAULT_RATES[kind]:
            self.counts[kind] += 1
            return True
        return False

    def force(self, kind: str) -> bool:
        """Inject ``kind`` now if it is on (a run always sees at least one of it)."""
        if kind in self.kinds:
            self.counts[kind] += 1
            return True
        return False


class ExchangeSim:
    """The local exchange server (aiohttp) over one recorded series.

    Parameters
    ----------
    candles : frame with ``ts, open, high, low, close, volume`` (epoch-ms open times, ascending).
    config : :class:`ExchangeSimConfig`.
    """

    def __init__(self, candles: pl.DataFrame, config: ExchangeSimConfig):
        if candles.height < 2:
            raise ParameterError(f"the exchange simulator needs at least 2 candles; got "
                                 f"{candles.height}")
        if config.symbol.count("/") != 1 or "" in config.symbol.split("/"):
            raise ParameterError(f"symbol {config.symbol!r} must be a unified BASE/QUOTE symbol "
                                 "(e.g. ETH/USDT)")
        self.cfg, self.tf_ms = config, timeframe_ms(config.timeframe)
        self.ts = candles["ts"].cast(pl.Int64).to_numpy()
        self.ohlcv = candles.select("open", "high", "low", "close", "volume").to_numpy()
        start = candles.height // 2 if config.start_index is None else int(config.start_index)
        if not 0 < start < candles.height:
            raise ParameterError(f"start index {start} must lie in [1, {candles.height - 1}]")
        self.start_index, self.id = start, market_id(config.symbol)
        self.stream = f"{self.id.lower()}@kline_{config.timeframe}"
        self.clock = int(self.ts[start])
        self.faults = _Faults(config.faults, config.seed)
        self._sockets: set[web.WebSocketResponse] = set()
        self._held: dict | None = None  # a message held back by the reorder fault
        self._clock_task: asyncio.Task | None = None
        self.sent = self.requests = 0
        self.finished = False
        self.port = config.port

    # -- candles at the sim clock --------------------------------------------------------------
    def _candle(self, i: int, fraction: float) -> tuple:
        """Candle ``i`` as seen ``fraction`` of the way through it (1.0: closed, exact values)."""
        o, h, lo, c, v = self.ohlcv[i].tolist()
        if fraction >= 1.0:
            return o, h, lo, c, v
        mid = o + (c - o) * fraction  # an invented partial path: open, then towards the close
        return o, max(o, mid), min(o, mid), mid, v * fraction

    def _visible(self, i: int) -> tuple | None:
        """Candle ``i`` at the current clock: exact when closed, partial when open, else None."""
        t = int(self.ts[i])
        if t > self.clock:
            return None
        return self._candle(i, min(1.0, (self.clock - t) / self.tf_ms))

    # -- REST ----------------------------------------------------------------------------------
    def _too_many(self) -> web.Response | None:
        self.requests += 1
        if (self.requests == 2 and self.faults.force("429")) or self.faults.hit("429"):
            return web.json_response({"code": -1003, "msg": "Too many requests (simulated)."},
                                     status=429, headers={"Retry-After": "1"})
        return None

    async def _time(self, request: web.Request) -> web.Response:
        return self._too_many() or web.json_response({"serverTime": self.clock})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        base, quote = self.cfg.symbol.split("/")
        market = {"symbol": self.id, "status": "TRADING", "baseAsset": base,
                  "baseAssetPrecision": 8, "quoteAsset": quote, "quotePrecision": 8,
                  "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                  "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                  "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
                  "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01",
                               "maxPrice": "1000000.00", "tickSize": "0.01"},
                              {"filterType": "LOT_SIZE", "minQty": "0.0001",
                               "maxQty": "100000.0", "stepSize": "0.0001"}]}
        return self._too_many() or web.json_response(
            {"timezone": "UTC", "serverTime": self.clock, "rateLimits": [],
             "exchangeFilters": [], "symbols": [market]})

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("symbol") != self.id or q.get("interval") != self.cfg.timeframe:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        limited = self._too_many()
        if limited is not None:
            return limited
        limit = min(int(q.get("limit", 500)), _MAX_LIMIT)
        if int(q.get("startTime", -1)) >= self.ts[self.start_index]:
            self._start_clock()  # a client caught up with history: time may run
        lo = int(np.searchsorted(self.ts, int(q.get("startTime", self.ts[0])), side="left"))
        if "startTime" not in q:  # Binance: without startTime, the most recent candles
            lo = max(0, int(np.searchsorted(self.ts, self.clock, side="right")) - limit)
        end = int(q["endTime"]) if "endTime" in q else None
        rows = []
        for i in range(lo, min(lo + limit, self.ts.shape[0])):
            t = int(self.ts[i])
            candle = self._visible(i)
            if candle is None or (end is not None and t > end):
                break
            rows.append([t, *map(_num, candle[:4]), _num(candle[4]), t + self.tf_ms - 1, "0",
                         0, "0", "0", "0"])
        return web.json_response(rows)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"clock": self.clock, "start_index": self.start_index,
                                  "candles": int(self.ts.shape[0]), "sent": self.sent,
                                  "finished": self.finished, "faults": self.faults.counts,
                                  "sockets": len(self._sockets)})

    # -- websocket -----------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            body = msg.json()
            if body.get("method") == "SUBSCRIBE":
                await ws.send_json({"result": None, "id": body.get("id")})
                if self.stream in body.get("params", []):
                    self._sockets.add(ws)
                    self._start_clock()
            elif body.get("method") == "UNSUBSCRIBE":
                self._sockets.discard(ws)
                await ws.send_json({"result": None, "id": body.get("id")})
        self._sockets.discard(ws)
        return ws

    def _kline_event(self, i: int, fraction: float) -> dict:
        o, h, lo, c, v = self._candle(i, fraction)
        t = int(self.ts[i])
        return {"e": "kline", "E": self.clock, "s": self.id,
                "k": {"t": t, "T": t + self.tf_ms - 1, "s": self.id, "i": self.cfg.timeframe,
                      "f": 0, "L": 0, "o": _num(o), "c": _num(c), "h": _num(h), "l": _num(lo),
                      "v": _num(v), "n": 0, "x": fraction >= 1.0, "q": "0", "V": "0",
                      "Q": "0", "B": "0"}}

    async def _broadcast(self, message: dict) -> None:
        """Send one event to every subscriber, through the drop/duplicate/reorder faults."""
        faults = self.faults
        if faults.hit("drop"):
            return
        out = [message, message] if faults.hit("duplicate") else [message]
        if self._held is not None:
            out.append(self._held)
            self._held = None
        elif faults.hit("reorder"):
            self._held, out = out[-1], out[:-1]
        for ws in tuple(self._sockets):
            for m in out:
                try:
                    await ws.send_json(m)
                except (ConnectionError, RuntimeError):  # the client went away meanwhile
                    self._sockets.discard(ws)
        self.sent += len(out)

    async def _disconnect_all(self) -> None:
        for ws in tuple(self._sockets):
            self._sockets.discard(ws)
            await ws.close(code=1001, message=b"simulated disconnect")

    # -- the clock -----------------------------------------------------------------------------
    def _start_clock(self) -> None:
        if self._clock_task is None:
            self._clock_task = asyncio.get_running_loop().create_task(self._run_clock())

    async def _advance(self, to_ms: int) -> None:
        if self.cfg.speed is not None:
            await asyncio.sleep((to_ms - self.clock) / 1000.0 / self.cfg.speed)
        else:
            await asyncio.sleep(0)  # let the sockets and REST handlers run
        self.clock = to_ms

    async def _run_clock(self) -> None:
        n = self.ts.shape[0]
        forced_at = self.start_index + (n - self.start_index) // 3
        for i in range(self.start_index, n):
            t = int(self.ts[i])
            await self._advance(t + self.tf_ms // 2)
            await self._broadcast(self._kline_event(i, 0.5))
            await self._advance(t + self.tf_ms)
            await self._broadcast(self._kline_event(i, 1.0))
            if (i == forced_at and self.faults.force("disconnect")) or \
                    self.faults.hit("disconnect"):
                await self._disconnect_all()
        if self._held is not None:  # nothing follows the held message any more
            held, self._held = self._held, None
            for ws in tuple(self._sockets):
                await ws.send_json(held)
        self.finished = True

    # -- serving -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application()
        app.add_routes([web.get("/api/v3/time", self._time),
                        web.get("/api/v3/exchangeInfo", self._exchange_info),
                        web.get("/api/v3/klines", self._klines),
                        web.get("/sim/stats", self._stats),
                        web.get("/ws", self._ws), web.get("/ws/{stream}", self._ws)])
        return app

    async def serve(self, ready=None, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set (forever when None); ``ready(port)`` once listening."""
        runner = web.AppRunner(self.app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.host, self.cfg.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        if ready is not None:
            ready(self.port)
        try:
            await (stop.wait() if stop is not None else asyncio.Event().wait())
        finally:
            if self._clock_task is not None:
                self._clock_task.cancel()
            await self._disconnect_all()
            await runner.cleanup()


def urls(port: int, host: str = "127.0.0.1") -> str:
    """The base URL a client passes as ``--exchange-url`` for a sim on ``port``."""
    return f"http://{host}:{port}"


class SimThread:
    """Run an :class:`ExchangeSim` in a background thread (the demo's and notebooks' way).

    ``with SimThread(sim) as url: ...`` serves while the block runs; ``url`` is the base URL.
    The command ``workbench exchange-sim`` runs the same server in its own process.
    """

    def __init__(self, sim: ExchangeSim):
        self.sim = sim
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = None

    def __enter__(self) -> str:
        def target():
            self._loop = asyncio.new_event_loop()
            self._stop = asyncio.Event()
            self._loop.run_until_complete(self.sim.serve(lambda port: self._ready.set(),
                                                         self._stop))
            self._loop.close()

        self._thread = threading.Thread(target=target, name="exchange-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise ParameterError("the exchange simulator did not start within 10 s")
        return urls(self.sim.port, self.sim.cfg.host)

    def disconnect(self, timeout: float = 10.0) -> None:
        """Close every websocket now, as the ``disconnect`` fault does (for tests of reconnects)."""
        asyncio.run_coroutine_threadsafe(self.sim._disconnect_all(), self._loop).result(timeout)

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
