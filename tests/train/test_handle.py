"""The ModelHandle contract: snapshot predict without the lock, locked train_step, load, LSTM step."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tests.train.conftest import tiny_dict
from workbench.errors import ParameterError, TrainingLockTimeout
from workbench.features.windows import SeriesArrays
from workbench.train.config import config_from_dict
from workbench.train.handle import ModelHandle, load_model
from workbench.train.runs import run_path, train


def _batch(eth_slice, n_windows: int, window: int, start: int = 500):
    arrays = SeriesArrays.from_frame("ETH/USDT", "1m", eth_slice)
    ends = np.arange(start, start + n_windows)
    x, _ = arrays.windows(ends, window)
    rng = np.random.default_rng(0)
    return x, rng.integers(0, 3, n_windows), rng.normal(0, 0.1, (n_windows, 4)).astype(np.float32)


def test_predict_runs_on_the_published_snapshot_without_the_lock(tiny, eth_slice):
    handle = ModelHandle.from_config(tiny)
    x, actions, candles = _batch(eth_slice, 6, 16)
    before = handle.predict(x)
    assert before.action_probs.shape == (6, 3) and before.candle.shape == (6, 4)
    np.testing.assert_allclose(before.action_probs.sum(axis=1), 1.0, rtol=1e-6)
    assert before.model_version == 0 and len(before.actions) == 6
    handle.lock.acquire("someone_else", "s1")
    try:  # predict never waits for the lock...
        done = threading.Event()
        threading.Thread(target=lambda: (handle.predict(x), done.set())).start()
        assert done.wait(10)
        with pytest.raises(TrainingLockTimeout, match="someone_else"):  # ...train_step does
            handle.train_step(x, actions, candles, operation="manual", session="s2", timeout=0.05)
    finally:
        handle.lock.release()
    weights = handle.state_dict_snapshot()
    loss = handle.train_step(x, actions, candles, operation="manual", session="s2")
    after = handle.predict(x)
    assert loss > 0 and handle.version == 1 and after.model_version == 1
    assert not np.array_equal(after.candle, before.candle)
    changed = handle.state_dict_snapshot()
    assert any(not torch.equal(weights[k], changed[k]) for k in weights)
    assert handle.lock.stats()["acquisitions"] == 2


def test_publish_recycles_a_snapshot_model_only_after_its_readers_let_go(tiny, eth_slice):
    handle = ModelHandle.from_config(tiny)
    x, actions, candles = _batch(eth_slice, 4, 16)
    held = handle._snapshot  # a reader in the middle of predict() holds the snapshot like this
    frozen = {k: v.clone() for k, v in held.model.state_dict().items()}
    models = set()
    for _ in range(6):
        handle.train_step(x, actions, candles, operation="manual", session="s")
        models.add(id(handle._snapshot.model))
    # the held snapshot's weights never changed although six versions were published since
    assert all(torch.equal(frozen[k], v) for k, v in held.model.state_dict().items())
    assert id(held.model) not in models
    # unheld snapshots were recycled: far fewer model objects than versions
    assert len(models) <= 3 and handle.version == 6
    # every published version still carries exactly the trainer's weights at publish time
    live = {k: v for k, v in handle.model.state_dict().items()}
    assert all(torch.equal(live[k], v) for k, v in handle.state_dict_snapshot().items())


def test_the_snapshot_does_not_change_while_the_model_trains(tiny, eth_slice):
    handle = ModelHandle.from_config(tiny)
    x, _, _ = _batch(eth_slice, 4, 16)
    frozen = handle.state_dict_snapshot()
    with torch.no_grad():  # an in-place change of the training weights, as an optimiser makes
        for p in handle.model.parameters():
            p.add_(1.0)
    assert all(torch.equal(frozen[k], v) for k, v in handle.state_dict_snapshot().items())
    assert handle.publish() == 1
    assert not torch.equal(frozen["embed.weight"], handle.state_dict_snapshot()["embed.weight"])


def test_predict_checks_the_window_shape(tiny):
    handle = ModelHandle.from_config(tiny)
    with pytest.raises(ParameterError, match=r"\(B, 16, 8\)"):
        handle.predict(np.zeros((2, 15, 8), dtype=np.float32))
    with pytest.raises(ParameterError, match="no stateful step"):
        handle.step(np.zeros(8, dtype=np.float32))


def test_load_model_gives_the_trained_best_weights(db, eth_slice):
    record = train(config_from_dict(tiny_dict(db)))
    handle = load_model(record["run_id"])
    assert (handle.run_id, handle.model_type, handle.window) == (record["run_id"],
                                                                  "transformer", 16)
    ckpt = torch.load(run_path(record["run_id"]) / "checkpoints" / "best.ckpt",
                      weights_only=True)
    assert torch.equal(ckpt["state_dict"]["model.embed.weight"],
                       handle.state_dict_snapshot()["embed.weight"])
    x, _, _ = _batch(eth_slice, 3, 16)
    assert handle.predict(x).action_probs.shape == (3, 3)


def test_lstm_handle_step_matches_predict_on_the_same_window(db, eth_slice):
    cfg = config_from_dict(tiny_dict(db, model={"type": "lstm", "window": 24, "d_model": 8,
                                                "n_layers": 2}))
    handle = ModelHandle.from_config(cfg)
    x, _, _ = _batch(eth_slice, 1, 24)
    whole = handle.predict(x)
    handle.reset_state()
    for row in x[0]:
        last = handle.step(row)
    np.testing.assert_array_equal(last.candle, whole.candle)
    np.testing.assert_array_equal(last.action_probs, whole.action_probs)
    handle.reset_state()
    assert not np.array_equal(handle.step(x[0, -1]).candle, whole.candle)  # state matters


def test_fit_trains_the_handles_model_through_its_lock(db, eth_slice):
    handle = ModelHandle.from_config(config_from_dict(tiny_dict(db)))
    record = handle.fit()
    steps = record["global_step"]
    assert record["status"] == "completed" and steps > 0
    # one published snapshot per optimizer step, and one of the final (best) weights
    assert handle.version == steps + 1
    # copying the model for the engine, every step, the early-stopping restore of the best
    # weights and the final write-back and publish
    assert handle.lock.stats()["acquisitions"] == steps + 3


def test_fit_never_touches_live_model_outside_lock(db, eth_slice):
    """Regression: ``fit`` trained ``handle.model`` in place through Lightning, whose work between
    batches (validation forwards, ``zero_grad``, train/eval switches) ran on the live tensors
    outside the lock while a session's per-candle steps trained them: a segfault in ``zero_grad``
    under the stress test. Now only the per-candle steps, holding the lock, run the live model."""
    handle = ModelHandle.from_config(config_from_dict(tiny_dict(db)))
    live = handle.model
    live_params = {id(p) for p in live.parameters()}
    intrusions: list[tuple[str, object]] = []

    def per_candle_holds() -> bool:
        holder = handle.lock.holder
        return holder is not None and holder.session == "candles"

    def on_forward(module, args):
        # snapshots and the working copy are deep copies that carry this hook: skip them
        if module is live and not per_candle_holds():
            intrusions.append(("forward", handle.lock.holder))

    def on_grad(param):
        if id(param) in live_params and not per_candle_holds():
            intrusions.append(("gradient", handle.lock.holder))

    live.register_forward_pre_hook(on_forward)
    for p in live.parameters():
        p.register_post_accumulate_grad_hook(on_grad)

    x, actions, candles = _batch(eth_slice, 4, 16)
    done, steps, errors = threading.Event(), [0], []

    def per_candle() -> None:
        while not done.is_set():
            try:
                handle.train_step(x, actions, candles, operation="per_candle", session="candles",
                                  timeout=60)
                steps[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(repr(exc))
                return

    thread = threading.Thread(target=per_candle, daemon=True)
    thread.start()
    try:
        record = handle.fit()
    finally:
        done.set()
        thread.join(60)
    assert errors == [] and steps[0] > 0
    assert record["status"] == "completed" and record["global_step"] > 0
    outside = [kind for kind, holder in intrusions if holder is None]
    assert intrusions == [], (f"{len(intrusions)} touches of the live model by others than the "
                              f"per-candle steps ({len(outside)} without the lock): "
                              f"{intrusions[:3]}")
    # the run's steps, the per-candle steps and the final write-back each published a version
    assert handle.version == record["global_step"] + steps[0] + 1
    assert all(torch.isfinite(p).all() for p in live.parameters())
    snapshot = handle.state_dict_snapshot()
    assert all(torch.equal(v, snapshot[k]) for k, v in live.state_dict().items())
    assert not handle.lock.locked()
