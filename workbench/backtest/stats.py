"""Backtest statistics under backtesting.py's names, with its values, from a :class:`SimResult`.

:func:`compute_stats` returns a :class:`BacktestStats`: a read-only mapping with exactly the keys
of backtesting.py 0.6.6's ``Backtest.run()`` statistics (``Start`` ... ``Kelly Criterion``; see
:data:`STATS_KEYS`), in its order, with its signs (drawdowns are negative percentages) and its
values on the same trades (``tests/backtest/test_parity.py`` holds them to 1e-9 relative).
Percent keys (``[%]``) are percentages, ``[$]`` keys account currency; times are UTC
:class:`datetime`, durations :class:`timedelta`; a value that cannot be measured (no closed trade,
no losing trade, too short a series) is NaN (``None`` in :meth:`BacktestStats.to_json`).

Open-trade convention (backtesting.py with ``finalize_trades=False``): a position still open after
the last bar is marked to market in the equity curve, so ``Equity Final``, ``Return``, the
drawdowns and the annualised figures include it; the trade statistics (``# Trades``, ``Win Rate``,
``Best/Worst/Avg. Trade``, durations, ``Profit Factor``, ``Expectancy``, ``SQN``, ``Kelly``),
``Commissions`` and ``Exposure Time`` count closed trades only.

Parity holds for ``fill="next_open"`` (the default). With ``fill="close"`` (backtesting.py's
``trade_on_close``) the trades, ``Equity Final``, ``Return`` and the trade statistics still match,
but backtesting.py books a close fill's fee in the equity curve one bar later, so the statistics of
the per-bar curve (volatility, Sharpe, Sortino, Alpha, Beta, average drawdown) differ from its
values in the third or fourth digit; ours charge the fee at the fill's bar.

Annualisation follows the series' calendar, as backtesting.py does: the equity curve is sampled at
the last bar of each UTC day (each week / month / year for weekly, monthly, yearly bars), and the
per-period returns are compounded over 365 periods a year when more than 60% of the 2/7 weekend
share of bars falls on weekends (a 24/7 market such as crypto), else over 252 trading days
(equities, FX) (52, 12, 1 for weekly, monthly, yearly bars). ``Return (Ann.)`` is the geometric
mean period return compounded over a year; ``Volatility (Ann.)`` the compounded variance;
``Sharpe Ratio`` = Return (Ann.) / Volatility (Ann.) with a risk-free rate of 0; ``Sortino`` uses
the downside deviation; ``CAGR`` uses the calendar span in years of 365.25 days.
:attr:`BacktestStats.annualisation` says which calendar was used, in words, for every page.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from workbench.backtest.simulate import SimResult
from workbench.data.epoch import iso_utc
from workbench.errors import ParameterError
from workbench.units import (finite_or_none, human_duration, human_number, human_percent,
                             human_time, iso_duration, utc_datetime)

_DAY_MS = 86_400_000

#: every stats key (backtesting.py's name) and what it means, in backtesting.py's order
STATS_KEYS = {
    "Start": "open time of the first candle (UTC)",
    "End": "open time of the last candle (UTC)",
    "Duration": "End - Start",
    "Exposure Time [%]": "share of bars from a closed trade's entry bar to its exit bar",
    "Equity Final [$]": "account value at the last close, an open position marked to market",
    "Equity Peak [$]": "highest account value at any close",
    "Commissions [$]": "fees paid by the closed trades (entry and exit legs)",
    "Return [%]": "final equity / first equity - 1",
    "Buy & Hold Return [%]": "last close / first close - 1 of the instrument",
    "Return (Ann.) [%]": "geometric mean period return compounded over a year (see annualisation)",
    "Volatility (Ann.) [%]": "standard deviation of period returns, compounded over a year",
    "CAGR [%]": "compound annual growth over the calendar span (years of 365.25 days)",
    "Sharpe Ratio": "Return (Ann.) / Volatility (Ann.), risk-free rate 0",
    "Sortino Ratio": "annualised return / annualised downside deviation of period returns",
    "Calmar Ratio": "annualised return / maximum drawdown",
    "Alpha [%]": "Return - Beta x Buy & Hold Return (Jensen's alpha, risk-free rate 0)",
    "Beta": "cov(equity log returns, market log returns) / var(market log returns), per bar",
    "Max. Drawdown [%]": "largest fall of equity from its running peak (negative)",
    "Avg. Drawdown [%]": "mean of the deepest point of each drawdown period (negative)",
    "Max. Drawdown Duration": "longest time from a peak until equity regains it (or the end)",
    "Avg. Drawdown Duration": "mean time of a drawdown period",
    "# Trades": "number of closed trades",
    "Win Rate [%]": "share of closed trades with PnL > 0",
    "Best Trade [%]": "highest return of a closed trade, fees included",
    "Worst Trade [%]": "lowest return of a closed trade, fees included",
    "Avg. Trade [%]": "geometric mean return of the closed trades",
    "Max. Trade Duration": "longest time from entry fill to exit fill",
    "Avg. Trade Duration": "mean time from entry fill to exit fill",
    "Profit Factor": "sum of winning trade returns / |sum of losing trade returns|",
    "Expectancy [%]": "arithmetic mean return of the closed trades",
    "SQN": "System Quality Number: sqrt(# trades) x mean PnL / std PnL",
    "Kelly Criterion": "win rate - (1 - win rate) / (mean win / mean loss)",
}
_TIME_KEYS = ("Start", "End")
_DURATION_KEYS = ("Duration", "Max. Drawdown Duration", "Avg. Drawdown Duration",
                  "Max. Trade Duration", "Avg. Trade Duration")
#: the period equity is sampled at, by the bars' period in whole days (backtesting.py's rule)
_PERIODS = {7: ("week", 52), 31: ("month", 12), 365: ("year", 1)}
_FEW_RETURNS = 30  # fewer period returns than this make the annual figures extrapolations
_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}


@dataclass(frozen=True)
class Annualisation:
    """How the annualised statistics were computed: the calendar read from the timestamps."""

    period: str  # the equity sampling period: day, week, month or year
    periods_per_year: int  # 365 (24/7), 252 (trading days), 52, 12 or 1
    n_returns: int  # period returns the annual figures rest on
    weekend_share: float  # share of bars on Saturday or Sunday (UTC)

    @property
    def calendar(self) -> str:
        """``24/7`` (365 days a year) or ``trading days`` (252) or the bar period's name."""
        if self.period != "day":
            return f"{_ADJECTIVE[self.period]} bars"
        return "24/7" if self.periods_per_year == 365 else "trading days"

    def describe(self) -> str:
        """One sentence a reader of a report gets: how the annual figures were computed."""
        why = (f"{self.weekend_share:.0%} of the bars fall on weekends, so the market trades "
               f"{'every day (24/7)' if self.periods_per_year == 365 else 'on weekdays only'}"
               if self.period == "day" else f"the bars are {_ADJECTIVE[self.period]}")
        returns = f"{self.n_returns} {_ADJECTIVE[self.period]} return" + (
            "" if self.n_returns == 1 else "s")
        text = (f"Annualised from {returns} of the equity curve compounded over "
                f"{self.periods_per_year} {self.period}s a year ({why}); Sharpe = Return (Ann.) / "
                "Volatility (Ann.) with a risk-free rate of 0, as backtesting.py computes it.")
        if self.n_returns < _FEW_RETURNS:
            text += (f" With only {returns} the annual figures (Return, Volatility, CAGR, "
                     "Sharpe, Sortino, Calmar) extrapolate a short range to a year: read them "
                     "as indications, not estimates.")
        return text

    def to_json(self) -> dict:
        """Return the annualisation as plain JSON data, its description included."""
        return {"calendar": self.calendar, "period": self.period,
                "periods_per_year": self.periods_per_year, "n_returns": self.n_returns,
                "weekend_share": self.weekend_share, "text": self.describe()}


