"""The transformer block (chapter 17): attention and an MLP, each added onto a residual stream.

What this module adds over helpers.attention: the position-wise MLP (GELU, tanh approximation, as in
GPT-2), the pre-LayerNorm block of GPT-2 (parameter names ln_1, attn, ln_2, mlp), and the three ways to
tell a transformer where each token is:

    learned     an nn.Embedding(block_size, n_embd) added to the token embeddings (GPT-2's `wpe`);
    sinusoidal  `sinusoidal_encoding(T, d)`: fixed sines and cosines of geometrically spaced frequencies,
                added to the token embeddings (the original transformer);
    rotary      `apply_rope(x, offset)`: rotate each pair of channels of the queries and keys by an angle
                proportional to the position, so q . k depends only on the *offset* between positions
                (RoPE; LLaMA and most open models since).

LayerNorm comes from helpers.normalization (chapter 11).

The modern block (Llama and most open models since) swaps three parts, each a choice of `Block`:
`norm="rmsnorm"` (helpers.normalization.RMSNorm), `mlp="swiglu"` (`SwiGLU` below: silu(x W_gate) * (x W_up),
then W_down) and `rotary=rope(base)` (RoPE on the queries and keys inside attention). Grouped-query
attention is `n_kv_head` (see helpers.attention.SelfAttention).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import SelfAttention
from helpers.normalization import LayerNorm, RMSNorm

NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class MLP(nn.Module):
    """Position-wise feed-forward network: c_fc (C -> 4C), GELU, c_proj (4C -> C), dropout.

    It calls F.gelu(approximate="tanh"), PyTorch's fused kernel for exactly `gelu` above (the tests check
    they agree), because it saves memory in training.
    """

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True, hidden: int | None = None):
        super().__init__()
        hidden = 4 * n_embd if hidden is None else hidden
        if n_embd < 1 or hidden < 1:
            raise ValueError(f"n_embd and hidden must be positive, got {n_embd} and {hidden}")
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.c_fc(x), approximate="tanh")  # (B, T, 4C)
        return self.dropout(self.c_proj(h))  # (B, T, C)


def swiglu_hidden(n_embd: int, multiple_of: int = 8) -> int:
    """SwiGLU's default hidden size: 2/3 of GELU's 4 * n_embd (so both MLPs have about as many weights,
    3 matrices instead of 2), rounded up to a multiple of `multiple_of`."""
    return multiple_of * math.ceil(8 * n_embd / 3 / multiple_of)


class SwiGLU(nn.Module):
    """Gated MLP of Llama: down_proj(silu(gate_proj(x)) * up_proj(x)), names as in Hugging Face's Llama.

    silu(z) = z * sigmoid(z). The gate decides, channel by channel, how much of `up` passes.
    """

    def __init__(self, n_embd: int, hidden: int | None = None, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        hidden = swiglu_hidden(n_embd) if hidden is None else hidden
        if n_embd < 1 or hidden < 1:
            raise ValueError(f"n_embd and hidden must be positive, got {n_embd} and {hidden}")
        self.gate_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.up_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, hidden)
        return self.dropout(self.down_proj(h))  # (B, T, C)


def rope(base: float = 10000.0) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The rotary hook for SelfAttention: t (..., T, hs), offset -> apply_rope(t, offset, base)."""
    if not base > 1:
        raise ValueError(f"the RoPE base (rope_theta) must be > 1, got {base}")
    return partial(apply_rope, base=base)


