"""Atomic checkpoint files, read back with ``torch.load(weights_only=True)``.

A checkpoint is written to a temporary file in the destination folder, flushed, fsynced and then
moved over the destination with ``os.replace`` (atomic on POSIX), and the folder is fsynced. A
crash at any point leaves either the previous checkpoint or the new one, never a partial file.
:class:`AtomicCheckpointIO` plugs this into Lightning, so ``best.ckpt``, ``last.ckpt`` and the
every-N-epoch files all go through it.

A Lightning checkpoint holds the model (``state_dict``), the optimizer and LR-scheduler states,
``epoch``/``global_step`` and the loop state; :class:`~workbench.train.module.ForecastModule` adds
the RNG states and the config.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from workbench.errors import NonFiniteError, RunError


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises
    ------
    RunError : naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem is a bad checkpoint
        raise RunError(f"checkpoint {path} cannot be read: {exc}") from exc


def non_finite_tensors(state_dict: dict) -> list[str]:
    """Return the names of the floating-point tensors of ``state_dict`` holding NaN or inf."""
    return [name for name, t in state_dict.items()
            if isinstance(t, torch.Tensor) and t.is_floating_point()
            and not bool(torch.isfinite(t).all())]


def check_finite(checkpoint: dict, path) -> None:
    """Refuse a checkpoint whose model weights are not all finite (a NaN model is no result).

    Raises
    ------
    NonFiniteError : naming the file, the epoch and step and the first non-finite tensor.
    """
    bad = non_finite_tensors(checkpoint.get("state_dict", {}))
    if bad:
        raise NonFiniteError(f"checkpoint {Path(path).name} not saved: {len(bad)} weight "
                             f"tensor(s), first {bad[0]!r}, hold NaN or inf at epoch {checkpoint.get('epoch')}, "
                             f"step {checkpoint.get('global_step')}; the weights diverged: "
                             "lower training.learning_rate or set training.grad_clip")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that writes atomically and loads with ``weights_only=True``.

    A checkpoint with non-finite weights is refused before anything is written, so neither
    ``best.ckpt`` nor ``last.ckpt`` can ever hold a NaN model.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        check_finite(checkpoint, path)
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return load_checkpoint(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)

