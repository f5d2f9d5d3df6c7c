"""The model registry and the two torch models of the workbench.

Every model maps a batch of normalised windows ``(B, N, 8)`` to ``(action_logits (B, 3),
candle (B, 4))``: logits over :data:`workbench.actions.ACTIONS` (BUY, SELL, HOLD) and the next
candle's OHLC relative to the window's last close, in percent. A new model type is one
:func:`register_model` call; :func:`build_model` builds one from a
:class:`~workbench.train.config.ModelConfig`.

Registered types
----------------
``transformer``
    A small pre-norm transformer encoder over the candles; the last candle's embedding feeds both
    heads. Built on ``nn.TransformerEncoder`` with ``enable_nested_tensor=False``. With
    ``fast_path: false`` (the default) the "better transformer" inference fast path is never taken:
    the layers use an activation module the fast path does not recognise, which is one of the
    documented ``torch.backends.mha`` fast-path conditions (activation must be relu or gelu).
``lstm``
    A stateful LSTM: one time step at a time (L=1), the hidden state carried across the
    steps of one sample, reset between samples and detached after each step. :meth:`LSTMModel.step`
    advances a carried state by one candle for O(1) live inference.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from workbench.features.windows import N_FEATURES
from workbench.registry import Registry

N_ACTIONS = 3
N_CANDLE = 4

def _needs_from_config(name: str, cls) -> None:
    if not hasattr(cls, "from_config"):
        raise TypeError(f"model class {cls.__name__} needs a from_config(model_config) classmethod")


#: torch model classes by ``model.type`` (the TF engine's builders use the same Registry API)
MODELS: Registry[type[nn.Module]] = Registry("model", context="config key 'model.type'",
                                             check=_needs_from_config)


def register_model(name: str, cls: type[nn.Module]) -> type[nn.Module]:
    """Register ``cls`` under ``name``; ``cls.from_config(model_config)`` must build it."""
    return MODELS.register(name, cls)


def get_model(name: str) -> type[nn.Module]:
    """Return the model class registered as ``name``.

    Raises
    ------
    UnknownNameError : (a ConfigError) naming the unknown type and the known ones.
    """
    return MODELS.get(name)


def known_models() -> list[str]:
    """Return the registered model names."""
    return MODELS.names()


def build_model(model_config) -> nn.Module:
    """Build the model described by a :class:`~workbench.train.config.ModelConfig`."""
    return get_model(model_config.type).from_config(model_config)


class _GELU(nn.Module):
    """GELU as a module the MHA fast path does not recognise (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


class _Heads(nn.Module):
    """The action head and the candle head on one embedding."""

    def __init__(self, width: int):
        super().__init__()
        self.action = nn.Linear(width, N_ACTIONS)
        self.candle = nn.Linear(width, N_CANDLE)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.action(h), self.candle(h)


class TransformerModel(nn.Module):
    """A transformer encoder over a window of candles.

    Parameters
    ----------
    window : N, the number of candles per window (sizes the learned position embedding).
    d_model, n_heads, n_layers, ff_dim, dropout : encoder sizes.
    fast_path : allow PyTorch's inference fast path (off by default: slower on this CPU).
    """

    def __init__(self, window: int, d_model: int = 32, n_heads: int = 4, n_layers: int = 2,
                 ff_dim: int = 64, dropout: float = 0.0, fast_path: bool = False):
        super().__init__()
        self.window = window
        self.embed = nn.Linear(N_FEATURES, d_model)
        self.position = nn.Parameter(torch.zeros(1, window, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, ff_dim, dropout, batch_first=True, norm_first=True,
            activation="gelu" if fast_path else _GELU())
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.heads = _Heads(d_model)

    @classmethod
    def from_config(cls, cfg) -> "TransformerModel":
        return cls(cfg.window, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.ff_dim, cfg.dropout,
                   cfg.fast_path)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map windows (B, N, 8) to (action_logits (B, 3), candle (B, 4))."""
        h = self.encoder(self.embed(x) + self.position[:, -x.shape[1]:])
        return self.heads(self.norm(h[:, -1]))

    def flops_per_window(self, n: int | None = None) -> float:
        """Estimate the forward FLOPs of one window (2 per multiply-add)."""
        n = n or self.window
        d = self.embed.out_features
        ff = self.encoder.layers[0].linear1.out_features
        per_layer = 2 * n * (4 * d * d + 2 * d * ff) + 2 * 2 * n * n * d
        return 2 * n * N_FEATURES * d + len(self.encoder.layers) * per_layer \
            + 2 * d * (N_ACTIONS + N_CANDLE)


class LSTMModel(nn.Module):
    """A stateful LSTM, fed one candle at a time (L=1).

    ``forward`` resets the state for every sample (window), carries it across the window's steps
    and detaches it after each step, so gradients never flow further back than one step.
    :meth:`step` advances a caller-held state by one candle (O(1) live inference).

    The cell is written out as gate math (two ``linear`` per layer, ``chunk``, ``sigmoid``,
    ``tanh``, ``mul``, ``add``) rather than calling ``nn.LSTM`` on length-1 sequences: the same
    numbers to ~1e-7, a third of the time per step at batch 1 (``nn.LSTM`` pays its sequence
    set-up on every call), and every op exports to ONNX. ``nn.LSTM`` stays as the container of
    the parameters (``lstm.weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}``), so checkpoints load unchanged. ``forward`` and :meth:`step` share
    :meth:`_advance`, so step by step is bit-identical to the whole window.
    """

    def __init__(self, window: int, hidden: int = 32, n_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.window = window
        self.hidden, self.n_layers = hidden, n_layers
        self.lstm = nn.LSTM(N_FEATURES, hidden, n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)
        self.heads = _Heads(hidden)

    @classmethod
    def from_config(cls, cfg) -> "LSTMModel":
        return cls(cfg.window, cfg.d_model, cfg.n_layers, cfg.dropout)

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the zero state ``(h, c)``, each (n_layers, batch, hidden), that starts a sample."""
        zeros = torch.zeros(self.n_layers, batch, self.hidden, device=device)
        return zeros, zeros.clone()

    def _advance(self, x_t: torch.Tensor, hs, cs):
        """One time step through every layer: input (B, 8), per-layer states (B, hidden).

        Returns ``(top_output, new_hs, new_cs)``, not detached (the callers detach).
        """
        # nn.LSTM's own list of its current parameters, [w_ih, w_hh, b_ih, b_hh] per layer: its
        # __setattr__ and _apply keep it pointing at the live tensors when a parameter is
        # replaced (load_state_dict(assign=True), .to()), so nothing here can go stale, and one
        # read replaces eight Module.__getattr__ lookups per step.
        lstm = self.lstm
        weights, drop = lstm._flat_weights, lstm.dropout
        dropout = self.training and drop > 0
        inp, new_hs, new_cs = x_t, [], []
        for k in range(self.n_layers):
            w_ih, w_hh, b_ih, b_hh = weights[4 * k: 4 * k + 4]
            gates = F.linear(inp, w_ih, b_ih) + F.linear(hs[k], w_hh, b_hh)
            i, f, g, o = gates.chunk(4, 1)
            c = torch.sigmoid(f) * cs[k] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_hs.append(h)
            new_cs.append(c)
            # like nn.LSTM: dropout on the input of the next layer, never on the carried state
            inp = F.dropout(h, drop, True) if dropout and k < self.n_layers - 1 else h
        return inp, new_hs, new_cs

    def _heads(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # self.heads(out) without three Module.__call__ dispatches: the same F.linear ops
        action, candle = self.heads.action, self.heads.candle
        return F.linear(out, action.weight, action.bias), F.linear(out, candle.weight, candle.bias)

    def step(self, x_t: torch.Tensor, state):
        """Advance ``state`` by one candle ``x_t`` (B, 8).

        ``state`` is ``(h, c)``, each (n_layers, B, hidden), as from :meth:`initial_state`.
        Returns ``((action_logits, candle), new_state)``; the new state is detached.
        """
        out, hs, cs = self._advance(x_t, state[0].unbind(0), state[1].unbind(0))
        return self._heads(out), (torch.stack(hs).detach(), torch.stack(cs).detach())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map windows (B, N, 8) to (action_logits (B, 3), candle (B, 4)) step by step."""
        h0, c0 = self.initial_state(x.shape[0], x.device)
        hs, cs = h0.unbind(0), c0.unbind(0)
        for x_t in x.unbind(1):
            out, hs, cs = self._advance(x_t, hs, cs)
            hs, cs = [h.detach() for h in hs], [c.detach() for c in cs]
        return self._heads(out)

    def flops_per_window(self, n: int | None = None) -> float:
        """Estimate the forward FLOPs of one window (2 per multiply-add)."""
        n = n or self.window
        h = self.hidden
        first = 2 * 4 * h * (N_FEATURES + h)
        rest = 2 * 4 * h * (2 * h) * (self.n_layers - 1)
        return n * (first + rest) + 2 * h * (N_ACTIONS + N_CANDLE)


register_model("transformer", TransformerModel)
register_model("lstm", LSTMModel)
