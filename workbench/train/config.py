"""Training configuration: a YAML file of sections (model, training, data,
callbacks, output), validated into dataclasses.

The file has five sections, ``model``, ``training``, ``data``, ``callbacks`` and ``output``; every
key is optional and falls back to the defaults below. :func:`load_config` reads a file, applies
``--set a.b=value`` overrides (values parsed as YAML scalars) and the optional ``quick`` preset, and
returns a :class:`TrainConfig`. Every problem raises :class:`~workbench.errors.ConfigError` naming
the dotted key: an unknown key, a wrong type or an impossible value.

>>> cfg = config_from_dict({"training": {"num_epochs": 3}})
>>> cfg.training.num_epochs, cfg.model.type
(3, 'transformer')
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.actions import ANNOTATION_SOURCES, HOLD_BAND
from workbench.errors import ConfigError


@dataclass
class ModelConfig:
    """Model architecture (see :mod:`workbench.train.models` for the registered types)."""

    type: str = "transformer"
    window: int = 600  # candles per window: about ten hours of 1m candles
    d_model: int = 64  # small on purpose: batch-1 CPU inference in a few milliseconds
    # one head of 64: 4 heads of 8 made batch-1 attention ~10x slower on CPU (bench/torch_engine.py)
    n_heads: int = 1
    n_layers: int = 2
    ff_dim: int = 128
    # dropout 0 and no fast path: both measured 1.3-7x faster on the project's CPU
    dropout: float = 0.0
    fast_path: bool = False

    def check(self) -> list[tuple[str, str]]:
        errs = _positive(self, "window", "d_model", "n_heads", "n_layers", "ff_dim")
        if self.window < 2:
            errs.append(("window", "must be at least 2"))
        if self.d_model % max(self.n_heads, 1):
            errs.append(("d_model", f"must be divisible by n_heads={self.n_heads}"))
        if not 0.0 <= self.dropout < 1.0:
            errs.append(("dropout", "must lie in [0, 1)"))
        return errs


@dataclass
class TrainingConfig:
    """Optimisation and hardware settings."""

    num_epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 disables gradient clipping
    seed: int = 42
    action_loss_weight: float = 1.0
    candle_loss_weight: float = 1.0
    accelerator: str = "auto"  # CUDA is picked automatically when present
    devices: Any = "auto"
    precision: str = "auto"  # auto: bf16-mixed on CUDA, 32-true on CPU
    strategy: str = "auto"  # "ddp" for multi-GPU / multi-node (docs/training.md)
    num_nodes: int = 1
    num_threads: int = 1  # torch intra-op threads on CPU
    deterministic: bool = True

    def check(self) -> list[tuple[str, str]]:
        errs = _positive(self, "num_epochs", "batch_size", "learning_rate", "num_nodes",
                         "num_threads")
        errs += _nonnegative(self, "weight_decay", "grad_clip", "action_loss_weight",
                             "candle_loss_weight")
        errs += _choice(self, "optimizer", ("adam", "adamw", "sgd"))
        errs += _choice(self, "precision", ("auto", "32-true", "bf16-mixed", "16-mixed",
                                            "bf16-true", "64-true"))
        errs += _choice(self, "accelerator", ACCELERATORS)
        if not 0 <= self.seed < 2 ** 32:
            errs.append(("seed", "must lie in [0, 2**32)"))
        if self.action_loss_weight + self.candle_loss_weight <= 0:
            errs.append(("action_loss_weight", "the two loss weights cannot both be 0"))
        return errs + _devices_errors(self.devices) + _strategy_errors(self.strategy)


#: the label sources of ``data.labels``, highest precedence first (why: workbench/train/labels.py)
LABEL_SOURCES = ANNOTATION_SOURCES  # in precedence order: manual, pivot, rule


def label_sources(labels: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return the sources named by ``data.labels`` (one name or a list) in precedence order.

    >>> label_sources(["rule", "manual"])
    ('manual', 'rule')
    """
    chosen = [labels] if isinstance(labels, str) else list(labels)
    return tuple(s for s in LABEL_SOURCES if s in chosen)


def _label_errors(labels) -> list[tuple[str, str]]:
    chosen = [labels] if isinstance(labels, str) else list(labels)
    allowed = f"must be one of {list(LABEL_SOURCES)} or a list of them"
    if not chosen:
        return [("labels", f"{allowed}; the list is empty")]
    unknown = [s for s in chosen if s not in LABEL_SOURCES]
    if unknown:
        return [("labels", f"{allowed}; unknown source {unknown[0]!r}")]
    twice = sorted({s for s in chosen if chosen.count(s) > 1})
    return [("labels", f"lists {twice[0]!r} twice")] if twice else []