class Block(nn.Module):
    """GPT-2's pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    The residual stream x passes through untouched; attention and the MLP each read a normalised copy of
    it and add their result back. forward(x, past_kv=None, use_cache=False) returns x, or (x, (k, v))
    with use_cache=True (the attention's KV cache, see helpers.attention.SelfAttention).
    The modern choices: norm ("layernorm" | "rmsnorm"), mlp ("gelu" | "swiglu", with mlp_hidden units),
    n_kv_head (grouped-query attention), rotary (e.g. `rope(10000.0)`), qkv_bias (c_attn's own bias).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        fused: bool = True,
        causal: bool = True,
        eps: float = 1e-5,
        norm: str = "layernorm",
        mlp: str = "gelu",
        mlp_hidden: int | None = None,
        n_kv_head: int | None = None,
        rotary: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
        qkv_bias: bool | None = None,
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if mlp not in MLPS:
            raise ValueError(f"mlp must be one of {MLPS}, got {mlp!r}")

        def make_norm() -> nn.Module:
            return LayerNorm(n_embd, eps=eps, bias=bias) if norm == "layernorm" else RMSNorm(n_embd, eps=eps)

        self.ln_1 = make_norm()
        self.attn = SelfAttention(
            n_embd,
            n_head,
            dropout,
            bias,
            fused,
            causal,
            n_kv_head=n_kv_head,
            rotary=rotary,
            qkv_bias=qkv_bias,
        )
        self.ln_2 = make_norm()
        if mlp == "gelu":
            self.mlp = MLP(n_embd, dropout=dropout, bias=bias, hidden=mlp_hidden)
        else:
            self.mlp = SwiGLU(n_embd, hidden=mlp_hidden, dropout=dropout, bias=bias)

    def forward(
        self,
        x: torch.Tensor,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        a = self.attn(self.ln_1(x), past_kv=past_kv, use_cache=use_cache)  # (B, T, C) or (y, (k, v))
        present = None
        if use_cache:
            a, present = a
        x = x + a  # (B, T, C): attention writes into the residual stream
        x = x + self.mlp(self.ln_2(x))  # (B, T, C): so does the MLP
        return (x, present) if use_cache else x


# --- positional encodings ---------------------------------------------------------------------------------


def _check_dims(T: int, d: int) -> None:
    if T < 1:
        raise ValueError(f"need at least one position, got T={T}")
    if d < 2 or d % 2:
        raise ValueError(f"the channel count must be even and at least 2 (channels come in pairs), got {d}")


def frequencies(d: int, base: float = 10000.0) -> torch.Tensor:
    """The d/2 angular frequencies base^(-2i/d), i = 0 .. d/2 - 1: from 1 down to nearly 1/base."""
    _check_dims(1, d)
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)


def sinusoidal_encoding(T: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """(T, d) float32 table: PE[p, 2i] = sin(p w_i), PE[p, 2i+1] = cos(p w_i), with w_i = base^(-2i/d)."""
    _check_dims(T, d)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * frequencies(d, base)  # (T, d/2)
    pe = torch.empty(T, d, dtype=torch.float64)  # (T, d)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()


def rope_angles(T: int, d: int, offset: int = 0, base: float = 10000.0) -> torch.Tensor:
    """(T, d/2) float64 angles: pair i of the channels at position offset + p turns by (offset + p) w_i."""
    _check_dims(T, d)
    positions = torch.arange(offset, offset + T, dtype=torch.float64)  # (T,)
    return positions[:, None] * frequencies(d, base)  # (T, d/2)


def apply_rope(x: torch.Tensor, offset: int = 0, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding: rotate channel pairs (x[2i], x[2i+1]) of x (..., T, d) by (offset + p) w_i.

    Apply it to the queries and the keys (not the values). Because rotations compose, the dot product of a
    query rotated to position m with a key rotated to position n depends on m - n only.
    `offset` is the position of the first row (the length of a KV cache). Returns a tensor shaped like x.
    """
    if x.dim() < 2:
        raise ValueError(f"apply_rope expects (..., T, d), got shape {tuple(x.shape)}")
    T, d = x.shape[-2], x.shape[-1]
    angles = rope_angles(T, d, offset, base)  # (T, d/2), float64 on the CPU (MPS has no float64)
    cos = torch.cos(angles).to(x.dtype).to(x.device)  # (T, d/2)
    sin = torch.sin(angles).to(x.dtype).to(x.device)  # (T, d/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, d/2): first and second member of each pair
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, d/2, 2)
    return out.flatten(-2)  # (..., T, d): pairs interleaved again
