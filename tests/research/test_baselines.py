"""Baselines on a real ETH slice: their signals, the random-entry percentile and the verdict."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.backtest.simulate import SimConfig
from workbench.errors import ParameterError
from workbench.research import baselines as bl


@pytest.fixture
def candles(eth_slice):
    return eth_slice["open"].to_numpy(), eth_slice["close"].to_numpy()


def test_rule_signals_are_causal_and_as_described(candles):
    open_, close = candles
    assert not bl.flat(open_, close).any()
    bh = bl.buy_hold(open_, close)
    assert bh[0] == 1 and not bh[1:].any()
    p = bl.persistence(open_, close)
    assert p[0] == 0 and p[5] == np.sign(close[5] - close[4])
    # causal: the signals of the first 500 bars do not change when later bars are cut off
    for rule in bl.BASELINES.values():
        assert np.array_equal(rule(open_[:500], close[:500]), rule(open_, close)[:500])


def test_buy_hold_earns_the_instrument_move_and_flat_earns_nothing(candles):
    open_, close = candles
    seg = [bl.Segment(open_, close, bl.flat(open_, close))]
    out = bl.compare(seg, "1m", SimConfig(fee=0.0, size_mode="fraction", size=1.0), draws=20)
    assert out["flat"]["return_pct"] == 0.0 and out["flat"]["n_trades"] == 0
    assert out["buy_hold"]["return_pct"] == pytest.approx(close[-1] / open_[1] - 1, rel=1e-9)
    assert out["model"] == out["flat"]


def test_random_entries_match_the_models_trade_count(candles):
    open_, close = candles
    rng = np.random.default_rng(0)
    for long_only in (False, True):
        sig = bl.random_signal(len(close), 12, long_only, rng)
        _, n = bl.bar_returns(open_, close, sig, SimConfig(long_only=long_only))
        assert n == 12


def test_model_percentile_among_random_draws(candles):
    open_, close = candles
    # the perfect-foresight signal (cheating on purpose) beats every random draw
    oracle = np.zeros(len(close), dtype=np.int8)
    oracle[:-2] = np.sign(close[2:] - open_[1:-1]).astype(np.int8)
    out = bl.compare([bl.Segment(open_, close, oracle)], "1m", SimConfig(fee=0.0), draws=100)
    assert out["random_entries"]["model_percentile"] == 100.0
    assert out["random_entries"]["draws"] == 100
    assert "beats every baseline" in out["verdict"]


def test_chained_segments_cover_each_window(candles):
    open_, close = candles
    segs = [bl.Segment(open_[a:a + 500], close[a:a + 500], np.zeros(500, np.int8))
            for a in (0, 1000)]
    out = bl.compare(segs, "1m", SimConfig(fee=0.0, size_mode="fraction", size=1.0), draws=5)
    moves = [close[a + 499] / open_[a + 1] for a in (0, 1000)]
    assert out["buy_hold"]["return_pct"] == pytest.approx(moves[0] * moves[1] - 1, rel=1e-9)
    assert out["buy_hold"]["n_trades"] == 2


def test_verdict_names_what_the_model_does_not_beat():
    row = {k: 0.0 for k in bl.SHOWN}
    table = {"model": {**row, "return_pct": -0.01, "n_trades": 3}, "flat": row,
             "buy_hold": {**row, "return_pct": -0.05}}
    text = bl.verdict(table)
    assert text.startswith("The model (-1.00%) does not beat flat (always HOLD) (+0.00%)")
    assert "it beats buy & hold" in text
    table["model"]["n_trades"] = 0
    assert bl.verdict(table).startswith("The model (no trade, -1.00%) does not beat")


def test_compare_refuses_no_segments():
    with pytest.raises(ParameterError, match="segment"):
        bl.compare([], "1m")


def test_ledger_baselines_count_hits_like_the_ledger_summary():
    import polars as pl

    moves = [0.2, 0.3, -0.01, -0.2, None, 0.01]  # BUY BUY HOLD SELL (unknown) HOLD
    ledger = pl.DataFrame({"target_ts": [1, 2, 3, 4, 5, 6], "realised_move": moves,
                           "predicted_action": ["BUY", "SELL", "SELL", "SELL", "BUY", "BUY"]})
    out = bl.ledger_baselines(ledger, hold_band=0.05)
    assert out["rows"] == 5
    assert out["hit_rate"] == {"model": pytest.approx(2 / 5), "always_hold": pytest.approx(2 / 5),
                               "persistence": pytest.approx(1 / 4)}
    assert out["verdict"] == ("The model's hit rate (40.0%, 5 predictions) does not beat "
                              "always hold (40.0%).")
