"""Parity with a real peer: backtesting.py 0.6.6 on the same SMA-crossover signals of real ETH.

Same trades (entry/exit bar, size, prices, PnL, return) and the same final equity within 1e-9
relative, for fixed-size long/short and long-only, filling at the next open and at the close.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from workbench.backtest.signals import sma_cross_signals as sma_signals
from workbench.backtest.simulate import SimConfig, simulate

backtesting = pytest.importorskip("backtesting")

UNITS = 2
CASH = 100_000.0
FEE = 0.001


def sma_cross_signals(close: np.ndarray) -> np.ndarray:
    """SMA(10)/SMA(30) crossovers with the last bar's signal cleared.

    backtesting.py never acts on bar 0 (the warm-up clears it), nor fills the last bar's signal
    with trade_on_close.
    """
    sig = sma_signals(close, 10, 30)
    sig[-1] = 0
    return sig


def _peer(frame, sig, long_only, trade_on_close):
    from backtesting import Backtest, Strategy

    class SignalStrategy(Strategy):
        def init(self):
            pass

        def next(self):
            s = sig[len(self.data) - 1]
            if s == 1 and not self.position.is_long:
                self.buy(size=UNITS)
            elif s == -1 and long_only and self.position.is_long:
                self.position.close()
            elif s == -1 and not long_only and not self.position.is_short:
                self.sell(size=UNITS)

    df = pd.DataFrame({"Open": frame["open"].to_numpy(), "High": frame["high"].to_numpy(),
                       "Low": frame["low"].to_numpy(), "Close": frame["close"].to_numpy(),
                       "Volume": frame["volume"].to_numpy()},
                      index=pd.to_datetime(frame["ts"].to_numpy(), unit="ms"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SignalStrategy, cash=CASH, commission=FEE,
                      trade_on_close=trade_on_close, exclusive_orders=True)
        return bt.run()


@pytest.mark.parametrize("long_only", [False, True], ids=["long_short", "long_only"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_trades_and_final_equity_equal_backtesting_py(eth_slice, long_only, fill):
    frame = eth_slice.slice(0, 1500)
    sig = sma_cross_signals(frame["close"].to_numpy())
    stats = _peer(frame, sig, long_only, trade_on_close=fill == "close")
    ours = simulate(frame["open"].to_numpy(), frame["close"].to_numpy(), sig,
                    SimConfig(fee=FEE, fill=fill, long_only=long_only, size=UNITS, cash=CASH))
    theirs = stats["_trades"]
    closed = {k: v[~ours.trades["is_open"]] for k, v in ours.trades.items()}
    assert len(theirs) > 20
    assert len(theirs) == closed["size"].shape[0]
    assert theirs["EntryBar"].tolist() == closed["entry_idx"].tolist()
    assert theirs["ExitBar"].tolist() == closed["exit_idx"].tolist()
    assert theirs["Size"].tolist() == closed["size"].tolist()
    for col, key in [("EntryPrice", "entry_price"), ("ExitPrice", "exit_price"),
                     ("PnL", "pnl"), ("ReturnPct", "return_pct")]:
        np.testing.assert_allclose(theirs[col].to_numpy(), closed[key], rtol=1e-9, atol=1e-12)
    assert ours.final_equity == pytest.approx(stats["Equity Final [$]"], rel=1e-9)
    if long_only:
        assert (closed["size"] > 0).all()
    else:
        assert (closed["size"] < 0).any() and (closed["size"] > 0).any()


# -- the statistics block: every key equals backtesting.py's on the same trades ---------------

def _series(name, eth_1m):
    """A real slice: 60 days of ETH 15m (24/7: 365-day years) or GOOG daily (252-day years)."""
    if name == "eth_15m":
        from workbench.data.resample import resample_ohlcv

        return resample_ohlcv(eth_1m.slice(0, 60 * 1440), "1m", "15m")
    from workbench.paths import DATA_DIR

    return pl.read_parquet(DATA_DIR / "goog_1d.parquet")


def _assert_same(key, ours, theirs):
    if isinstance(theirs, pd.Timestamp):
        assert ours.replace(tzinfo=None) == theirs.to_pydatetime(), key
    elif isinstance(theirs, pd.Timedelta) or theirs is pd.NaT:
        assert ours == (None if theirs is pd.NaT else theirs.to_pytimedelta()), key
    elif isinstance(theirs, (int, np.integer)) and not isinstance(theirs, bool):
        assert ours == theirs, key
    else:
        np.testing.assert_allclose(ours, float(theirs), rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("long_only", [False, True], ids=["long_short", "long_only"])
@pytest.mark.parametrize("series", ["eth_15m", "goog_1d"])
def test_stats_equal_backtesting_py(eth_1m, series, long_only):
    from workbench.backtest.stats import STATS_KEYS, compute_stats

    frame = _series(series, eth_1m)
    sig = sma_cross_signals(frame["close"].to_numpy())
    theirs = _peer(frame, sig, long_only, trade_on_close=False)
    sim = simulate(frame["open"].to_numpy(), frame["close"].to_numpy(), sig,
                   SimConfig(fee=FEE, long_only=long_only, size=UNITS, cash=CASH))
    ours = compute_stats(sim, frame["ts"].to_numpy(), frame["close"].to_numpy())
    assert list(ours) == [k for k in theirs.index if not k.startswith("_")] == list(STATS_KEYS)
    assert theirs["# Trades"] > 20
    for key in STATS_KEYS:
        _assert_same(key, ours[key], theirs[key])
    assert ours.annualisation.periods_per_year == (365 if series == "eth_15m" else 252)
