"""Live data sources by name: replay and push built in, a new one is one registration."""
from __future__ import annotations

import pytest

from workbench.errors import ParameterError
from workbench.live.feed import PushFeed, ReplayFeed
from workbench.live.modes import TrainingMode
from workbench.live.session import LiveSession, SessionConfig
from workbench.live.sources import SOURCES, FeedRequest, open_feed, register_source

from ._live_helpers import tiny_handle

SYM, TF = "ETH/USDT", "1m"


def test_replay_and_push_sources_hold_the_requested_history(tmp_store, eth_slice):
    tmp_store.replace_series(SYM, TF, eth_slice.head(500))
    ts = eth_slice["ts"]
    replay = open_feed("replay", tmp_store, SYM, TF, FeedRequest(int(ts[300]), int(ts[349]), 40))
    assert isinstance(replay, ReplayFeed) and replay.start_index == 40
    assert replay.end_index - replay.start_index == 50
    push = open_feed("push", tmp_store, SYM, TF, FeedRequest(history=40))
    assert isinstance(push, PushFeed) and push.series.length == 41
    assert int(push.series.ts[-1]) == int(ts[499])


def test_a_session_follows_a_push_source_by_name(tmp_store, eth_slice):
    tmp_store.replace_series(SYM, TF, eth_slice.head(100))
    handle = tiny_handle()
    session = LiveSession(handle, tmp_store, SYM, TF, TrainingMode.NONE,
                          config=SessionConfig(source="push"))
    assert session.series.length == handle.window  # window - 1 rows of history + the last one
    session.feed.push_many(eth_slice.slice(100, 5))
    assert session.stats()["predictions"] == 5 and tmp_store.last_ts(SYM, TF) == eth_slice["ts"][104]


def test_a_registered_source_is_used_and_unknown_ones_are_named(eth_store, eth_slice):
    opened = []

    def recorded_replay(store, symbol, timeframe, request):
        opened.append(request)
        return open_feed("replay", store, symbol, timeframe, request)

    register_source("recorded_test", recorded_replay)
    try:
        ts = eth_slice["ts"]
        session = LiveSession(tiny_handle(), eth_store, SYM, TF, TrainingMode.NONE,
                              int(ts[100]), int(ts[109]),
                              config=SessionConfig(source="recorded_test"))
        assert session.run()["predictions"] == 10
        assert opened == [FeedRequest(int(ts[100]), int(ts[109]), 31, None, 2, 3)]
    finally:
        SOURCES.unregister("recorded_test")
    with pytest.raises(ParameterError, match="unknown live data source 'ccxt'; known: "
                                             "'exchange', 'push', 'replay'"):
        open_feed("ccxt", eth_store, SYM, TF)
