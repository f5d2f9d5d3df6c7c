"""Candle feeds: the data provider of the live path (seed 001), for replay and for live data.

A feed owns one series (:class:`~workbench.features.windows.SeriesArrays`) and a
:class:`~workbench.features.pivots.StreamingPivotDetector`. For every closed candle it emits, on
one code path (:meth:`CandleFeed._emit_range`):

1. a :class:`~workbench.live.events.CandleCompletionEvent` to every candle subscriber;
2. the :class:`~workbench.live.events.PivotEvent` s this close confirms, lowest level first, to
   every pivot subscriber whose ``pivot_types`` contain the type.

Events therefore arrive in timestamp order. A subscriber that raises is logged, counted and
reported in :meth:`CandleFeed.stats`; the feed and the other subscribers carry on.

Two feeds share that path:

* :class:`ReplayFeed` replays the rows of a snapshot at maximum speed or paced (1x, Nx), in the
  caller's thread (:meth:`~ReplayFeed.run`) or a background thread (:meth:`~ReplayFeed.start`),
  and can be paused, resumed and stopped.
* :class:`PushFeed` is the entry point of any external live source: :meth:`PushFeed.push`
  validates candles exactly like ingestion (``workbench.data.ingest.validate_candles``), checks
  continuity with the last stored candle, appends them to the store and to the in-memory series,
  and emits them.

A feed serves one symbol and timeframe; subscribing to another raises ParameterError. Nothing
here reads a row after the one being emitted, so subscribers cannot see the future through the
feed; the coordinator enforces the same for frames.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable

import numpy as np
import polars as pl

from workbench.data.ranges import load_range
from workbench.data.timeframes import close_ts, is_calendar, timeframe_ms
from workbench.errors import DataValidationError, ParameterError
from workbench.features.pivots import StreamingPivotDetector
from workbench.features.windows import SeriesArrays
from workbench.jobs import BackgroundJob
from workbench.live.events import (CandleCompletionEvent, PivotEvent, SubscriberErrors,
                                   Subscription, dispatch, pivot_filter)

_log = logging.getLogger("workbench.live")
_CHUNK = 4096  # rows converted to Python lists at a time: flat memory, no per-candle numpy reads


class CandleFeed:
    """Subscriptions and the one emit path shared by :class:`ReplayFeed` and :class:`PushFeed`.

    Parameters
    ----------
    series : the in-memory series this feed emits from (and, for a push feed, appends to).
    pivot_strength, pivot_levels : parameters of the streaming pivot detector.
    history_end : rows ``< history_end`` are history: the pivot detector is warmed up on them
        silently, so pivots are the same as those of the vectorised detector over the series.
    """

    def __init__(self, series: SeriesArrays, *, pivot_strength: int = 2, pivot_levels: int = 3,
                 history_end: int = 0):
        self.series = series
        self.symbol, self.timeframe = series.symbol, series.timeframe
        self._fixed_ms = None if is_calendar(self.timeframe) else timeframe_ms(self.timeframe)
        self._detector = StreamingPivotDetector(self.timeframe, pivot_strength, pivot_levels)
        self._candle_subs: tuple[Subscription, ...] = ()
        self._pivot_subs: tuple[Subscription, ...] = ()
        self._sub_guard = threading.Lock()
        self.errors = SubscriberErrors(f"feed {self.symbol} {self.timeframe}")
        self._first_row = history_end  # rows emitted so far: last_index + 1 - _first_row
        self._halt = False  # set by pause/stop: _emit_range returns after the current candle
        self.pivots_emitted = 0
        self.now: int | None = None  # feed clock: close time of the last emitted candle
        self.last_index = history_end - 1  # row of the last emitted (or history) candle
        self._warm_up(history_end)

    # -- subscriptions ---------------------------------------------------------------------------
    def _check_series(self, symbol: str, timeframe: str) -> None:
        if (symbol, timeframe) != (self.symbol, self.timeframe):
            raise ParameterError(f"this feed serves {self.symbol} {self.timeframe}; cannot "
                                 f"subscribe to {symbol} {timeframe}")

    def subscribe_candle_completion(self, callback: Callable[[CandleCompletionEvent], None],
                                    symbol: str, timeframe: str) -> Subscription:
        """Call ``callback(event)`` on every closed candle; returns the subscription handle."""
        self._check_series(symbol, timeframe)
        sub = Subscription(callback, "candle", _on_remove=self._remove)
        with self._sub_guard:
            self._candle_subs = (*self._candle_subs, sub)
        return sub

    def subscribe_pivot_events(self, callback: Callable[[PivotEvent], None], symbol: str,
                               timeframe: str, pivot_types: Iterable[str] | None = None
                               ) -> Subscription:
        """Call ``callback(event)`` for each confirmed pivot whose type is in ``pivot_types``.

        ``pivot_types`` such as ``['L2L', 'L2H', 'L3L', 'L3H']``; ``None`` means every type.
        """
        self._check_series(symbol, timeframe)
        sub = Subscription(callback, "pivot", pivot_filter(pivot_types),
                           _on_remove=self._remove)
        with self._sub_guard:
            self._pivot_subs = (*self._pivot_subs, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        # subscriber tuples are replaced, never mutated, so a running emit loop is unaffected
        with self._sub_guard:
            if sub.kind == "candle":
                self._candle_subs = tuple(s for s in self._candle_subs if s is not sub)
            else:
                self._pivot_subs = tuple(s for s in self._pivot_subs if s is not sub)

    # -- the one emit path -------------------------------------------------------------------------
    def _warm_up(self, end: int) -> None:
        """Feed rows ``[0, end)`` to the pivot detector without emitting anything."""
        if end <= 0:
            return
        update = self._detector.update
        ts, ohlcv = self.series.ts, self.series.ohlcv
        for a in range(0, end, _CHUNK):
            b = min(end, a + _CHUNK)
            for t, h, lo in zip(ts[a:b].tolist(), ohlcv[a:b, 1].tolist(), ohlcv[a:b, 2].tolist()):
                update(t, h, lo)

    def _close_ts(self, ts: int) -> int:
        return ts + self._fixed_ms if self._fixed_ms is not None else int(close_ts(ts, self.timeframe))

    @property
    def candles_emitted(self) -> int:
        """Candles emitted so far."""
        return self.last_index + 1 - self._first_row

    def _emit_range(self, a: int, b: int) -> int:
        """Emit rows ``[a, b)`` of the series (already stored): for each, the candle event (which
        carries the pivots its close confirms), then those pivot events. Returns the next row;
        stops early when halted.

        This is the one emit path of replay and push. It is the hot loop of a replay, hence the
        local bindings and the lists converted once per chunk (no per-candle numpy reads).
        """
        series = self.series
        ts = series.ts[a:b]
        closes = close_ts(ts, self.timeframe).tolist()
        rows = series.ohlcv[a:b].tolist()
        sym, tf, event, update = self.symbol, self.timeframe, CandleCompletionEvent, \
            self._detector.update
        errors, pivot_events = self.errors, self._pivot_events
        for i, t, cts, (o, h, lo, c, v) in zip(range(a, b), ts.tolist(), closes, rows):
            self.now = cts
            self.last_index = i
            pivots = update(t, h, lo)
            ev = event(sym, tf, t, cts, o, h, lo, c, v, i, pivot_events(pivots, i) if pivots
                       else ())
            dispatch(self._candle_subs, None, (ev,), errors, t)
            if pivots:
                self._emit_pivots(ev.pivots)
            if self._halt:
                return i + 1
        return b

    def _pivot_events(self, pivots, i: int) -> tuple[PivotEvent, ...]:
        """The :class:`PivotEvent` s of the pivots confirmed at row ``i``."""
        self.pivots_emitted += len(pivots)
        return tuple(PivotEvent(self.symbol, self.timeframe, p.ts, p.confirmed_ts, p.pivot_type,
                                p.level, p.price, p.strength, i) for p in pivots)

    def _emit_pivots(self, events) -> None:
        subs = self._pivot_subs
        if not subs:
            return
        for ev in events:
            dispatch([s for s in subs if s.wants(ev.pivot_type)], None, (ev,), self.errors,
                     ev.confirmed_ts)

    def stats(self) -> dict:
        """Return counts of candles and pivots emitted, the feed clock and subscriber errors."""
        return {"symbol": self.symbol, "timeframe": self.timeframe,
                "candles": self.candles_emitted, "pivots": self.pivots_emitted,
                "now": self.now, "last_index": self.last_index,
                "subscriber_errors": self.errors.total, "errors": self.errors.report()}


class ReplayFeed(CandleFeed, BackgroundJob):
    """Replay stored candles, at maximum speed or paced, with pause, resume and stop.

    Parameters
    ----------
    series : the snapshot to replay (see :meth:`from_store`).
    start, end : first and last candle open time to emit (inclusive, epoch ms); ``None`` means the
        first / last row. Earlier rows are history for windows and pivots.
    speed : ``None`` for maximum speed, else the pace as a multiple of real time (``1.0`` emits one
        1m candle per minute, ``60.0`` one per second).
    pivot_strength, pivot_levels : streaming pivot detector parameters.
    """

    def __init__(self, series: SeriesArrays, start: int | None = None, end: int | None = None, *,
                 speed: float | None = None, pivot_strength: int = 2, pivot_levels: int = 3):
        ts = series.ts
        first = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
        stop = series.length if end is None else int(np.searchsorted(ts, end, side="right"))
        if speed is not None and not speed > 0:
            raise ParameterError(f"replay speed must be > 0 (or None for maximum); got {speed}")
        CandleFeed.__init__(self, series, pivot_strength=pivot_strength,
                            pivot_levels=pivot_levels, history_end=first)
        BackgroundJob.__init__(self, f"replay-{series.symbol}")
        self.start_index, self.end_index, self.speed = first, stop, speed
        self._next = first
        self._stop_requested = False
        self._paused = False
        self._running = False
        self._resume = threading.Event()
        self._resume.set()
        self._wake = threading.Event()  # cuts a paced wait short: stop, pause
        self._steps = 0  # candles Step asked for while paused
        self._step_guard = threading.Lock()

    @classmethod
    def from_store(cls, store, symbol: str, timeframe: str, start: int | None = None,
                   end: int | None = None, *, history: int = 0, **kwargs) -> "ReplayFeed":
        """Load ``history`` candles (rows) before ``start`` plus the range and replay it.

        Raises NotFoundError when the range holds no stored candle.
        """
        frame, first = load_range(store, symbol, timeframe, start, end, history)
        series = SeriesArrays.from_frame(symbol, timeframe, frame)
        return cls(series, int(series.ts[first]), end, **kwargs)

    @property
    def state(self) -> str:
        """``idle``, ``running``, ``paused``, ``stopped`` or ``finished``."""
        if self._next >= self.end_index:
            return "finished"
        if self._stop_requested:
            return "stopped"
        if self._paused:
            return "paused"
        running = self._running or self._thread is not None or self.elapsed_s
        return "running" if running else "idle"

    def pause(self) -> None:
        """Pause after the candle being emitted; :meth:`resume` continues, :meth:`step` emits
        one candle and stays paused."""
        self._resume.clear()
        self._paused = self._halt = True
        self._wake.set()

    def resume(self) -> None:
        """Resume a paused replay."""
        self._paused = False
        self._halt = self._stop_requested
        self._resume.set()

    def step(self) -> None:
        """Emit one more candle of a paused replay (at once, whatever the pace); stay paused.

        Raises
        ------
        ParameterError : when the replay is not paused.
        """
        if not self._paused:
            raise ParameterError("step() needs a paused replay; pause() it first")
        with self._step_guard:
            self._steps += 1
        self._resume.set()

    def stop(self) -> None:
        """Stop the replay after the candle being emitted (also wakes a paused replay or one
        waiting for its next paced candle: Stop never waits for the pace)."""
        self._stop_requested = self._halt = True
        self._resume.set()
        self._wake.set()

    def _await_turn(self) -> bool:
        """Block while paused; return True when a :meth:`step` asks for one candle."""
        while self._paused and not self._stop_requested:
            with self._step_guard:
                if self._steps:
                    self._steps -= 1
                    return True
                self._resume.clear()
            self._resume.wait()
        return False

    def _execute(self) -> None:
        """Replay until the end, :meth:`stop` or an error (``run()`` / ``start()`` call this)."""
        if self.speed is None:
            self._run_max()
        else:
            self._run_paced()

    def outcome(self) -> dict:
        """:meth:`run` and :meth:`join` return the replay's :meth:`stats`."""
        return self.stats()

    def _run_max(self) -> None:
        while self._next < self.end_index and not self._stop_requested:
            if self._paused:
                if self._await_turn():
                    self._next = self._emit_range(self._next, self._next + 1)
                continue
            self._next = self._emit_range(self._next, min(self.end_index, self._next + _CHUNK))

    def _run_paced(self) -> None:
        """Emit one candle per interval / speed. The wait is an Event wait that stop() and
        pause() cut short, so neither waits for the pace (a day per candle at 1x on 1d)."""
        step = (self._fixed_ms or timeframe_ms(self.timeframe)) / 1000.0 / self.speed
        due = time.monotonic()
        while self._next < self.end_index and not self._stop_requested:
            if self._paused:
                stepped = self._await_turn()
                due = time.monotonic() + step
                if stepped:
                    self._next = self._emit_range(self._next, self._next + 1)
                continue
            wait = due - time.monotonic()
            if wait > 0 and self._wake.wait(wait):
                self._wake.clear()  # woken by stop() or pause(): the loop head decides
                continue
            self._next = self._emit_range(self._next, self._next + 1)
            due += step

    def stats(self) -> dict:
        """Feed stats plus state, position and throughput."""
        out = super().stats()
        out.update(state=self.state, position=self._next, end_index=self.end_index,
                   elapsed_s=round(self.elapsed_s, 6),
                   candles_per_s=round(self.candles_emitted / self.elapsed_s, 1)
                   if self.elapsed_s else None)
        return out


