"""Torch engine benchmark: training throughput and batch-1 inference against the compute limit.

All in this one process, one torch thread, on real ETH/USDT 1m windows:

* the **compute limit**: the best float32 matmul GFLOP/s of this process (512 x 512, best of 20);
* for each shipped model config (``configs/transformer.yaml``: window 600, d_model 32;
  ``configs/lstm.yaml``: window 120, hidden 32):
  - **batch-1 inference latency** of :meth:`ModelHandle.predict` (the live path, snapshot
    included) and of the bare model, best and median of many calls;
  - **batched inference** (64 windows), for contrast with batch 1;
  - **training throughput** in windows/s: forward, backward and AdamW step on batches of 64
    windows gathered from the real series (gather included, as in training);
  - each as achieved GFLOP/s (the model's own FLOP estimate per window: 2 per multiply-add;
    training counted as 3x forward) and as a **fraction of the compute limit**;
* the transformer with and without the PyTorch fast path, and with dropout 0 vs 0.1 (the
  defaults the issue asks for), side by side;
* the LSTM's O(1) :meth:`ModelHandle.step` per candle against re-running the whole window.

Run: ``.venv/bin/python bench/torch_engine.py [--quick]``; writes
``reports/bench/torch_engine.json``. The machine is shared: compare ratios, not absolute times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402

from workbench.features.windows import SeriesArrays  # noqa: E402
from workbench.paths import CONFIGS_DIR, DATA_DIR  # noqa: E402
from workbench.train.config import load_config  # noqa: E402
from workbench.train.handle import ModelHandle  # noqa: E402
from workbench.train.models import build_model  # noqa: E402
from workbench.train.module import combined_loss  # noqa: E402

GOAL = 0.60  # transformer batch-1 inference as a fraction of the compute limit


def matmul_gflops(size: int = 512, repeats: int = 20) -> float:
    """Best float32 matmul GFLOP/s with this process's torch threads: the compute limit."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size ** 3 / _timings(lambda: torch.mm(a, b), repeats)[0] / 1e9


