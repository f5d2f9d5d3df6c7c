"""Prediction ledger: batched writes, outcomes from the coordinator, SQL summary, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.features.windows import SeriesArrays, next_candle_relative
from workbench.live.coordinator import CoordinatorConfig, InferenceTrainingCoordinator
from workbench.live.feed import ReplayFeed
from workbench.live.ledger import LEDGER_SCHEMA, PredictionLedger, ledger_summary

SYM, TF = "ETH/USDT", "1m"

# (run, version, action, confidence, realised move) -- pred candle (0, .3, -.1, .2) for all,
# actual open/high/low (.01, .4, -.2), actual close = realised move
KNOWN = [
    ("r1", 1, "BUY", 0.90, 0.30),   # realised BUY: hit
    ("r1", 1, "BUY", 0.85, -0.10),  # realised SELL: miss
    ("r1", 1, "SELL", 0.60, -0.20),  # hit
    ("r1", 1, "HOLD", 0.35, 0.01),  # inside the 0.05 band: hit
    ("r1", 1, "HOLD", 0.30, 0.06),  # realised BUY: miss
    ("r1", 1, "BUY", 0.55, None),   # outcome unknown: not scored
    ("r1", 2, "SELL", 0.72, 0.50),  # miss
    ("r2", 1, "BUY", 0.99, 1.00),   # another run
]


def _known_rows() -> pl.DataFrame:
    rows = []
    for i, (run, version, action, conf, move) in enumerate(KNOWN):
        known = move is not None
        rows.append({
            "inference_id": f"t-{i}", "session_id": "s", "run_id": run, "model_version": version,
            "symbol": SYM, "timeframe": TF, "prediction_ts": 1000 * i, "target_ts": 1000 * i + 60,
            "data_range_start": 0, "data_range_end": 1000 * i, "predicted_action": action,
            "confidence": conf, "pred_open": 0.0, "pred_high": 0.3, "pred_low": -0.1,
            "pred_close": 0.2, "actual_open": 0.01 if known else None,
            "actual_high": 0.4 if known else None, "actual_low": -0.2 if known else None,
            "actual_close": move, "realised_move": move, "pivot_type": None,
            "pivot_confirmed_ts": None})
    return pl.DataFrame(rows, schema=LEDGER_SCHEMA)


def test_ledger_summary_matches_hand_computed_values(tmp_store):
    assert tmp_store.append_ledger(_known_rows()) == 8
    out = ledger_summary(tmp_store, "r1")
    assert out["rows"] == 7
    hits = {(r["model_version"], r["predicted_action"]): (r["n"], r["hits"], r["hit_rate"],
                                                          r["mean_confidence"])
            for r in out["hit_rate"]}
    assert hits.keys() == {(1, "BUY"), (1, "HOLD"), (1, "SELL"), (2, "SELL")}
    assert hits[(1, "BUY")] == pytest.approx((2, 1, 0.5, 0.875))
    assert hits[(1, "HOLD")] == pytest.approx((2, 1, 0.5, 0.325))
    assert hits[(1, "SELL")] == pytest.approx((1, 1, 1.0, 0.6))
    assert hits[(2, "SELL")] == pytest.approx((1, 0, 0.0, 0.72))
    calib = [(r["model_version"], round(r["bucket_lo"], 6), r["n"], r["accuracy"])
             for r in out["calibration"]]
    assert calib == [(1, 0.3, 2, 0.5), (1, 0.6, 1, 1.0), (1, 0.8, 1, 0.0), (1, 0.9, 1, 1.0),
                     (2, 0.7, 1, 0.0)]
    err = {r["model_version"]: r for r in out["candle_error"]}
    assert err[1]["n"] == 5
    assert err[1]["mae_open"] == pytest.approx(0.01)
    assert err[1]["mae_high"] == pytest.approx(0.1) and err[1]["mae_low"] == pytest.approx(0.1)
    assert err[1]["mae_close"] == pytest.approx(1.13 / 5)
    assert err[1]["rmse_close"] == pytest.approx(np.sqrt(0.3157 / 5))
    assert err[2]["mae_close"] == pytest.approx(0.3) and err[2]["rmse_close"] == pytest.approx(0.3)
    everything = ledger_summary(tmp_store)
    assert everything["rows"] == 8
    assert {(r["model_version"], r["predicted_action"]): r["n"]
            for r in everything["hit_rate"]}[(1, "BUY")] == 3


def test_cli_ledger_summary_json_and_text(tmp_store):
    from workbench.cli import app

    tmp_store.append_ledger(_known_rows())
    runner = CliRunner()
    res = runner.invoke(app, ["--db", str(tmp_store.path), "ledger", "summary", "--run", "r1",
                              "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["rows"] == 7 and len(payload["hit_rate"]) == 4
    # beside the trivial predictors: 3 hits of the 6 rows with an outcome
    assert payload["baselines"]["hit_rate"]["model"] == pytest.approx(3 / 6)
    assert payload["baselines"]["verdict"].startswith("The model's hit rate (50.0%")
    text = runner.invoke(app, ["--db", str(tmp_store.path), "ledger", "summary"])
    assert text.exit_code == 0 and "hit rate per predicted action" in text.output
    assert "calibration" in text.output and "mae_close" in text.output


def test_writes_are_batched_and_a_failed_flush_loses_nothing(tmp_store, tmp_path):
    ledger = PredictionLedger(tmp_store, run_id="r", session_id="s", batch_size=3)
    rows = _known_rows().drop("run_id", "session_id").to_dicts()
    for row in rows[:7]:
        ledger.add(row)
    assert ledger.flushes == 2 and ledger.pending() == 1
    assert tmp_store.read_ledger("r").height == 6
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    good_store, ledger.store = ledger.store, type(tmp_store)(blocker / "x.duckdb")
    with pytest.raises(OSError):  # the store cannot be opened: the row stays buffered
        ledger.flush()
    assert ledger.pending() == 1
    ledger.store = good_store
    assert ledger.flush() == 1 and tmp_store.read_ledger("r").height == 7
    assert set(tmp_store.read_ledger("r")["session_id"]) == {"s"}


def test_coordinator_writes_every_frame_with_its_outcome(tmp_store, eth_slice):
    frame = eth_slice.head(700)
    series = SeriesArrays.from_frame(SYM, TF, frame)
    feed = ReplayFeed(series, start=int(series.ts[100]))
    ledger = PredictionLedger(tmp_store, run_id="replay", batch_size=64)
    coord = InferenceTrainingCoordinator(feed, config=CoordinatorConfig(max_age_candles=30),
                                         ledger=ledger)

    def infer(ev):
        coord.register_frame(ev.index, 32, ev.ts + 60_000, ev.index % 3, (0.0, 0.1, -0.1, 0.02),
                             0.4 + (ev.index % 5) / 10, 3, ev.close_ts)

    feed.subscribe_candle_completion(infer, SYM, TF)
    feed.run()
    assert ledger.written >= 500 and ledger.pending() < 64  # rows arrive while replaying
    coord.close()
    rows = tmp_store.read_ledger("replay")
    assert rows.height == 600 and rows["inference_id"].n_unique() == 600
    known = rows.filter(pl.col("actual_close").is_not_null())
    assert known.height == 599  # the last frame's target is past the replay
    ends = np.searchsorted(series.ts, known["data_range_end"].to_numpy())
    o, h, lo, c = (series.ohlcv[:, k] for k in range(4))
    want = next_candle_relative(o, h, lo, c, ends)
    got = known.select("actual_open", "actual_high", "actual_low", "actual_close").to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert (known["realised_move"] == known["actual_close"]).all()
    pivots = rows.filter(pl.col("pivot_type").is_not_null())
    assert pivots.height > 50
    assert (pivots["pivot_confirmed_ts"] > pivots["data_range_end"]).all()
    summary = ledger_summary(tmp_store, "replay")
    assert sum(r["n"] for r in summary["hit_rate"]) == 599
    assert {r["model_version"] for r in summary["candle_error"]} == {3}


def test_ledger_writes_while_another_process_reads_the_same_file(tmp_store):
    tmp_store.append_ledger(_known_rows().head(1))
    reader = textwrap.dedent(f"""
        import time
        from workbench.data.store import Store
        store, counts = Store({str(tmp_store.path)!r}), []
        while store.read_ledger().height < 5:  # wait until the writer is going
            time.sleep(0.01)
        for _ in range(25):
            counts.append(store.read_ledger().height)
            time.sleep(0.01)
        assert counts == sorted(counts), counts
        print(counts[0], counts[-1])
    """)
    proc = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ledger = PredictionLedger(tmp_store, run_id="w", batch_size=4)
    row = _known_rows().drop("run_id", "session_id").to_dicts()[0]
    i = 0
    while proc.poll() is None and i < 40_000:  # keep writing until the reader is done
        ledger.add({**row, "inference_id": f"w-{i}"})
        i += 1
    ledger.flush()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    first, last = map(int, out.split())
    assert last > first  # the reader saw the writer's batches land while it read
    assert tmp_store.read_ledger("w").height == i


def test_a_failed_batch_flush_neither_duplicates_a_frame_nor_drops_a_candle_event(tmp_store,
                                                                                  eth_slice):
    from workbench.errors import StoreBusyError

    series = SeriesArrays.from_frame(SYM, TF, eth_slice.head(400))
    feed = ReplayFeed(series, start=int(series.ts[100]))
    ledger = PredictionLedger(tmp_store, run_id="busy", batch_size=16)
    coord = InferenceTrainingCoordinator(feed, config=CoordinatorConfig(max_age_candles=5),
                                         ledger=ledger)
    real, calls = tmp_store.append_ledger, []

    def busy_once(rows):  # the real store, made busy for exactly one batch write
        calls.append(rows.height)
        if len(calls) == 3:
            raise StoreBusyError("store busy, say")
        return real(rows)

    tmp_store.append_ledger = busy_once
    delivered = []

    class Recorder:
        def on_candle_completion(self, event, ref):
            delivered.append(event.ts)

        def on_pivot_event(self, event, refs):
            pass

    def infer(ev):
        coord.register_frame(ev.index, 32, ev.ts + 60_000, 0, (0.0, 0.1, -0.1, 0.0), 0.5, 1,
                             ev.close_ts)

    feed.subscribe_candle_completion(infer, SYM, TF)
    coord.subscribe(Recorder(), SYM, TF)
    feed.run()
    coord.close()
    rows = tmp_store.read_ledger("busy")
    assert ledger.failed_flushes == 1 and len(calls) > 3
    assert rows.height == 300 and rows["inference_id"].n_unique() == 300
    assert len(delivered) == 300  # every candle event still reached the subscriber
