"""Backtest benchmark: the trade simulator against vectorbt and backtesting.py, side by side.

All in this one process, on the same SMA(10)/SMA(30) crossover signals:

* **simulation** on 1M candles (the real ETH/USDT 1m series tiled): the workbench simulator
  (its first call, then the best and the median of several repeats) against
  ``vbt.Portfolio.from_signals`` with the same fees, fills and unit sizes (first call, numba
  compilation included, then warm repeats); trade counts and final equity must agree.
  Goals: >= 2x vectorbt, >= 40M candles/s, first call < 0.1 s.
* **backtesting.py** on a smaller slice (its event loop is per candle), reporting candles/s and
  agreement of trades and final equity with the simulator on that slice.
* **model backtest** (when a model handle can be built): batched inference over every window of
  a range with the default transformer (fresh weights), in windows/s, and its achieved GFLOP/s
  (the model's own FLOP count per window) as a fraction of a float32 matmul's GFLOP/s measured
  in the same run with the same thread count: the compute limit.

Run: ``.venv/bin/python bench/backtest.py [--candles N] [--bt-candles N] [--quick]``; writes
``reports/bench/backtest.json``. Timings on a shared machine are noisy: compare the ratios.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from workbench.backtest.signals import sma_cross_signals
from workbench.backtest.simulate import SimConfig, simulate, target_direction
from workbench.paths import DATA_DIR

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_report  # noqa: E402

UNITS, CASH, FEE = 2.0, 10_000_000.0, 0.001


def tiled_eth(n: int) -> dict[str, np.ndarray]:
    """Return ``n`` candles: the real ETH series repeated as is (a price gap at each seam).

    Copies are not rescaled to join: compounding the series' drift over eight copies would take
    prices past the cash, and vectorbt (unlike the simulator) rejects orders it cannot pay for.
    """
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
    reps = -(-n // eth.height)
    return {c: np.tile(eth[c].to_numpy(), reps)[:n] for c in ("open", "high", "low", "close")}


def _timed(fn, repeats: int) -> tuple[float, float, float, object]:
    """Return (first call s, best s, median s, last result) over 1 + repeats calls."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return first, min(times), float(np.median(times)), out


def _vbt_kwargs(o, c, sig, fill: str, long_only: bool) -> dict:
    """vectorbt orders equivalent to the simulator's conventions (fills on the fill bar)."""
    target = target_direction(sig, long_only)
    held = target if fill == "close" else np.concatenate([[0], target[:-1]])
    changed = held != np.concatenate([[0], held[:-1]])
    kw = dict(close=c, price=c if fill == "close" else o, size=UNITS, size_type="amount",
              fees=FEE, init_cash=CASH, freq="1min")
    if long_only:
        return {**kw, "entries": changed & (held == 1), "exits": changed & (held == 0),
                "direction": "longonly"}
    return {**kw, "entries": changed & (held == 1), "exits": np.zeros_like(changed),
            "short_entries": changed & (held == -1), "short_exits": np.zeros_like(changed)}


def bench_simulation(data: dict, repeats: int) -> dict:
    """Simulator vs vectorbt on the same signals; the simulator's first call comes first."""
    o, c = data["open"], data["close"]
    sig = sma_cross_signals(c)
    n = c.shape[0]
    cases = []
    first_ours = None
    for fill, long_only in (("next_open", False), ("close", False), ("next_open", True)):
        cfg = SimConfig(fee=FEE, fill=fill, long_only=long_only, size=UNITS, cash=CASH)
        first, best, med, res = _timed(lambda: simulate(o, c, sig, cfg), repeats)
        first_ours = first if first_ours is None else first_ours
        cases.append({"fill": fill, "long_only": long_only, "candles": n,
                      "ours_first_call_s": first, "ours_best_s": best, "ours_median_s": med,
                      "ours_candles_per_s": n / best, "ours_trades": int(res.trades["size"].size),
                      "ours_final_equity": res.final_equity})
    t0 = time.perf_counter()
    import vectorbt as vbt
    vbt_import = time.perf_counter() - t0
    for case in cases:
        kw = _vbt_kwargs(o, c, sig, case["fill"], case["long_only"])
        first, best, med, pf = _timed(lambda: vbt.Portfolio.from_signals(**kw), repeats)
        case.update({"vbt_first_call_s": first, "vbt_best_s": best, "vbt_median_s": med,
                     "vbt_candles_per_s": n / best, "vbt_trades": int(pf.trades.count()),
                     "vbt_final_equity": float(pf.final_value())})
        case["speedup_vs_vbt_best"] = case["vbt_best_s"] / case["ours_best_s"]
        case["speedup_vs_vbt_median"] = case["vbt_median_s"] / case["ours_median_s"]
        case["trades_equal"] = case["vbt_trades"] == case["ours_trades"]
        case["final_equity_rel_diff"] = abs(case["vbt_final_equity"] / case["ours_final_equity"]
                                            - 1.0)
    return {"signal_changes": int((sig != 0).sum()), "vectorbt_import_s": vbt_import,
            "ours_first_call_s": first_ours, "cases": cases}


