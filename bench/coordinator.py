"""Benchmarks of the live path (issue 5): feed, coordinator, frames by reference.

Run ``.venv/bin/python bench/coordinator.py [--quick]``. Every figure is measured in this one run,
side by side with its baseline, and written to ``reports/bench/coordinator.json``:

* replay throughput of the full ETH/USDT 1m series with a no-op subscriber, pivot detection
  included (goal >= 200,000 candles/s), next to a bare Python loop and the detector alone;
* replay with transformer inference (the default ``ModelHandle``, window 600) on every candle,
  one torch thread (goal >= 130 candles/s), next to the raw model forward;
* replay with stateful-LSTM ``step`` inference (goal >= 5,000 candles/s);
* bytes per registered frame, tracemalloc over 1M frames (goal <= 128);
* ``get_inference_data`` latency for a 600-candle window (goal <= 20 us), next to
  ``gather_windows``;
* tracemalloc current/peak memory sampled along the full replay with inference frames, matching,
  retention and the ledger (flat = no growth after warm-up);
* the issue's done-when checks on the full series: every candle once, every pivot once at its
  confirmation and equal to ``detect_pivots``, the ledger summary on the result.

Timings depend on the machine's load; the JSON records the load average next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from workbench.data.store import Store  # noqa: E402
from workbench.features.pivots import StreamingPivotDetector, detect_pivots  # noqa: E402
from workbench.features.windows import SeriesArrays, gather_windows  # noqa: E402
from workbench.live.coordinator import (CoordinatorConfig,  # noqa: E402
                                        InferenceTrainingCoordinator)
from workbench.live.feed import ReplayFeed  # noqa: E402
from workbench.live.ledger import PredictionLedger, ledger_summary  # noqa: E402

SYM, TF = "ETH/USDT", "1m"
ETH = ROOT / "data" / "binance_ethusdt_1m.parquet"
OUT = ROOT / "reports" / "bench" / "coordinator.json"


def _noop(_event):
    pass


def bench_replay(frame: pl.DataFrame) -> dict:
    """Full-series replay with no-op subscribers vs a bare loop and the detector alone."""
    ts, high, low = frame["ts"].to_list(), frame["high"].to_list(), frame["low"].to_list()
    t0 = time.perf_counter()
    for _t, _h, _l in zip(ts, high, low):
        pass
    bare = time.perf_counter() - t0
    det = StreamingPivotDetector(TF)
    update = det.update
    t0 = time.perf_counter()
    for t, h, lo in zip(ts, high, low):
        update(t, h, lo)
    detector = time.perf_counter() - t0
    best = None
    for _ in range(3):  # best of three: the machine is shared
        feed = ReplayFeed(SeriesArrays.from_frame(SYM, TF, frame))
        feed.subscribe_candle_completion(_noop, SYM, TF)
        feed.subscribe_pivot_events(_noop, SYM, TF)
        stats = feed.run()
        best = stats if best is None or stats["elapsed_s"] < best["elapsed_s"] else best
    n = frame.height
    return {"candles": n, "pivots": best["pivots"],
            "replay_candles_per_s": round(n / best["elapsed_s"]),
            "detector_only_candles_per_s": round(n / detector),
            "bare_loop_candles_per_s": round(n / bare),
            "replay_vs_detector_only": round(detector / best["elapsed_s"], 3),
            "goal_candles_per_s": 200_000,
            "meets_goal": n / best["elapsed_s"] >= 200_000}


def _inference_replay(frame, handle, n_candles, predict_row):
    """Replay ``n_candles`` after the model window with inference + frame registration."""
    import torch

    torch.set_num_threads(1)
    series = SeriesArrays.from_frame(SYM, TF, frame.head(handle.window + n_candles))
    feed = ReplayFeed(series, start=int(series.ts[handle.window]))
    coord = InferenceTrainingCoordinator(feed)

    def infer(ev):
        pred = predict_row(series, ev.index)
        coord.register_frame(ev.index, handle.window, ev.ts + 60_000, int(pred.action_index[0]),
                             pred.candle[0], float(pred.confidence[0]), pred.model_version,
                             ev.close_ts)

    feed.subscribe_candle_completion(infer, SYM, TF)
    stats = feed.run()
    return n_candles / stats["elapsed_s"], coord


def bench_transformer(frame, n_candles: int) -> dict:
    """Transformer inference on every candle through the real ModelHandle, one thread."""
    import torch

    from workbench.train.config import config_from_dict
    from workbench.train.handle import ModelHandle

    handle = ModelHandle.from_config(config_from_dict({}))
    handle.predict(np.zeros((1, handle.window, 8), np.float32))  # warm up
    rate, _ = _inference_replay(frame, handle, n_candles,
                                lambda s, i: handle.predict(s.windows(i, handle.window)[0]))
    x = torch.zeros(1, handle.window, 8)
    model = handle.model.eval()
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(20):
            model(x)
        forward = (time.perf_counter() - t0) / 20
    cfg = handle.config.model
    return {"model": {"type": cfg.type, "window": cfg.window, "d_model": cfg.d_model,
                      "n_layers": cfg.n_layers, "n_heads": cfg.n_heads},
            "candles": n_candles, "torch_threads": torch.get_num_threads(),
            "replay_candles_per_s": round(rate, 1),
            "raw_forward_per_s": round(1 / forward, 1),
            "replay_vs_raw_forward": round(rate * forward, 3),
            "goal_candles_per_s": 130, "meets_goal": rate >= 130}


def bench_lstm(frame, n_candles: int) -> dict:
    """Stateful-LSTM step() inference on every candle (one normalised row per candle).

    Next to the replay: the model's own ``step`` (gate math), the same step through ``nn.LSTM``
    on a length-1 sequence (the implementation it replaced, same weights), and
    ``ModelHandle.step`` alone, so the time per candle splits into model, handle and replay.
    """
    import torch
    from _common import best_of  # bench/ is sys.path[0] when this file runs as a script

    from workbench.train.config import config_from_dict
    from workbench.train.handle import ModelHandle

    def per_call(fn, n=1000):
        return best_of(lambda: [fn() for _ in range(n)], 3)[0] / n

    handle = ModelHandle.from_config(config_from_dict({"model": {"type": "lstm"}}))
    feats = SeriesArrays.from_frame(SYM, TF, frame.head(handle.window + n_candles)).features
    mu, sd = feats.mean(axis=0), feats.std(axis=0) + 1e-8
    rows = ((feats - mu) / sd).astype(np.float32)
    handle.step(rows[0])
    rate, _ = _inference_replay(frame, handle, n_candles, lambda s, i: handle.step(rows[i]))
    model, x = handle.model.eval(), torch.as_tensor(rows[:1])
    box = {}

    def gate_step():
        _, box["s"] = model.step(x, box["s"])

    def nn_lstm_step():
        out, box["s"] = model.lstm(x.unsqueeze(1), box["s"])
        model.heads(out[:, 0])

    with torch.inference_mode():
        box["s"] = model.initial_state(1)
        raw = per_call(gate_step)
        box["s"] = model.initial_state(1)
        old = per_call(nn_lstm_step)
    handle.reset_state()
    row = rows[1]
    per_handle = per_call(lambda: handle.step(row))
    per_candle = 1 / rate
    return {"hidden": handle.model.hidden, "layers": handle.model.n_layers,
            "candles": n_candles, "torch_threads": torch.get_num_threads(),
            "replay_candles_per_s": round(rate, 1),
            "handle_step_per_s": round(1 / per_handle, 1),
            "raw_model_step_per_s": round(1 / raw, 1),
            "nn_lstm_model_step_per_s": round(1 / old, 1),
            "model_step_vs_nn_lstm_speedup": round(old / raw, 2),
            "replay_vs_raw_step": round(rate * raw, 3),
            "us_per_candle": {"model_step": round(raw * 1e6, 1),
                              "handle_overhead": round((per_handle - raw) * 1e6, 1),
                              "replay_and_frames": round((per_candle - per_handle) * 1e6, 1)},
            "goal_candles_per_s": 5_000, "meets_goal": rate >= 5_000}


def bench_bytes_per_frame(frame, n_frames: int) -> dict:
    """tracemalloc bytes per live frame: fill to n_frames, then keep registering (steady state)."""
    series = SeriesArrays.from_frame(SYM, TF, frame)
    per_candle = -(-n_frames // (series.length - 700))
    cap = 1 << (n_frames - 1).bit_length()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    coord = InferenceTrainingCoordinator(series=series, config=CoordinatorConfig(
        max_age_candles=series.length, max_frames=cap, initial_capacity=cap))
    register, k = coord.register_frame, 0
    t0 = time.perf_counter()
    for end in range(600, series.length - 1):
        target = int(series.ts[end + 1])
        for j in range(per_candle):
            register(end, 600, target, j % 3, (0.1, 0.2, -0.1, 0.0), 0.5, 1)
            k += 1
        if k >= n_frames + cap // 8:  # past the cap: oldest frames evicted, steady state
            break
    elapsed = time.perf_counter() - t0
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    live = coord.live_frames()
    return {"registered": k, "live_frames": live, "capacity": cap,
            "bytes_per_live_frame": round((current - base) / live, 1),
            "peak_bytes_per_live_frame": round((peak - base) / live, 1),
            "column_bytes_per_frame": round(coord.stats()["column_bytes"] / cap, 1),
            "register_frames_per_s": round(k / elapsed),
            "evicted_capacity": coord.counts["evicted_capacity"],
            "window_copy_bytes_avoided_per_frame": 600 * 8 * 4,
            "goal_bytes": 128, "meets_goal": (current - base) / live <= 128}


def bench_get_inference_data(frame, n: int) -> dict:
    """Latency of get_inference_data (600-candle window) vs gather_windows on the same rows."""
    series = SeriesArrays.from_frame(SYM, TF, frame)
    coord = InferenceTrainingCoordinator(series=series)
    rng = np.random.default_rng(1)
    ends = rng.integers(600, series.length - 2, 1024)
    refs = []
    for e in ends:
        fid = coord.register_frame(int(e), 600, int(series.ts[e + 1]), 0, (0, 0, 0, 0), 0.5, 1)
        refs.append(coord.get_frame(fid))
    feats = series.features

    def timed(fn, args):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for a in args[: n // 5]:
                fn(a)
            best = min(best, (time.perf_counter() - t0) / (n // 5))
        return best * 1e6

    items = (refs * (n // len(refs) + 1))[:n]
    ours = timed(coord.get_inference_data, items)
    base = timed(lambda e: gather_windows(feats, e, 600), [int(e) for e in ends] * (n // 1024 + 1))
    same = all(a.tobytes() == b.tobytes() for r in refs[:50]
               for a, b in zip(coord.get_inference_data(r),
                               gather_windows(feats, r.end_index, 600)))
    return {"window": 600, "get_inference_data_us": round(ours, 2),
            "gather_windows_us": round(base, 2), "speedup_vs_gather": round(base / ours, 2),
            "bit_identical": same, "goal_us": 20, "meets_goal": ours <= 20}


def full_replay_checks(frame) -> dict:
    """Done-when: every candle once, every pivot once at confirmation == detect_pivots."""
    feed = ReplayFeed(SeriesArrays.from_frame(SYM, TF, frame))
    candles, pivots, late = [], [], 0

    def on_pivot(ev):
        nonlocal late
        late += feed.now != ev.confirmed_ts
        pivots.append((ev.pivot_ts, ev.confirmed_ts, ev.price, ev.pivot_type))

    feed.subscribe_candle_completion(lambda ev: candles.append(ev.ts), SYM, TF)
    feed.subscribe_pivot_events(on_pivot, SYM, TF)
    feed.run()
    ref = detect_pivots(frame["ts"], frame["high"], frame["low"], timeframe=TF)
    want = sorted(zip(ref["ts"], ref["confirmed_ts"], ref["price"], ref["pivot_type"]))
    return {"candles_emitted": len(candles), "candles_unique": len(set(candles)),
            "candles_in_order": candles == frame["ts"].to_list(),
            "pivots_emitted": len(pivots), "pivots_unique": len(set(pivots)),
            "pivots_delivered_off_confirmation": late,
            "pivots_equal_detect_pivots": sorted(pivots) == want}


def full_replay_memory(frame, db: Path) -> dict:
    """tracemalloc along the full replay with frames, matching, retention and the ledger."""
    series = SeriesArrays.from_frame(SYM, TF, frame)
    store = Store(db)
    ledger = PredictionLedger(store, run_id="bench-replay", batch_size=4096)
    feed = ReplayFeed(series)
    coord = InferenceTrainingCoordinator(feed, config=CoordinatorConfig(max_age_candles=1024),
                                         ledger=ledger)
    samples, counter = [], {"candle": 0, "pivot_refs": 0}

    class Counter:
        def on_candle_completion(self, event, ref):
            counter["candle"] += ref is not None

        def on_pivot_event(self, event, refs):
            counter["pivot_refs"] += len(refs)

    coord.subscribe(Counter(), SYM, TF)

    def infer(ev):
        if ev.index >= 599:
            coord.register_frame(ev.index, 600, ev.ts + 60_000, ev.index % 3,
                                 (0.0, 0.05, -0.05, 0.01), 0.34 + (ev.index % 60) / 100, 1,
                                 ev.close_ts)
        if ev.index % 5000 == 0:
            samples.append(tracemalloc.get_traced_memory()[0])

    feed.subscribe_candle_completion(infer, SYM, TF)
    tracemalloc.start()
    stats = feed.run()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    coord.close()
    steady = samples[len(samples) // 4:]
    summary = ledger_summary(store, "bench-replay")
    return {"candles": stats["candles"], "frames_registered": coord.counts["registered"],
            "frames_matched_candle": counter["candle"], "pivot_refs": counter["pivot_refs"],
            "traced_bytes_first_quarter_end": samples[len(samples) // 4],
            "traced_bytes_min_after_warmup": min(steady), "traced_bytes_max_after_warmup": max(steady),
            "traced_bytes_end": current, "traced_peak_bytes": peak,
            "growth_after_warmup_bytes": max(steady) - samples[len(samples) // 4],
            "ledger_rows": summary["rows"], "ledger_hit_rate_rows": len(summary["hit_rate"]),
            "ledger_calibration_rows": len(summary["calibration"]),
            "replay_with_tracemalloc_candles_per_s": stats["candles_per_s"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--only", action="append", default=None, metavar="NAME",
                    help="run only this benchmark (repeatable); results merge into the JSON")
    args = ap.parse_args(argv)
    frame = pl.read_parquet(ETH)
    q = args.quick
    report = json.loads(OUT.read_text()) if args.only and OUT.exists() else {}
    report.update(machine={"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}, quick=q)
    steps = [("replay_noop", lambda: bench_replay(frame)),
             ("get_inference_data", lambda: bench_get_inference_data(frame, 2_000 if q else 20_000)),
             ("bytes_per_frame", lambda: bench_bytes_per_frame(frame, 50_000 if q else 1_000_000)),
             ("lstm_step_replay", lambda: bench_lstm(frame, 500 if q else 5_000)),
             ("transformer_replay", lambda: bench_transformer(frame, 30 if q else 300)),
             ("full_replay_checks", lambda: full_replay_checks(frame))]
    with tempfile.TemporaryDirectory() as tmp:
        steps.append(("full_replay_memory", lambda: full_replay_memory(frame, Path(tmp) / "b.duckdb")))
        for name, fn in steps:
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            report[name] = fn()
            report[name]["bench_seconds"] = round(time.perf_counter() - t0, 2)
            print(name, json.dumps(report[name]), flush=True)
    report["machine"]["loadavg_end"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {OUT}")
    return report


if __name__ == "__main__":
    main()
