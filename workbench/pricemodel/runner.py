"""Runner stage: the Conv1D + recurrent regression model, precision policy and the Keras fit.

Models are a registry (:func:`register_model` / :func:`get_model_builder`); ``gru`` (default) and
``lstm`` ship. Each maps a window (L, F) to the next scaled close through a causal Conv1D, one
recurrent layer and a linear head. The head is float32 so mixed precision never rounds the output.

Training uses the Keras callbacks the pipeline's design asks for: EarlyStopping (restoring the best
weights, which is what keeps the 300-epoch default practical), ModelCheckpoint (best model),
ReduceLROnPlateau, TensorBoard, plus :class:`EpochLogger` for one log line per epoch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.registry import Registry

ModelBuilder = Callable[..., object]
#: Keras model builders by model type (the torch engine's classes use the same Registry API)
MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str, builder: ModelBuilder) -> None:
    """Register ``builder(sequence_length, n_features, units) -> keras.Model`` under ``name``."""
    MODELS.register(name, builder)


def get_model_builder(name: str) -> ModelBuilder:
    """Return the builder registered as ``name``; UnknownNameError (a ParameterError) names the
    known ones."""
    return MODELS.get(name)


def _conv_recurrent(recurrent: str):
    def build(sequence_length: int, n_features: int, units: int = 32):
        import keras

        inp = keras.Input((sequence_length, n_features), name="window")
        x = keras.layers.Conv1D(units, 3, padding="causal", activation="relu", name="conv")(inp)
        layer = keras.layers.GRU if recurrent == "gru" else keras.layers.LSTM
        x = layer(units, name=recurrent)(x)
        out = keras.layers.Dense(1, dtype="float32", name="next_close")(x)
        return keras.Model(inp, out, name=f"conv_{recurrent}")

    return build


register_model("gru", _conv_recurrent("gru"))
register_model("lstm", _conv_recurrent("lstm"))


@dataclass(frozen=True)
class PrecisionChoice:
    """What the run uses: the device, the Keras dtype policy and whether XLA jit is on."""

    device: str
    policy: str
    xla: bool
    requested_mixed: bool

    def describe(self) -> str:
        return (f"device {self.device}, policy {self.policy}, XLA {'on' if self.xla else 'off'}"
                + ("" if self.requested_mixed else " (--no-mixed-precision)"))


def choose_precision(gpu_count: int, allow_mixed: bool) -> PrecisionChoice:
    """Pure decision: mixed_float16 + XLA on a GPU unless disabled; float32 on CPU."""
    if gpu_count > 0 and allow_mixed:
        return PrecisionChoice("GPU", "mixed_float16", True, True)
    return PrecisionChoice("GPU" if gpu_count else "CPU", "float32", False, allow_mixed)


def apply_precision(allow_mixed: bool) -> PrecisionChoice:
    """Detect GPUs, set the global Keras policy and XLA jit accordingly, and return the choice."""
    import keras
    import tensorflow as tf

    choice = choose_precision(len(tf.config.list_physical_devices("GPU")), allow_mixed)
    keras.mixed_precision.set_global_policy(choice.policy)
    tf.config.optimizer.set_jit(choice.xla)
    return choice


def reset_precision() -> None:
    """Restore the float32 policy and XLA off (so one run never leaks into the next)."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy("float32")
    tf.config.optimizer.set_jit(False)


def _epoch_logger_class():
    import keras

    class EpochLogger(keras.callbacks.Callback):
        """Called at the end of each epoch: logs loss, val_loss and the learning rate."""

        def __init__(self, log: Callable[[str], None]):
            super().__init__()
            self._log = log

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            self._log(f"epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.6f} "
                      f"val_loss {logs.get('val_loss', float('nan')):.6f} lr {lr:.2e} "
                      f"({time.perf_counter() - self._t0:.2f} s)")

    return EpochLogger


@dataclass(frozen=True)
class FitSettings:
    """Settings of one fit; defaults are the historical ones (300 epochs, batch 32)."""

    epochs: int = 300
    learning_rate: float = 1e-3
    early_stopping_patience: int = 10  # with restore_best_weights: stops long before 300
    lr_patience: int = 4
    seed: int = 42
    # XLA-compile the train/predict steps: the recurrent loop fuses into one kernel, measured
    # several times faster per epoch than Keras' default on CPU (see bench/price_model.py)
    jit_compile: bool | str = True
    # best-epoch checkpoint as weights only: a full .keras zip per improvement costs ~0.3 s on
    # 2 cores, and model.keras is written once at the end anyway
    checkpoint_weights_only: bool = True


def _checkpoint_name(settings: "FitSettings") -> str:
    return "best.weights.h5" if settings.checkpoint_weights_only else "best.keras"


def make_callbacks(run_dir: Path, settings: FitSettings, log: Callable[[str], None]) -> list:
    """Return EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TensorBoard and EpochLogger."""
    import keras

    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoints" / _checkpoint_name(settings)),
                                        monitor="val_loss", save_best_only=True,
                                        save_weights_only=settings.checkpoint_weights_only),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                          patience=settings.lr_patience, min_lr=1e-5),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), profile_batch=0),
        _epoch_logger_class()(log),
    ]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow (global seed) and Keras' seed generator."""
    import keras

    keras.utils.set_random_seed(seed)


def build_compiled_model(model_type: str, sequence_length: int, n_features: int,
                         settings: FitSettings, units: int = 32):
    """Seed Keras, build the registered model and compile it (Adam, MSE, MAE metric)."""
    import keras

    seed_everything(settings.seed)
    model = get_model_builder(model_type)(sequence_length, n_features, units)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse",
                  metrics=["mae"], jit_compile=settings.jit_compile)
    return model


def for_inference(model):
    """Switch a trained model's predict path to plain graph mode and return it.

    XLA pays off over many identical train steps; evaluation, robustness and the ONNX parity
    check predict a few hundred windows once, where recompiling with XLA for each new batch shape
    costs seconds (measured ~4 s on 2 cores) and saves nothing.
    """
    model.jit_compile = False
    model.predict_function = None
    return model


def fit(model, train_data, val_data, settings: FitSettings, callbacks: list, *,
        shuffle: bool = False, **fit_kwargs) -> dict:
    """Run ``model.fit`` and return its history dict (lists per metric, one entry per epoch).

    ``shuffle`` stays False for ``tf.data`` streams (they shuffle themselves); in-memory arrays
    (the benchmark's naive reference) pass True, with ``y=`` and ``batch_size=`` in ``fit_kwargs``.
    """
    history = model.fit(train_data, validation_data=val_data, epochs=settings.epochs,
                        callbacks=callbacks, verbose=0, shuffle=shuffle, **fit_kwargs)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
