"""ONNX export: dynamic batch, onnxruntime parity on a real batch, recorded in run.json."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.train.conftest import tiny_dict
from workbench.errors import ParameterError
from workbench.train.config import config_from_dict
from workbench.train.export import TOLERANCE, export_model, export_onnx, real_batch
from workbench.train.handle import load_model
from workbench.train.runs import read_run, run_path, train


def test_export_onnx_parity_dynamic_batch_and_record(db):
    record = train(config_from_dict(tiny_dict(db, training={"num_epochs": 1})))
    result = export_onnx(record["run_id"])
    path = run_path(record["run_id"]) / "checkpoints" / "model.onnx"
    assert result["path"] == str(path) and path.is_file()
    assert result["passed"] and result["max_abs_diff"] <= TOLERANCE and result["batch"] == 8
    assert read_run(record["run_id"])["export"]["onnx"]["max_abs_diff"] == result["max_abs_diff"]
    handle = load_model(record["run_id"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3):  # the batch dimension was exported dynamic, not fixed at the example's 8
        x = real_batch(handle.config, 8)[:n] if n > 1 else real_batch(handle.config, 2)[:1]
        probs, candle = session.run(None, {"windows": x})
        want = handle.predict(x)
        assert probs.shape == (n, 3)
        np.testing.assert_allclose(probs, want.action_probs, atol=TOLERANCE)
        np.testing.assert_allclose(candle, want.candle, atol=TOLERANCE)


def test_export_refuses_a_batch_of_one(tiny, tmp_path):
    from workbench.train.models import build_model

    with pytest.raises(ParameterError, match="at least 2"):
        export_model(build_model(tiny.model), tmp_path / "m.onnx",
                     np.zeros((1, 16, 8), dtype=np.float32))


def test_the_stateful_lstm_exports_with_parity(eth_slice):
    import torch

    from workbench.features.windows import SeriesArrays
    from workbench.train.models import LSTMModel

    torch.manual_seed(0)
    arrays = SeriesArrays.from_frame("ETH/USDT", "1m", eth_slice)
    x, _ = arrays.windows(np.arange(100, 104), 16)
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        diff = export_model(LSTMModel(16, hidden=8, n_layers=2), f"{folder}/lstm.onnx", x)
    assert diff <= TOLERANCE
