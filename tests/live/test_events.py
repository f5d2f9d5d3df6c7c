"""Events are small slots dataclasses; subscriber errors are counted, logged and reported."""
from __future__ import annotations

import logging

import pytest

from workbench.live.events import (CandleCompletionEvent, PivotEvent, SubscriberErrors,
                                   describe)


def _candle():
    return CandleCompletionEvent("ETH/USDT", "1m", 60_000, 120_000, 1.0, 2.0, 0.5, 1.5, 10.0, 7)


def test_events_are_slots_dataclasses_without_instance_dict():
    ev, pv = _candle(), PivotEvent("ETH/USDT", "1m", 0, 180_000, "L2H", 2, 2.0, 2, 3)
    for obj in (ev, pv):
        assert not hasattr(obj, "__dict__")
        with pytest.raises(AttributeError):
            obj.extra = 1
    assert ev.ohlcv == (1.0, 2.0, 0.5, 1.5, 10.0)
    assert pv.is_high and not PivotEvent("E", "1m", 0, 1, "L1L", 1, 1.0, 2, 0).is_high


def test_subscriber_errors_count_every_error_but_log_only_the_first(caplog):
    errors = SubscriberErrors("feed test", keep=2, log_first=1)
    with caplog.at_level(logging.ERROR, logger="workbench.live"):
        for ts in (1, 2, 3):
            errors.record("Bad.cb", ts, ValueError(f"boom {ts}"))
    report = errors.report()
    assert report["total"] == 3 and report["by_subscriber"] == {"Bad.cb": 3}
    assert [e["event_ts"] for e in report["recent"]] == [2, 3]
    assert "boom 3" in report["recent"][-1]["error"]
    assert len([r for r in caplog.records if "Bad.cb" in r.getMessage()]) == 1


def test_describe_names_bound_methods_and_functions():
    class Sub:
        def hook(self, ev):
            pass

    def plain(ev):
        pass

    assert describe(Sub().hook) == "test_describe_names_bound_methods_and_functions.<locals>.Sub.hook"
    assert describe(plain).endswith("plain")
