"""Configuration: defaults, shipped YAML files, overrides, quick preset, errors naming the key."""
from __future__ import annotations

import pytest

from workbench.errors import ConfigError
from workbench.paths import CONFIGS_DIR
from workbench.train.config import QUICK_PRESET, config_from_dict, load_config, parse_override


def test_shipped_configs_load_and_pick_their_model():
    assert load_config(CONFIGS_DIR / "transformer.yaml").model.type == "transformer"
    lstm = load_config(CONFIGS_DIR / "lstm.yaml")
    assert (lstm.model.type, lstm.data.labels) == ("lstm", "pivot")


def test_quick_preset_then_overrides_win():
    cfg = load_config(CONFIGS_DIR / "transformer.yaml", ["training.num_epochs=2"], quick=True)
    assert cfg.model.window == QUICK_PRESET["model.window"]
    assert cfg.data.max_windows == QUICK_PRESET["data.max_windows"]
    assert cfg.training.num_epochs == 2


def test_override_values_are_yaml_scalars():
    assert parse_override("training.seed=7") == ("training.seed", 7)
    # YAML 1.1 reads 3e-4 as a string; float keys still take it as the number it means
    assert load_config(None, ["training.learning_rate=3e-4"]).training.learning_rate == 3e-4
    assert parse_override("data.max_windows=null") == ("data.max_windows", None)
    assert parse_override("callbacks.progress=false") == ("callbacks.progress", False)


@pytest.mark.parametrize("raw, key, words", [
    ({"training": {"num_epochz": 3}}, "training.num_epochz", "unknown"),
    ({"modle": {}}, "modle", "unknown"),
    ({"callbacks": {"early_stopping": {"patiense": 1}}}, "callbacks.early_stopping.patiense",
     "unknown"),
    ({"training": {"num_epochs": "ten"}}, "training.num_epochs", "wrong type"),
    ({"training": {"batch_size": 1.5}}, "training.batch_size", "wrong type"),
    ({"model": {"dropout": True}}, "model.dropout", "wrong type"),
    ({"training": {"num_epochs": 0}}, "training.num_epochs", "must be > 0"),
    ({"model": {"d_model": 30, "n_heads": 4}}, "model.d_model", "divisible"),
    ({"data": {"val_fraction": 0.7}}, "data.val_fraction", "(0, 0.5)"),
    ({"data": {"labels": "oracle"}}, "data.labels", "one of"),
    ({"data": {"labels": ["manual", "oracle"]}}, "data.labels", "unknown source 'oracle'"),
    ({"data": {"labels": []}}, "data.labels", "the list is empty"),
    ({"data": {"labels": ["rule", "rule"]}}, "data.labels", "twice"),
    ({"data": {"labels": ["rule", 3]}}, "data.labels", "wrong type"),
    ({"callbacks": {"lr_scheduler": {"scheduler": "warmup"}}},
     "callbacks.lr_scheduler.scheduler", "one of"),
    ({"training": "fast"}, "training", "mapping"),
])
def test_config_errors_name_the_key(raw, key, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert repr(key) in str(err.value) and words in str(err.value)


def test_unknown_model_type_names_the_known_ones():
    from workbench.train.models import build_model

    cfg = config_from_dict({"model": {"type": "gpt5"}})
    with pytest.raises(ConfigError, match=r"'model.type'.*'gpt5'.*known: 'lstm', 'transformer'"):
        build_model(cfg.model)


def test_bad_override_and_file_errors_name_the_source(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["training.num_epochs"])
    with pytest.raises(ConfigError, match="'training.num_epochs'"):
        load_config(None, ["training.num_epochs=-1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  window: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_labels_take_one_source_or_a_list_in_precedence_order():
    assert config_from_dict({"data": {"labels": "pivot"}}).data.label_sources == ("pivot",)
    cfg = load_config(None, ["data.labels=[rule, manual, pivot]"])
    assert cfg.data.labels == ["rule", "manual", "pivot"]  # kept as written in config.json
    assert cfg.data.label_sources == ("manual", "pivot", "rule")


def _numeric_keys(cls=None, prefix=""):
    """Every int/float key of the config tree, dotted (a new numeric key joins automatically)."""
    import dataclasses
    import typing

    from workbench.train.config import TrainConfig

    cls = cls or TrainConfig
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _numeric_keys(hint, f"{prefix}{f.name}.")
        elif float in typing.get_args(hint) + (hint,) or int in typing.get_args(hint) + (hint,):
            yield f"{prefix}{f.name}", hint


#: numeric keys where a negative value means something (epoch ms before 1970)
_NEGATIVE_OK = {"data.start", "data.end"}


@pytest.mark.parametrize("key, hint", list(_numeric_keys()), ids=lambda v: str(v))
def test_every_numeric_key_refuses_non_finite_and_negative_values_naming_the_key(key, hint):
    values = ["nan", "inf", "-inf", "1e400"] if hint is float else []
    values.append("-1")
    for value in values:
        if value == "-1" and key in _NEGATIVE_OK:
            continue
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"{key}={value}"])
        message = str(err.value)
        assert repr(key) in message, (key, value, message)
        assert "finite" in message or "must" in message or "wrong type" in message


@pytest.mark.parametrize("override, words", [
    ("training.learning_rate=nan", "finite"),
    ("training.learning_rate=inf", "finite"),
    ("training.weight_decay=inf", "finite"),
    ("training.grad_clip=nan", "finite"),
    ("data.rule_threshold=nan", "finite"),
    ("training.learning_rate=0", "must be > 0"),
    ("training.seed=-3", "[0, 2**32)"),
    ("training.devices=0", "count >= 1"),
    ("training.devices=[]", "count >= 1"),
    ("training.strategy=warp", "strategies"),
    ("training.accelerator=abacus", "one of"),
    ("callbacks.checkpoint.monitor=val_lss", "one of"),
    ("callbacks.early_stopping.monitor=accuracy", "one of"),
    ("callbacks.lr_scheduler.monitor=loss", "one of"),
])
def test_issue_reproductions_fail_with_a_config_error_naming_the_key(override, words):
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS_DIR / "transformer.yaml", [override], quick=True)
    assert repr(key) in str(err.value) and words in str(err.value)


def test_valid_hardware_settings_pass():
    cfg = load_config(None, ["training.strategy=ddp", "training.devices=2",
                             "training.accelerator=cpu", "data.rule_threshold=0"])
    assert (cfg.training.strategy, cfg.training.devices) == ("ddp", 2)
    assert load_config(None, ["training.devices=[0, 1]"]).training.devices == [0, 1]
