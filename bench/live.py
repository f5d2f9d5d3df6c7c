"""Live sessions: replay throughput with per-candle training, and the 60 s stress run.

Measured side by side in this one process, on real ETH/USDT 1m candles in a throw-away store,
with one torch thread:

* **replay**: a :class:`~workbench.live.session.LiveSession` of the *default* transformer
  (window 600) in mode ``none`` (inference only) and in mode ``every_candle`` (one training step
  per candle), in candles per second (goal: >= 40 per thread with per-candle training), plus the
  parts of one candle measured on their own: ``predict`` (B = 1), ``train_step`` (B = 1) and
  ``publish`` (the snapshot copy every step makes);
* **stress**: :func:`workbench.live.stress.run_stress` for ``--seconds`` (60 by default) on a
  tiny transformer (thousands of interleaved steps) and on the default one: batch training, a
  per-candle session and inference on one model at once; the summary says whether any thread
  raised, whether the weights stayed finite and whether every probe prediction matched its
  published version.

The machine's load average is recorded: on a shared 2-core machine the figures are a fraction of
what an idle core gives. Run:
``.venv/bin/python bench/live.py [--seconds 60] [--candles 200] [--stress-model both]``;
writes ``reports/bench/live.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import polars as pl
import torch

from workbench.paths import DATA_DIR, REPORTS_DIR

GOAL_CANDLES_PER_S = 40.0


def _store(folder: str, rows: int):
    from workbench.data.store import Store

    store = Store(os.path.join(folder, "bench.duckdb"))
    frame = pl.read_parquet(DATA_DIR / "binance_ethusdt_1m.parquet").slice(20_000, rows)
    store.replace_series("ETH/USDT", "1m", frame)
    return store, frame["ts"].to_numpy()


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def _replay(config, store, ts, mode, first: int, candles: int) -> dict:
    from workbench.live.session import LiveSession
    from workbench.train.handle import ModelHandle

    handle = ModelHandle.from_config(config)
    session = LiveSession(handle, store, "ETH/USDT", "1m", mode, int(ts[first]),
                          int(ts[first + candles - 1]))
    stats = session.run()
    return {"candles": stats["candles"], "elapsed_s": stats["elapsed_s"],
            "candles_per_s": stats["candles_per_s"], "training_steps": stats["training_steps"],
            "errors": stats["errors"]}


def _parts(config, store, repeats: int = 15) -> dict:
    from workbench.features.windows import SeriesArrays, gather_windows
    from workbench.train.handle import ModelHandle

    handle = ModelHandle.from_config(config)
    frame = store.read_ohlcv("ETH/USDT", "1m")
    series = SeriesArrays.from_frame("ETH/USDT", "1m", frame)
    w, _ = gather_windows(series.features, np.array([handle.window + 10]), handle.window)
    action, candle = np.array([0]), np.zeros((1, 4), dtype=np.float32)

    def publish():
        with handle.lock.hold("bench", "bench"):
            handle.publish()

    return {"predict_ms": _median_ms(lambda: handle.predict(w), repeats),
            "train_step_ms": _median_ms(lambda: handle.train_step(
                w, action, candle, operation="bench", session="bench"), repeats),
            "publish_ms": _median_ms(publish, repeats)}


TINY_MODEL = {"window": 32, "d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32}


def replay_bench(store, ts, candles: int, repeats: int = 2, tiny: bool = False) -> dict:
    """Replay throughput of the default (or a tiny) transformer in modes none and every_candle.

    The tiny model makes the live path's own cost (feed, coordinator, session, lock) visible next
    to the model's.
    """
    from workbench.live.modes import TrainingMode
    from workbench.train.config import config_from_dict

    config = config_from_dict({"model": TINY_MODEL} if tiny else {})
    first = config.model.window + 10
    runs = {TrainingMode.NONE: [], TrainingMode.EVERY_CANDLE: []}
    for _ in range(repeats):  # interleaved, best of: the machine's load drifts
        for mode, out in runs.items():
            out.append(_replay(config, store, ts, mode, first, candles))
    none, every = (max(out, key=lambda r: r["candles_per_s"]) for out in runs.values())
    parts = _parts(config, store)
    return {"model": {"type": config.model.type, "window": config.model.window,
                      "d_model": config.model.d_model, "n_layers": config.model.n_layers},
            "best_of": repeats, "none": none, "every_candle": every, "parts": parts,
            "training_cost_per_candle_ms": round(1000.0 / every["candles_per_s"]
                                                 - 1000.0 / none["candles_per_s"], 3),
            "goal_candles_per_s": GOAL_CANDLES_PER_S,
            "every_candle_vs_goal": round(every["candles_per_s"] / GOAL_CANDLES_PER_S, 3),
            "none_vs_every_candle": round(none["candles_per_s"] / every["candles_per_s"], 3)}


def stress_bench(store, seconds: float, tiny: bool) -> dict:
    """The stress run for ``seconds`` on the default transformer (or a tiny one)."""
    from workbench.live.stress import StressConfig, run_stress
    from workbench.train.config import config_from_dict

    model = TINY_MODEL if tiny else {}
    report = run_stress(config_from_dict({"model": model}), store,
                        StressConfig(duration_s=seconds, batch_size=16))
    inf, ses, bat = report["inference"], report["session"], report["batch"]
    elapsed = report["elapsed_s"]
    return {"model": "tiny" if tiny else "default transformer", "seconds": seconds,
            "ok": report["ok"], "exceptions": len(report["errors"]),
            "first_exception": report["errors"][0]["error"] if report["errors"] else None,
            "weights_finite": report["weights_finite"],
            "publish_violations": len(report["violations"]),
            "versions_published": report["versions_published"],
            "batch_steps": bat.get("global_step"), "batch_status": bat.get("status"),
            "per_candle_steps": ses.get("steps"), "per_candle_candles": ses.get("candles"),
            "predictions": inf.get("predictions"), "probe_predictions_verified": inf.get("probes"),
            "probe_mismatches": len(inf.get("probe_mismatches", [])),
            "versions_seen_by_inference": inf.get("versions_seen"),
            "lock": report["lock"], "elapsed_s": elapsed,
            "rates_per_s": {"batch_steps": round((bat.get("global_step") or 0) / elapsed, 2),
                            "per_candle_steps": round((ses.get("steps") or 0) / elapsed, 2),
                            "predictions": round((inf.get("predictions") or 0) / elapsed, 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="stress run length")
    parser.add_argument("--candles", type=int, default=200, help="candles per replay")
    parser.add_argument("--stress-model", choices=("tiny", "default", "both", "none"),
                        default="both",
                        help="stress the tiny model (many steps), the default transformer, both")
    parser.add_argument("--replay-model", choices=("default", "tiny"), default="default",
                        help="the model of the replay throughput (tiny: the live path's cost)")
    parser.add_argument("--repeats", type=int, default=2, help="replays per mode (best of)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["WORKBENCH_RUNS"] = os.path.join(folder, "runs")
        store, ts = _store(folder, 6000)
        load_before = os.getloadavg()
        replay = replay_bench(store, ts, args.candles, args.repeats, args.replay_model == "tiny")
        models = {"both": ("tiny", "default"), "none": ()}.get(args.stress_model,
                                                               (args.stress_model,))
        stress = [stress_bench(store, args.seconds, m == "tiny") for m in models]
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                          "load_average_before": load_before,
                          "load_average_after": os.getloadavg()},
              "replay": replay, "stress": stress}
    out = REPORTS_DIR / "bench" / "live.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
