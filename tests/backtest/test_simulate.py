"""The trade simulator: exact fills on hand-made series, and agreement with a bar-by-bar loop."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.backtest.simulate import SimConfig, simulate, target_direction
from workbench.errors import ParameterError

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
CLOSE = OPEN + 0.5


def test_target_direction_holds_the_last_action():
    sig = np.array([0, 1, 0, 0, -1, 0, 1])
    assert target_direction(sig).tolist() == [0, 1, 1, 1, -1, -1, 1]
    assert target_direction(sig, long_only=True).tolist() == [0, 1, 1, 1, 0, 0, 1]


def test_next_open_long_then_reverse_short_exact_fills():
    r = simulate(OPEN, CLOSE, [1, 0, -1, 0, 0, 0], SimConfig(fee=0.01, size=1, cash=100))
    assert r.fill_idx.tolist() == [1, 3]
    assert r.fill_units.tolist() == [1.0, -2.0]
    assert r.fill_price.tolist() == [11.0, 13.0]
    assert r.fill_fee == pytest.approx([0.11, 0.26])
    t = r.trades
    assert t["entry_idx"].tolist() == [1, 3] and t["exit_idx"].tolist() == [3, -1]
    assert t["size"].tolist() == [1.0, -1.0]
    assert t["pnl"][0] == pytest.approx(2.0 - 0.11 - 0.13)
    assert t["is_open"].tolist() == [False, True]
    assert t["exit_price"][1] == 15.5 and t["exit_fee"][1] == 0.0  # marked, no exit fee
    assert r.position.tolist() == [0, 1, 1, -1, -1, -1]
    assert r.equity == pytest.approx([100, 100.39, 101.39, 101.13, 100.13, 99.13])
    assert r.cash == pytest.approx(114.63)


def test_close_fill_trades_on_the_signal_bar():
    r = simulate(OPEN, CLOSE, [1, 0, -1, 0, 0, 0], SimConfig(fee=0.0, fill="close", cash=100))
    assert r.fill_idx.tolist() == [0, 2]
    assert r.fill_price.tolist() == [10.5, 12.5]
    assert r.trades["pnl"][0] == pytest.approx(2.0)
    assert r.position.tolist() == [1, 1, -1, -1, -1, -1]
    assert r.final_equity == pytest.approx(100 + 2.0 + (12.5 - 15.5))


def test_long_only_sell_goes_flat():
    r = simulate(OPEN, CLOSE, [1, 0, -1, 0, 1, 0], SimConfig(fee=0.0, long_only=True, cash=100))
    assert r.fill_idx.tolist() == [1, 3, 5]
    assert r.fill_units.tolist() == [1.0, -1.0, 1.0]
    assert r.position.tolist() == [0, 1, 1, 0, 0, 1]
    assert r.trades["size"].tolist() == [1.0, 1.0]
    assert r.final_equity == pytest.approx(100 + 2.0 + 0.5)


def test_slippage_moves_every_fill_against_the_trader():
    r = simulate(OPEN, CLOSE, [1, 0, -1, 0, 0, 0], SimConfig(fee=0.0, slippage=0.05, cash=100))
    assert r.fill_price == pytest.approx([11.55, 12.35])  # buy 11 * 1.05, sell 13 * 0.95
    assert r.trades["entry_price"] == pytest.approx([11.55, 12.35])
    assert r.trades["pnl"][0] == pytest.approx(12.35 - 11.55)


def test_fraction_of_equity_compounds():
    r = simulate(OPEN, CLOSE, [1, 0, -1, 0, 0, 0],
                 SimConfig(fee=0.0, size_mode="fraction", size=1.0, cash=100))
    assert r.fill_units[0] == pytest.approx(100 / 11)
    # the long is sold at 13 for 1300/11; the short commits all of it: 1300/11/13 units
    assert r.trades["size"][1] == pytest.approx(-100 / 11)
    assert r.final_equity == pytest.approx(2 * 1300 / 11 - 100 / 11 * 15.5)


@pytest.mark.parametrize("size_mode, size", [("fixed", 1.0), ("fraction", 0.5)])
def test_no_signal_means_no_trade_and_flat_equity(size_mode, size):
    r = simulate(OPEN, CLOSE, np.zeros(6, dtype=np.int8),
                 SimConfig(size_mode=size_mode, size=size))
    assert r.fill_idx.size == 0 and r.trades["size"].size == 0
    assert r.equity.tolist() == [10_000.0] * 6


def test_signal_on_the_last_bar_never_fills_at_next_open():
    r = simulate(OPEN, CLOSE, [0, 0, 0, 0, 0, 1])
    assert r.fill_idx.size == 0


@pytest.mark.parametrize("bad, rule", [
    (dict(signal=[0, 2, 0, 0, 0, 0]), "signal row 1"),
    (dict(signal=[0, 1]), "same length"),
])
def test_bad_inputs_raise_parameter_error(bad, rule):
    with pytest.raises(ParameterError, match=rule):
        simulate(OPEN, CLOSE, bad["signal"])


@pytest.mark.parametrize("kwargs", [dict(fill="open"), dict(size_mode="kelly"), dict(fee=-0.1),
                                    dict(size=0), dict(size_mode="fraction", size=1.5)])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ParameterError):
        SimConfig(**kwargs)


def _reference(open_, close, signal, cfg: SimConfig):
    """A plain bar-by-bar account, written independently of the vectorised simulator."""
    cash, units, want, equity = cfg.cash, 0.0, 0, []
    pending = None
    for i in range(len(close)):
        if cfg.fill == "next_open" and pending is not None:
            cash, units = _fill(cash, units, pending, open_[i], cfg)
            pending = None
        s = int(signal[i])
        if s != 0:
            want = max(s, 0) if cfg.long_only else s
        if cfg.fill == "close":
            cash, units = _fill(cash, units, want, close[i], cfg)
        elif np.sign(units) != want:
            pending = want
        equity.append(cash + units * close[i])
    return np.array(equity)


def _fill(cash, units, want, price, cfg):
    if np.sign(units) == want:
        return cash, units
    if units:
        px = price * (1 - cfg.slippage * np.sign(units))
        cash += units * px - cfg.fee * abs(units) * px
        units = 0.0
    if want:
        px = price * (1 + cfg.slippage * want)
        size = cfg.size if cfg.size_mode == "fixed" else cfg.size * cash / (px * (1 + cfg.fee))
        units = want * size
        cash -= units * px + cfg.fee * abs(units) * px
    return cash, units


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("size_mode, size", [("fixed", 3.0), ("fraction", 0.7)])
@pytest.mark.parametrize("long_only", [False, True])
def test_vectorised_equity_equals_a_bar_by_bar_account(eth_slice, fill, size_mode, size,
                                                       long_only):
    rng = np.random.default_rng(7)
    sig = rng.choice([-1, 0, 0, 0, 0, 1], size=eth_slice.height).astype(np.int8)
    cfg = SimConfig(fee=0.001, slippage=0.0005, fill=fill, size_mode=size_mode, size=size,
                    long_only=long_only, cash=50_000)
    o, c = eth_slice["open"].to_numpy(), eth_slice["close"].to_numpy()
    r = simulate(o, c, sig, cfg)
    np.testing.assert_allclose(r.equity, _reference(o, c, sig, cfg), rtol=1e-10)
    assert r.trades["size"].shape[0] > 100
