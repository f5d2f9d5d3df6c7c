"""The model handle: the one object the live modes and the backtest use to run a torch model.

A :class:`ModelHandle` owns a trainable model, its optimizer and its
:class:`~workbench.train.lock.TrainingLock`, plus an immutable *published snapshot*: a frozen copy
of the weights with a version number. The contract (``docs/architecture.md``):

* :meth:`ModelHandle.predict` runs on the current snapshot and never takes the lock, so inference
  never waits for training and never sees a half-updated model;
* :meth:`ModelHandle.train_step` acquires the lock, takes one optimizer step, publishes a new
  snapshot (version + 1) and releases the lock;
* :meth:`ModelHandle.step` is the stateful LSTM's O(1)-per-candle inference;
* :meth:`ModelHandle.state_dict_snapshot` returns the published weights for bit-identity checks.

:func:`load_model` builds a handle from a run's ``best.ckpt``; ``ModelHandle.from_config`` builds
one with fresh (seeded) weights.
"""
from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from workbench.actions import ACTIONS
from workbench.errors import NonFiniteError, ParameterError
from workbench.features.windows import N_FEATURES
from workbench.train.lock import TrainingLock
from workbench.train.checkpoints import load_checkpoint
from workbench.train.models import build_model
from workbench.train.module import build_optimizer, combined_loss
from workbench.train.working_copy import copy_weights


@dataclass(frozen=True)
class Prediction:
    """What a model says about B windows.

    ``action_probs`` float32 (B, 3) in :data:`~workbench.actions.ACTIONS` order, ``candle``
    float32 (B, 4): the next candle's OHLC relative to the last close, in percent, and the
    version of the snapshot that produced them.
    """

    action_probs: np.ndarray
    candle: np.ndarray
    model_version: int

    @property
    def action_index(self) -> np.ndarray:
        """The most probable action per window (index into ACTIONS)."""
        return self.action_probs.argmax(axis=1)

    @property
    def actions(self) -> list[str]:
        """The most probable action per window, as names."""
        return [ACTIONS[i] for i in self.action_index]

    @property
    def confidence(self) -> np.ndarray:
        """The softmax maximum per window."""
        return self.action_probs.max(axis=1)


@dataclass(frozen=True)
class _Snapshot:
    version: int
    model: nn.Module


def _frozen_copy(model: nn.Module) -> nn.Module:
    out = copy.deepcopy(model).eval()
    out.requires_grad_(False)
    return out


class _SnapshotModels:
    """Models of retired snapshots, reused once no reader holds their snapshot.

    Publishing after every per-candle step used to deep-copy the model (about 1.7 ms of a 25 ms
    step for the default transformer). A snapshot's model is only recycled after the
    :class:`_Snapshot` that wrapped it has been freed, i.e. when no ``predict``/``step`` call can
    still be reading it (they hold the snapshot, not just its model, for their whole call), so
    every published snapshot stays immutable while anyone can see it.
    """

    def __init__(self, keep: int = 2):
        self._free: list[nn.Module] = []
        self._keep = keep
        self._guard = threading.Lock()

    def snapshot(self, version: int, live: nn.Module) -> _Snapshot:
        """Return a new snapshot holding a frozen copy of ``live``'s current weights."""
        with self._guard:
            spare = self._free.pop() if self._free else None
        if spare is None:
            frozen = _frozen_copy(live)
        else:
            copy_weights(live, spare)
            frozen = spare
        snap = _Snapshot(version, frozen)
        weakref.finalize(snap, self._retire, frozen)
        return snap

    def _retire(self, model: nn.Module) -> None:
        with self._guard:
            if len(self._free) < self._keep:
                self._free.append(model)


def _as_rows(features_row) -> torch.Tensor:
    """Return one feature row (8,) or B rows (B, 8) as a float32 (B, 8) tensor.

    Cheap on the per-candle path: numpy does the checks and the (1, 8) view, and ``from_numpy``
    shares the contiguous float32 buffer instead of copying it.
    """
    rows = np.asarray(features_row, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] != N_FEATURES:
        raise ParameterError(f"a feature row must have shape (8,) or (B, 8); got "
                             f"{tuple(rows.shape)}")
    return torch.from_numpy(np.ascontiguousarray(rows))


