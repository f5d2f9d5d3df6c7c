"""Artifacts: ONNX export with onnxruntime parity, atomic JSON, versions."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from workbench.errors import ExportError
from workbench.pricemodel import artifacts, runner


@pytest.fixture
def model():
    return runner.build_compiled_model("gru", 8, 5, runner.FitSettings(jit_compile=False), 4)


def test_onnx_export_matches_keras_within_tolerance(tmp_path, model, small_windows):
    x, _ = small_windows
    path = artifacts.export_onnx(model, tmp_path)
    parity = artifacts.onnx_parity(path, model, x)
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["n_windows"] == 40
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):  # the batch dimension is dynamic
        out = session.run(None, {parity["input_name"]: x[:batch]})[0]
        assert out.shape == (batch, 1)


def test_parity_failure_is_an_export_error(tmp_path, model, small_windows):
    x, _ = small_windows
    path = artifacts.export_onnx(model, tmp_path)
    model.get_layer("next_close").bias.assign([0.5])  # the Keras model drifts from the file
    with pytest.raises(ExportError, match="max abs diff .* exceeds tolerance 0.0001"):
        artifacts.onnx_parity(path, model, x)


def test_save_keras_round_trips(tmp_path, model, small_windows):
    import keras

    x, _ = small_windows
    path = artifacts.save_keras(model, tmp_path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_write_json_is_atomic_and_leaves_no_temp(tmp_path):
    path = artifacts.write_json(tmp_path / "m.json", {"a": 1, "p": tmp_path})
    assert json.loads(path.read_text())["a"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_versions_name_the_stack():
    v = artifacts.versions()
    assert {"tensorflow", "keras", "onnxruntime", "numpy", "polars", "python"} <= set(v)
