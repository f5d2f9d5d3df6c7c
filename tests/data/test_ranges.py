"""Range plus warm-up history, counted in rows: regressions for gapped and calendar series.

History used to be counted as ``history x timeframe`` milliseconds before ``start``: a gap before
the range gave the first windows fewer rows, and a monthly series (months of 28-31 days, read as
31) got more rows than asked for.
"""
from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from workbench.data.ranges import load_range
from workbench.errors import NotFoundError
from workbench.live.feed import PushFeed, ReplayFeed

SYM = "ETH/USDT"


def _months(n: int) -> pl.DataFrame:
    ts = pl.datetime_range(datetime(2019, 1, 1, tzinfo=timezone.utc),
                           datetime(2019 + n // 12, n % 12 + 1, 1, tzinfo=timezone.utc),
                           interval="1mo", eager=True, time_zone="UTC")[:n]
    price = pl.Series([100.0 + i for i in range(n)])
    return pl.DataFrame({"ts": ts.dt.epoch("ms"), "open": price, "high": price + 2,
                         "low": price - 2, "close": price + 1, "volume": price * 0 + 5.0})


def test_history_before_a_gap_is_counted_in_rows(tmp_store, eth_slice):
    gapped = pl.concat([eth_slice.slice(0, 500), eth_slice.slice(800, 400)])  # 300 missing
    tmp_store.replace_series(SYM, "1m", gapped)
    start = int(gapped["ts"][600])
    frame, first = load_range(tmp_store, SYM, "1m", start, None, history=200)
    assert first == 200 and frame["ts"][first] == start
    assert frame["ts"].to_list() == gapped["ts"][400:].to_list()
    feed = ReplayFeed.from_store(tmp_store, SYM, "1m", start, int(gapped["ts"][650]), history=200)
    assert feed.start_index == 200 and feed.series.length == 251


def test_history_of_a_monthly_series_is_counted_in_rows(tmp_store):
    months = _months(48)
    tmp_store.replace_series(SYM, "1M", months)
    start = int(months["ts"][30])
    feed = ReplayFeed.from_store(tmp_store, SYM, "1M", start, None, history=12)
    assert feed.start_index == 12 and int(feed.series.ts[0]) == int(months["ts"][18])
    push = PushFeed.from_store(tmp_store, SYM, "1M", history=10)
    assert push.series.ts.tolist() == months["ts"][38:].to_list()


def test_history_is_cut_at_the_first_stored_candle_and_an_empty_range_is_refused(tmp_store,
                                                                                  eth_slice):
    tmp_store.replace_series(SYM, "1m", eth_slice.head(100))
    frame, first = load_range(tmp_store, SYM, "1m", int(eth_slice["ts"][10]), None, history=50)
    assert first == 10 and frame.height == 100
    with pytest.raises(NotFoundError, match="no ETH/USDT 1m candles"):
        load_range(tmp_store, SYM, "1m", int(eth_slice["ts"][99]) + 1, None)