def bench_backtesting_py(data: dict, n: int) -> dict:
    """backtesting.py's event loop on the first ``n`` candles, checked against the simulator."""
    import pandas as pd
    from backtesting import Backtest, Strategy

    o, h, lo, c = (data[k][:n] for k in ("open", "high", "low", "close"))
    sig = sma_cross_signals(c)

    class SignalStrategy(Strategy):
        def init(self):
            pass

        def next(self):
            s = sig[len(self.data) - 1]
            if s == 1 and not self.position.is_long:
                self.buy(size=int(UNITS))
            elif s == -1 and not self.position.is_short:
                self.sell(size=int(UNITS))

    df = pd.DataFrame({"Open": o, "High": h, "Low": lo, "Close": c},
                      index=pd.date_range("2020-01-01", periods=n, freq="1min"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stats = Backtest(df, SignalStrategy, cash=CASH, commission=FEE,
                         exclusive_orders=True).run()
        elapsed = time.perf_counter() - t0
    first, best, _, ours = _timed(
        lambda: simulate(o, c, sig, SimConfig(fee=FEE, size=UNITS, cash=CASH)), 5)
    closed = int((~ours.trades["is_open"]).sum())
    return {"candles": n, "backtesting_py_s": elapsed, "backtesting_py_candles_per_s": n / elapsed,
            "ours_best_s": best, "speedup": elapsed / best,
            "trades_equal": len(stats["_trades"]) == closed,
            "final_equity_rel_diff": abs(stats["Equity Final [$]"] / ours.final_equity - 1.0)}


def matmul_gflops(size: int = 512, repeats: int = 20) -> float:
    """Return the best float32 matmul GFLOP/s of this process's torch threads (compute limit)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def bench_model(n_windows: int, chunk: int) -> dict:
    """Batched inference of the default transformer over ``n_windows`` windows of real ETH."""
    import torch

    from workbench.backtest.signals import model_signals
    from workbench.features.windows import candle_features
    from workbench.train.config import TrainConfig
    from workbench.train.handle import ModelHandle

    torch.set_num_threads(1)
    handle = ModelHandle.from_config(TrainConfig())
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
    frame = eth.slice(0, n_windows + handle.window - 1)
    feats = candle_features(*frame.select("open", "high", "low", "close", "volume")
                            .to_numpy().T)
    rows = np.arange(handle.window - 1, frame.height)
    model_signals(handle, feats, rows[:chunk], chunk=chunk)  # warm-up
    t0 = time.perf_counter()
    out = model_signals(handle, feats, rows, chunk=chunk)
    elapsed = time.perf_counter() - t0
    flops = float(handle.model.flops_per_window())
    peak = matmul_gflops()
    achieved = flops * rows.shape[0] / elapsed / 1e9
    return {"model": handle.model_type, "window": handle.window, "threads": 1,
            "windows": int(rows.shape[0]), "chunk": chunk, "seconds": elapsed,
            "windows_per_s": rows.shape[0] / elapsed, "flops_per_window": flops,
            "achieved_gflops": achieved, "matmul_gflops": peak,
            "fraction_of_compute_limit": achieved / peak,
            "signals": {str(k): int(v) for k, v in zip(*np.unique(out.signal,
                                                                  return_counts=True))}}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--bt-candles", type=int, default=50_000)
    parser.add_argument("--model-windows", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.candles, args.bt_candles, args.model_windows, args.repeats = 100_000, 5_000, 512, 3
    data = tiled_eth(args.candles)
    report = {"series": "ETH/USDT 1m tiled", "load_avg_1m_start": os.getloadavg()[0],
              "simulation": bench_simulation(data, args.repeats),
              "backtesting_py": bench_backtesting_py(data, args.bt_candles)}
    try:
        report["model_backtest"] = bench_model(args.model_windows, chunk=64)
    except ImportError as exc:
        report["model_backtest"] = {"skipped": f"model handle not available: {exc}"}
    report = write_report("backtest", report)
    _print(report)
    return report


def _print(report: dict) -> None:
    sim = report["simulation"]
    print(f"simulator first call {sim['ours_first_call_s'] * 1e3:.1f} ms; "
          f"vectorbt first call (JIT) {sim['cases'][0]['vbt_first_call_s']:.2f} s")
    for c in sim["cases"]:
        print(f"{c['fill']:>9} long_only={c['long_only']!s:<5} ours "
              f"{c['ours_candles_per_s'] / 1e6:7.1f}M candles/s  vectorbt "
              f"{c['vbt_candles_per_s'] / 1e6:6.1f}M/s  x{c['speedup_vs_vbt_best']:.1f} (best) "
              f"x{c['speedup_vs_vbt_median']:.1f} (median)  trades {c['ours_trades']}"
              f"{'=' if c['trades_equal'] else '!='}{c['vbt_trades']}  equity rel diff "
              f"{c['final_equity_rel_diff']:.1e}")
    bt = report["backtesting_py"]
    print(f"backtesting.py {bt['backtesting_py_candles_per_s']:,.0f} candles/s on "
          f"{bt['candles']:,} candles; ours x{bt['speedup']:,.0f}; trades equal "
          f"{bt['trades_equal']}, equity rel diff {bt['final_equity_rel_diff']:.1e}")
    m = report["model_backtest"]
    if "skipped" not in m:
        print(f"model backtest ({m['model']}, N={m['window']}): {m['windows_per_s']:,.0f} "
              f"windows/s, {m['achieved_gflops']:.2f} GFLOP/s = "
              f"{m['fraction_of_compute_limit']:.1%} of matmul {m['matmul_gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