@dataclass
class DataConfig:
    """Which candles and labels to train on, and how to split them by time."""

    db: str | None = None  # DuckDB file; None: --db, $WORKBENCH_DB, data/workbench.duckdb
    symbol: str = "ETH/USDT"
    timeframe: str = "1m"
    start: int | None = None  # epoch ms, inclusive
    end: int | None = None
    # a source (manual | pivot | rule) or a list of them; where several label one candle, the
    # precedence is LABEL_SOURCES' order whatever the list's order (workbench/train/labels.py)
    labels: str | list[str] = "rule"
    rule_threshold: float = HOLD_BAND  # percent move of the next close: the shared hold band
    pivot_strength: int = 2
    max_windows: int | None = None  # use only the most recent windows (None: all)
    stride: int = 1
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    shuffle: bool = True  # within the train split only

    def check(self) -> list[tuple[str, str]]:
        errs = _label_errors(self.labels)
        errs += _positive(self, "stride", "pivot_strength")
        errs += _nonnegative(self, "rule_threshold")
        if self.max_windows is not None and self.max_windows < 10:
            errs.append(("max_windows", "must be at least 10 (or null for all)"))
        for key in ("val_fraction", "test_fraction"):
            if not 0.0 < getattr(self, key) < 0.5:
                errs.append((key, "must lie in (0, 0.5)"))
        if self.start is not None and self.end is not None and self.start >= self.end:
            errs.append(("start", f"must be before end={self.end}"))
        return errs

    @property
    def label_sources(self) -> tuple[str, ...]:
        """The chosen label sources, highest precedence first (see :func:`label_sources`)."""
        return label_sources(self.labels)


@dataclass
class CheckpointConfig:
    monitor: str = "val_loss"
    mode: str = "auto"  # auto: min for losses/errors, max for accuracy, F1, R2, Pearson, SNR
    every_n_epochs: int = 0  # 0: only best and last

    def check(self) -> list[tuple[str, str]]:
        return (_choice(self, "mode", ("auto", "min", "max")) + _monitor_errors(self)
                + _nonnegative(self, "every_n_epochs"))


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    monitor: str = "val_loss"
    mode: str = "auto"  # as CheckpointConfig.mode
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True

    def check(self) -> list[tuple[str, str]]:
        return (_choice(self, "mode", ("auto", "min", "max")) + _monitor_errors(self)
                + _nonnegative(self, "patience", "min_delta"))


@dataclass
class SchedulerConfig:
    enabled: bool = True
    scheduler: str = "plateau"  # plateau | step | cosine
    monitor: str = "val_loss"
    factor: float = 0.5
    patience: int = 2  # plateau
    step_size: int = 5  # step
    t_max: int = 0  # cosine; 0: training.num_epochs
    min_lr: float = 0.0

    def check(self) -> list[tuple[str, str]]:
        errs = _choice(self, "scheduler", ("plateau", "step", "cosine")) + _monitor_errors(self)
        errs += _positive(self, "step_size") + _nonnegative(self, "patience", "t_max", "min_lr")
        if not 0.0 < self.factor < 1.0:
            errs.append(("factor", "must lie in (0, 1)"))
        return errs


@dataclass
class CallbacksConfig:
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    lr_scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    tensorboard: bool = True
    progress: bool = True


@dataclass
class OutputConfig:
    run_name: str = ""  # optional label in the run id
    log_level: str = "INFO"

    def check(self) -> list[tuple[str, str]]:
        errs = _choice(self, "log_level", ("DEBUG", "INFO", "WARNING", "ERROR"))
        if self.run_name and not self.run_name.replace("-", "").replace("_", "").isalnum():
            errs.append(("run_name", "may hold only letters, digits, '-' and '_'"))
        return errs


