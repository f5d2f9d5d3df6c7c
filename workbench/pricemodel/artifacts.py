"""Artifacts stage: ``model.keras``, ``model.onnx`` with its onnxruntime parity check, metadata.

ONNX export uses Keras 3's ``model.export(path, format="onnx")`` (tf2onnx underneath) with a
dynamic batch dimension. The parity check runs the exported graph in onnxruntime on real test
windows and compares with Keras; a max abs difference above :data:`PARITY_TOLERANCE` raises
:class:`ExportError`, because live and backtest consumers load the ``.onnx`` file.
JSON files are written atomically (temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from workbench.errors import ExportError
from workbench.runs import write_json_atomic

PARITY_TOLERANCE = 1e-4


def write_json(path: Path, payload: dict) -> Path:
    """Write ``payload`` as indented, key-sorted JSON atomically and return ``path``."""
    return write_json_atomic(path, payload, sort_keys=True, default=str)


def save_keras(model, run_dir: Path) -> Path:
    """Save the model as ``model.keras`` in ``run_dir`` and return the path."""
    path = Path(run_dir) / "model.keras"
    model.save(path)
    return path


def export_onnx(model, run_dir: Path) -> Path:
    """Export ``model.onnx`` with Keras 3's ONNX exporter; ExportError on any failure."""
    import tensorflow as tf

    path = Path(run_dir) / "model.onnx"
    # an explicit signature: float32 windows with a dynamic batch dimension
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="window")
    try:
        model.export(str(path), format="onnx", verbose=False, input_signature=[spec])
    except Exception as exc:  # the exporter raises many unrelated types
        raise ExportError(f"ONNX export to {path} failed: {exc}") from exc
    return path


def onnx_parity(path: Path, model, x: np.ndarray, *, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Compare onnxruntime with Keras on windows ``x``; return the recorded parity result.

    Raises
    ------
    ExportError : when the max abs difference exceeds ``tolerance``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0].reshape(-1)
    want = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float32).reshape(-1)
    diff = float(np.max(np.abs(got - want)))
    result = {"max_abs_diff": diff, "tolerance": tolerance, "passed": diff <= tolerance,
              "n_windows": int(x.shape[0]), "input_name": name}
    if not result["passed"]:
        raise ExportError(f"ONNX parity failed for {path}: max abs diff {diff:.3g} exceeds "
                          f"tolerance {tolerance:g} on {x.shape[0]} test windows")
    return result


def versions() -> dict:
    """Return the versions of the libraries that produced the artifacts."""
    import keras
    import numpy
    import onnxruntime
    import polars
    import tensorflow as tf

    out = {"python": platform.python_version(), "tensorflow": tf.__version__,
           "keras": keras.__version__, "numpy": numpy.__version__, "polars": polars.__version__,
           "onnxruntime": onnxruntime.__version__}
    try:
        import onnx
        import tf2onnx

        out.update(onnx=onnx.__version__, tf2onnx=tf2onnx.__version__)
    except ImportError:  # pragma: no cover - both ship with the workbench
        pass
    return out
