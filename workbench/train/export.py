"""ONNX export of a trained run, checked for parity in onnxruntime.

:func:`export_onnx` writes ``checkpoints/model.onnx`` next to the run's checkpoints. The graph takes
``windows`` float32 (batch, N, 8) with a dynamic batch dimension and returns ``action_probs``
(batch, 3) and ``candle`` (batch, 4), exactly :meth:`ModelHandle.predict`'s numbers. The example
batch has at least 2 windows: exporting with a batch of 1 lets the exporter specialise the batch
dimension to 1.

Parity is measured on a real batch of the run's series (the most recent windows in the store):
the largest absolute difference between torch and onnxruntime must be at most ``tolerance``
(1e-4); the result is recorded under ``export.onnx`` in ``run.json`` either way.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from workbench.errors import ExportError, ParameterError
from workbench.features.windows import SeriesArrays

TOLERANCE = 1e-4


class _ProbsAndCandle(nn.Module):
    """The exported graph: softmax probabilities and the candle head."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor):
        logits, candle = self.model(windows)
        return torch.softmax(logits, dim=1), candle


def real_batch(config, n: int = 8, store=None) -> np.ndarray:
    """Return the ``n`` most recent windows (n >= 2) of the run's series, normalised."""
    from workbench.data.store import Store

    if n < 2:
        raise ParameterError(f"the export batch must hold at least 2 windows, got {n}")
    store = store or Store(config.data.db)
    frame = store.read_ohlcv(config.data.symbol, config.data.timeframe, config.data.start,
                             config.data.end)
    arrays = SeriesArrays.from_frame(config.data.symbol, config.data.timeframe, frame)
    window = config.model.window
    if arrays.length < window + n:
        raise ExportError(f"{config.data.symbol} {config.data.timeframe} has {arrays.length} "
                          f"candles; a parity batch of {n} windows of {window} needs more")
    ends = np.arange(arrays.length - n, arrays.length)
    return arrays.windows(ends, window)[0]


def _onnx_outputs(path, batch: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"windows": batch})


def export_model(model: nn.Module, path, batch: np.ndarray) -> float:
    """Export ``model`` to ``path`` with a dynamic batch; return the parity max abs diff."""
    if batch.shape[0] < 2:
        raise ParameterError("the export example batch must hold at least 2 windows")
    wrapped = _ProbsAndCandle(model).eval()
    example = torch.from_numpy(batch)
    batch_dim = torch.export.Dim("batch", min=1, max=65536)
    try:
        torch.onnx.export(wrapped, (example,), str(path), input_names=["windows"],
                          output_names=["action_probs", "candle"], dynamo=True,
                          external_data=False, dynamic_shapes={"windows": {0: batch_dim}})
    except Exception as exc:  # noqa: BLE001 - exporter errors come in many types
        raise ExportError(f"ONNX export to {path} failed: {exc}") from exc
    with torch.inference_mode():
        expected = [t.numpy() for t in wrapped(example)]
    got = _onnx_outputs(path, batch)
    return float(max(np.abs(e - g).max() for e, g in zip(expected, got)))


def export_onnx(run_id: str, db=None, *, batch_size: int = 8, store=None) -> dict:
    """Export a run's best model to ``checkpoints/model.onnx`` and check onnxruntime parity.

    Returns ``{path, batch, max_abs_diff, tolerance, passed}``, also recorded in ``run.json``.

    Raises
    ------
    ExportError : when export fails or the max abs diff exceeds the tolerance.
    """
    from workbench.train.handle import load_model
    from workbench.runs import now_iso, run_path, update_run

    handle = load_model(run_id, db)
    batch = real_batch(handle.config, batch_size, store)
    path = run_path(run_id, db) / "checkpoints" / "model.onnx"
    diff = export_model(handle.model, path, batch)
    result = {"path": str(path), "batch": int(batch.shape[0]), "max_abs_diff": diff,
              "tolerance": TOLERANCE, "passed": diff <= TOLERANCE, "exported_at": now_iso()}
    update_run(run_id, db, export={"onnx": result})
    if not result["passed"]:
        raise ExportError(f"ONNX parity check failed for run {run_id}: max abs diff {diff:.3g} "
                          f"> {TOLERANCE:g} on a batch of {batch.shape[0]}")
    return result
