"""Serving model windows: from memory versus from DuckDB, and a batch gather versus a Python loop.

All on the real ETH/USDT 1m series (130,708 candles), measured side by side in this one process:

* one 600-candle window ending at a random row, served from the in-memory snapshot
  (:class:`SeriesArrays`): a raw numpy slice of the feature matrix, and the normalised window from
  ``SeriesArrays.windows``; versus the same 600 candles read from DuckDB with
  ``Store.read_ohlcv(symbol, tf, start, end)`` (a short connection per read, as the store's
  multi-process design prescribes). Goal (issue 2): <= 20 µs from memory.
* a batch of 256 normalised windows: :func:`gather_windows` versus a plain Python loop that slices
  and normalises one window at a time. Both must give identical arrays.

Run: ``.venv/bin/python bench/window_serving.py``; writes ``reports/bench/window_serving.json``.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from workbench.data.store import Store
from workbench.features.windows import SeriesArrays, gather_windows
from workbench.paths import DATA_DIR

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_report  # noqa: E402

N, BATCH = 600, 256
GOAL_MEMORY_US = 20.0
_EPS = 1e-8  # as in workbench.features.windows


def _per_call(fn, calls: int, repeats: int = 5) -> float:
    """Best mean seconds per call over ``repeats`` rounds of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def loop_windows(features: np.ndarray, end_idx, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain-loop reference: slice and normalise one window at a time."""
    wins, params = [], []
    for t in end_idx:
        raw = features[t - n + 1: t + 1].astype(np.float32)
        close, vol = raw[:, 3].astype(np.float64), raw[:, 4].astype(np.float64)
        p = np.array([close.mean(), close.std() + _EPS, vol.mean(), vol.std() + _EPS],
                     dtype=np.float32)
        w = raw.copy()
        w[:, 0:4] = (raw[:, 0:4] - p[0]) / p[1]
        w[:, 4] = (raw[:, 4] - p[2]) / p[3]
        wins.append(w)
        params.append(p)
    return np.stack(wins), np.stack(params)


def bench_single(arrays: SeriesArrays, store: Store, rng) -> dict:
    ts = arrays.ts
    ends = rng.integers(N - 1, ts.size, size=64)
    it = iter(np.resize(ends, 10**6))
    t_slice = _per_call(lambda: arrays.features[(e := next(it)) - N + 1: e + 1].copy(), 20_000)
    t_norm = _per_call(lambda: arrays.windows(next(it), N), 5_000)
    t_db = _per_call(lambda: store.read_ohlcv(arrays.symbol, arrays.timeframe,
                                              int(ts[(e := next(it)) - N + 1]), int(ts[e])), 20, 3)
    # the same short connection with a trivial query: what the open/close alone costs
    t_open = _per_call(lambda: store.last_ts(arrays.symbol, arrays.timeframe), 20, 3)
    e = int(ends[0])
    got = store.read_ohlcv(arrays.symbol, arrays.timeframe, int(ts[e - N + 1]), int(ts[e]))
    assert got.height == N and np.array_equal(got["ts"].to_numpy(), ts[e - N + 1: e + 1])
    return {"memory_slice_us": t_slice * 1e6, "memory_normalised_us": t_norm * 1e6,
            "duckdb_read_us": t_db * 1e6, "duckdb_trivial_query_us": t_open * 1e6,
            "duckdb_over_memory_slice": t_db / t_slice,
            "duckdb_over_memory_normalised": t_db / t_norm,
            "goal_memory_met": t_slice * 1e6 <= GOAL_MEMORY_US,
            "goal_memory_met_normalised": t_norm * 1e6 <= GOAL_MEMORY_US}


def bench_batch(arrays: SeriesArrays, rng) -> dict:
    feats = arrays.features
    end_idx = rng.integers(N - 1, feats.shape[0], size=BATCH)
    fast, fast_p = gather_windows(feats, end_idx, N)
    slow, slow_p = loop_windows(feats, end_idx, N)
    identical = bool(np.array_equal(fast, slow) and np.array_equal(fast_p, slow_p))
    t_gather = _per_call(lambda: gather_windows(feats, end_idx, N), 20)
    t_loop = _per_call(lambda: loop_windows(feats, end_idx, N), 5)
    return {"batch": BATCH, "gather_ms": t_gather * 1e3, "loop_ms": t_loop * 1e3,
            "loop_over_gather": t_loop / t_gather, "identical": identical}


def main() -> dict:
    frame = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet")
    arrays = SeriesArrays.from_frame("ETH/USDT", "1m", frame)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_windows_") as d:
        store = Store(Path(d) / "wb.duckdb")
        store.replace_series("ETH/USDT", "1m", frame)
        single = bench_single(arrays, store, rng)
    batch = bench_batch(arrays, rng)
    print(f"window serving on ETH/USDT 1m ({frame.height:,} candles), window {N}")
    ok = {True: "met", False: "NOT met"}
    print(f"  numpy slice (memory)        {single['memory_slice_us']:10.1f} µs  "
          f"(goal <= {GOAL_MEMORY_US:.0f} µs: {ok[single['goal_memory_met']]})")
    print(f"  normalised window (memory)  {single['memory_normalised_us']:10.1f} µs  "
          f"(same goal: {ok[single['goal_memory_met_normalised']]})")
    print(f"  Store.read_ohlcv range      {single['duckdb_read_us']:10.1f} µs  "
          f"= {single['duckdb_over_memory_slice']:,.0f}x the slice, "
          f"{single['duckdb_over_memory_normalised']:,.0f}x the normalised window")
    print(f"  Store.last_ts (open+close)  {single['duckdb_trivial_query_us']:10.1f} µs  "
          "(the per-call connection alone)")
    print(f"batch of {BATCH} normalised windows")
    print(f"  gather_windows              {batch['gather_ms']:10.2f} ms")
    print(f"  Python loop                 {batch['loop_ms']:10.2f} ms  "
          f"= {batch['loop_over_gather']:.1f}x gather; identical: {batch['identical']}")
    return write_report("window_serving", {"series": "ETH/USDT 1m", "window": N,
                                           "single": single, "batch": batch})


if __name__ == "__main__":
    main()
