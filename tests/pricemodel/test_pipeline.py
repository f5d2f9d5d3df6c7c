"""The whole pipeline on a tiny real series: artifacts, metadata contents, run lifecycle."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest

from workbench.data.store import Store
from workbench.errors import ActiveRunError, ParameterError
from workbench.pricemodel.features import MinMaxScaler
from workbench.pricemodel.pipeline import STAGES, run_training_pipeline
from workbench.train.runs import ActiveRunLock


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, eth_slice, tiny_config):
    """One full default-flag run on the 15m slice, shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("tinyrun")
    store = Store(root / "wb.duckdb")
    store.replace_series("ETH/USDT", "1m", eth_slice)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_RUNS", str(root / "runs"))
        result = run_training_pipeline(tiny_config(store, root), log=lines.append)
    return result, lines, root


def test_full_run_writes_every_artifact(tiny_run):
    result, _, _ = tiny_run
    names = {"model.keras", "model.onnx", "metadata.json", "run.json", "scaler.json",
             "config.json", "plots/predictions.png", "plots/loss.png", "logs/training.log"}
    for name in names:
        assert (result.run_dir / name).is_file(), name
    assert (result.run_dir / "checkpoints" / "best.weights.h5").is_file()
    assert any((result.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["status"] == "completed" and run["kind"] == "pricemodel"
    assert run["started_at"] <= run["ended_at"] and run["error"] is None
    assert run["final_metrics"]["rmse"] == result.metrics["rmse"]
    preds = pl.read_parquet(result.artifacts["predictions.parquet"])
    assert preds.columns == ["ts", "actual", "predicted"] and preds.height > 0
    rmse = float(((preds["predicted"] - preds["actual"]) ** 2).mean() ** 0.5)
    assert rmse == pytest.approx(result.metrics["rmse"], rel=1e-4)


def test_metadata_records_config_data_scaler_metrics_stages_and_versions(tiny_run):
    result, _, _ = tiny_run
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["run_id"] == result.run_id
    assert meta["config"]["sequence_length"] == 8 and meta["config"]["epochs"] == 2
    data = meta["data"]
    assert (data["symbol"], data["timeframe"]) == ("ETH/USDT", "15m")
    assert data["source_timeframe"] == "1m"
    assert data["first_ts"] < data["last_ts"] and data["rows"] == data["split_rows"]["n_rows"]
    assert data["cache"]["hit"] is False and len(data["source_hash"]) == 64
    assert sum(data["windows"].values()) == data["rows"] - 8
    scaler = MinMaxScaler.from_state_dict(meta["scaler"])
    assert scaler.columns == ("open", "high", "low", "close", "volume")
    assert json.loads((result.run_dir / "scaler.json").read_text()) == meta["scaler"]
    test = meta["metrics"]["test"]
    assert test["rmse"] >= test["mae"] > 0 and test["n"] == data["windows"]["test"]
    assert meta["metrics"]["epochs_run"] == 2 and len(meta["history"]["loss"]) == 2
    assert meta["stages_run"] == {s: True for s in STAGES}
    assert meta["diagnostics"] == {"plots": True, "robustness": True, "onnx": True}
    assert set(meta["stage_timings_s"]) == set(STAGES)
    assert [r["noise_std"] for r in meta["robustness"]] == [0.0, 0.05]
    assert meta["robustness"][0]["rmse"] == pytest.approx(test["rmse"], rel=1e-6)
    assert meta["onnx"]["parity"]["passed"] and meta["onnx"]["parity"]["max_abs_diff"] <= 1e-4
    assert meta["precision"]["policy"] == "float32" and meta["precision"]["jit_compile"] is False
    assert {"tensorflow", "keras", "onnxruntime"} <= set(meta["versions"])
    assert meta["total_s"] >= sum(meta["stage_timings_s"].values()) * 0.99


def test_console_prints_each_stage_time_and_the_total(tiny_run):
    _, lines, _ = tiny_run
    for stage in STAGES:
        assert any(line.startswith(f"[{stage}] ") and line.endswith(" s") for line in lines), stage
    assert lines[-1].startswith("[total] ")
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("cache built (miss)") for line in lines)


def test_onnx_file_reproduces_the_saved_model(tiny_run):
    import keras

    result, _, _ = tiny_run
    model = keras.models.load_model(result.run_dir / "model.keras")
    x = np.random.default_rng(0).random((5, 8, 5), dtype=np.float32)
    session = ort.InferenceSession(str(result.run_dir / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-4)


def test_second_run_reuses_the_cache_and_same_seed_same_metrics(tiny_run, tiny_config):
    first, _, root = tiny_run
    lines: list[str] = []
    cfg = tiny_config(Store(root / "wb.duckdb"), root)
    second = run_training_pipeline(cfg, log=lines.append)
    assert second.cache_hit and any(line.startswith("cache reused") for line in lines)
    assert second.metrics == first.metrics


def test_skips_are_logged_once_and_recorded(eth_15m_store, tmp_path, tiny_config):
    lines: list[str] = []
    cfg = tiny_config(eth_15m_store, tmp_path, skip_plots=True, skip_robustness=True,
                      skip_onnx=True)
    result = run_training_pipeline(cfg, log=lines.append)
    for stage, flag in (("plots", "--skip-plots"), ("robustness", "--skip-robustness"),
                        ("onnx", "--skip-onnx")):
        assert [line for line in lines if line.startswith(f"[{stage}]")] == \
            [f"[{stage}] skipped ({flag})"]
        assert result.stages_run[stage] is False
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["diagnostics"] == {"plots": False, "robustness": False, "onnx": False}
    assert meta["onnx"] is None and meta["robustness"] is None
    assert not (result.run_dir / "model.onnx").exists() and not (result.run_dir / "plots").exists()
    assert (result.run_dir / "model.keras").is_file()


def test_too_short_range_fails_the_run_with_its_error(eth_15m_store, tmp_path, tiny_config):
    cfg = tiny_config(eth_15m_store, tmp_path, sequence_length=190)
    with pytest.raises(ParameterError, match="too few for sequence length 190"):
        run_training_pipeline(cfg, log=lambda _: None)
    runs = list((tmp_path / "runs").glob("*/run.json"))
    assert len(runs) == 1
    run = json.loads(runs[0].read_text())
    assert run["status"] == "failed" and "sequence length 190" in run["error"]
    assert run["ended_at"] is not None


def test_a_second_active_run_is_refused_naming_the_active_one(eth_15m_store, tmp_path,
                                                             tiny_config):
    holder = ActiveRunLock()
    holder.acquire("torch-run-in-progress")
    try:
        with pytest.raises(ActiveRunError, match="torch-run-in-progress"):
            run_training_pipeline(tiny_config(eth_15m_store, tmp_path), log=lambda _: None)
    finally:
        holder.release()
    assert not list((tmp_path / "runs").glob("*/run.json"))


def test_bad_config_is_refused_before_any_run(eth_15m_store, tmp_path, tiny_config):
    for bad in (dict(epochs=0), dict(sequence_length=1), dict(timeframe="7m"),
                dict(start_date="2025-06-05"), dict(model_type="tcn")):
        with pytest.raises(ParameterError):
            run_training_pipeline(tiny_config(eth_15m_store, tmp_path, **bad), log=print)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/run.json"))
