"""Backtest statistics: pure functions from a :class:`SimResult` to numbers and frames.

Every key :func:`compute_stats` returns is listed, with its meaning, in :data:`STATS_KEYS`.
Ratios are plain fractions (``0.05`` is 5%), never percent.

Sharpe annualisation: bars of timeframe ``tf`` are assumed to trade around the clock (crypto),
so a year has ``365 * 24 * 3600 * 1000 / timeframe_ms(tf)`` bars (525,600 for ``1m``, 8,760 for
``1h``, 365 for ``1d``; 12 for the calendar ``1M``). The Sharpe ratio is
``mean(r) / std(r, ddof=1) * sqrt(bars_per_year)`` over the simple per-bar returns ``r`` of the
equity curve, with a risk-free rate of 0.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl

from workbench.backtest.simulate import SimResult
from workbench.data.timeframes import is_calendar, timeframe_ms

YEAR_MS = 365 * 24 * 3600 * 1000

#: every stats key and what it means
STATS_KEYS = {
    "initial_cash": "account value before the first bar",
    "final_equity": "account value at the last close, an open position marked to market",
    "pnl": "final_equity - initial_cash, fees included",
    "return_pct": "pnl / initial_cash (a fraction: 0.05 is 5%)",
    "buy_hold_return": "last close / first open - 1 of the instrument over the range",
    "n_trades": "number of trades, a position still open at the end included",
    "n_closed_trades": "number of trades closed by a later fill",
    "win_rate": "share of closed trades with pnl > 0 (NaN when none closed)",
    "avg_trade_return": "mean return_pct of closed trades, fees included (NaN when none)",
    "best_trade_return": "largest return_pct of a closed trade (NaN when none)",
    "worst_trade_return": "smallest return_pct of a closed trade (NaN when none)",
    "fees_paid": "sum of all fees paid on fills",
    "max_drawdown": "largest fall of equity from its running peak, as a fraction of the peak",
    "sharpe": "annualised Sharpe ratio of per-bar equity returns (see module docstring)",
    "bars_per_year": "the annualisation factor used for sharpe",
    "exposure": "share of bars closing with a non-zero position",
    "n_bars": "number of candles simulated",
}


def bars_per_year(timeframe: str) -> float:
    """Return the number of ``timeframe`` bars in a 365-day, around-the-clock year."""
    if is_calendar(timeframe):
        return 12.0
    return YEAR_MS / timeframe_ms(timeframe)


def max_drawdown(equity: np.ndarray) -> float:
    """Return the largest peak-to-trough fall of ``equity`` as a fraction of the peak."""
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak)) if equity.size else 0.0


def sharpe_ratio(equity: np.ndarray, periods_per_year: float) -> float:
    """Return the annualised Sharpe ratio of the per-bar returns of ``equity`` (0 if flat)."""
    if equity.size < 3:
        return float("nan")
    returns = equity[1:] / equity[:-1] - 1.0
    std = returns.std(ddof=1)
    if not np.isfinite(std):
        return float("nan")
    if std == 0:
        return 0.0
    return float(returns.mean() / std * math.sqrt(periods_per_year))


def _nan_or(values: np.ndarray, fn) -> float:
    return float(fn(values)) if values.size else float("nan")


def compute_stats(sim: SimResult, open_, close, timeframe: str, initial_cash: float) -> dict:
    """Return every :data:`STATS_KEYS` value for one simulation.

    Parameters
    ----------
    sim : the simulator's result.
    open_, close : the candles' opens and closes the simulation ran on.
    timeframe : the candles' timeframe, for the Sharpe annualisation.
    initial_cash : the starting account value.
    """
    trades = sim.trades
    closed = ~trades["is_open"]
    rets = trades["return_pct"][closed]
    final = sim.final_equity
    per_year = bars_per_year(timeframe)
    return {
        "initial_cash": float(initial_cash),
        "final_equity": final,
        "pnl": final - initial_cash,
        "return_pct": final / initial_cash - 1.0,
        "buy_hold_return": float(close[-1] / open_[0] - 1.0),
        "n_trades": int(trades["size"].shape[0]),
        "n_closed_trades": int(closed.sum()),
        "win_rate": _nan_or(trades["pnl"][closed], lambda p: np.mean(p > 0)),
        "avg_trade_return": _nan_or(rets, np.mean),
        "best_trade_return": _nan_or(rets, np.max),
        "worst_trade_return": _nan_or(rets, np.min),
        "fees_paid": float(sim.fill_fee.sum()),
        "max_drawdown": max_drawdown(sim.equity),
        "sharpe": sharpe_ratio(sim.equity, per_year),
        "bars_per_year": per_year,
        "exposure": float(np.mean(sim.position != 0)),
        "n_bars": int(close.shape[0]),
    }


def trades_frame(sim: SimResult, ts: np.ndarray) -> pl.DataFrame:
    """Return the trades list as a frame, with entry/exit timestamps (exit null while open)."""
    t = sim.trades
    exit_idx = t["exit_idx"]
    exit_ts = np.where(exit_idx >= 0, ts[np.maximum(exit_idx, 0)], 0)
    return pl.DataFrame({
        "entry_ts": ts[t["entry_idx"]].astype(np.int64),
        "exit_ts": pl.Series(exit_ts.astype(np.int64)),
        "entry_idx": t["entry_idx"].astype(np.int64),
        "exit_idx": exit_idx.astype(np.int64),
        "side": np.where(t["size"] > 0, "long", "short"),
        "size": t["size"], "entry_price": t["entry_price"], "exit_price": t["exit_price"],
        "entry_fee": t["entry_fee"], "exit_fee": t["exit_fee"], "pnl": t["pnl"],
        "return_pct": t["return_pct"], "is_open": t["is_open"],
    }).with_columns(pl.when(pl.col("is_open")).then(None).otherwise(pl.col("exit_ts"))
                    .alias("exit_ts"))


def equity_frame(sim: SimResult, ts: np.ndarray, signal: np.ndarray) -> pl.DataFrame:
    """Return the equity curve: ts, equity, position, drawdown and the signal of each bar."""
    peak = np.maximum.accumulate(sim.equity)
    return pl.DataFrame({
        "ts": np.asarray(ts, dtype=np.int64), "equity": sim.equity, "position": sim.position,
        "drawdown": 1.0 - sim.equity / peak, "signal": np.asarray(signal, dtype=np.int8),
    })
