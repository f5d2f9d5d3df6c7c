"""The inference/training coordinator of seed 001: frames by reference, matched to outcomes.

A model that predicts at the close of candle t registers an :class:`InferenceFrameReference`:
which rows it saw, what it predicted, for which target candle. The coordinator

* keeps frames in **packed columns** (preallocated numpy arrays used as a ring, about 70 bytes a
  frame) and never a copy of the window; reference objects are built on demand;
* rebuilds the model input from the in-memory :class:`~workbench.features.windows.SeriesArrays`
  with :meth:`InferenceTrainingCoordinator.get_inference_data`, bit-identical to what
  :func:`~workbench.features.windows.gather_windows` gave the model (``norm_params`` are
  recomputed from the window rows, the normalisation being deterministic);
* matches frames to outcomes: when the candle at ``target_timestamp`` closes it calls
  ``subscriber.on_candle_completion(event, ref)`` (``ref`` is ``None`` when no frame targeted that
  candle); when a pivot is confirmed it calls ``subscriber.on_pivot_event(event, refs)`` with the
  frames whose window ends at the pivot candle. Labels are therefore delivered exactly at their
  reveal time: the target's close, or the pivot's ``confirmed_ts``;
* evicts frames ``max_age_candles`` after their window end (by then every label it tracks is
  revealed), or the oldest when ``max_frames`` are live, so memory stays bounded on an endless
  feed; evicted frames are written to the prediction ledger with their outcome.

Matching is O(frames matched): two small hash rings keyed by target ts and by window-end row
link the frames of one key through an int32 column (an intrusive linked list).
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from workbench.actions import ACTIONS
from workbench.data.timeframes import is_calendar, timeframe_ms
from workbench.errors import LookaheadError, NotFoundError, ParameterError
from workbench.features.windows import SeriesArrays, normalize_windows
from workbench.live.events import (CandleCompletionEvent, PivotEvent, SubscriberErrors,
                                   Subscription, dispatch, pivot_filter)
from workbench.live.frames import FrameColumns, KeyIndex, pow2_capacity

_MATCHED = 1
_PIVOT_TYPES = [f"L{level}{kind}" for level in range(1, 10) for kind in "HL"]
_PIVOT_CODE = {t: i + 1 for i, t in enumerate(_PIVOT_TYPES)}  # 0 = no pivot


@dataclass(slots=True)
class InferenceFrameReference:
    """What a model saw and predicted, by reference to the series rows (seed 001).

    Attributes
    ----------
    inference_id : assigned by :meth:`InferenceTrainingCoordinator.register_inference_frame`
        (``None`` before); unique per coordinator, increasing in registration order.
    symbol, timeframe : the series.
    prediction_timestamp : when the prediction was made (epoch ms; the feed clock).
    target_timestamp : open time of the candle the prediction is about.
    data_range_start, data_range_end : open times of the first and last window candle.
    norm_params : ``(price_mean, price_std, volume_mean, volume_std)`` of the window; filled in
        from the rows when the coordinator builds a reference, ``None`` is accepted on register.
    predicted_action : one of ``ACTIONS``.
    predicted_candle : the next candle's OHLC relative to the window's last close, in percent.
    confidence : probability of ``predicted_action``.
    model_version : the model snapshot version that predicted.
    end_index : row of ``data_range_end`` in the coordinator's series (``-1`` if unknown).
    """

    inference_id: int | None
    symbol: str
    timeframe: str
    prediction_timestamp: int
    target_timestamp: int
    data_range_start: int
    data_range_end: int
    norm_params: tuple | None
    predicted_action: str
    predicted_candle: tuple
    confidence: float
    model_version: int
    end_index: int = -1


@dataclass
class CoordinatorConfig:
    """Retention of frames.

    ``max_age_candles`` bounds how long a frame waits for labels after its window end: it must
    exceed the target horizon and the confirmation lag of the pivot levels you train on (an L3
    pivot with strength 2 is typically confirmed 20-60 candles after it; 1024 leaves room).
    ``max_frames`` caps live frames whatever the age; the packed columns grow by doubling from
    ``initial_capacity`` up to it.
    """

    max_age_candles: int = 1024
    max_frames: int = 1 << 16
    initial_capacity: int = 1024

    def __post_init__(self):
        for name in ("max_age_candles", "max_frames", "initial_capacity"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"CoordinatorConfig.{name} must be >= 1; got "
                                     f"{getattr(self, name)}")


#: the handle :meth:`InferenceTrainingCoordinator.subscribe` returns (the live path's one type)
CoordinatorSubscription = Subscription


class InferenceTrainingCoordinator:
    """Frames by reference, matched to candle and pivot outcomes, delivered to subscribers.

    Parameters
    ----------
    feed : a :class:`~workbench.live.feed.CandleFeed` (or ``None`` to drive
        :meth:`on_candle_completion` / :meth:`on_pivot_event` yourself).
    series : the in-memory series frames refer to; defaults to ``feed.series``.
    config : retention settings (:class:`CoordinatorConfig`).
    ledger : a :class:`~workbench.live.ledger.PredictionLedger` that receives every frame with
        its outcome when the frame leaves memory, or ``None``.

    Raises
    ------
    ParameterError : when neither a feed nor a series is given.
    """

    def __init__(self, feed=None, series: SeriesArrays | None = None,
                 config: CoordinatorConfig | None = None, ledger=None):
        series = series if series is not None else getattr(feed, "series", None)
        if series is None:
            raise ParameterError("InferenceTrainingCoordinator needs a feed or a series")
        self.feed, self.series, self.ledger = feed, series, ledger
        self.symbol, self.timeframe = series.symbol, series.timeframe
        self.config = config or CoordinatorConfig()
        self._cols = FrameColumns(min(self.config.initial_capacity, self.config.max_frames))
        divisor = (28 * 86_400_000 if is_calendar(self.timeframe)
                   else timeframe_ms(self.timeframe))
        self._step_ms = divisor
        # keys live at once span about max_age candles; start smaller and double on a collision
        ring = min(2 * (self.config.max_age_candles + 2), max(64, 2 * self._cols.capacity))
        self._by_target = KeyIndex(ring, divisor)
        self._by_end = KeyIndex(ring)
        self.instance_id = uuid.uuid4().hex[:12]  # prefixes ledger ids: unique across sessions
        self._oldest = 0
        self._next_id = 0
        self._last_close_ts = -(2**62)  # open ts of the newest closed candle seen
        self._subs: tuple[CoordinatorSubscription, ...] = ()
        self._guard = threading.RLock()
        self.errors = SubscriberErrors(f"coordinator {self.symbol} {self.timeframe}")
        self.counts = {"registered": 0, "matched_candle": 0, "matched_pivot": 0,
                       "evicted": 0, "evicted_unmatched": 0, "evicted_capacity": 0}
        # one subscription per feed: the candle event carries the pivots its close confirms, so
        # the order of everything a close delivers is decided here, not by subscription order
        self._feed_subs = [] if feed is None else [
            feed.subscribe_candle_completion(self.on_candle_completion, self.symbol,
                                             self.timeframe)]

    # -- subscribers ---------------------------------------------------------------------------
    def subscribe(self, subscriber, symbol: str, timeframe: str,
                  pivot_types: Iterable[str] | None = None, *, candles: bool = True,
                  pivots: bool = True) -> CoordinatorSubscription:
        """Deliver each close to a :class:`~workbench.live.subscribers.TrainingEventSubscriber`.

        Per closed candle the subscriber's hooks are called in the order of
        :meth:`on_candle_completion`. ``pivot_types`` filters pivot events (``None`` = all);
        ``candles`` / ``pivots`` switch either kind of label off (``on_new_candle`` is always
        delivered). Returns a handle whose ``unsubscribe()`` stops delivery.
        """
        if (symbol, timeframe) != (self.symbol, self.timeframe):
            raise ParameterError(f"this coordinator serves {self.symbol} {self.timeframe}; "
                                 f"cannot subscribe to {symbol} {timeframe}")
        sub = Subscription(subscriber, "frames", pivot_filter(pivot_types), candles, pivots,
                           _on_remove=self._remove)
        with self._guard:
            self._subs = (*self._subs, sub)
        return sub

    def subscribe_to_candle_completion(self, subscriber, symbol: str, timeframe: str):
        """Seed 001's name: candle matches only."""
        return self.subscribe(subscriber, symbol, timeframe, candles=True, pivots=False)

    def subscribe_to_pivot_events(self, subscriber, symbol: str, timeframe: str,
                                  pivot_types: Iterable[str] | None = None):
        """Seed 001's name: pivot matches only, for ``pivot_types``."""
        return self.subscribe(subscriber, symbol, timeframe, pivot_types, candles=False)

    def _remove(self, sub: CoordinatorSubscription) -> None:
        with self._guard:
            self._subs = tuple(s for s in self._subs if s is not sub)

    # -- registration --------------------------------------------------------------------------
    def _current_row(self) -> int:
        feed = self.feed
        return feed.last_index if feed is not None else self.series.length - 1

    def register_frame(self, end_row: int, window: int, target_ts: int, predicted_action,
                       predicted_candle, confidence: float, model_version: int,
                       prediction_ts: int | None = None) -> int:
        """Register a frame by row (the fast path); return its ``inference_id``.

        ``predicted_action`` is a name in ``ACTIONS`` or its index. Raises LookaheadError when
        the window ends after the newest closed candle, ParameterError for a bad window, target
        or action.
        """
        end_row, window, target_ts = int(end_row), int(window), int(target_ts)
        now_row = self._current_row()
        if end_row > now_row:
            raise LookaheadError(
                f"frame window ends at row {end_row} but the newest closed candle is row "
                f"{now_row} of {self.symbol} {self.timeframe}")
        if window < 1 or end_row - window + 1 < 0:
            raise ParameterError(f"window of {window} candles ending at row {end_row} starts "
                                 f"before the first row of the series")
        end_ts = int(self.series.ts[end_row])
        if target_ts <= end_ts:
            raise ParameterError(f"target_timestamp {target_ts} must be after the window end "
                                 f"{end_ts}")
        action = _action_index(predicted_action)
        with self._guard:
            return self._append(end_row, window, target_ts, action, predicted_candle,
                                confidence, model_version,
                                end_ts if prediction_ts is None else prediction_ts)

    def register_inference_frame(self, ref: InferenceFrameReference) -> int:
        """Store a reference (never a window copy); set and return its ``inference_id``.

        Raises ParameterError for another series or timestamps not in the series, and
        LookaheadError for a window that ends after the newest closed candle.
        """
        if (ref.symbol, ref.timeframe) != (self.symbol, self.timeframe):
            raise ParameterError(f"frame of {ref.symbol} {ref.timeframe} registered with the "
                                 f"coordinator of {self.symbol} {self.timeframe}")
        end_row = self.series.index_of(ref.data_range_end)
        start_row = self.series.index_of(ref.data_range_start)
        fid = self.register_frame(end_row, end_row - start_row + 1, ref.target_timestamp,
                                  ref.predicted_action, ref.predicted_candle, ref.confidence,
                                  ref.model_version, ref.prediction_timestamp)
        ref.inference_id, ref.end_index = fid, end_row
        return fid

    def _append(self, end_row, window, target_ts, action, candle, confidence, version,
                pred_ts) -> int:
        cols = self._cols
        if self._next_id - self._oldest >= cols.capacity:
            if cols.capacity < self.config.max_frames:
                cols = self._cols = cols.grown(self._oldest, self._next_id)
            else:
                self._evict_one(capacity=True)
        fid = self._next_id
        s = fid & cols.mask
        cols.pred_ts[s] = pred_ts
        cols.target_ts[s] = target_ts
        cols.end_row[s] = end_row
        cols.window[s] = window
        cols.action[s] = action
        cols.candle[s] = candle
        cols.confidence[s] = confidence
        cols.version[s] = version
        cols.flags[s] = 0
        cols.pivot[s] = 0
        cols.pivot_ts[s] = 0
        self._next_id = fid + 1
        self.counts["registered"] += 1
        if not self._by_target.insert(fid, target_ts, cols.link_target, s, self._oldest,
                                      self._last_close_ts + 1):
            self._rebuild("target")
        if not self._by_end.insert(fid, end_row, cols.link_end, s, self._oldest,
                                   self._current_row() - self.config.max_age_candles):
            self._rebuild("end")
        return fid

    def _rebuild(self, which: str) -> None:
        """Double one hash ring after a collision and re-link every live frame."""
        old = self._by_target if which == "target" else self._by_end
        index = KeyIndex(2 * (old.mask + 1), old.divisor)
        cols = self._cols
        key_col, link_col = ((cols.target_ts, cols.link_target) if which == "target"
                             else (cols.end_row, cols.link_end))
        for fid in range(self._oldest, self._next_id):
            s = fid & cols.mask
            if not index.insert(fid, int(key_col[s]), link_col, s, self._oldest, -(2**62)):
                setattr(self, "_by_target" if which == "target" else "_by_end", index)
                return self._rebuild(which)
        setattr(self, "_by_target" if which == "target" else "_by_end", index)

    # -- eviction ------------------------------------------------------------------------------
    def _evict_one(self, capacity: bool = False) -> None:
        fid = self._oldest
        s = fid & self._cols.mask
        row = self._ledger_row(fid) if self.ledger is not None else None
        unmatched = not (self._cols.flags[s] & _MATCHED)
        # evicted first: a ledger write that fails must neither re-add this frame next time nor
        # stop the event being delivered (the ledger keeps the row buffered and retries)
        self._oldest = fid + 1
        self.counts["evicted"] += 1
        self.counts["evicted_unmatched"] += unmatched
        self.counts["evicted_capacity"] += capacity
        if row is not None:
            self.ledger.add(row)

    def _evict_old(self, now_row: int) -> None:
        limit = now_row - self.config.max_age_candles
        end_row, mask = self._cols.end_row, self._cols.mask
        while self._oldest < self._next_id and end_row[self._oldest & mask] < limit:
            self._evict_one()

    def close(self) -> None:
        """Write every live frame to the ledger (with the outcomes known so far) and flush it."""
        with self._guard:
            while self._oldest < self._next_id:
                self._evict_one()
            if self.ledger is not None:
                self.ledger.flush()
            for sub in self._feed_subs:
                sub.unsubscribe()

    # -- events from the feed ------------------------------------------------------------------
    def on_candle_completion(self, event: CandleCompletionEvent) -> None:
        """Feed callback: deliver one close to the subscribers, in one fixed order.

        1. ``on_candle_completion(event, ref)`` for each frame that targeted this candle (once
           with ``ref=None`` when none did): the candle labels this close reveals;
        2. ``on_pivot_event(pivot, refs)`` for each pivot this close confirms (``event.pivots``,
           lowest level first), with the frames whose window ends at the pivot candle;
        3. ``on_new_candle(event)``: the new candle, once every label it reveals was delivered,
           so a prediction made there uses the weights those labels trained (river's
           ``simulate_qa``: the answer comes before the next question).
        """
        with self._guard:
            self._last_close_ts = event.ts
            self._evict_old(event.index)
            ids = self._by_target.lookup(event.ts, self._cols.link_target, self._cols.mask,
                                         self._oldest)
            for fid in ids:
                self._cols.flags[fid & self._cols.mask] |= _MATCHED
            self.counts["matched_candle"] += len(ids)
            subs = [s for s in self._subs if s.candles]
            refs = ([self._ref(fid) for fid in ids] or [None]) if subs else ()
        for ref in refs:
            dispatch(subs, "on_candle_completion", (event, ref), self.errors, event.ts)
        for pivot in event.pivots:
            self.on_pivot_event(pivot)
        dispatch(self._subs, "on_new_candle", (event,), self.errors, event.ts)

    def on_pivot_event(self, event: PivotEvent) -> None:
        """Deliver the frames whose window ends at the pivot candle (step 2 of a close)."""
        with self._guard:
            try:
                row = self.series.index_of(event.pivot_ts)
            except ParameterError:
                return
            ids = self._by_end.lookup(row, self._cols.link_end, self._cols.mask, self._oldest)
            code = _PIVOT_CODE.get(event.pivot_type, 0)
            cols = self._cols
            for fid in ids:
                s = fid & cols.mask
                if code >= cols.pivot[s]:  # keep the highest level confirmed
                    cols.pivot[s], cols.pivot_ts[s] = code, event.confirmed_ts
            self.counts["matched_pivot"] += len(ids)
            subs = [s for s in self._subs if s.wants(event.pivot_type)]
            if not subs:
                return
            refs = [self._ref(fid) for fid in ids]
        dispatch(subs, "on_pivot_event", (event, refs), self.errors, event.confirmed_ts)

    # -- references and data on demand -----------------------------------------------------------
    def _ref(self, fid: int) -> InferenceFrameReference:
        cols, ts = self._cols, self.series.ts
        s = fid & cols.mask
        end, n = int(cols.end_row[s]), int(cols.window[s])
        return InferenceFrameReference(
            fid, self.symbol, self.timeframe, int(cols.pred_ts[s]), int(cols.target_ts[s]),
            int(ts[end - n + 1]), int(ts[end]), tuple(self.norm_params(end, n).tolist()),
            ACTIONS[int(cols.action[s])], tuple(cols.candle[s].tolist()),
            float(cols.confidence[s]), int(cols.version[s]), end)

    def _ledger_row(self, fid: int) -> dict:
        """The ledger row of a frame: prediction plus the outcomes known now (see ledger.py)."""
        cols, ts, ohlcv = self._cols, self.series.ts, self.series.ohlcv
        s = fid & cols.mask
        end, n, target = int(cols.end_row[s]), int(cols.window[s]), int(cols.target_ts[s])
        pred = cols.candle[s].tolist()
        row = {"inference_id": f"{self.instance_id}-{fid}", "model_version": int(cols.version[s]),
               "symbol": self.symbol, "timeframe": self.timeframe,
               "prediction_ts": int(cols.pred_ts[s]), "target_ts": target,
               "data_range_start": int(ts[end - n + 1]), "data_range_end": int(ts[end]),
               "predicted_action": ACTIONS[int(cols.action[s])],
               "confidence": float(cols.confidence[s]), "pred_open": pred[0],
               "pred_high": pred[1], "pred_low": pred[2], "pred_close": pred[3]}
        if cols.flags[s] & _MATCHED:
            t = int(np.searchsorted(ts, target))
            base = float(ohlcv[end, 3])
            o, h, lo, c = ((float(x) / base - 1.0) * 100.0 for x in ohlcv[t, :4])
            row.update(actual_open=o, actual_high=h, actual_low=lo, actual_close=c,
                       realised_move=c)
        if cols.pivot[s]:
            row.update(pivot_type=_PIVOT_TYPES[int(cols.pivot[s]) - 1],
                       pivot_confirmed_ts=int(cols.pivot_ts[s]))
        return row

    def get_frame(self, inference_id: int) -> InferenceFrameReference:
        """Build the reference of a live frame; raises NotFoundError once it was evicted."""
        with self._guard:
            if not self._oldest <= inference_id < self._next_id:
                raise NotFoundError(f"inference frame {inference_id} is not in memory (live ids "
                                    f"{self._oldest}..{self._next_id - 1})")
            return self._ref(inference_id)

    def live_frames(self) -> int:
        """Number of frames in memory."""
        return self._next_id - self._oldest

    def norm_params(self, end_row: int, window: int) -> np.ndarray:
        """Return float32 (4,) normalisation parameters of the window ending at ``end_row``."""
        return normalize_window(self.series.features[end_row - window + 1: end_row + 1])[1][0]

    def window_rows(self, ref: InferenceFrameReference) -> tuple[int, int]:
        """Return the first and last series row of the frame's window."""
        ts = self.series.ts
        end = ref.end_index
        if not (0 <= end < self.series.length and int(ts[end]) == ref.data_range_end):
            end = self.series.index_of(ref.data_range_end)
        start = end - (ref.data_range_end - ref.data_range_start) // self._step_ms
        if not (0 <= start <= end and int(ts[start]) == ref.data_range_start):
            start = self.series.index_of(ref.data_range_start)  # gaps or a calendar timeframe
        return start, end

    def get_inference_data(self, ref: InferenceFrameReference) -> tuple[np.ndarray, np.ndarray]:
        """Rebuild the model input of a frame from the in-memory series.

        Returns
        -------
        (windows, norm_params) : float32 (1, N, 8) and float32 (1, 4), bit-identical to
            ``gather_windows(series.features, end_row, N)`` at inference time.

        Raises ParameterError when the window's rows are not in the series.
        """
        start, end = self.window_rows(ref)
        return normalize_window(self.series.features[start: end + 1])

    def stats(self) -> dict:
        """Counts of registered, matched and evicted frames, live frames, bytes and errors."""
        with self._guard:
            return {**self.counts, "live": self.live_frames(), "capacity": self._cols.capacity,
                    "column_bytes": self._cols.nbytes(),
                    "index_bytes": sum(i.keys.nbytes + i.head.nbytes
                                       for i in (self._by_target, self._by_end)),
                    "subscriber_errors": self.errors.total, "errors": self.errors.report()}


def _action_index(action) -> int:
    if isinstance(action, (int, np.integer)) and 0 <= int(action) < len(ACTIONS):
        return int(action)
    try:
        return ACTIONS.index(action)
    except ValueError:
        raise ParameterError(f"predicted_action {action!r} is not one of {ACTIONS}") from None


def normalize_window(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise one raw (N, 8) window exactly as the model saw it: (1, N, 8) and (1, 4)."""
    return normalize_windows(raw[None])
