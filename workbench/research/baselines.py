"""Baselines beside every evaluation, and the sentence that says whether the model beats them.

A model's backtest means little alone: a flat account, buy & hold and two trivial rules set the
bar, and random entries at the model's own trade frequency tell how much of its result a coin
could have earned with the same amount of trading (and fees). Every baseline runs through the
same simulator and statistics as the model (:mod:`workbench.backtest.simulate`,
:mod:`workbench.backtest.stats`), on the same candles.

The rule baselines are a registry (:data:`BASELINES`, :func:`register_baseline`): a function
``(open_, close) -> int8 signal`` that is causal (the signal of bar ``t`` uses bars up to ``t``).
A walk-forward evaluation passes several :class:`Segment` s (one per fold's out-of-sample window);
their per-bar returns are chained, so a baseline's figures cover exactly the model's windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from workbench.actions import SIGNAL_OF_ACTION, SIGNAL_OF_CLASS, realised_actions
from workbench.backtest.signals import sma_cross_signals
from workbench.backtest.simulate import SimConfig, simulate
from workbench.data.timeframes import is_calendar, timeframe_ms
from workbench.errors import ParameterError

SignalRule = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: rule baselines by name, in the order they are shown
BASELINES: dict[str, SignalRule] = {}
#: what each baseline is, in words (table rows and the verdict)
LABELS: dict[str, str] = {}
#: the random-entry baseline's row name
RANDOM = "random_entries"
#: the statistics shown per row
SHOWN = ("return_pct", "sharpe", "max_drawdown", "n_trades")

_YEAR_MS = 365 * 24 * 3600 * 1000


def bars_per_year(timeframe: str) -> float:
    """Return the number of ``timeframe`` bars in a 365-day, around-the-clock year.

    The chained out-of-sample returns of walk-forward folds have no single calendar of their
    own, so their Sharpe ratio is annualised per bar (the statistics block of one backtest uses
    daily returns, as backtesting.py does).
    """
    if is_calendar(timeframe):
        return 12.0
    return _YEAR_MS / timeframe_ms(timeframe)


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



def register_baseline(name: str, label: str):
    """Decorator: add a causal rule ``(open_, close) -> signal`` to :data:`BASELINES`."""
    def add(fn: SignalRule) -> SignalRule:
        BASELINES[name], LABELS[name] = fn, label
        return fn
    return add


@register_baseline("flat", "flat (always HOLD)")
def flat(open_, close) -> np.ndarray:
    return np.zeros(len(close), dtype=np.int8)


@register_baseline("buy_hold", "buy & hold")
def buy_hold(open_, close) -> np.ndarray:
    sig = np.zeros(len(close), dtype=np.int8)
    sig[0] = 1
    return sig


@register_baseline("persistence", "last-move persistence")
def persistence(open_, close) -> np.ndarray:
    """+1 after an up close, -1 after a down close: 'the next move repeats the last one'."""
    sig = np.zeros(len(close), dtype=np.int8)
    sig[1:] = np.sign(np.diff(np.asarray(close, dtype=np.float64))).astype(np.int8)
    return sig


@register_baseline("sma_cross", "SMA(20/50) crossover")
def sma_cross(open_, close) -> np.ndarray:
    if len(close) <= 50:
        return np.zeros(len(close), dtype=np.int8)
    return sma_cross_signals(close, 20, 50)


@dataclass(frozen=True)
class Segment:
    """One contiguous window of candles and the model's signals on it."""

    open: np.ndarray
    close: np.ndarray
    signal: np.ndarray


def bar_returns(open_, close, signal, sim: SimConfig) -> tuple[np.ndarray, int]:
    """Return the per-bar equity returns of trading ``signal`` (the first bar against the
    starting cash) and the number of trades."""
    res = simulate(open_, close, signal, sim)
    eq = res.equity
    returns = np.empty_like(eq)
    returns[0] = eq[0] / sim.cash - 1.0
    returns[1:] = eq[1:] / eq[:-1] - 1.0
    return returns, int(res.trades["size"].shape[0])


def chained_stats(returns: np.ndarray, n_trades: int, timeframe: str, cash: float) -> dict:
    """Return the :data:`SHOWN` statistics of chained per-bar returns."""
    equity = cash * np.cumprod(1.0 + returns)
    return {"return_pct": float(equity[-1] / cash - 1.0),
            "sharpe": sharpe_ratio(np.concatenate([[cash], equity]), bars_per_year(timeframe)),
            "max_drawdown": max_drawdown(np.concatenate([[cash], equity])),
            "n_trades": int(n_trades)}


def _chain(segments, signal_of, sim) -> tuple[np.ndarray, int]:
    parts, trades = [], 0
    for seg in segments:
        r, n = bar_returns(seg.open, seg.close, signal_of(seg), sim)
        parts.append(r)
        trades += n
    return np.concatenate(parts), trades


def random_signal(n_bars: int, n_trades: int, long_only: bool,
                  rng: np.random.Generator) -> np.ndarray:
    """Random entries: ``n_trades`` position changes at random bars, alternating sides.

    Long-only, a trade needs an entry and an exit, so twice as many bars alternate +1 / -1
    starting long; otherwise every entry reverses the position, starting on a random side.
    """
    sig = np.zeros(n_bars, dtype=np.int8)
    k = min(n_bars, 2 * n_trades if long_only else n_trades)
    if k == 0:
        return sig
    bars = np.sort(rng.choice(n_bars, size=k, replace=False))
    first = 1 if long_only else int(rng.choice((-1, 1)))
    sig[bars] = first * np.where(np.arange(k) % 2 == 0, 1, -1)
    return sig