class BacktestStats(Mapping):
    """The statistics block: a read-only mapping with exactly the :data:`STATS_KEYS`, in order.

    ``dict(stats)`` gives the raw values (datetime, timedelta, float, int);
    :meth:`to_json` the JSON form; :func:`format_stats` the readable one.
    """

    def __init__(self, values: dict, annualisation: Annualisation):
        missing = [k for k in STATS_KEYS if k not in values]
        if missing or len(values) != len(STATS_KEYS):
            raise ParameterError(f"stats keys differ from STATS_KEYS (missing {missing})")
        self._values = {k: values[k] for k in STATS_KEYS}
        self.annualisation = annualisation

    def __getitem__(self, key: str):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "\n".join(f"{k:<24} {v}" for k, v in format_stats(self))

    def to_json(self) -> dict:
        """Return the values as JSON data: ISO-8601 times and durations, NaN/inf as ``None``."""
        out = {}
        for key, value in self._values.items():
            if key in _TIME_KEYS:
                out[key] = iso_utc(int(value.timestamp() * 1000))
            elif key in _DURATION_KEYS:
                out[key] = iso_duration(value)
            else:
                out[key] = finite_or_none(value)
        return out


def format_stats(stats: Mapping) -> list[tuple[str, str]]:
    """Return ``(name, readable value)`` pairs: times in UTC, durations, units on every number.

    ``[%]`` keys read ``12.34 %``, ``[$]`` keys ``10,512.80 $``, ratios carry three decimals,
    NaN reads ``n/a``. Notebooks, reports and the CLI show this list.
    """
    out = []
    for key, value in stats.items():
        if key in _TIME_KEYS:
            text = human_time(value)
        elif key in _DURATION_KEYS:
            text = human_duration(value)
        elif key.endswith("[%]"):
            text = human_percent(value)
        elif key.endswith("[$]"):
            text = human_number(value, unit="$")
        elif key == "# Trades":
            text = human_number(int(value))
        else:
            text = human_number(value, digits=3)
        out.append((key, text))
    return out


