"""One Registry API for every extension point: both engines' model types fail the same way."""
from __future__ import annotations

import pytest

from workbench.errors import ConfigError, ParameterError
from workbench.registry import Registry, UnknownNameError


def test_get_names_the_missing_key_and_the_known_ones():
    reg = Registry("widget", context="config key 'w'")
    assert reg.register("b", 2) == 2 and reg.register("a", 1) == 1
    assert reg.get("a") == 1 and "b" in reg and list(reg) == ["a", "b"]
    with pytest.raises(UnknownNameError, match=r"^config key 'w': unknown widget 'c'; known: 'a', 'b'$"):
        reg.get("c")
    reg.unregister("a")
    assert reg.names() == ["b"]


def test_a_check_refuses_bad_entries():
    def positive(name, value):
        if value <= 0:
            raise ValueError(f"{name} must be > 0")

    reg = Registry("count", check=positive)
    with pytest.raises(ValueError, match="x must be > 0"):
        reg.register("x", 0)
    assert reg.names() == []


def test_both_engines_model_registries_raise_the_same_error():
    from workbench.pricemodel import runner
    from workbench.train import models

    errors = []
    for get in (models.get_model, runner.get_model_builder):
        with pytest.raises(UnknownNameError) as info:
            get("nope")
        errors.append(info.value)
    assert all(isinstance(e, ConfigError) and isinstance(e, ParameterError) for e in errors)
    assert str(errors[0]).endswith("unknown model 'nope'; known: 'lstm', 'transformer'")
    assert str(errors[1]) == "unknown model 'nope'; known: 'gru', 'lstm'"
