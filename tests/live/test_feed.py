"""Feeds: one emit path for replay and push, in ts order, isolated from failing subscribers."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import polars as pl
import pytest

from workbench.errors import DataValidationError, ParameterError
from workbench.features.pivots import detect_pivots
from workbench.features.windows import SeriesArrays
from workbench.live.feed import PushFeed, ReplayFeed

SYM, TF = "ETH/USDT", "1m"


class Recorder:
    """Records every event with the feed clock at delivery."""

    def __init__(self, feed):
        self.feed, self.log = feed, []
        feed.subscribe_candle_completion(self.candle, SYM, TF)
        feed.subscribe_pivot_events(self.pivot, SYM, TF)

    def candle(self, ev):
        self.log.append(("candle", ev.ts, ev.close_ts, self.feed.now))

    def pivot(self, ev):
        self.log.append(("pivot", ev.pivot_ts, ev.confirmed_ts, self.feed.now, ev.pivot_type,
                         ev.price))

    def candles(self):
        return [e[1] for e in self.log if e[0] == "candle"]

    def pivots(self):
        return [(e[1], e[2], e[5], e[4]) for e in self.log if e[0] == "pivot"]


def _series(frame):
    return SeriesArrays.from_frame(SYM, TF, frame)


def _expected_pivots(frame, after_close):
    piv = detect_pivots(frame["ts"], frame["high"], frame["low"], timeframe=TF)
    piv = piv.filter(pl.col("confirmed_ts") > after_close).sort("confirmed_ts", "level",
                                                                 "pivot_type", "ts")
    return list(zip(piv["ts"], piv["confirmed_ts"], piv["price"], piv["pivot_type"]))


def test_replay_emits_every_candle_once_and_pivots_at_confirmation_like_vectorised(eth_slice):
    series = _series(eth_slice)
    start = int(series.ts[500])
    feed = ReplayFeed(series, start=start)
    rec = Recorder(feed)
    stats = feed.run()
    assert rec.candles() == series.ts[500:].tolist()
    assert stats["candles"] == 2500 and stats["state"] == "finished"
    # pivots: same set as the vectorised detector over the whole slice, confirmed in the replay
    # (the detector was warmed up on the 500 history rows)
    got = rec.pivots()
    assert len(got) == stats["pivots"] > 100
    assert sorted(got) == sorted(_expected_pivots(eth_slice, start))
    assert len(set(got)) == len(got)  # every pivot once


def test_events_are_in_ts_order_candle_first_then_its_pivots(eth_slice):
    feed = ReplayFeed(_series(eth_slice.head(800)))
    rec = Recorder(feed)
    feed.run()
    last_close = None
    clocks = []
    for entry in rec.log:
        if entry[0] == "candle":
            last_close = entry[2]
            assert entry[3] == entry[2]  # the feed clock is the candle's close
        else:
            # a pivot follows the candle whose close confirms it, never before
            assert entry[2] == last_close == entry[3]
            assert entry[1] < entry[2]
        clocks.append(entry[3])
    assert clocks == sorted(clocks)
    assert any(e[0] == "pivot" and e[4].startswith("L3") for e in rec.log)


def test_pivot_type_filter_and_unsubscribe(eth_slice):
    feed = ReplayFeed(_series(eth_slice.head(1500)), end=int(eth_slice["ts"][999]))
    only_l2, all_candles = [], []
    feed.subscribe_pivot_events(lambda ev: only_l2.append(ev.pivot_type), SYM, TF, ["L2H", "L2L"])
    handle = feed.subscribe_candle_completion(lambda ev: all_candles.append(ev.ts), SYM, TF)
    feed.subscribe_candle_completion(
        lambda ev: handle.unsubscribe() if len(all_candles) == 100 else None, SYM, TF)
    stats = feed.run()
    assert only_l2 and set(only_l2) <= {"L2H", "L2L"}
    assert len(all_candles) == 100 and stats["candles"] == 1000


def test_subscribing_to_another_series_is_rejected(eth_slice):
    feed = ReplayFeed(_series(eth_slice.head(50)))
    with pytest.raises(ParameterError, match="serves ETH/USDT 1m"):
        feed.subscribe_candle_completion(print, "BTC/USDT", "1m")
    with pytest.raises(ParameterError, match="speed"):
        ReplayFeed(_series(eth_slice.head(50)), speed=0)


def test_a_failing_subscriber_is_logged_counted_and_never_stops_the_others(eth_slice, caplog):
    feed = ReplayFeed(_series(eth_slice.head(600)))
    before, after = [], []

    def flaky(ev):
        if ev.index % 50 == 0:
            raise RuntimeError(f"bad candle {ev.ts}")

    def flaky_pivot(ev):
        raise KeyError("pivot handler broken")

    feed.subscribe_candle_completion(lambda ev: before.append(ev.ts), SYM, TF)
    feed.subscribe_candle_completion(flaky, SYM, TF)
    feed.subscribe_pivot_events(flaky_pivot, SYM, TF)
    feed.subscribe_candle_completion(lambda ev: after.append(ev.ts), SYM, TF)
    stats = feed.run()
    assert len(before) == len(after) == 600
    report = stats["errors"]
    assert report["by_subscriber"]["test_a_failing_subscriber_is_logged_counted_and_never_"
                                   "stops_the_others.<locals>.flaky"] == 12
    assert report["by_subscriber"]["test_a_failing_subscriber_is_logged_counted_and_never_"
                                   "stops_the_others.<locals>.flaky_pivot"] == stats["pivots"]
    assert stats["subscriber_errors"] == 12 + stats["pivots"]
    assert any("bad candle" in r.exc_text for r in caplog.records if r.exc_text)


def test_background_replay_pauses_resumes_and_stops(eth_slice):
    feed = ReplayFeed(_series(eth_slice), speed=60_000.0)  # one 1m candle per millisecond
    seen = []
    feed.subscribe_candle_completion(lambda ev: seen.append(ev.ts), SYM, TF)
    feed.start()
    _wait_for(lambda: len(seen) >= 20)
    feed.pause()
    time.sleep(0.05)
    frozen = len(seen)
    time.sleep(0.1)
    assert len(seen) == frozen and feed.state == "paused"
    feed.resume()
    _wait_for(lambda: len(seen) >= frozen + 20)
    feed.stop()
    stats = feed.join(timeout=5)
    assert stats["state"] == "stopped" and 40 <= stats["candles"] < 3000
    assert seen == eth_slice["ts"][: len(seen)].to_list()


def test_paced_replay_is_not_faster_than_asked(eth_slice):
    feed = ReplayFeed(_series(eth_slice.head(21)), speed=6_000.0)  # 10 ms per candle
    t0 = time.perf_counter()
    feed.run()
    assert time.perf_counter() - t0 >= 0.19


@pytest.mark.parametrize("speed", [None, 1.0])
def test_step_emits_exactly_one_candle_of_a_paused_replay_at_any_pace(eth_slice, speed):
    feed = ReplayFeed(_series(eth_slice), speed=speed)
    seen = []
    feed.subscribe_candle_completion(lambda ev: seen.append(ev.ts), SYM, TF)
    with pytest.raises(ParameterError, match="paused"):
        feed.step()
    feed.pause()  # before the start: nothing is emitted until a step
    feed.start()
    time.sleep(0.05)
    assert seen == [] and feed.state == "paused"
    for n in (1, 2, 3):
        feed.step()
        _wait_for(lambda: len(seen) == n)
    time.sleep(0.05)
    assert seen == eth_slice["ts"][:3].to_list() and feed.state == "paused"
    feed.stop()
    assert feed.join(timeout=5)["state"] == "stopped"


def test_stop_and_pause_cut_a_one_day_wait_short():
    """At 1x on daily candles each wait is 86,400 s; stop() must not wait for it."""
    day = 86_400_000
    frame = pl.DataFrame({"ts": [i * day for i in range(5)], "open": [1.0] * 5,
                          "high": [2.0] * 5, "low": [0.5] * 5, "close": [1.5] * 5,
                          "volume": [1.0] * 5})
    for then in ("stop", "pause"):
        feed = ReplayFeed(SeriesArrays.from_frame(SYM, "1d", frame), speed=1.0)
        seen = []
        feed.subscribe_candle_completion(lambda ev: seen.append(ev.ts), SYM, "1d")
        feed.start()
        _wait_for(lambda: len(seen) == 1)
        time.sleep(0.05)  # inside the one-day wait
        t0 = time.monotonic()
        getattr(feed, then)()
        _wait_for(lambda: feed.state == ("stopped" if then == "stop" else "paused"), 2)
        if then == "pause":
            feed.step()  # a step does not wait for the pace either
            _wait_for(lambda: len(seen) == 2, 2)
            feed.stop()
        assert feed.join(timeout=2)["state"] == "stopped"
        assert time.monotonic() - t0 < 2 and len(seen) == (1 if then == "stop" else 2)


def _wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


# -- push feed ----------------------------------------------------------------------------------
@pytest.fixture
def push_store(tmp_store, eth_slice):
    tmp_store.replace_series(SYM, TF, eth_slice.head(2000))
    return tmp_store


def test_pushed_candles_are_stored_and_emitted_exactly_like_replay(push_store, eth_slice):
    feed = PushFeed.from_store(push_store, SYM, TF, history=2000)
    rec = Recorder(feed)
    tail = eth_slice.slice(2000, 400)
    for row in tail.head(30).iter_rows(named=True):
        assert feed.push(row) == 1
    assert feed.push_many(tail.slice(30)) == 370
    replay = ReplayFeed(_series(eth_slice.head(2400)), start=int(eth_slice["ts"][2000]))
    rec_replay = Recorder(replay)
    replay.run()
    assert [e[:3] + e[4:] for e in rec.log] == [e[:3] + e[4:] for e in rec_replay.log]
    assert push_store.read_ohlcv(SYM, TF).equals(eth_slice.head(2400))
    assert feed.series.length == 2400
    np.testing.assert_array_equal(feed.series.features, _series(eth_slice.head(2400)).features)


@pytest.mark.parametrize("change, rule", [
    (dict(high=1.0), "high_below_open_close"),
    (dict(close=math.nan), "not_finite"),
    (dict(volume=-1.0), "negative_volume"),
    (dict(ts_shift=60_000), "continuity"),  # skips a candle
    (dict(ts_shift=30_000), "continuity"),  # off the 1m grid
])
def test_push_rejects_bad_candles_and_changes_nothing(push_store, eth_slice, change, rule):
    feed = PushFeed.from_store(push_store, SYM, TF, history=500)
    rec = Recorder(feed)
    row = eth_slice.row(2000, named=True)
    row["ts"] += change.pop("ts_shift", 0)
    row.update(change)
    before = push_store.read_ohlcv(SYM, TF)
    with pytest.raises(DataValidationError) as info:
        feed.push(row)
    assert info.value.rule == rule or (rule == "continuity"
                                       and info.value.rule in ("step", "off_grid"))
    assert str(row["ts"]) in str(info.value) or info.value.ts == row["ts"]
    assert push_store.read_ohlcv(SYM, TF).equals(before)
    assert feed.series.length == 500 and rec.log == []
    feed.push(eth_slice.row(2000, named=True))  # the feed still works afterwards
    assert push_store.last_ts(SYM, TF) == eth_slice["ts"][2000]


def test_push_ignores_a_resent_candle_and_the_first_closed_value_stands(push_store, eth_slice):
    feed = PushFeed.from_store(push_store, SYM, TF, history=500)
    rec = Recorder(feed)
    assert feed.push(eth_slice.row(2000, named=True)) == 1
    assert feed.push(eth_slice.row(2000, named=True)) == 0  # re-sent, identical
    assert feed.push(eth_slice.row(1990, named=True)) == 0  # an older one, identical
    revised = {**eth_slice.row(2000, named=True), "volume": eth_slice["volume"][2000] + 1.0}
    assert feed.push(revised) == 0
    assert (feed.duplicates, feed.revisions) == (2, 1)
    assert feed.revised[-1][1] == eth_slice.row(2000)
    assert feed.revised[-1][2][5] == revised["volume"]
    assert push_store.read_ohlcv(SYM, TF).equals(eth_slice.head(2001))  # first value stands
    assert feed.push_many(eth_slice.slice(1999, 5)) == 3  # overlap dropped, the rest goes on
    assert len(rec.candles()) == 4 and feed.stats()["duplicates"] == 4


def test_push_backfills_a_gap_through_the_callback_before_going_on(push_store, eth_slice):
    asked = []

    def backfill(first, nxt):
        asked.append((first, nxt))
        return eth_slice.filter((pl.col("ts") >= first) & (pl.col("ts") < nxt))

    feed = PushFeed.from_store(push_store, SYM, TF, history=500, backfill=backfill)
    rec = Recorder(feed)
    assert feed.push(eth_slice.row(2005, named=True)) == 6  # 2000..2004 backfilled first
    assert asked == [(eth_slice["ts"][2000], eth_slice["ts"][2005])]
    assert feed.backfilled == 5 and rec.candles() == eth_slice["ts"][2000:2006].to_list()
    assert push_store.read_ohlcv(SYM, TF).equals(eth_slice.head(2006))
    feed.backfill = lambda first, nxt: eth_slice.slice(2006, 1)  # fills only part of the gap
    with pytest.raises(DataValidationError) as info:
        feed.push(eth_slice.row(2010, named=True))
    assert info.value.rule == "continuity"
    assert push_store.last_ts(SYM, TF) == eth_slice["ts"][2005]


def test_push_batch_with_a_bad_row_stores_none_of_it(push_store, eth_slice):
    feed = PushFeed.from_store(push_store, SYM, TF, history=100)
    batch = eth_slice.slice(2000, 10).with_columns(
        pl.when(pl.int_range(10) == 6).then(-5.0).otherwise(pl.col("low")).alias("low"))
    with pytest.raises(DataValidationError) as info:
        feed.push_many(batch)
    assert info.value.row == 6 and info.value.rule == "price_not_positive"
    assert push_store.last_ts(SYM, TF) == eth_slice["ts"][1999]
    assert feed.candles_emitted == 0


def test_push_feed_refuses_a_snapshot_behind_the_store(push_store, eth_slice):
    feed = PushFeed.from_store(push_store, SYM, TF, history=100)
    push_store.append_candles(SYM, TF, eth_slice.slice(2000, 1))  # someone else appended
    with pytest.raises(ParameterError, match="from_store"):
        feed.push(eth_slice.row(2001, named=True))


def test_replay_from_store_loads_history_before_start(eth_store, eth_slice):
    start = int(eth_slice["ts"][1000])
    feed = ReplayFeed.from_store(eth_store, SYM, TF, start, int(eth_slice["ts"][1099]),
                                 history=300)
    ts = []
    feed.subscribe_candle_completion(lambda ev: ts.append(ev.ts), SYM, TF)
    feed.run()
    assert feed.series.length == 400 and feed.start_index == 300
    assert ts == eth_slice["ts"][1000:1100].to_list()


def test_background_failure_is_reraised_by_join(eth_slice):
    feed = ReplayFeed(_series(eth_slice.head(10)))
    feed._emit_range = None  # a broken feed (not a subscriber) must surface, not vanish in a thread
    feed.start()
    with pytest.raises(TypeError):
        feed.join(timeout=5)
    assert threading.active_count() >= 1
