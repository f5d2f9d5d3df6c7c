"""Backtest statistics: every backtesting.py key present and documented, values on hand-made
series, the calendar of the annualisation, the JSON and the readable forms."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from workbench.backtest import stats as st
from workbench.backtest.simulate import SimConfig, simulate

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
CLOSE = OPEN + 0.5
TS = np.arange(6, dtype=np.int64) * 60_000 + 1_700_000_000_000 // 60_000 * 60_000


def _stats(signal, **cfg):
    config = SimConfig(**{"cash": 100, "fee": 0.01, **cfg})
    sim = simulate(OPEN, CLOSE, signal, config)
    return sim, st.compute_stats(sim, TS, CLOSE)


def test_every_backtesting_py_key_is_present_in_order_and_documented():
    _, stats = _stats([0, 1, 0, -1, 0, 0])
    assert list(stats) == list(st.STATS_KEYS)
    assert list(stats)[:3] == ["Start", "End", "Duration"]
    assert list(stats)[-1] == "Kelly Criterion" and len(stats) == 32
    assert all(isinstance(v, str) and len(v) > 10 for v in st.STATS_KEYS.values())
    assert "annualis" in st.__doc__.lower() and "252" in st.__doc__ and "365" in st.__doc__


def test_stats_values_on_a_hand_made_series():
    # long from bar 2 (open 12) to bar 4 (open 14), then short from bar 4, open at the end
    sim, s = _stats([0, 1, 0, -1, 0, 0])
    assert s["Start"] == datetime.fromtimestamp(TS[0] / 1000, tz=timezone.utc)
    assert s["Duration"] == timedelta(minutes=5)
    assert s["# Trades"] == 1  # the open short is not a closed trade
    assert s["Exposure Time [%]"] == pytest.approx(3 / 6 * 100)  # bars 2, 3, 4
    assert s["Commissions [$]"] == pytest.approx(0.12 + 0.14)
    assert s["Win Rate [%]"] == 100.0
    assert s["Best Trade [%]"] == pytest.approx((2 - 0.26) / 12 * 100)
    assert s["Max. Trade Duration"] == timedelta(minutes=2)
    assert s["Equity Final [$]"] == pytest.approx(sim.final_equity)
    assert s["Return [%]"] == pytest.approx((sim.final_equity / 100 - 1) * 100)
    assert s["Buy & Hold Return [%]"] == pytest.approx((15.5 / 10.5 - 1) * 100)
    dd = 1 - sim.equity / np.maximum.accumulate(sim.equity)
    assert s["Max. Drawdown [%]"] == pytest.approx(-dd.max() * 100) and s["Max. Drawdown [%]"] < 0
    assert math.isnan(s["Kelly Criterion"]) and math.isnan(s["SQN"])  # no loser, one trade


def test_no_trades_gives_nan_trade_stats_and_null_json():
    _, s = _stats([0] * 6)
    assert s["# Trades"] == 0 and math.isnan(s["Win Rate [%]"])
    assert s["Max. Drawdown [%]"] == 0.0 and s["Exposure Time [%]"] == 0.0
    assert s["Avg. Trade Duration"] is None
    doc = s.to_json()
    assert doc["Win Rate [%]"] is None and doc["Avg. Trade Duration"] is None
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN token


def test_json_has_iso_times_and_durations():
    _, s = _stats([0, 1, 0, -1, 0, 0])
    doc = s.to_json()
    assert doc["Start"].endswith("Z") and "T" in doc["Start"]
    assert doc["Duration"] == "PT5M" and doc["Max. Trade Duration"] == "PT2M"
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def test_format_stats_gives_units_and_readable_times():
    _, s = _stats([0, 1, 0, -1, 0, 0])
    shown = dict(st.format_stats(s))
    assert list(shown) == list(st.STATS_KEYS)
    assert shown["Return [%]"].endswith(" %") and shown["Equity Final [$]"].endswith(" $")
    assert shown["Start"].endswith(" UTC") and shown["Duration"] == "5 min"
    assert shown["Kelly Criterion"] == "n/a" and shown["# Trades"] == "1"


def _calendar(ts_ms):
    ts = np.asarray(ts_ms, dtype=np.int64)
    equity = 100 * np.cumprod(np.full(ts.size, 1.001))
    return st.annualisation(ts, equity)


def test_annualisation_follows_the_calendar_of_the_series(eth_1m):
    crypto, returns = _calendar(eth_1m["ts"].to_numpy()[:20 * 1440])  # 20 days of 1m bars
    assert (crypto.calendar, crypto.periods_per_year, crypto.period) == ("24/7", 365, "day")
    assert crypto.n_returns == returns.size == 19  # 20 UTC days, 19 day-to-day returns
    assert "365 days a year" in crypto.describe() and "24/7" in crypto.describe()
    day = 86_400_000
    weekdays = [d * day for d in range(4, 60) if (d + 3) % 7 < 5]  # Mondays..Fridays
    stocks, _ = _calendar(weekdays)
    assert (stocks.calendar, stocks.periods_per_year) == ("trading days", 252)
    weekly, _ = _calendar(np.arange(30) * 7 * day)
    assert (weekly.period, weekly.periods_per_year) == ("week", 52)


def test_drawdown_periods_end_at_recovery_or_at_the_end():
    ts = np.arange(8, dtype=np.int64) * 60_000
    dd = np.array([0, 0.1, 0.3, 0, 0, 0.2, 0.1, 0.05])
    durations, depth = st.drawdown_periods(ts, dd)
    assert durations.tolist() == [180_000, 180_000] and depth.tolist() == [0.3, 0.2]


def test_headline_keeps_the_stored_fraction_columns():
    _, s = _stats([0, 1, 0, -1, 0, 0])
    h = st.headline(s, 100)
    assert h["return_pct"] == pytest.approx(s["Return [%]"] / 100)
    assert h["max_drawdown"] >= 0 and h["n_trades"] == 1


def test_trade_and_equity_frames_carry_timestamps():
    sim, _ = _stats([1, 0, -1, 0, 0, 0])
    ts = np.arange(6, dtype=np.int64) * 60_000
    trades = st.trades_frame(sim, ts)
    assert trades["entry_ts"].to_list() == [60_000, 180_000]
    assert trades["exit_ts"].to_list() == [180_000, None]
    assert trades["side"].to_list() == ["long", "short"]
    eq = st.equity_frame(sim, ts, np.array([1, 0, -1, 0, 0, 0]))
    assert eq.columns == ["ts", "equity", "position", "drawdown", "signal"]
    assert eq["drawdown"].min() == 0.0