@dataclass
class TrainConfig:
    """The whole configuration of a training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        """Return the configuration as plain nested dicts (what ``config.json`` holds)."""
        return dataclasses.asdict(self)


#: the ``--quick`` preset: a tiny model on a few thousand short windows, done in < 1 min on 2 cores
QUICK_PRESET: dict[str, Any] = {
    "model.window": 64, "model.d_model": 16, "model.n_heads": 1, "model.n_layers": 1,
    "model.ff_dim": 32, "training.num_epochs": 3, "training.batch_size": 64,
    "data.max_windows": 3000, "callbacks.early_stopping.patience": 3,
}


#: Lightning accelerators a run may name (``auto`` picks CUDA when present)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
#: what a run logs per epoch, ``<split>_<name>`` (workbench/train/module.py): what callbacks monitor
METRIC_NAMES = ("loss", "mse", "rmse", "mae", "pearson", "r2", "snr_db", "acc", "f1")
MONITORABLE = tuple(f"{split}_{name}" for split in ("train", "val") for name in METRIC_NAMES)


def _monitor_errors(section) -> list[tuple[str, str]]:
    """A monitored metric must be one the run logs: Lightning would fail only after an epoch."""
    return _choice(section, "monitor", MONITORABLE)


def _devices_errors(devices) -> list[tuple[str, str]]:
    """``training.devices``: ``auto``, a count >= 1 (or -1: all), or a list of device indices."""
    ok = (devices == "auto" or (isinstance(devices, int) and not isinstance(devices, bool)
                                and (devices >= 1 or devices == -1))
          or (isinstance(devices, list) and devices
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                      for d in devices)))
    return [] if ok else [("devices", "must be 'auto', a count >= 1, -1 (all) or a non-empty "
                                      "list of device indices")]


def _strategy_errors(strategy: str) -> list[tuple[str, str]]:
    """``training.strategy`` must be ``auto`` or a name in Lightning's strategy registry."""
    if strategy == "auto":
        return []
    from lightning.pytorch.strategies import StrategyRegistry  # only when a strategy is named

    known = StrategyRegistry.available_strategies()
    return [] if strategy in known else [("strategy", f"must be 'auto' or one of Lightning's "
                                                      f"strategies such as 'ddp' (got {strategy!r})")]


def _positive(obj, *keys) -> list[tuple[str, str]]:
    return [(k, "must be > 0") for k in keys if getattr(obj, k) <= 0]


def _nonnegative(obj, *keys) -> list[tuple[str, str]]:
    return [(k, "must be >= 0") for k in keys if getattr(obj, k) < 0]


def _choice(obj, key: str, allowed) -> list[tuple[str, str]]:
    value = getattr(obj, key)
    return [] if value in allowed else [(key, f"must be one of {list(allowed)}, got {value!r}")]


def _yaml11_float(value):
    """Read '1e-3' (a string to YAML 1.1, which lacks the dot) as the float it means."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _finite(value) -> bool:
    """True for a number a float can hold finitely (an int too large for a float is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _type_ok(value, hint) -> bool:
    """Return True when ``value`` fits the (simple) annotation ``hint``."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _build(cls, raw: Any, prefix: str):
    """Build dataclass ``cls`` from ``raw``, raising ConfigError that names the dotted key."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"config key {where!r}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"config key {prefix + str(key)!r} is unknown; known keys in "
                              f"{where!r}: {sorted(known)}")
    kwargs = {}
    for key, value in raw.items():
        hint = hints[key]
        value = _yaml11_float(value) if hint is float else value
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
            continue
        if not _type_ok(value, hint):
            raise ConfigError(f"config key {prefix + key!r} has the wrong type: expected "
                              f"{getattr(hint, '__name__', hint)}, got {value!r}")
        if hint is float and not _finite(value):
            raise ConfigError(f"config key {prefix + key!r} must be a finite number "
                              f"(got {value!r})")
        kwargs[key] = float(value) if hint is float else value
    obj = cls(**kwargs)
    for key, rule in (obj.check() if hasattr(obj, "check") else []):
        raise ConfigError(f"config key {prefix + key!r} {rule} (got {getattr(obj, key)!r})")
    return obj


def config_from_dict(raw: dict | None) -> TrainConfig:
    """Validate a nested dict and return a :class:`TrainConfig`.

    Raises
    ------
    ConfigError : naming the dotted key of an unknown key, wrong type or impossible value.
    """
    return _build(TrainConfig, raw or {}, "")


def _set_dotted(raw: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``a.b=value`` override; the value is read as a YAML scalar."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.strip(), parsed


def merge_overrides(raw: dict, overrides=(), quick: bool = False) -> dict:
    """Return a copy of ``raw`` with the quick preset (if asked) and then ``overrides`` applied."""
    out = yaml.safe_load(yaml.safe_dump(raw or {}))
    if quick:
        for key, value in QUICK_PRESET.items():
            _set_dotted(out, key, value)
    for item in overrides:
        key, value = item if isinstance(item, tuple) else parse_override(item)
        _set_dotted(out, key, value)
    return out


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file; raises ConfigError naming the file when it is unreadable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return raw or {}


def load_config(path: str | Path | None = None, overrides=(), quick: bool = False) -> TrainConfig:
    """Read ``path`` (optional), apply ``quick`` and ``overrides`` and validate.

    Raises
    ------
    ConfigError : on an unreadable file or any invalid key (the message names the key).
    """
    raw = read_yaml(path) if path is not None else {}
    try:
        return config_from_dict(merge_overrides(raw, overrides, quick))
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(f"{path}: {exc}") from None
