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
    with pytest.raises(ConfigError, match=r"'model.type'.*'gpt5'.*\['lstm', 'transformer'\]"):
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