def _random_row(segments, model_trades: list[int], model_return: float, sim, timeframe,
                draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    returns = []
    for _ in range(draws):
        trades = iter(model_trades)
        r, _ = _chain(segments, lambda s: random_signal(len(s.close), next(trades),
                                                        sim.long_only, rng), sim)
        returns.append(float(np.prod(1.0 + r) - 1.0))
    arr = np.asarray(returns)
    percentile = 100.0 * (np.sum(arr < model_return) + 0.5 * np.sum(arr == model_return)) / arr.size
    return {"draws": draws, "return_pct": float(arr.mean()),
            "return_p05": float(np.quantile(arr, 0.05)),
            "return_p95": float(np.quantile(arr, 0.95)),
            "n_trades": int(sum(model_trades)), "model_percentile": float(percentile)}


def compare(segments: list[Segment], timeframe: str, sim: SimConfig | None = None, *,
            draws: int = 100, seed: int = 0) -> dict:
    """Return the model's and every baseline's statistics on the same candles, and the verdict.

    Returns
    -------
    dict with ``model`` (the :data:`SHOWN` stats of the chained model returns), one entry per
    rule baseline, ``random_entries`` (mean / 5th / 95th percentile return of ``draws`` random
    strategies with the model's trade count per segment, and the model's percentile among them)
    and ``verdict`` (:func:`verdict`).
    """
    if not segments:
        raise ParameterError("baselines need at least one segment of candles")
    if draws < 1:
        raise ParameterError(f"draws {draws} must be >= 1")
    sim = sim or SimConfig()
    per_seg = [bar_returns(s.open, s.close, s.signal, sim) for s in segments]
    model_r = np.concatenate([r for r, _ in per_seg])
    out = {"model": chained_stats(model_r, sum(n for _, n in per_seg), timeframe, sim.cash)}
    for name, rule in BASELINES.items():
        r, n = _chain(segments, lambda s, rule=rule: rule(s.open, s.close), sim)
        out[name] = chained_stats(r, n, timeframe, sim.cash)
    out[RANDOM] = _random_row(segments, [n for _, n in per_seg], out["model"]["return_pct"],
                              sim, timeframe, draws, seed)
    out["verdict"] = verdict(out)
    return out


def verdict(table: dict) -> str:
    """Say in one sentence whether the model beats each baseline (by total return).

    ``table`` is :func:`compare`'s result (``model``, rule baselines, ``random_entries``).
    """
    model = table["model"]["return_pct"]
    beaten = [LABELS[n] for n in BASELINES if n in table and model > table[n]["return_pct"]]
    lost = [f"{LABELS[n]} ({table[n]['return_pct']:+.2%})" for n in BASELINES
            if n in table and model <= table[n]["return_pct"]]
    head = f"The model ({model:+.2%})"
    if table["model"].get("n_trades") == 0:
        head = f"The model (no trade, {model:+.2%})"
    if not lost:
        text = f"{head} beats every baseline"
    elif not beaten:
        text = f"{head} does not beat any baseline: " + ", ".join(lost)
    else:
        text = f"{head} does not beat " + ", ".join(lost) + "; it beats " + ", ".join(beaten)
    rnd = table.get(RANDOM)
    if rnd:
        text += (f"; it ranks at the {rnd['model_percentile']:.0f}th percentile of "
                 f"{rnd['draws']} random-entry strategies trading as often")
    return text + "."


def backtest_baselines(result, store, *, draws: int = 100, seed: int = 0) -> dict:
    """Return :func:`compare` for a finished backtest (a ``BacktestResult``), on its candles.

    The candles are read back from ``store`` for the result's range; the model's signals are
    the ``signal`` column of its equity curve.
    """
    cfg = result.config
    eq = result.equity
    frame = store.read_ohlcv(cfg.symbol, cfg.timeframe, int(eq["ts"][0]), int(eq["ts"][-1]))
    seg = Segment(frame["open"].to_numpy(), frame["close"].to_numpy(), eq["signal"].to_numpy())
    return compare([seg], cfg.timeframe, cfg.sim, draws=draws, seed=seed)


def ledger_baselines(ledger, hold_band: float = 0.05) -> dict:
    """Return the model's overall hit rate beside two trivial predictors, and the verdict.

    ``ledger`` is the prediction ledger (``Store.read_ledger``); rows without an outcome are
    skipped. ``always_hold`` predicts HOLD every time, ``persistence`` predicts the previous
    realised action (by target time); a hit is as in ``ledger_summary`` (``hold_band`` percent).
    """
    scored = ledger.filter(ledger["realised_move"].is_not_null()).sort("target_ts")
    if scored.height == 0:
        return {"rows": 0, "verdict": "No ledger row has a known outcome yet."}
    realised = SIGNAL_OF_CLASS[realised_actions(scored["realised_move"].to_numpy(), hold_band)]
    predicted = scored["predicted_action"].replace_strict(SIGNAL_OF_ACTION, default=9).to_numpy()
    rates = {"model": float(np.mean(predicted == realised)),
             "always_hold": float(np.mean(realised == 0)),
             "persistence": float(np.mean(realised[1:] == realised[:-1]))
             if realised.size > 1 else float("nan")}
    lost = [f"{name.replace('_', ' ')} ({rate:.1%})" for name, rate in rates.items()
            if name != "model" and np.isfinite(rate) and rate >= rates["model"]]
    head = f"The model's hit rate ({rates['model']:.1%}, {scored.height} predictions)"
    text = (f"{head} does not beat " + ", ".join(lost) if lost
            else f"{head} beats always-HOLD and persistence")
    return {"rows": scored.height, "hit_rate": rates, "verdict": text + "."}