class PushFeed(CandleFeed):
    """Feed of candles pushed by an external live source, validated like ingestion.

    Exchanges re-send candles and drop them, so a push is forgiving in two documented ways:

    * **Re-sent candles.** A candle at or before the last stored one is compared with what is
      stored: an identical one is ignored (counted in ``duplicates``); a *revised* one (same ts,
      other values) is ignored too, because the first closed value stands (a frame may already
      have been built from it, and the stored series must not change under a running session),
      and it is counted in ``revisions`` and logged (``revised``: the last 100 as ``(ts, stored,
      received)``).
    * **Gaps.** When a candle does not open where the last one closed and a ``backfill`` callback
      was given, ``backfill(first_missing_ts, next_ts)`` is called for the candles in between
      (a frame, validated like the rest) before the feed goes on; what it cannot fill still fails
      the continuity rule.

    Parameters
    ----------
    store : the :class:`~workbench.data.store.Store` the pushed candles are appended to.
    series : the in-memory snapshot of the same series; its last row must be the last stored
        candle (see :meth:`from_store`).
    pivot_strength, pivot_levels : streaming pivot detector parameters.
    backfill : optional ``callable(first_missing_ts, next_ts) -> pl.DataFrame`` of the missing
        candles (e.g. a REST fetch); ``None`` makes a gap a continuity error.
    """

    def __init__(self, store, series: SeriesArrays, *, pivot_strength: int = 2,
                 pivot_levels: int = 3,
                 backfill: Callable[[int, int], pl.DataFrame] | None = None):
        super().__init__(series, pivot_strength=pivot_strength, pivot_levels=pivot_levels,
                         history_end=series.length)
        self.store = store
        self.source = f"push:{series.symbol}:{series.timeframe}"
        self.backfill = backfill
        self.duplicates = self.revisions = self.backfilled = 0
        self.revised: deque = deque(maxlen=100)

    @classmethod
    def from_store(cls, store, symbol: str, timeframe: str, *, history: int = 1000,
                   **kwargs) -> "PushFeed":
        """Load the last ``history`` stored candles (rows) of a series as the feed's snapshot."""
        last = store.last_ts(symbol, timeframe)
        if last is None:
            frame = pl.DataFrame(schema={"ts": pl.Int64, **{c: pl.Float64 for c in
                                                           ("open", "high", "low", "close",
                                                            "volume")}})
        else:
            frame, _ = load_range(store, symbol, timeframe, last, None, max(0, history - 1))
        return cls(store, SeriesArrays.from_frame(symbol, timeframe, frame), **kwargs)

    def push(self, candle) -> int:
        """Validate, store and emit one closed candle (mapping with ts, open .. volume).

        Returns the number of candles emitted (1, more after a backfill, 0 for a re-sent one).
        Raises DataValidationError naming the rule; a rejected candle changes neither the store
        nor the series.
        """
        return self.push_many(pl.DataFrame([dict(candle)]) if not isinstance(candle, pl.DataFrame)
                              else candle)

    def push_many(self, candles: pl.DataFrame) -> int:
        """Validate, store (one transaction) and emit a batch of closed candles.

        Candles already stored are dropped first (see the class docstring), then gaps are
        backfilled; the rest must be consecutive. Returns the number of candles emitted.
        """
        from workbench.data.ingest import validate_candles

        clean, _report = validate_candles(candles, self.timeframe, self.source, first_row=0)
        clean = self._with_backfill(self._drop_known(clean))
        if clean.height == 0:
            return 0
        self._check_continuity(clean["ts"].to_numpy())
        self.store.append_candles(self.symbol, self.timeframe, clean)
        for ts, o, h, lo, c, v in clean.select("ts", "open", "high", "low", "close",
                                                "volume").rows():
            i = self.series.append(ts, o, h, lo, c, v)
            self._emit_range(i, i + 1)
        return clean.height

    def _drop_known(self, clean: pl.DataFrame) -> pl.DataFrame:
        """Drop candles not after the last one; count them as duplicates or revisions."""
        last = int(self.series.ts[-1]) if self.series.length else None
        if last is None or clean.height == 0 or clean["ts"][0] > last:
            return clean
        known = clean.filter(pl.col("ts") <= last)
        for row in known.select("ts", "open", "high", "low", "close", "volume").rows():
            stored = self._stored_row(row[0])
            if stored == row:
                self.duplicates += 1
            else:
                self.revisions += 1
                self.revised.append((row[0], stored, row))
                _log.warning("%s: closed candle %s revised to %s; the first value %s stands",
                             self.source, row[0], row[1:], None if stored is None else stored[1:])
        return clean.filter(pl.col("ts") > last)

    def _stored_row(self, ts: int) -> tuple | None:
        """The stored candle at ``ts``: from memory when in the snapshot, else from the store."""
        try:
            i = self.series.index_of(ts)
        except ParameterError:
            frame = self.store.read_ohlcv(self.symbol, self.timeframe, ts, ts)
            return frame.row(0) if frame.height else None
        return (ts, *self.series.ohlcv[i].tolist())

    def _with_backfill(self, clean: pl.DataFrame) -> pl.DataFrame:
        """Insert the candles the backfill callback returns before each gap."""
        if self.backfill is None or clean.height == 0:
            return clean
        from workbench.data.ingest import validate_candles

        pieces, prev = [], int(self.series.ts[-1]) if self.series.length else None
        for k, t in enumerate(clean["ts"].to_list()):
            if prev is not None and t > self._expected_next(prev):
                missing, _ = validate_candles(self.backfill(self._expected_next(prev), t),
                                              self.timeframe, f"{self.source}:backfill",
                                              first_row=0)
                missing = missing.filter((pl.col("ts") > prev) & (pl.col("ts") < t))
                self.backfilled += missing.height
                pieces.append(missing)
            pieces.append(clean.slice(k, 1))
            prev = t
        return pl.concat(pieces) if len(pieces) > 1 else clean

    def _expected_next(self, last: int) -> int:
        return self._close_ts(last)

    def _check_continuity(self, ts: np.ndarray) -> None:
        """Each pushed candle must open where the previous one (stored or pushed) closed."""
        last = self.store.last_ts(self.symbol, self.timeframe)
        mem_last = int(self.series.ts[-1]) if self.series.length else None
        if last != mem_last:
            raise ParameterError(f"{self.source}: in-memory series ends at {mem_last} but the "
                                 f"store ends at {last}; rebuild the feed with from_store()")
        prev = last
        for row, t in enumerate(ts.tolist()):
            if prev is not None and t != self._expected_next(prev):
                raise DataValidationError(
                    f"candle does not follow the last candle {prev}: expected ts "
                    f"{self._expected_next(prev)}", path=self.source, row=row, ts=t,
                    rule="continuity")
            prev = t

    def stats(self) -> dict:
        """Feed stats plus the re-sent (duplicates), revised and backfilled candle counts."""
        out = super().stats()
        out.update(duplicates=self.duplicates, revisions=self.revisions,
                   backfilled=self.backfilled)
        return out
