"""Model registry, output shapes, the transformer's disabled fast path, the LSTM's steps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.errors import ConfigError
from workbench.train.config import ModelConfig
from workbench.train.models import (LSTMModel, TransformerModel, build_model, get_model,
                                    known_models, register_model)


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_models_map_windows_to_action_logits_and_candle(kind):
    torch.manual_seed(0)
    model = build_model(ModelConfig(type=kind, window=12, d_model=8, n_heads=2, n_layers=2,
                                    ff_dim=16))
    logits, candle = model(torch.randn(5, 12, 8))
    assert logits.shape == (5, 3) and candle.shape == (5, 4)
    assert model.flops_per_window() > 0


def test_registry_is_one_registration_and_names_known_models():
    class Tiny(nn.Module):
        @classmethod
        def from_config(cls, cfg):
            return cls()

    register_model("tiny-test", Tiny)
    try:
        assert get_model("tiny-test") is Tiny and "tiny-test" in known_models()
    finally:
        from workbench.train import models
        models.MODELS.unregister("tiny-test")
    with pytest.raises(ConfigError, match=r"unknown model 'nope'.*'lstm', 'transformer'"):
        get_model("nope")


def _fast_path_calls(monkeypatch, model, x) -> list:
    calls = []
    real = torch._transformer_encoder_layer_fwd

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", spy)
    with torch.inference_mode():
        model.eval()(x)
    return calls


def test_transformer_never_takes_the_fast_path_unless_configured(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(3, 10, 8)
    slow = TransformerModel(10, 8, 2, 2, 16, fast_path=False)
    assert _fast_path_calls(monkeypatch, slow, x) == []
    fast = TransformerModel(10, 8, 2, 2, 16, fast_path=True)
    fast.load_state_dict(slow.state_dict())
    assert len(_fast_path_calls(monkeypatch, fast, x)) == 2  # one per layer: the toggle matters
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), slow(x), atol=1e-5, rtol=1e-5)


def test_lstm_step_by_step_equals_the_whole_sequence():
    torch.manual_seed(1)
    model = LSTMModel(window=20, hidden=8, n_layers=2).eval()
    x = torch.randn(4, 20, 8)
    with torch.no_grad():
        whole_logits, whole_candle = model(x)
        state = model.initial_state(4)
        for t in range(20):
            (logits, candle), state = model.step(x[:, t], state)
    torch.testing.assert_close(logits, whole_logits, rtol=0, atol=0)
    torch.testing.assert_close(candle, whole_candle, rtol=0, atol=0)


def test_lstm_state_is_reset_between_samples_and_detached():
    torch.manual_seed(2)
    model = LSTMModel(window=6, hidden=4, n_layers=1)
    a, b = torch.randn(1, 6, 8), torch.randn(1, 6, 8)
    alone = model(b)[1]
    together = model(torch.cat([a, b]))[1][1:]
    torch.testing.assert_close(alone, together)  # sample b does not see sample a's state
    (_, _), state = model.step(a[:, 0], model.initial_state(1))
    assert not state[0].requires_grad and not state[1].requires_grad
    logits, candle = model(a)
    (logits.sum() + candle.sum()).backward()
    # gradients reach the input weights only through the last step (state detached each step)
    assert model.lstm.weight_ih_l0.grad is not None
