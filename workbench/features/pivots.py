"""Multi-level Williams market-structure pivots, confirmed without lookahead.

Two detectors produce exactly the same pivots: :func:`detect_pivots` (vectorised numpy, for
history) and :class:`StreamingPivotDetector` (one call per closed candle, for a live feed).

Definitions
-----------
Level 1
    Candle ``i`` is a swing high (``L1H``) when its high is **strictly greater** than the highs of
    the ``strength`` candles before it and **greater than or equal to** the highs of the
    ``strength`` candles after it. A swing low (``L1L``) mirrors this with lows (strictly lower
    than the left neighbours, lower or equal to the right ones).
Level n + 1
    The same rule applied to the sequence of level-n pivots of the same kind: a level-n high is an
    ``L{n+1}H`` when its price is strictly greater than the ``strength`` level-n highs before it
    and greater or equal to the ``strength`` level-n highs after it. Every level-(n+1) pivot is
    therefore also a level-n pivot (at the same ts and price).
Ties
    Strict on the left, non-strict on the right: on a plateau of equal highs (or lows) the
    **leftmost** candle is the pivot and the later equal ones are not. A candle can be both a high
    and a low pivot (an outside bar).
Edges
    A pivot needs ``strength`` neighbours on each side *in the data*: the first ``strength``
    candles (or level-n pivots) can never be pivots, and the last ``strength`` are not confirmed
    yet. Neighbours are rows, not clock time; gaps in the series are not filled.
Confirmation
    ``confirmed_ts`` is the close time (:func:`workbench.data.timeframes.close_ts`) of the first
    candle at which the pivot is knowable: for level 1 the close of candle ``i + strength``; for
    level n + 1 the ``confirmed_ts`` of the ``strength``-th level-n pivot of the same kind to its
    right. Hence ``confirmed_ts > ts`` always, and the pivots computed from the candles up to the
    one closing at ``T`` are exactly the pivots of the whole series with ``confirmed_ts <= T``.

The pivot candle's open time is ``ts``; ``price`` is its high (``H``) or low (``L``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from workbench.data.timeframes import close_ts, is_calendar, timeframe_ms, validate_timeframe
from workbench.errors import DataValidationError, ParameterError

PIVOT_COLUMNS = ("ts", "confirmed_ts", "price", "pivot_type", "level", "strength")
_SCHEMA = {"ts": pl.Int64, "confirmed_ts": pl.Int64, "price": pl.Float64,
           "pivot_type": pl.String, "level": pl.Int32, "strength": pl.Int32}


@dataclass(frozen=True, slots=True)
class Pivot:
    """One confirmed pivot.

    Attributes
    ----------
    ts : open time (epoch ms) of the pivot candle.
    confirmed_ts : close time (epoch ms) of the first candle at which the pivot is knowable.
    price : the pivot candle's high (``H`` types) or low (``L`` types).
    pivot_type : ``L{level}H`` or ``L{level}L``.
    level : 1 for swing points, n + 1 for pivots among level-n pivots.
    strength : neighbours required on each side.
    """

    ts: int
    confirmed_ts: int
    price: float
    pivot_type: str
    level: int
    strength: int

    @property
    def is_high(self) -> bool:
        """True for ``L{n}H`` pivots."""
        return self.pivot_type.endswith("H")


def pivot_type(level: int, high: bool) -> str:
    """Return the type name ``L{level}H`` or ``L{level}L``."""
    return f"L{level}{'H' if high else 'L'}"


def _check_params(timeframe: str, strength: int, levels: int) -> None:
    validate_timeframe(timeframe)
    if int(strength) < 1:
        raise ParameterError(f"pivot strength must be >= 1; got {strength}")
    if int(levels) < 1:
        raise ParameterError(f"pivot levels must be >= 1; got {levels}")


# -- vectorised ------------------------------------------------------------------------------
def _swing_mask(values: np.ndarray, strength: int, high: bool) -> np.ndarray:
    """Return a bool mask: element i is a swing point of ``values`` (see module docstring).

    Element i needs ``strength`` elements on each side, so the first and last ``strength``
    entries are always False.
    """
    n = values.shape[0]
    mask = np.zeros(n, dtype=bool)
    width = 2 * strength + 1
    if n < width:
        return mask
    win = sliding_window_view(values, width)
    centre = win[:, strength]
    if high:
        ok = (centre > win[:, :strength].max(axis=1)) & (centre >= win[:, strength + 1:].max(axis=1))
    else:
        ok = (centre < win[:, :strength].min(axis=1)) & (centre <= win[:, strength + 1:].min(axis=1))
    mask[strength: n - strength] = ok
    return mask


def _validate_arrays(ts, high, low) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.asarray(ts, dtype=np.int64)
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    if not (ts.shape == high.shape == low.shape) or ts.ndim != 1:
        raise ParameterError(f"ts, high and low must be 1-d and of one length; got shapes "
                             f"{ts.shape}, {high.shape}, {low.shape}")
    bad = np.flatnonzero(np.diff(ts) <= 0)
    if bad.size:
        row = int(bad[0]) + 1
        raise DataValidationError("ts must be strictly increasing", row=row, ts=int(ts[row]),
                                  rule="ts_increasing")
    for name, arr in (("high", high), ("low", low)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            row = int(bad[0])
            raise DataValidationError(f"{name} is not finite ({arr[row]})", row=row,
                                      ts=int(ts[row]), rule="finite_prices")
    return ts, high, low


def _kind_pivots(ts, prices, candle_confirmed, strength: int, levels: int, high: bool):
    """Yield (level, ts, confirmed_ts, price) arrays for one kind (highs or lows)."""
    idx = np.flatnonzero(_swing_mask(prices, strength, high))
    p_ts, p_price = ts[idx], prices[idx]
    # level 1 is knowable at the close of candle i + strength
    p_conf = candle_confirmed[idx + strength]
    for level in range(1, levels + 1):
        yield level, p_ts, p_conf, p_price
        sel = np.flatnonzero(_swing_mask(p_price, strength, high))
        # level n + 1 is knowable when the strength-th level-n pivot to its right is confirmed
        p_ts, p_conf, p_price = p_ts[sel], p_conf[sel + strength], p_price[sel]


def detect_pivots(ts, high, low, *, timeframe: str, strength: int = 2,
                  levels: int = 3) -> pl.DataFrame:
    """Detect confirmed pivots of levels 1..``levels`` in a candle history (vectorised).

    Parameters
    ----------
    ts, high, low : 1-d arrays of one length; ``ts`` are candle open times (epoch ms), strictly
        increasing.
    timeframe : the candles' timeframe, used for the close time that confirms a pivot.
    strength : neighbours required on each side (>= 1).
    levels : highest level to compute (>= 1).

    Returns
    -------
    pl.DataFrame
        Columns ``ts, confirmed_ts, price, pivot_type, level, strength`` sorted by
        ``ts, level, pivot_type``.

    Raises
    ------
    ParameterError
        For an unknown timeframe, ``strength`` or ``levels`` below 1, or mismatched arrays.
    DataValidationError
        When ts is not strictly increasing or a high/low is NaN or infinite (names the row).
    """
    _check_params(timeframe, strength, levels)
    ts, high, low = _validate_arrays(ts, high, low)
    candle_confirmed = close_ts(ts, timeframe)
    parts = []
    for is_high, prices in ((True, high), (False, low)):
        for level, p_ts, p_conf, p_price in _kind_pivots(ts, prices, candle_confirmed,
                                                         strength, levels, is_high):
            parts.append(pl.DataFrame({
                "ts": p_ts, "confirmed_ts": np.asarray(p_conf, dtype=np.int64), "price": p_price,
                "pivot_type": [pivot_type(level, is_high)] * p_ts.shape[0],
                "level": np.full(p_ts.shape[0], level, dtype=np.int32),
                "strength": np.full(p_ts.shape[0], strength, dtype=np.int32),
            }, schema=_SCHEMA))
    return pl.concat(parts).sort("ts", "level", "pivot_type")


def pivots_from_frame(frame: pl.DataFrame, timeframe: str, *, strength: int = 2,
                      levels: int = 3) -> pl.DataFrame:
    """Run :func:`detect_pivots` on a candle frame with columns ts, high, low."""
    return detect_pivots(frame["ts"].to_numpy(), frame["high"].to_numpy(),
                         frame["low"].to_numpy(), timeframe=timeframe, strength=strength,
                         levels=levels)


def pivots_to_frame(pivots) -> pl.DataFrame:
    """Return a list of :class:`Pivot` as a frame with the :func:`detect_pivots` columns."""
    rows = {c: [getattr(p, c) for p in pivots] for c in PIVOT_COLUMNS}
    return pl.DataFrame(rows, schema=_SCHEMA)


def persist_pivots(store, symbol: str, timeframe: str, strength: int = 2,
                   levels: int = 3) -> pl.DataFrame:
    """Detect the pivots of a stored series and atomically replace its stored pivots.

    Returns the pivots written (an empty series stores none). Raises StoreError/StoreBusyError
    from the store; the stored pivots are replaced in one transaction or left unchanged.
    """
    candles = store.read_ohlcv(symbol, timeframe)
    pivots = pivots_from_frame(candles, timeframe, strength=strength, levels=levels)
    store.replace_pivots(symbol, timeframe, pivots)
    return pivots


# -- streaming -------------------------------------------------------------------------------
class _LevelTracker:
    """Swing detection over one stream of points of one kind (one level, highs or lows).

    At most one candidate can be pending: a point that beats its ``strength`` predecessors kills
    any pending candidate among them. The candidate is confirmed once ``strength`` later points
    did not beat it, and cancelled by the first later point that does.
    """

    __slots__ = ("strength", "sign", "recent", "pos", "seen", "cand_ts", "cand_price", "count")

    def __init__(self, strength: int, high: bool):
        self.strength = strength
        self.sign = 1.0 if high else -1.0
        self.recent = [0.0] * strength  # ring of the last `strength` signed prices
        self.pos = 0
        self.seen = 0
        self.cand_ts = None
        self.cand_price = 0.0  # signed
        self.count = 0

    def push(self, ts: int, price: float):
        """Add one point; return ``(ts, signed_price)`` of the pivot it confirms, else None."""
        x = self.sign * price
        out = None
        if self.cand_ts is not None:
            if x > self.cand_price:
                self.cand_ts = None
            else:
                self.count += 1
                if self.count == self.strength:
                    out = (self.cand_ts, self.cand_price)
                    self.cand_ts = None
        if self.seen >= self.strength and x > max(self.recent):
            self.cand_ts, self.cand_price, self.count = ts, x, 0
        self.recent[self.pos] = x
        self.pos = (self.pos + 1) % self.strength
        self.seen += 1
        return out


class StreamingPivotDetector:
    """Confirm pivots one closed candle at a time; agrees exactly with :func:`detect_pivots`.

    Call :meth:`update` once per closed candle, in ts order. Each call costs O(strength) for the
    level-1 check and only touches higher levels when a pivot is confirmed, so the work per
    candle stays within O(strength * levels).

    Parameters
    ----------
    timeframe : the candles' timeframe (for the close time that confirms a pivot).
    strength : neighbours required on each side (>= 1).
    levels : highest level to compute (>= 1).

    Examples
    --------
    >>> det = StreamingPivotDetector("1m", strength=1, levels=1)
    >>> [det.update(i * 60_000, h, h - 1) for i, h in enumerate([1.0, 3.0, 2.0])][-1]
    (Pivot(ts=60000, confirmed_ts=180000, price=3.0, pivot_type='L1H', level=1, strength=1),)
    """

    __slots__ = ("timeframe", "strength", "levels", "_tf_ms", "_highs", "_lows", "_types",
                 "_h_recent", "_l_recent", "_pos", "_seen", "_hc_ts", "_hc", "_hn",
                 "_lc_ts", "_lc", "_ln")

    def __init__(self, timeframe: str, strength: int = 2, levels: int = 3):
        _check_params(timeframe, strength, levels)
        self.timeframe, self.strength, self.levels = timeframe, int(strength), int(levels)
        self._tf_ms = None if is_calendar(timeframe) else timeframe_ms(timeframe)
        # trackers for levels 2..levels, fed with level-1.. pivots; index 0 feeds level 2
        self._highs = [_LevelTracker(self.strength, True) for _ in range(self.levels - 1)]
        self._lows = [_LevelTracker(self.strength, False) for _ in range(self.levels - 1)]
        self._types = [(pivot_type(n, True), pivot_type(n, False))
                       for n in range(self.levels + 1)]
        # level 1 is inlined in update() for speed: ring buffers of the last `strength` highs/lows
        self._h_recent = [0.0] * self.strength
        self._l_recent = [0.0] * self.strength
        self._pos = 0
        self._seen = 0
        self._hc_ts = self._lc_ts = None  # pending level-1 candidates
        self._hc = self._lc = 0.0
        self._hn = self._ln = 0

    def _close(self, ts: int) -> int:
        return ts + self._tf_ms if self._tf_ms is not None else int(close_ts(ts, self.timeframe))

    def _cascade(self, trackers, is_high: bool, p_ts: int, price: float, conf: int, out: list):
        """Emit a level-1 pivot and every higher-level pivot it confirms, lowest level first."""
        s, k = self.strength, 0 if is_high else 1
        out.append(Pivot(p_ts, conf, price, self._types[1][k], 1, s))
        for level, tracker in enumerate(trackers, start=2):
            hit = tracker.push(p_ts, price)
            if hit is None:
                return
            p_ts, price = hit[0], hit[1] * tracker.sign
            out.append(Pivot(p_ts, conf, price, self._types[level][k], level, s))

    def update(self, ts: int, high: float, low: float) -> tuple[Pivot, ...]:
        """Feed one closed candle; return the pivots its close confirms.

        Returns a tuple, ordered by level and then H before L (the order of
        ``detect_pivots(...).sort("confirmed_ts", "level", "pivot_type")``); the shared empty
        tuple when nothing is confirmed, so the common case allocates nothing.
        """
        confirmed_h = confirmed_l = None
        if self._hc_ts is not None:
            if high > self._hc:
                self._hc_ts = None
            else:
                self._hn += 1
                if self._hn == self.strength:
                    confirmed_h = (self._hc_ts, self._hc)
                    self._hc_ts = None
        if self._lc_ts is not None:
            if low < self._lc:
                self._lc_ts = None
            else:
                self._ln += 1
                if self._ln == self.strength:
                    confirmed_l = (self._lc_ts, self._lc)
                    self._lc_ts = None
        pos, h_recent, l_recent = self._pos, self._h_recent, self._l_recent
        # beating the previous candle (slot pos - 1) is a cheap pre-check before the O(strength)
        # max over the ring; the warm-up guard keeps the first `strength` candles out
        if high > h_recent[pos - 1] and self._seen >= self.strength and high > max(h_recent):
            self._hc_ts, self._hc, self._hn = ts, high, 0
        if low < l_recent[pos - 1] and self._seen >= self.strength and low < min(l_recent):
            self._lc_ts, self._lc, self._ln = ts, low, 0
        h_recent[pos] = high
        l_recent[pos] = low
        pos += 1
        self._pos = pos if pos < self.strength else 0
        self._seen += 1
        if confirmed_h is None and confirmed_l is None:
            return ()
        return self._emit(ts, confirmed_h, confirmed_l)

    def _emit(self, ts: int, high_hit, low_hit) -> tuple[Pivot, ...]:
        """Build the pivots confirmed at the close of candle ``ts`` (hits are (ts, price))."""
        conf = self._close(ts)
        highs: list[Pivot] = []
        lows: list[Pivot] = []
        if high_hit is not None:
            self._cascade(self._highs, True, *high_hit, conf, highs)
        if low_hit is not None:
            self._cascade(self._lows, False, *low_hit, conf, lows)
        # interleave to the (level, H before L) order
        out = []
        for level in range(max(len(highs), len(lows))):
            out.extend(p[level] for p in (highs, lows) if level < len(p))
        return tuple(out)
