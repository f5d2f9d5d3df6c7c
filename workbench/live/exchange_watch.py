"""The websocket half of the exchange source: ``watch_ohlcv`` with reconnects and stall checks.

:func:`watch_loop` runs in the feed's own event loop (``asyncio.run`` in the session's thread).
Each update of ``watch_ohlcv`` is turned into closed candles (the exchange's closed flag, or
"every candle before the newest open one") and pushed through the feed, whose backfill fills any
gap. Pushing runs the session's subscribers in this loop: while a model predicts, the socket
buffers, which keeps candles in order without a queue.
"""
from __future__ import annotations

import asyncio

from workbench.errors import LiveSourceError, NotFoundError

STOP_CHECK_S = 0.1  # how often a wait on the socket looks whether the feed was stopped


async def _close_watch(task: asyncio.Task | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: BLE001 - the cancelled watch's own error is not news
            pass


def _on_update(feed, client, candles: list) -> None:
    """Push what this update closed; REST-backfill when a later candle is already open."""
    closed = client.closed_klines()
    if client.last_event_ms is not None:
        feed.exchange_clock = max(client.last_event_ms, feed.exchange_clock or 0)
    if closed:
        feed.push_closed([row for _event, row in closed])
    newest_open = max((int(c[0]) for c in candles), default=None)
    expected = feed.next_open()
    if newest_open is not None and expected is not None and newest_open > expected:
        # the candle after the last emitted one has closed but its closing kline did not come
        # (dropped, reordered, or an exchange without the closed flag): fetch it over REST
        feed.push_closed(feed.fetch_closed(expected, newest_open).rows())


async def _wait(feed, task: asyncio.Task | None, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``task`` (``None``: just wait); True when it finished.

    ``feed.done()`` is looked at every :data:`STOP_CHECK_S`, so a stop (the panel's Stop
    button, Ctrl-C) ends the watch at once instead of after a silent ``poll_s`` or a reconnect
    backoff.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not feed.done():
        left = end - loop.time()
        if left <= 0:
            return False
        step = min(STOP_CHECK_S, left)
        if task is None:
            await asyncio.sleep(step)
        elif (await asyncio.wait({task}, timeout=step))[0]:
            return True
    return task is not None and task.done()


async def watch_loop(feed, client) -> None:
    """Follow ``feed``'s series on ``client`` until ``feed.done()``; closes the client."""
    import ccxt

    cfg, failures, task = feed.cfg, 0, None
    try:
        while not feed.done():
            if task is None:
                task = asyncio.ensure_future(client.watch_ohlcv(feed.symbol, feed.timeframe))
            if not await _wait(feed, task, cfg.poll_s):  # silent socket: no close missed?
                feed.catch_up()  # (returns at once after a stop)
                continue
            try:
                candles = task.result()
            except ccxt.BadSymbol as exc:
                raise NotFoundError(f"{feed.source}: {exc}") from None
            except ccxt.NetworkError as exc:  # disconnect, timeout, 429 on connect
                task, failures = None, failures + 1
                feed.connected = False
                feed.retry.network_errors += 1
                feed.retry.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                if failures > cfg.max_failures:
                    raise LiveSourceError(f"{feed.source} watch_ohlcv: gave up after "
                                          f"{failures} failures in a row (last: "
                                          f"{feed.retry.last_error})") from None
                await _wait(feed, None, feed.retry.delay(failures))
                feed.catch_up()  # what the outage missed, before the stream goes on
                continue
            except ccxt.BaseError as exc:  # an exchange error no reconnect fixes
                raise LiveSourceError(f"{feed.source} watch_ohlcv: {type(exc).__name__}: "
                                      f"{exc}") from None
            task, failures = None, 0
            feed.connected, feed.reconnects = True, client.disconnects
            _on_update(feed, client, candles)
    finally:
        await _close_watch(task)
        await client.close()
