"""The LSTM's written-out gate math against ``nn.LSTM`` (the implementation it replaced).

``LSTMModel`` keeps ``nn.LSTM`` only as its parameter container and computes the cell itself; the
reference below is the old implementation, ``nn.LSTM`` called on length-1 sequences with the state
detached after each step. Eval outputs, gradients, training-mode dropout (same RNG stream),
checkpoint loading and the handle's ``step`` are checked against it.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from workbench.errors import ParameterError
from workbench.train.config import config_from_dict
from workbench.train.handle import ModelHandle
from workbench.train.models import LSTMModel

TOL = {"rtol": 0, "atol": 2e-6}


def _reference(model: LSTMModel, x: torch.Tensor):
    """The previous LSTMModel.forward: nn.LSTM one candle at a time, state detached per step."""
    state = model.initial_state(x.shape[0])
    for t in range(x.shape[1]):
        out, (h, c) = model.lstm(x[:, t:t + 1], state)
        state = (h.detach(), c.detach())
    return model.heads(out[:, 0])


def _grads(model: LSTMModel, outputs) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    (outputs[0].square().sum() + outputs[1].sum()).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def test_the_gate_math_matches_nn_lstm_outputs_and_gradients():
    torch.manual_seed(3)
    model = LSTMModel(window=12, hidden=16, n_layers=3)
    x = torch.randn(5, 12, 8)
    mine, ref = model(x), _reference(model, x)
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, **TOL)
    # the same gradients: the state is detached at the same place (after every step)
    ours, theirs = _grads(model, model(x)), _grads(model, _reference(model, x))
    assert set(ours) == set(theirs)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-6, msg=name)
    assert ours["lstm.weight_hh_l0"].abs().sum() > 0  # the recurrent weights do get gradients


def test_dropout_acts_between_layers_in_training_exactly_like_nn_lstm():
    torch.manual_seed(4)
    model = LSTMModel(window=8, hidden=16, n_layers=2, dropout=0.5).train()
    x = torch.randn(3, 8, 8)
    torch.manual_seed(10)
    mine = model(x)
    torch.manual_seed(10)  # the same masks: one F.dropout per step on layer 0's output, as nn.LSTM
    ref = _reference(model, x)
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, **TOL)
    model.eval()
    evaluated = model(x)
    assert not torch.allclose(evaluated[1], mine[1])  # dropout did act in training...
    torch.testing.assert_close(evaluated[1], model(x)[1], rtol=0, atol=0)  # ...and not in eval
    torch.testing.assert_close(evaluated[1], _reference(model, x)[1], **TOL)


def test_state_dicts_keep_the_nn_lstm_parameter_names_and_load_unchanged():
    torch.manual_seed(5)
    model = LSTMModel(window=6, hidden=8, n_layers=2)
    lstm_keys = {f"lstm.{w}_l{k}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                 for k in range(2)}
    assert set(model.state_dict()) == lstm_keys | {"heads.action.weight", "heads.action.bias",
                                                   "heads.candle.weight", "heads.candle.bias"}
    other = LSTMModel(window=6, hidden=8, n_layers=2)  # e.g. a checkpoint of another run
    model.load_state_dict(other.state_dict(), strict=True)
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(model(x), other(x), rtol=0, atol=0)


@pytest.mark.parametrize("assign", [False, True])
def test_step_uses_the_current_weights_after_a_load_or_an_in_place_update(assign):
    torch.manual_seed(6)
    model = LSTMModel(window=5, hidden=8, n_layers=2).eval()
    x = torch.randn(1, 5, 8)
    new = {k: v + 0.1 * torch.randn_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(new, assign=assign)  # assign=True replaces the Parameter objects
    with torch.no_grad():
        model.lstm.weight_hh_l1.mul_(1.5)  # an optimiser-style in-place update
        state = model.initial_state(1)
        for t in range(5):
            (_, candle), state = model.step(x[:, t], state)
        torch.testing.assert_close(candle, _reference(model, x)[1], **TOL)
        torch.testing.assert_close(candle, model(x)[1], rtol=0, atol=0)


def _lstm_handle() -> ModelHandle:
    return ModelHandle.from_config(config_from_dict(
        {"model": {"type": "lstm", "window": 6, "d_model": 8, "n_layers": 2}}))


@pytest.mark.parametrize("row, shape", [(np.zeros(7), "(1, 7)"), (np.zeros((2, 3, 8)), "(2, 3, 8)"),
                                        (np.float32(1.0), "()")])
def test_handle_step_rejects_rows_that_are_not_8_features(row, shape):
    handle = _lstm_handle()
    with pytest.raises(ParameterError, match=rf"\(8,\) or \(B, 8\); got {re.escape(shape)}"):
        handle.step(row)


def test_handle_step_takes_lists_strided_rows_and_batches_and_resets_on_a_new_batch_size():
    handle = _lstm_handle()
    rows = np.random.default_rng(7).normal(size=(6, 16)).astype(np.float64)
    strided = rows[:, ::2]  # float64, not contiguous: converted, never read out of bounds
    handle.reset_state()
    first = [handle.step(r) for r in strided]
    handle.reset_state()
    again = [handle.step(list(map(float, r))) for r in np.ascontiguousarray(strided)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.candle, b.candle)
        np.testing.assert_array_equal(a.action_probs, b.action_probs)
    assert first[-1].action_probs.dtype == np.float32 and first[-1].candle.shape == (1, 4)
    np.testing.assert_allclose(first[-1].action_probs.sum(), 1.0, rtol=1e-6)
    batch = handle.step(strided[:3])  # a new batch size: a fresh state for each stream
    assert batch.candle.shape == (3, 4)
    for i in range(3):
        handle.reset_state()
        np.testing.assert_allclose(batch.candle[i], handle.step(strided[i]).candle[0],
                                   rtol=0, atol=1e-6)
