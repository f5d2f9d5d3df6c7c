"""Runner stage: model registry, precision choice, callbacks and per-epoch logging."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from workbench.errors import ParameterError
from workbench.pricemodel import runner
from workbench.pricemodel.datasets import WindowSplit, make_tf_dataset


def test_registry_builds_gru_and_lstm_and_names_known_types():
    for kind in ("gru", "lstm"):
        model = runner.get_model_builder(kind)(8, 5, 4)
        assert model.output_shape == (None, 1)
        assert any(kind in layer.name for layer in model.layers)
    with pytest.raises(ParameterError, match="'tcn'.*'gru', 'lstm'"):
        runner.get_model_builder("tcn")


def test_new_model_type_is_one_registration():
    def build(seq, feats, units):
        inp = keras.Input((seq, feats))
        return keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(inp)))

    runner.register_model("flat_test", build)
    try:
        assert runner.get_model_builder("flat_test")(4, 2, 1).count_params() == 9
    finally:  # other tests in this worker list the known models
        runner.MODELS.unregister("flat_test")


@pytest.mark.parametrize("gpus, allow, policy, xla, device", [
    (1, True, "mixed_float16", True, "GPU"),
    (1, False, "float32", False, "GPU"),
    (0, True, "float32", False, "CPU"),
    (0, False, "float32", False, "CPU"),
])
def test_precision_choice(gpus, allow, policy, xla, device):
    choice = runner.choose_precision(gpus, allow)
    assert (choice.policy, choice.xla, choice.device, choice.requested_mixed) == \
        (policy, xla, device, allow)


def test_apply_precision_on_this_machine_and_reset():
    import tensorflow as tf

    choice = runner.apply_precision(True)
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert choice.policy == ("mixed_float16" if has_gpu else "float32")
    assert keras.mixed_precision.global_policy().name == choice.policy
    runner.reset_precision()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_fit_uses_every_callback_and_logs_each_epoch(tmp_path, small_windows):
    x, y = small_windows
    settings = runner.FitSettings(epochs=3, jit_compile=False)
    model = runner.build_compiled_model("gru", 8, 5, settings, units=4)
    lines: list[str] = []
    cbs = runner.make_callbacks(tmp_path, settings, lines.append)
    kinds = {type(cb).__name__ for cb in cbs}
    assert {"EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard"} <= kinds
    part = WindowSplit(x, y, np.arange(len(x)))
    history = runner.fit(model, make_tf_dataset(part, 8, shuffle=True, seed=0),
                         make_tf_dataset(part, 8, shuffle=False, seed=0), settings, cbs)
    assert len(history["loss"]) == 3 and len(history["val_loss"]) == 3
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2", "epoch 3"]
    assert (tmp_path / "checkpoints" / "best.weights.h5").is_file()
    assert any((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_same_seed_gives_the_same_weights_and_loss(small_windows):
    x, y = small_windows
    settings = runner.FitSettings(epochs=2, jit_compile=False)

    def train():
        model = runner.build_compiled_model("gru", 8, 5, settings, units=4)
        part = WindowSplit(x, y, np.arange(len(x)))
        return runner.fit(model, make_tf_dataset(part, 8, shuffle=True, seed=1),
                          make_tf_dataset(part, 8, shuffle=False, seed=1), settings, [])

    assert train()["loss"] == train()["loss"]
