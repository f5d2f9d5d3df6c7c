"""Backtest statistics: every key present and documented, values on hand-made series."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.backtest import stats as st
from workbench.backtest.simulate import SimConfig, simulate

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
CLOSE = OPEN + 0.5


def _stats(signal, **cfg):
    config = SimConfig(**{"cash": 100, "fee": 0.01, **cfg})
    sim = simulate(OPEN, CLOSE, signal, config)
    return sim, st.compute_stats(sim, OPEN, CLOSE, "1m", config.cash)


def test_every_stats_key_is_present_and_documented():
    _, stats = _stats([1, 0, -1, 0, 0, 0])
    assert set(stats) == set(st.STATS_KEYS)
    assert all(isinstance(v, str) and len(v) > 10 for v in st.STATS_KEYS.values())
    assert "annualis" in st.__doc__ and "525,600" in st.__doc__


def test_stats_values_on_a_hand_made_series():
    sim, stats = _stats([1, 0, -1, 0, 0, 0])
    assert stats["final_equity"] == pytest.approx(99.13)
    assert stats["pnl"] == pytest.approx(-0.87)
    assert stats["return_pct"] == pytest.approx(-0.0087)
    assert stats["n_trades"] == 2 and stats["n_closed_trades"] == 1
    assert stats["win_rate"] == 1.0
    assert stats["avg_trade_return"] == pytest.approx(2 / 11 - 0.24 / 11)
    assert stats["fees_paid"] == pytest.approx(0.37)
    assert stats["exposure"] == pytest.approx(5 / 6)
    assert stats["max_drawdown"] == pytest.approx(1 - 99.13 / 101.39)
    assert stats["buy_hold_return"] == pytest.approx(15.5 / 10 - 1)
    r = sim.equity[1:] / sim.equity[:-1] - 1
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(525_600))
    assert stats["n_bars"] == 6


def test_no_trades_gives_nan_rates_and_zero_sharpe():
    _, stats = _stats([0] * 6)
    assert stats["n_trades"] == 0 and math.isnan(stats["win_rate"])
    assert stats["sharpe"] == 0.0 and stats["max_drawdown"] == 0.0 and stats["exposure"] == 0.0


@pytest.mark.parametrize("tf, bars", [("1m", 525_600), ("1h", 8_760), ("1d", 365), ("1M", 12)])
def test_sharpe_annualisation_follows_the_timeframe(tf, bars):
    assert st.bars_per_year(tf) == bars


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
