"""Headline values of a notebook, recorded machine-readably next to its report.

A notebook calls :func:`record` for each value a reader (or a test) should be able to pick up
without parsing printed text: best metrics, backtest PnL, win rate, number of trades, hit rate.
When the suite runner executes the notebook it names a JSON file in the kernel's environment
(:data:`RECORD_ENV`); :func:`record` merges each value into that file at once, so a notebook that
fails half-way still leaves the values recorded before the failure. Run by hand (no variable set),
:func:`record` only keeps the values in memory (:func:`recorded`) and returns them.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

#: environment variable naming the JSON file that :func:`record` writes
RECORD_ENV = "WORKBENCH_RECORD_FILE"

_memory: dict[str, Any] = {}


def _plain(value: Any) -> Any:
    """Return ``value`` as plain JSON data (numpy scalars/arrays, tuples, NaN → None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    elif hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def record_path() -> Path | None:
    """Return the JSON file named by :data:`RECORD_ENV`, or ``None`` when run by hand."""
    name = os.environ.get(RECORD_ENV)
    return Path(name) if name else None


def record(name: str, value: Any) -> Any:
    """Record the headline value ``name`` and return ``value`` unchanged.

    Parameters
    ----------
    name : key under which the value is stored (for example ``"trades"``).
    value : a number, string, bool, None, or a list/dict of them; numpy scalars are converted.

    Returns
    -------
    The value passed in, so a cell can end with ``record("pnl", stats.pnl)``.
    """
    plain = _plain(value)
    _memory[name] = plain
    path = record_path()
    if path is not None:
        doc = json.loads(path.read_text()) if path.exists() else {}
        doc.setdefault("records", {})[name] = plain
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
        os.replace(tmp, path)
    return value


def recorded() -> dict[str, Any]:
    """Return a copy of every value recorded in this process."""
    return dict(_memory)
