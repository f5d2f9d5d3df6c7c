"""Pivots: hand-checked example, a brute-force reference, streaming == vectorised, no lookahead."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.data.timeframes import close_ts
from workbench.errors import DataValidationError, ParameterError
from workbench.features.pivots import (
    PIVOT_COLUMNS,
    Pivot,
    StreamingPivotDetector,
    detect_pivots,
    persist_pivots,
    pivots_from_frame,
    pivots_to_frame,
)

MIN = 60_000
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _arrays(frame: pl.DataFrame):
    return frame["ts"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy()


def _random_walk(seed: int, n: int, tick: float):
    """A random-walk candle series; a coarse ``tick`` makes equal highs/lows (ties) common."""
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0, 1, n))
    high = np.round((close + rng.exponential(0.5, n)) / tick) * tick
    low = np.round((close - rng.exponential(0.5, n)) / tick) * tick
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * MIN
    return ts, high, low


def _stream(ts, high, low, timeframe="1m", **kw) -> list[Pivot]:
    det = StreamingPivotDetector(timeframe, **kw)
    out: list[Pivot] = []
    for t, h, lo in zip(ts.tolist(), high.tolist(), low.tolist()):
        got = det.update(t, h, lo)
        # whatever a close confirms is confirmed at that close, never earlier or later
        assert all(p.confirmed_ts == int(close_ts(t, timeframe)) for p in got)
        out.extend(got)
    return out


def _reference(ts, high, low, timeframe, strength, levels) -> pl.DataFrame:
    """The definition in the module docstring written as plain loops (independent of numpy)."""
    rows = []
    for is_high, prices in ((True, high.tolist()), (False, low.tolist())):
        beats = (lambda a, b: a > b) if is_high else (lambda a, b: a < b)
        ties = (lambda a, b: a >= b) if is_high else (lambda a, b: a <= b)
        points = [(int(ts[i]), int(close_ts(int(ts[i + strength]), timeframe)), prices[i])
                  for i in range(strength, len(prices) - strength)
                  if all(beats(prices[i], prices[i - j]) for j in range(1, strength + 1))
                  and all(ties(prices[i], prices[i + j]) for j in range(1, strength + 1))]
        for level in range(1, levels + 1):
            kind = f"L{level}{'H' if is_high else 'L'}"
            rows += [(t, c, p, kind, level, strength) for t, c, p in points]
            points = [(points[k][0], points[k + strength][1], points[k][2])
                      for k in range(strength, len(points) - strength)
                      if all(beats(points[k][2], points[k - j][2]) for j in range(1, strength + 1))
                      and all(ties(points[k][2], points[k + j][2]) for j in range(1, strength + 1))]
    frame = pl.DataFrame(rows, schema=list(PIVOT_COLUMNS), orient="row")
    return frame.cast({"level": pl.Int32, "strength": pl.Int32}).sort("ts", "level", "pivot_type")


def _by_confirmation(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("confirmed_ts", "level", "pivot_type")


# -- hand-checked ----------------------------------------------------------------------------
def test_hand_checked_example_with_plateau_tie():
    #            0   1   2   3   4   5   6   7   8    9
    high = np.array([11, 13, 12, 15, 15, 14, 16, 11, 12, 11.5])
    low = high - 1.0  # 10 12 11 14 14 13 15 10 11 10.5
    ts = np.arange(10, dtype=np.int64) * MIN
    got = detect_pivots(ts, high, low, timeframe="1m", strength=1, levels=2)
    expected = pl.DataFrame(
        [
            (1 * MIN, 3 * MIN, 13.0, "L1H", 1, 1),
            (2 * MIN, 4 * MIN, 11.0, "L1L", 1, 1),
            # plateau 15, 15: the leftmost candle is the pivot, the equal one after it is not
            (3 * MIN, 5 * MIN, 15.0, "L1H", 1, 1),
            (5 * MIN, 7 * MIN, 13.0, "L1L", 1, 1),
            (6 * MIN, 8 * MIN, 16.0, "L1H", 1, 1),
            # L2H: 16 beats the L1H before it (15) and ties-or-beats the one after (12); it is
            # knowable once that right-hand L1H (candle 8) is confirmed at the close of candle 9
            (6 * MIN, 10 * MIN, 16.0, "L2H", 2, 1),
            (7 * MIN, 9 * MIN, 10.0, "L1L", 1, 1),
            (8 * MIN, 10 * MIN, 12.0, "L1H", 1, 1),
        ],
        schema=list(PIVOT_COLUMNS), orient="row",
    ).cast({"level": pl.Int32, "strength": pl.Int32})
    assert got.equals(expected)
    assert pivots_to_frame(_stream(ts, high, low, strength=1, levels=2)).equals(
        _by_confirmation(expected))


def test_outside_bar_is_both_high_and_low():
    high = np.array([5.0, 5.0, 9.0, 6.0, 6.0])
    low = np.array([4.0, 4.0, 1.0, 3.0, 3.0])
    got = detect_pivots(np.arange(5) * MIN, high, low, timeframe="1m", strength=2, levels=1)
    assert got["pivot_type"].to_list() == ["L1H", "L1L"]
    assert got["ts"].to_list() == [2 * MIN, 2 * MIN]


# -- against the brute-force reference -------------------------------------------------------
@pytest.mark.parametrize("strength, levels", [(1, 4), (2, 3), (3, 2)])
def test_vectorised_matches_reference_on_real_eth(eth_slice, strength, levels):
    ts, high, low = _arrays(eth_slice)
    got = detect_pivots(ts, high, low, timeframe="1m", strength=strength, levels=levels)
    assert got.height > 0 and got["level"].max() == levels
    assert got.equals(_reference(ts, high, low, "1m", strength, levels))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), strength=st.integers(1, 4),
       levels=st.integers(1, 4), tick=st.sampled_from([0.01, 0.5, 2.0]))
def test_vectorised_matches_reference_on_random_walks(seed, n, strength, levels, tick):
    ts, high, low = _random_walk(seed, n, tick)
    got = detect_pivots(ts, high, low, timeframe="1m", strength=strength, levels=levels)
    assert got.equals(_reference(ts, high, low, "1m", strength, levels))


# -- streaming == vectorised -----------------------------------------------------------------
@pytest.mark.parametrize("strength, levels", [(1, 4), (2, 3), (3, 3)])
def test_streaming_equals_vectorised_on_real_eth(eth_slice, strength, levels):
    ts, high, low = _arrays(eth_slice)
    vec = detect_pivots(ts, high, low, timeframe="1m", strength=strength, levels=levels)
    streamed = _stream(ts, high, low, strength=strength, levels=levels)
    assert len(streamed) == vec.height > 100
    assert pivots_to_frame(streamed).equals(_by_confirmation(vec))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 500), strength=st.integers(1, 4),
       levels=st.integers(1, 4), tick=st.sampled_from([0.01, 0.5, 2.0]))
def test_streaming_equals_vectorised_on_random_walks(seed, n, strength, levels, tick):
    ts, high, low = _random_walk(seed, n, tick)
    vec = detect_pivots(ts, high, low, timeframe="1m", strength=strength, levels=levels)
    streamed = _stream(ts, high, low, strength=strength, levels=levels)
    assert pivots_to_frame(streamed).equals(_by_confirmation(vec))


def test_streaming_on_calendar_months_confirms_at_next_month():
    ts = np.array([np.datetime64(f"2024-{m:02d}-01", "ms").astype(np.int64) for m in range(1, 8)])
    high = np.array([1.0, 2, 5, 2, 1, 3, 1])
    vec = detect_pivots(ts, high, high - 0.5, timeframe="1M", strength=2, levels=1)
    first = vec.filter(pl.col("pivot_type") == "L1H").row(0, named=True)
    # the March high is confirmed by the May candle, which closes on 1 June
    assert first["ts"] == ts[2]
    assert first["confirmed_ts"] == np.datetime64("2024-06-01", "ms").astype(np.int64)
    streamed = _stream(ts, high, high - 0.5, timeframe="1M", strength=2, levels=1)
    assert pivots_to_frame(streamed).equals(_by_confirmation(vec))


def test_streaming_returns_shared_empty_tuple_when_nothing_confirmed():
    det = StreamingPivotDetector("1m", strength=2, levels=3)
    first = det.update(0, 10.0, 9.0)
    second = det.update(MIN, 11.0, 10.0)
    assert first == () and first is second


# -- no lookahead and structure --------------------------------------------------------------
def _assert_no_lookahead(ts, high, low, cut, strength, levels):
    full = detect_pivots(ts, high, low, timeframe="1m", strength=strength, levels=levels)
    known_at = int(close_ts(int(ts[cut]), "1m"))
    upto = detect_pivots(ts[: cut + 1], high[: cut + 1], low[: cut + 1], timeframe="1m",
                         strength=strength, levels=levels)
    assert upto.equals(full.filter(pl.col("confirmed_ts") <= known_at))


@SETTINGS
@given(data=st.data(), strength=st.integers(1, 3), levels=st.integers(1, 4))
def test_no_lookahead_on_real_eth(eth_slice, data, strength, levels):
    ts, high, low = _arrays(eth_slice)
    cut = data.draw(st.integers(0, ts.shape[0] - 1), label="cut")
    _assert_no_lookahead(ts, high, low, cut, strength, levels)


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), strength=st.integers(1, 3),
       levels=st.integers(1, 4), tick=st.sampled_from([0.01, 0.5, 2.0]))
def test_no_lookahead_on_random_walks(data, seed, strength, levels, tick):
    ts, high, low = _random_walk(seed, 600, tick)
    cut = data.draw(st.integers(0, ts.shape[0] - 1), label="cut")
    _assert_no_lookahead(ts, high, low, cut, strength, levels)


def test_confirmed_after_pivot_and_levels_nest(eth_slice):
    ts, high, low = _arrays(eth_slice)
    piv = detect_pivots(ts, high, low, timeframe="1m", strength=2, levels=4)
    assert (piv["confirmed_ts"] > piv["ts"]).all()
    # level-1 pivots are confirmed exactly `strength` candles later
    l1 = piv.filter(pl.col("level") == 1)
    rows = np.searchsorted(ts, l1["ts"].to_numpy())
    assert np.array_equal(l1["confirmed_ts"].to_numpy(), ts[rows + 2] + MIN)
    for level in range(1, 4):
        for kind in "HL":
            lower = piv.filter(pl.col("pivot_type") == f"L{level}{kind}")
            upper = piv.filter(pl.col("pivot_type") == f"L{level + 1}{kind}")
            assert upper.height > 0
            joined = upper.join(lower, on="ts", how="left", suffix="_lower")
            # each level-(n+1) pivot is a level-n pivot, known no earlier than at level n
            assert joined["price_lower"].null_count() == 0
            assert (joined["price"] == joined["price_lower"]).all()
            assert (joined["confirmed_ts"] > joined["confirmed_ts_lower"]).all()


# -- errors and persistence ------------------------------------------------------------------
def test_bad_input_raises_typed_errors():
    ts = np.array([0, MIN, MIN, 3 * MIN])
    high = np.array([2.0, 3.0, 2.5, 2.0])
    with pytest.raises(DataValidationError, match=r"row 2.*ts_increasing"):
        detect_pivots(ts, high, high - 1, timeframe="1m")
    with pytest.raises(DataValidationError, match=r"row 1.*finite_prices"):
        detect_pivots(np.arange(4) * MIN, np.array([2.0, np.nan, 2, 2]), high - 1,
                      timeframe="1m")
    with pytest.raises(ParameterError, match="strength"):
        detect_pivots(np.arange(4) * MIN, high, high - 1, timeframe="1m", strength=0)
    with pytest.raises(ParameterError, match="levels"):
        StreamingPivotDetector("1m", levels=0)
    with pytest.raises(ParameterError, match="timeframe '7m'"):
        StreamingPivotDetector("7m")
    with pytest.raises(ParameterError, match="one length"):
        detect_pivots(np.arange(3) * MIN, high, high - 1, timeframe="1m")


def test_persist_pivots_roundtrip_and_confirmed_until(eth_store, eth_slice):
    written = persist_pivots(eth_store, "ETH/USDT", "1m", strength=2, levels=3)
    assert written.equals(pivots_from_frame(eth_slice, "1m"))
    stored = eth_store.read_pivots("ETH/USDT", "1m").sort("ts", "level", "pivot_type")
    assert stored.cast(written.schema).equals(written)
    # what the store hands out "as known at T" is what detection on data up to T gives
    cut = 1_234
    known_at = int(close_ts(int(eth_slice["ts"][cut]), "1m"))
    as_of = eth_store.read_pivots("ETH/USDT", "1m", confirmed_until=known_at)
    expected = pivots_from_frame(eth_slice.head(cut + 1), "1m")
    assert as_of.sort("ts", "level", "pivot_type").cast(expected.schema).equals(expected)