def _timings(fn, repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Return (best, median) seconds of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _series() -> SeriesArrays:
    eth = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet").slice(0, 20_000)
    return SeriesArrays.from_frame("ETH/USDT", "1m", eth)


def _fraction(flops: float, seconds: float, peak: float) -> dict:
    gflops = flops / seconds / 1e9
    return {"achieved_gflops": gflops, "fraction_of_compute_limit": gflops / peak}


def bench_inference(handle: ModelHandle, arrays: SeriesArrays, peak: float, repeats: int) -> dict:
    """Batch-1 latency (handle.predict and bare model) and batch-64 throughput."""
    n, flops = handle.window, float(handle.model.flops_per_window())
    x1, _ = arrays.windows([arrays.length - 1], n)
    x64, _ = arrays.windows(np.arange(arrays.length - 64, arrays.length), n)
    model, t1 = handle._snapshot.model, torch.from_numpy(x1)
    best, median = _timings(lambda: handle.predict(x1), repeats)
    with torch.inference_mode():
        bare_best, bare_median = _timings(lambda: model(t1), repeats)
    b64, _ = _timings(lambda: handle.predict(x64), max(3, repeats // 10))
    return {"flops_per_window": flops,
            "batch1_predict_ms": {"best": best * 1e3, "median": median * 1e3},
            "batch1_bare_model_ms": {"best": bare_best * 1e3, "median": bare_median * 1e3},
            "batch1": _fraction(flops, best, peak), "batch1_bare": _fraction(flops, bare_best, peak),
            "batch64_windows_per_s": 64 / b64, "batch64": _fraction(64 * flops, b64, peak)}


def bench_training(config, arrays: SeriesArrays, peak: float, steps: int) -> dict:
    """Windows/s of forward + backward + AdamW on batches of 64 gathered real windows."""
    torch.manual_seed(0)
    model = build_model(config.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n, batch = config.model.window, 64
    rng = np.random.default_rng(0)
    ends_all = np.arange(n - 1, arrays.length - 1)
    close = arrays.ohlcv[:, 3]

    def one_step():
        ends = rng.choice(ends_all, batch, replace=False)
        x, _ = arrays.windows(ends, n)
        move = (close[ends + 1] / close[ends] - 1.0) * 100.0
        candle = torch.from_numpy(np.repeat(move[:, None], 4, axis=1).astype(np.float32))
        logits, pred = model(torch.from_numpy(x))
        loss = combined_loss(logits, pred, torch.from_numpy((move > 0).astype(np.int64)), candle,
                             1.0, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()

    best, median = _timings(one_step, steps, warmup=1)
    flops = 3.0 * float(model.flops_per_window()) * batch
    return {"batch": batch, "step_s": {"best": best, "median": median},
            "windows_per_s": batch / best, "windows_per_s_median": batch / median,
            "training_flops_per_window": flops / batch, **_fraction(flops, best, peak)}


def bench_transformer_variants(arrays: SeriesArrays, repeats: int) -> dict:
    """Batch-1 latency of the default transformer vs fast path on and dropout 0.1."""
    out = {}
    for name, sets in (("default", []), ("fast_path", ["model.fast_path=true"]),
                       ("dropout_0.1", ["model.dropout=0.1"])):
        cfg = load_config(CONFIGS_DIR / "transformer.yaml", sets)
        handle = ModelHandle.from_config(cfg)
        x1, _ = arrays.windows([arrays.length - 1], cfg.model.window)
        x1 = torch.from_numpy(x1)
        model = handle._snapshot.model
        if name == "dropout_0.1":
            model = handle.model.train()  # dropout only costs anything where it is active

        def call():
            with torch.inference_mode():
                model(x1)
        out[name] = {"batch1_ms": _timings(call, repeats)[0] * 1e3}
    base = out["default"]["batch1_ms"]
    for name in out:
        out[name]["slowdown_vs_default"] = out[name]["batch1_ms"] / base
    return out


def bench_lstm_step(handle: ModelHandle, arrays: SeriesArrays, repeats: int) -> dict:
    """One O(1) step per new candle vs re-running the whole window per candle."""
    x1, _ = arrays.windows([arrays.length - 1], handle.window)
    handle.reset_state()
    row = x1[0, -1]
    step_best, _ = _timings(lambda: handle.step(row), repeats * 5)
    window_best, _ = _timings(lambda: handle.predict(x1), repeats)
    return {"step_ms": step_best * 1e3, "whole_window_ms": window_best * 1e3,
            "speedup": window_best / step_best}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    repeats, steps = (10, 2) if args.quick else (100, 5)
    torch.set_num_threads(1)
    arrays = _series()
    peak = matmul_gflops()
    report = {"threads": 1, "matmul_gflops": peak, "goal_transformer_batch1": GOAL, "models": {}}
    for name in ("transformer", "lstm"):
        cfg = load_config(CONFIGS_DIR / f"{name}.yaml")
        handle = ModelHandle.from_config(cfg)
        entry = {"window": cfg.model.window, "d_model": cfg.model.d_model,
                 "n_layers": cfg.model.n_layers,
                 "parameters": sum(p.numel() for p in handle.model.parameters()),
                 "inference": bench_inference(handle, arrays, peak, repeats),
                 "training": bench_training(cfg, arrays, peak, steps)}
        if name == "lstm":
            entry["live_step"] = bench_lstm_step(handle, arrays, repeats)
        report["models"][name] = entry
    report["transformer_variants"] = bench_transformer_variants(arrays, repeats)
    report["matmul_gflops_after"] = matmul_gflops()
    frac = report["models"]["transformer"]["inference"]["batch1"]["fraction_of_compute_limit"]
    report["goal_met"] = frac >= GOAL
    _print(report)
    return write_report("torch_engine", report)


def _print(r: dict) -> None:
    print(f"compute limit: float32 matmul {r['matmul_gflops']:.1f} GFLOP/s (1 thread), "
          f"{r['matmul_gflops_after']:.1f} at the end")
    for name, m in r["models"].items():
        inf, tr = m["inference"], m["training"]
        print(f"{name:11} window {m['window']}: batch-1 predict {inf['batch1_predict_ms']['best']:.2f} ms "
              f"= {inf['batch1']['fraction_of_compute_limit']:.1%} of the limit "
              f"(bare model {inf['batch1_bare']['fraction_of_compute_limit']:.1%}); batch 64 "
              f"{inf['batch64_windows_per_s']:.0f} windows/s = "
              f"{inf['batch64']['fraction_of_compute_limit']:.1%}; training "
              f"{tr['windows_per_s']:.0f} windows/s = {tr['fraction_of_compute_limit']:.1%}")
    if "live_step" in r["models"].get("lstm", {}):
        s = r["models"]["lstm"]["live_step"]
        print(f"lstm step(): {s['step_ms']:.3f} ms per candle vs {s['whole_window_ms']:.2f} ms "
              f"for the whole window ({s['speedup']:.0f}x)")
    for name, v in r["transformer_variants"].items():
        print(f"transformer {name:12} batch-1 {v['batch1_ms']:.2f} ms "
              f"({v['slowdown_vs_default']:.2f}x default)")
    print(f"goal (transformer batch-1 >= {r['goal_transformer_batch1']:.0%} of the limit): "
          f"{'met' if r['goal_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