def _checked(pred: Prediction) -> Prediction:
    """Return ``pred``, or raise NonFiniteError when any output is NaN or inf."""
    bad = ~(np.isfinite(pred.action_probs).all(axis=1) & np.isfinite(pred.candle).all(axis=1))
    if bad.any():
        raise NonFiniteError(f"model snapshot {pred.model_version} produced NaN or inf for "
                             f"{int(bad.sum())} of {bad.size} window(s) (first: window "
                             f"{int(np.argmax(bad))}); not a prediction, no signal")
    return pred


class ModelHandle:
    """A trainable model with a lock and a published, immutable inference snapshot.

    Parameters
    ----------
    model : the live torch model (trained in place by :meth:`train_step`; :meth:`fit` trains a
        working copy and writes its weights back under the lock).
    config : the :class:`~workbench.train.config.TrainConfig` it was built from.
    run_id : the run it was loaded from, or ``None`` for fresh weights.
    lock : the training lock; a new :class:`TrainingLock` by default.
    """

    def __init__(self, model: nn.Module, config, *, run_id: str | None = None,
                 lock: TrainingLock | None = None):
        self.model, self.config, self.run_id = model, config, run_id
        self.model_type, self.window = config.model.type, config.model.window
        self.lock = lock or TrainingLock(run_id or f"fresh {self.model_type}")
        self.optimizer = build_optimizer(model, config.training)
        self._publish_guard = threading.Lock()
        self._models = _SnapshotModels()
        self._snapshot = self._models.snapshot(0, model)
        self._step_guard = threading.Lock()
        self._step_state = None
        self.base_steps = 0  # training steps the weights had when this handle got them (fork)

    @classmethod
    def from_config(cls, config, *, lock: TrainingLock | None = None) -> "ModelHandle":
        """Build a handle with fresh weights, seeded by ``config.training.seed``."""
        torch.manual_seed(config.training.seed)
        return cls(build_model(config.model), config, lock=lock)

    @property
    def version(self) -> int:
        """The version of the published snapshot (0 for the weights the handle started with)."""
        return self._snapshot.version

    @property
    def steps(self) -> int:
        """Training steps since the saved weights of ``run_id`` (0: the saved weights)."""
        return self.base_steps + self.version

    def fork(self, session: str = "fork") -> "ModelHandle":
        """Return an independent handle on a copy of the current weights and optimizer state.

        The copy has its own lock and snapshots, the same ``run_id`` (its parent) and counts its
        :attr:`steps` on from this handle's, so training it never changes this handle's model.
        """
        with self.lock.hold("fork", session):
            model = copy.deepcopy(self.model)
            optimizer = copy.deepcopy(self.optimizer.state_dict())
        twin = ModelHandle(model, self.config, run_id=self.run_id)
        twin.optimizer.load_state_dict(optimizer)
        twin.base_steps = self.steps
        return twin

    # -- inference -----------------------------------------------------------------------------
    def _as_windows(self, windows) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
        if x.ndim != 3 or x.shape[1] != self.window or x.shape[2] != N_FEATURES:
            raise ParameterError(f"windows must have shape (B, {self.window}, {N_FEATURES}); "
                                 f"got {tuple(x.shape)}")
        return x

    def predict(self, windows) -> Prediction:
        """Predict on float32 windows (B, N, 8) with the published snapshot (no lock taken).

        Raises
        ------
        ParameterError : when the windows do not have shape (B, window, 8).
        NonFiniteError : when the model outputs NaN or inf (diverged weights or NaN inputs): such
            an output is never a prediction, so callers count an error and do not trade.
        """
        x = self._as_windows(windows)
        snap = self._snapshot  # one attribute read: a consistent (version, weights) pair
        with torch.inference_mode():
            device = next(snap.model.parameters()).device
            logits, candle = snap.model(x.to(device))
        return _checked(Prediction(torch.softmax(logits.float(), 1).cpu().numpy(),
                                   candle.float().cpu().numpy(), snap.version))

    def step(self, features_row) -> Prediction:
        """Advance the stateful LSTM by one candle (O(1)); returns a batch-1 Prediction.

        ``features_row`` is one normalised feature row (8,) (or (B, 8) for B parallel streams),
        normalised like the rows of a training window. Feeding the N rows of a window in order
        after :meth:`reset_state` gives exactly :meth:`predict` on that window.

        Raises
        ------
        ParameterError : for a model without ``step`` or a row that is not (8,) / (B, 8).
        """
        snap = self._snapshot
        step = getattr(snap.model, "step", None)
        if step is None:
            raise ParameterError(f"model type {self.model_type!r} has no stateful step(); "
                                 "use predict() on windows")
        x = _as_rows(features_row)
        with self._step_guard, torch.inference_mode():
            state = self._step_state
            if state is None or state[0].shape[1] != x.shape[0]:
                state = snap.model.initial_state(x.shape[0])
            (logits, candle), self._step_state = step(x, state)
            probs = torch.softmax(logits, 1)
        return _checked(Prediction(probs.numpy(), candle.numpy(), snap.version))

    def reset_state(self) -> None:
        """Forget the carried LSTM state (the next :meth:`step` starts a new sample)."""
        with self._step_guard:
            self._step_state = None

    # -- training ------------------------------------------------------------------------------
    def publish(self, model: nn.Module | None = None) -> int:
        """Publish the current weights as a new immutable snapshot; returns its version.

        Call with the training lock held (``train_step`` and the training callback do).
        """
        with self._publish_guard:
            self._snapshot = self._models.snapshot(self._snapshot.version + 1, self.model)
            return self._snapshot.version

    def train_step(self, windows, actions, candles, *, operation: str, session: str,
                   timeout: float | None = None) -> float:
        """One optimizer step under the training lock, then publish; returns the loss.

        Parameters
        ----------
        windows : float32 (B, N, 8); actions : int64 (B,) indices into ACTIONS;
        candles : float32 (B, 4) next-candle targets; operation, session : who trains (named in
        a TrainingLockTimeout); timeout : seconds to wait for the lock.

        Raises
        ------
        TrainingLockTimeout : naming the holder when the lock is not free in time.
        NonFiniteError : when the loss is NaN or inf (the weights are left as they were).
        """
        x = self._as_windows(windows)
        y_action = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        y_candle = torch.as_tensor(np.asarray(candles, dtype=np.float32))
        t = self.config.training
        with self.lock.hold(operation, session, timeout):
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            logits, candle = self.model(x)
            loss = combined_loss(logits, candle, y_action, y_candle, t.action_loss_weight,
                                 t.candle_loss_weight)
            if not torch.isfinite(loss):  # stepping would make every weight NaN
                raise NonFiniteError(f"{operation} of session {session}: the training loss "
                                     f"is {float(loss.detach())}; no step taken, snapshot "
                                     f"{self.version} stays published")
            loss.backward()
            if t.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            self.optimizer.step()
            self.publish()
        return float(loss.detach())

    def fit(self, config=None, **kwargs) -> dict:
        """Batch-train this handle's model as a run, through a working copy; see ``train``.

        Lightning trains a copy of the model (:mod:`workbench.train.working_copy`), never the
        live one: each training batch takes the lock, loads the live weights into the copy, steps
        and writes them back and publishes a snapshot, so sessions may keep training the live
        model meanwhile. At the end the copy's final weights (the best ones when early stopping
        restores them) are written back and published once more. Returns the run's ``run.json``.
        """
        from workbench.train.runs import train
        from workbench.train.working_copy import working_copy

        run = working_copy(self, "batch_setup", "fit")
        record = train(config or self.config, **run.engine_kwargs(), **kwargs)
        run.write_back("batch_training", record["run_id"])
        return record

    def state_dict_snapshot(self) -> dict[str, torch.Tensor]:
        """Return a copy of the published snapshot's weights."""
        snap = self._snapshot  # held for the whole copy, so its model is not recycled meanwhile
        return {k: v.detach().clone() for k, v in snap.model.state_dict().items()}


def load_model(run_id: str, db=None, *, checkpoint: str = "best",
               lock: TrainingLock | None = None) -> ModelHandle:
    """Return a handle on a run's ``best.ckpt`` (or ``last``), loaded with ``weights_only``.

    Raises
    ------
    NotFoundError : for an unknown run. RunError : when the checkpoint is missing or unreadable.
    """
    from workbench.train.runs import load_run_config, run_path

    config = load_run_config(run_id, db)
    folder = run_path(run_id, db) / "checkpoints"
    path = folder / f"{checkpoint}.ckpt"
    if not path.is_file() and checkpoint == "best":
        path = folder / "last.ckpt"
    ckpt = load_checkpoint(path)
    model = build_model(config.model)
    model.load_state_dict({k[len("model."):]: v for k, v in ckpt["state_dict"].items()
                           if k.startswith("model.")})
    handle = ModelHandle(model, config, run_id=run_id, lock=lock)
    states = ckpt.get("optimizer_states") or []
    if states and type(handle.optimizer).__name__.lower() == config.training.optimizer:
        try:
            handle.optimizer.load_state_dict(states[0])
        except (ValueError, KeyError):
            pass  # a different optimizer layout: start its moments fresh
    return handle
