"""Search spaces: ``SPACE.yaml`` maps dotted config keys to a range or a list of choices.

::

    training.learning_rate: {low: 0.0001, high: 0.01, log: true}
    model.d_model: [16, 32]
    training.batch_size: {low: 32, high: 128, step: 32}

A range whose ``low`` and ``high`` are both integers is an integer range; ``log`` and ``step``
are optional. Every key must be a key of the training config: the file is checked by applying
each dimension's first value to the base config (:func:`check_space`), so a typo fails before any
trial starts, with a :class:`~workbench.errors.ConfigError` naming the file and the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.train.config import config_from_dict, merge_overrides, read_yaml


@dataclass(frozen=True)
class Dimension:
    """One searched key: a range (``low``/``high``, ``log``, ``step``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def first(self) -> Any:
        return self.choices[0] if self.choices is not None else self.low

    def suggest(self, trial) -> Any:
        """Ask an Optuna trial for this dimension's value."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log,
                                   step=self.step)


def _dimension(key: str, raw, where: str) -> Dimension:
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{where}: key {key!r} lists no choices")
        return Dimension(key, choices=tuple(raw))
    if not isinstance(raw, dict) or not {"low", "high"} <= set(raw):
        raise ConfigError(f"{where}: key {key!r} must be a list of choices or a mapping with "
                          f"low and high (and optional log, step), got {raw!r}")
    unknown = sorted(set(raw) - {"low", "high", "log", "step"})
    if unknown:
        raise ConfigError(f"{where}: key {key!r} has unknown field(s) {unknown}")
    low, high = raw["low"], raw["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: key {key!r} needs numeric low and high")
    if not low < high:
        raise ConfigError(f"{where}: key {key!r} needs low < high, got {low} and {high}")
    if raw.get("log") and low <= 0:
        raise ConfigError(f"{where}: key {key!r} is log-scaled and needs low > 0")
    return Dimension(key, low, high, bool(raw.get("log", False)), raw.get("step"))


def load_space(path: str | Path) -> list[Dimension]:
    """Read and validate ``SPACE.yaml`` (shape only; see :func:`check_space` for the keys)."""
    raw = read_yaml(path)
    if not raw:
        raise ConfigError(f"space file {path} names no keys to search")
    return [_dimension(str(k), v, f"space file {path}") for k, v in raw.items()]


def check_space(space: list[Dimension], base: dict, source: str = "space") -> None:
    """Raise ConfigError naming ``source`` and the key unless every value fits the config."""
    for dim in space:
        values = dim.choices if dim.choices is not None else (dim.low, dim.high)
        for value in values:
            try:
                config_from_dict(merge_overrides(base, [(dim.key, value)]))
            except ConfigError as exc:
                raise ConfigError(f"{source}: key {dim.key!r} = {value!r}: {exc}") from None
