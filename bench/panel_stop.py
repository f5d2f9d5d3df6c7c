"""How fast Stop ends a paced replay, against the wait it interrupts.

A paced replay waits one candle interval divided by the speed between candles (a day at 1x on
daily candles). Stop must not wait for it. Measured on the last real GOOG 1d candles in a
throw-away store, with a tiny fresh transformer (the model plays no part in the wait):

* **session**: ``LiveSession.stop()`` of a session started in a background thread, from the call
  until its thread has ended (the ledger flushed), best and worst of ``--repeats``;
* **panel**: the control panel's Stop, from the click until "Start Live Inference" is enabled
  again (the session ended, its ledger flushed, the buttons refreshed), best and worst of
  ``--repeats``.

Each figure is printed beside the candle wait it cut short (the ratio is how much of that wait
Stop took). Run ``.venv/bin/python bench/panel_stop.py [--repeats 5]``; writes
``reports/bench/panel_stop.json``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

from bench._common import write_report
from workbench.paths import DATA_DIR

SPEED = "1x"
CANDLE_WAIT_S = 86_400.0  # one daily candle at 1x
TINY = {"model": {"window": 32, "d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32}}


def _store(folder: str):
    from workbench.data.store import Store

    store = Store(Path(folder) / "bench.duckdb")
    store.replace_series("GOOG", "1d", pl.read_parquet(DATA_DIR / "goog_1d.parquet").tail(400))
    return store


def _session_stop(store, handle) -> float:
    from workbench.live.session import LiveSession

    ts = store.read_ohlcv("GOOG", "1d")["ts"].to_list()
    session = LiveSession(handle, store, "GOOG", "1d", "none", ts[-300], ts[-1], SPEED).start()
    while session.counts["candles"] < 1:
        time.sleep(0.01)
    time.sleep(0.1)  # inside the one-day wait
    t0 = time.perf_counter()
    session.stop(wait=True)
    return time.perf_counter() - t0


def _panel_stop(store, run_id: str) -> float:
    from workbench.ui.panel import ControlPanel
    from workbench.ui.panel_state import Button

    panel = ControlPanel(db=str(store.path), symbol="GOOG", timeframe="1d", candles=300,
                         speed=SPEED, model=run_id)
    panel.buttons[Button.LIVE_NONE].click()
    while panel.session.counts["candles"] < 1:
        time.sleep(0.01)
    time.sleep(0.1)
    t0 = time.perf_counter()
    panel.buttons[Button.STOP].click()
    while panel.buttons[Button.LIVE_NONE].disabled:  # what the user sees: Start enabled again
        time.sleep(0.001)
    latency = time.perf_counter() - t0
    panel.wait_idle(60)
    return latency


def _saved_tiny_run(store, handle) -> str:
    from workbench.train.lineage import save_as_run

    return save_as_run(handle, store.path, session_id="bench", mode="none", symbol="GOOG",
                       timeframe="1d", first_ts=None, last_ts=None)["run_id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from workbench.train.config import config_from_dict
    from workbench.train.handle import ModelHandle

    with tempfile.TemporaryDirectory() as folder:
        import os

        os.environ["WORKBENCH_RUNS"] = str(Path(folder) / "runs")
        store = _store(folder)
        handle = ModelHandle.from_config(config_from_dict(TINY))
        session = [_session_stop(store, handle) for _ in range(args.repeats)]
        run_id = _saved_tiny_run(store, handle)
        panel = [_panel_stop(store, run_id) for _ in range(args.repeats)]
    rows = {"session_stop_s": session, "panel_stop_to_idle_s": panel}
    for name, values in rows.items():
        print(f"{name:<22} best {min(values):.3f} s  worst {max(values):.3f} s  "
              f"vs the {CANDLE_WAIT_S:.0f} s candle wait: x{max(values) / CANDLE_WAIT_S:.2e}")
    write_report("panel_stop", {"speed": SPEED, "timeframe": "1d", "repeats": args.repeats,
                                "candle_wait_s": CANDLE_WAIT_S, **rows,
                                "worst_s": {k: max(v) for k, v in rows.items()}})


if __name__ == "__main__":
    main()
