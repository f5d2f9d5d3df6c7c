"""``workbench price-model train``: every flag, JSON output, errors, and the shipped-data run."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from workbench.cli import app

TINY = ["--timeframe", "15m", "--start-date", "2025-06-02", "--end-date", "2025-06-04",
        "--epochs", "2", "--batch-size", "16", "--sequence-length", "8", "--no-xla"]


def _train(db, *args):
    return CliRunner().invoke(app, ["--db", str(db), "price-model", "train", "ETH/USDT", *args])


def _meta(payload: dict) -> dict:
    return json.loads((Path(payload["run_dir"]) / "metadata.json").read_text())


def test_every_flag_reaches_the_run(eth_store, tmp_path):
    exog = tmp_path / "sentiment.csv"
    pl.DataFrame({"ts": [1748822400000, 1748908800000], "fear_greed": [40.0, 55.0]}).write_csv(exog)
    res = _train(eth_store.path, *TINY, "--skip-plots", "--skip-robustness", "--skip-onnx",
                 "--force-refresh", "--no-mixed-precision", "--exog-file", str(exog),
                 "--model", "lstm", "--seed", "7", "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    meta = _meta(payload)
    cfg = meta["config"]
    assert (cfg["epochs"], cfg["batch_size"], cfg["sequence_length"]) == (2, 16, 8)
    assert cfg["skip_plots"] and cfg["skip_robustness"] and cfg["skip_onnx"]
    assert cfg["force_refresh"] and cfg["mixed_precision"] is False and cfg["xla"] is False
    assert cfg["model_type"] == "lstm" and cfg["seed"] == 7
    assert meta["data"]["exog_columns"] == ["fear_greed"]
    assert meta["features"] == ["open", "high", "low", "close", "volume", "fear_greed"]
    assert meta["metrics"]["epochs_run"] == 2
    assert payload["stages_run"]["plots"] is False and payload["stages_run"]["onnx"] is False
    precision = meta["precision"]
    assert precision["requested_mixed"] is False and precision["policy"] == "float32"
    assert "[plots] skipped (--skip-plots)" in res.stderr  # progress on stderr with --json
    assert "cache rebuilt (--force-refresh)" in res.stderr


def test_human_output_and_defaults(eth_store):
    res = _train(eth_store.path, *TINY)
    assert res.exit_code == 0, res.output
    out = res.stdout
    for stage in ("ingestion", "features", "dataset", "training", "evaluation", "plots",
                  "robustness", "onnx", "artifacts", "total"):
        assert f"[{stage}] " in out
    assert "cache built (miss)" in out and "completed in" in out
    run_dir = out.strip().splitlines()[-1].split("artifacts in ")[1]
    meta = json.loads((Path(run_dir) / "metadata.json").read_text())
    assert meta["config"]["mixed_precision"] is True and meta["config"]["force_refresh"] is False
    assert meta["diagnostics"] == {"plots": True, "robustness": True, "onnx": True}


@pytest.mark.parametrize("args, message", [
    (["--timeframe", "1h", "--start-date", "2020-01-01", "--end-date", "2020-01-02"],
     "no candles"),
    (["--timeframe", "1h", "--start-date", "2025-06-02", "--end-date", "June 4"], "YYYY-MM-DD"),
    (["--timeframe", "1h", "--start-date", "2025-06-02", "--end-date", "2025-06-04",
      "--exog-file", "/nonexistent.csv"], "does not exist"),
])
def test_bad_input_exits_2_with_a_clear_message(eth_store, args, message):
    res = _train(eth_store.path, *args)
    assert res.exit_code == 2 and message in res.stderr


def test_shipped_eth_1h_three_epochs_then_cache_reuse_then_force_refresh(eth_full_store):
    """The issue's acceptance run: every artifact, then cache reused, then rebuilt."""
    base = ["--timeframe", "1h", "--start-date", "2025-05-20", "--end-date", "2025-08-17"]
    res = _train(eth_full_store.path, *base, "--epochs", "3", "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    run_dir = Path(payload["run_dir"])
    for name in ("model.keras", "model.onnx", "metadata.json", "run.json", "scaler.json",
                 "plots/predictions.png", "plots/loss.png"):
        assert (run_dir / name).is_file(), name
    meta = _meta(payload)
    assert meta["config"]["sequence_length"] == 120 and meta["config"]["batch_size"] == 32
    assert meta["data"]["rows"] > 2000 and meta["data"]["source_timeframe"] == "1m"
    assert meta["onnx"]["parity"]["passed"] and payload["cache_hit"] is False
    assert "cache built (miss)" in res.stderr

    fast = [*base, "--epochs", "1", "--sequence-length", "24", "--skip-plots",
            "--skip-robustness", "--skip-onnx", "--no-xla"]
    again = _train(eth_full_store.path, *fast)
    assert again.exit_code == 0 and "cache reused" in again.stdout
    rebuilt = _train(eth_full_store.path, *fast, "--force-refresh")
    assert rebuilt.exit_code == 0 and "cache rebuilt (--force-refresh)" in rebuilt.stdout