def _geometric_mean(returns: np.ndarray) -> float:
    """backtesting.py's geometric mean: NaN for no returns, 0 when one return is <= -100%."""
    growth = np.nan_to_num(returns, nan=0.0) + 1.0
    if np.any(growth <= 0):
        return 0.0
    return float(np.exp(np.log(growth).sum() / returns.size)) - 1.0 if returns.size else math.nan


def _period_of(ts: np.ndarray) -> float:
    """The bars' period in ms: the median step of the last 100 timestamps (backtesting.py's)."""
    steps = np.diff(ts[-100:])
    return float(np.median(steps)) if steps.size else math.nan


def _period_keys(ts: np.ndarray, period: str) -> np.ndarray:
    """The UTC day / week (Monday..Sunday) / month / year each timestamp falls in."""
    if period == "day":
        return ts // _DAY_MS
    if period == "week":
        return (ts // _DAY_MS + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Monday
    unit = "M" if period == "month" else "Y"
    return ts.astype("datetime64[ms]").astype(f"datetime64[{unit}]").astype(np.int64)


def annualisation(ts: np.ndarray, equity: np.ndarray,
                  calendar_ts: np.ndarray | None = None) -> tuple[Annualisation, np.ndarray]:
    """Return the calendar of the series and the equity returns between its periods' last bars.

    The weekend share is measured on ``calendar_ts`` (the whole stored series) when given, else
    on ``ts``: a two-day slice of a 24/7 market that holds no weekend would otherwise read as a
    weekday-only market.
    """
    freq_days = int(_period_of(ts) // _DAY_MS) if ts.size > 1 else 0
    days = (ts if calendar_ts is None or not len(calendar_ts) else calendar_ts) // _DAY_MS
    weekend = float(np.mean((days + 3) % 7 >= 5)) if days.size else 0.0  # Monday = 0
    period, per_year = _PERIODS.get(freq_days, ("day", 365 if weekend > 2 / 7 * 0.6 else 252))
    keys = _period_keys(ts, period)
    last = np.flatnonzero(np.diff(keys, append=keys[-1] + 1) != 0)
    sampled = equity[last]
    returns = sampled[1:] / sampled[:-1] - 1.0
    returns = returns[np.isfinite(returns)]
    return Annualisation(period, per_year, int(returns.size), weekend), returns


def _resolution_ms(period_ms: float) -> int:
    """The finest unit of the bar period (pandas' ``resolution_string``): durations round to it."""
    for unit in (_DAY_MS, 3_600_000, 60_000, 1000):
        if period_ms % unit == 0:
            return unit
    return 1


def _ceil_duration(ms: float, unit: int) -> timedelta | None:
    """Round a duration in ms up to a whole ``unit`` (backtesting.py's ``Timedelta.ceil``)."""
    if not math.isfinite(ms):
        return None
    return timedelta(milliseconds=math.ceil(ms / unit) * unit)


def drawdown_periods(ts: np.ndarray, drawdown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each drawdown period's duration (ms) and depth, as backtesting.py delimits them.

    A period runs from a bar at its peak (drawdown 0) to the next such bar, or to the last bar
    while equity has not recovered.
    """
    at_peak = np.unique(np.r_[np.flatnonzero(drawdown == 0), drawdown.size - 1])
    start, end = at_peak[:-1], at_peak[1:]
    keep = end > start + 1
    start, end = start[keep], end[keep]
    if not start.size:  # no complete period: backtesting.py keeps the non-zero depths only
        return np.zeros(0), drawdown[drawdown != 0]
    depth = np.array([drawdown[a:b + 1].max() for a, b in zip(start, end)])
    return (ts[end] - ts[start]).astype(np.float64), depth


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else math.nan


def _risk_stats(equity: np.ndarray, close: np.ndarray, ts: np.ndarray, ret_pct: float,
                bh_pct: float, calendar_ts) -> tuple[dict, Annualisation]:
    """The annualised, risk and market statistics (Return (Ann.) ... Beta)."""
    ann, period_returns = annualisation(ts, equity, calendar_ts)
    n = ann.periods_per_year
    gmean = _geometric_mean(period_returns)
    annual = (1 + gmean) ** n - 1
    var = float(period_returns.var(ddof=1)) if period_returns.size > 1 else math.nan
    vol = math.sqrt((var + (1 + gmean) ** 2) ** n - (1 + gmean) ** (2 * n)) * 100
    span = (ts[-1] - ts[0]) // 1000 / 86_400 / 365.25  # whole seconds, as backtesting.py
    downside = math.sqrt(_mean(np.minimum(period_returns, 0.0) ** 2)) * math.sqrt(n)
    max_dd = float(np.max(1.0 - equity / np.maximum.accumulate(equity)))
    with np.errstate(divide="ignore", invalid="ignore"):
        eq_log = np.log(equity[1:] / equity[:-1])
        mkt_log = np.log(close[1:] / close[:-1])
        beta = (float(np.cov(eq_log, mkt_log)[0, 1] / np.var(mkt_log, ddof=1))
                if eq_log.size > 1 else math.nan)
        out = {
            "Return (Ann.) [%]": annual * 100,
            "Volatility (Ann.) [%]": vol,
            "CAGR [%]": ((equity[-1] / equity[0]) ** (1 / span) - 1) * 100 if span else math.nan,
            "Sharpe Ratio": annual * 100 / (vol or math.nan),
            "Sortino Ratio": float(np.float64(annual) / np.float64(downside)),
            "Calmar Ratio": annual / (max_dd or math.nan),
            "Alpha [%]": ret_pct - beta * bh_pct,
            "Beta": beta,
        }
    return out, ann


def _trade_stats(sim: SimResult, ts: np.ndarray, unit: int) -> dict:
    """The statistics of the closed trades (# Trades ... Kelly Criterion)."""
    t = sim.trades
    closed = ~t["is_open"]
    pnl, ret = t["pnl"][closed], t["return_pct"][closed]
    durations = (ts[t["exit_idx"][closed]] - ts[t["entry_idx"][closed]]).astype(np.float64)
    n = int(pnl.size)
    win_rate = float(np.mean(pnl > 0)) if n else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        loss_sum = abs(ret[ret < 0].sum())
        pnl_std = float(pnl.std(ddof=1)) if n > 1 else math.nan
        payoff = np.float64(_mean(pnl[pnl > 0])) / np.float64(-_mean(pnl[pnl < 0]))
        return {
            "# Trades": n,
            "Win Rate [%]": win_rate * 100,
            "Best Trade [%]": _max(ret) * 100,
            "Worst Trade [%]": -_max(-ret) * 100,
            "Avg. Trade [%]": _geometric_mean(ret) * 100,
            "Max. Trade Duration": _ceil_duration(_max(durations), unit),
            "Avg. Trade Duration": _ceil_duration(_mean(durations), unit),
            "Profit Factor": float(ret[ret > 0].sum()) / (loss_sum or math.nan),
            "Expectancy [%]": _mean(ret) * 100,
            "SQN": math.sqrt(n) * _mean(pnl) / (pnl_std or math.nan),
            "Kelly Criterion": float(win_rate - (1 - win_rate) / payoff),
        }


def compute_stats(sim: SimResult, ts, close, *, calendar_ts=None) -> BacktestStats:
    """Return the statistics block of one simulation (see the module docstring).

    Parameters
    ----------
    sim : the simulator's result.
    ts : int64 (n,) candle open times in epoch ms, UTC (the calendar is read from them).
    close : float64 (n,) the candles' closes the simulation ran on (buy & hold, beta).
    calendar_ts : optional open times of the whole series the range was cut from; its weekend
        share decides between 365 and 252 days a year (default: ``ts``'s own, backtesting.py's).

    Returns
    -------
    BacktestStats
    """
    ts = np.asarray(ts, dtype=np.int64)
    close = np.asarray(close, dtype=np.float64)
    equity = sim.equity
    t = sim.trades
    closed = ~t["is_open"]
    held = np.zeros(ts.size, dtype=np.int8)
    for entry, exit_ in zip(t["entry_idx"][closed], t["exit_idx"][closed]):
        held[entry:exit_ + 1] = 1
    drawdown = 1.0 - equity / np.maximum.accumulate(equity)
    dd_ms, dd_depth = drawdown_periods(ts, drawdown)
    unit = _resolution_ms(_period_of(ts)) if ts.size > 1 else 1
    ret_pct = (equity[-1] - equity[0]) / equity[0] * 100
    bh_pct = (close[-1] - close[0]) / close[0] * 100
    risk, ann = _risk_stats(equity, close, ts, ret_pct, bh_pct,
                            None if calendar_ts is None else np.asarray(calendar_ts, np.int64))
    values = {
        "Start": utc_datetime(ts[0]), "End": utc_datetime(ts[-1]),
        "Duration": timedelta(milliseconds=int(ts[-1] - ts[0])),
        "Exposure Time [%]": float(held.mean()) * 100,
        "Equity Final [$]": float(equity[-1]), "Equity Peak [$]": float(equity.max()),
        "Commissions [$]": float((t["entry_fee"] + t["exit_fee"])[closed].sum()),
        "Return [%]": float(ret_pct), "Buy & Hold Return [%]": float(bh_pct),
        **risk,
        "Max. Drawdown [%]": -float(drawdown.max()) * 100,
        "Avg. Drawdown [%]": -_mean(dd_depth) * 100,
        "Max. Drawdown Duration": _ceil_duration(_max(dd_ms), unit),
        "Avg. Drawdown Duration": _ceil_duration(_mean(dd_ms), unit),
        **_trade_stats(sim, ts, unit),
    }
    return BacktestStats({k: _plain(v) for k, v in values.items()}, ann)


def _plain(value):
    """numpy scalars as Python numbers, so that values compare and serialise simply."""
    return value.item() if isinstance(value, np.generic) else value


def headline(stats: Mapping, cash: float) -> dict:
    """Return the stored summary columns of a backtest as fractions (the store's schema).

    ``final_equity``, ``pnl``, ``return_pct`` (a fraction), ``n_trades`` (closed), ``win_rate``
    (a fraction), ``max_drawdown`` (a positive fraction), ``sharpe`` (backtesting.py's Sharpe
    Ratio) and ``exposure`` (a fraction): the columns :meth:`Store.save_backtest` keeps.
    """
    return {
        "final_equity": stats["Equity Final [$]"],
        "pnl": stats["Equity Final [$]"] - cash,
        "return_pct": stats["Return [%]"] / 100,
        "n_trades": stats["# Trades"],
        "win_rate": stats["Win Rate [%]"] / 100,
        "max_drawdown": -stats["Max. Drawdown [%]"] / 100,
        "sharpe": stats["Sharpe Ratio"],
        "exposure": stats["Exposure Time [%]"] / 100,
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
