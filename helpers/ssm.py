"""State-space models (chapter 28): a sequence mixer with a fixed-size state instead of a growing KV cache.

What this module adds over helpers.fast_attention (attention without the T x T matrix) and
helpers.normalization (LayerNorm): the linear recurrence h_t = a_t * h_{t-1} + b_t and two ways to run it,
and models built on it.

    associative_combine(first, second)   (a1, b1) then (a2, b2) is the single step (a2 a1, a2 b1 + b2); the
                                         operator is associative, which is what makes a parallel scan possible
    scan_sequential(a, b)                the recurrence, one step at a time (T steps)
    scan_parallel(a, b)                  the same numbers in ceil(log2 T) vectorised rounds (Hillis-Steele)
    discretize(A, B, dt)                 a continuous diagonal system dh/dt = A h + B x, held over a step dt
                                         (zero-order hold): a = exp(dt A), b = (exp(dt A) - 1) / A * B
    DiagonalSSM                          a linear time-invariant layer: the same a and b at every step
    SelectiveSSM                         Mamba's idea: dt, B and C computed from the input at each step, so
                                         the layer chooses what to keep and what to forget
    SSMConfig, SSMBlock, SSMLM           a small character language model: embeddings, blocks of (LayerNorm,
                                         in-projection, causal depthwise conv, selective SSM, gate,
                                         out-projection) with residuals, a tied head. forward(idx, targets)
                                         returns (logits, loss) like helpers.gpt.GPT, so helpers.pretrain
                                         trains it; step() generates one token from a constant-size state.

All tensors put time on dim 1: a, b, h are (B, T, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.normalization import LayerNorm

Pair = tuple[torch.Tensor, torch.Tensor]


def associative_combine(first: Pair, second: Pair) -> Pair:
    """Compose two steps h -> a1 h + b1, then h -> a2 h + b2, into one step h -> (a2 a1) h + (a2 b1 + b2)."""
    a1, b1 = first
    a2, b2 = second
    return a2 * a1, a2 * b1 + b2


def _check_ab(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 2 or a.shape[1] < 1:
        raise ValueError(f"a and b need shape (B, T, ...) with T >= 1, got {tuple(a.shape)}")


def scan_sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t from h_{-1} = 0, one step at a time. a, b: (B, T, ...) -> h (B, T, ...)."""
    _check_ab(a, b)
    h = torch.zeros_like(b[:, 0])  # (B, ...)
    hs = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]  # (B, ...)
        hs.append(h)
    return torch.stack(hs, dim=1)  # (B, T, ...)


def scan_parallel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same h as scan_sequential, in ceil(log2 T) rounds of `associative_combine` over the whole sequence.

    After the round with offset d, position t holds the composition of steps t - 2d + 1 .. t (or from 0),
    so after offsets 1, 2, 4, ... >= T it holds all of 0 .. t, and its b part is h_t.
    """
    _check_ab(a, b)
    T, d = a.shape[1], 1
    while d < T:
        a_new, b_new = associative_combine((a[:, :-d], b[:, :-d]), (a[:, d:], b[:, d:]))  # (B, T - d, ...)
        a = torch.cat([a[:, :d], a_new], dim=1)  # (B, T, ...)
        b = torch.cat([b[:, :d], b_new], dim=1)  # (B, T, ...)
        d *= 2
    return b


def scan(a: torch.Tensor, b: torch.Tensor, method: str = "parallel") -> torch.Tensor:
    """scan_parallel or scan_sequential by name."""
    if method == "parallel":
        return scan_parallel(a, b)
    if method == "sequential":
        return scan_sequential(a, b)
    raise ValueError(f"method must be 'parallel' or 'sequential', got {method!r}")


def discretize(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> Pair:
    """Zero-order hold for a diagonal dh/dt = A h + B x (A < 0): (a, b) = (exp(dt A), (a - 1) / A * B).

    Holding x constant for a time dt, the exact solution moves h to a h + b x. For small dt, b ~ dt B.
    """
    if (A >= 0).any():
        raise ValueError("the diagonal A must be negative (a stable system), got entries >= 0")
    a = torch.exp(dt * A)
    return a, (a - 1.0) / A * B


class DiagonalSSM(nn.Module):
    """A linear time-invariant SSM per channel: h_t = a h_{t-1} + b x_t, y_t = C . h_t + D x_t.

    Each of `dim` channels has its own `d_state` decay rates A = -exp(A_log), input weights B, read-out C
    and step dt. The same a, b are used at every position: the layer cannot decide what to remember.
    """

    def __init__(self, dim: int, d_state: int = 16):
        super().__init__()
        if dim < 1 or d_state < 1:
            raise ValueError(f"dim and d_state must be positive, got {dim} and {d_state}")
        self.dim, self.d_state = dim, d_state
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(dim, 1))
        self.B = nn.Parameter(torch.ones(dim, d_state))
        self.C = nn.Parameter(torch.randn(dim, d_state) / math.sqrt(d_state))
        self.D = nn.Parameter(torch.ones(dim))
        self.log_dt = nn.Parameter(torch.linspace(math.log(1e-3), math.log(1e-1), dim))

    def forward(self, x: torch.Tensor, method: str = "parallel") -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape (B, T, {self.dim}), got {tuple(x.shape)}")
        a, b = discretize(-torch.exp(self.A_log), self.B, torch.exp(self.log_dt)[:, None])  # (D, N) each
        a = a.expand(*x.shape, self.d_state)  # (B, T, D, N)
        h = scan(a, b * x[..., None], method)  # (B, T, D, N)
        return (h * self.C).sum(dim=-1) + self.D * x  # (B, T, D)


class SelectiveSSM(nn.Module):
    """Mamba's selective SSM: dt_t, B_t and C_t are functions of x_t, so a_t = exp(dt_t A) follows the input.

    A large dt_t lets x_t in and forgets the past quickly; a small dt_t keeps the state and ignores x_t.
    b_t = dt_t B_t x_t (the simple Euler form Mamba uses for B). forward runs a scan over the sequence;
    step() advances a (B, dim, d_state) state by one position.
    """

    def __init__(self, dim: int, d_state: int = 16, dt_rank: int | None = None):
        super().__init__()
        if dim < 1 or d_state < 1:
            raise ValueError(f"dim and d_state must be positive, got {dim} and {d_state}")
        self.dim, self.d_state = dim, d_state
        self.dt_rank = dt_rank or math.ceil(dim / 16)
        self.x_proj = nn.Linear(dim, self.dt_rank + 2 * d_state, bias=False)  # x -> (dt low-rank, B, C)
        self.dt_proj = nn.Linear(self.dt_rank, dim)
        dt = torch.exp(torch.linspace(math.log(1e-3), math.log(1e-1), dim))  # initial steps, log-spaced
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus(bias) = dt
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(dim, 1))
        self.D = nn.Parameter(torch.ones(dim))

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., D) -> a (..., D, N), b (..., D, N) and C (..., N) of each position."""
        dt_low, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt_low))  # (..., D): the step, always > 0
        A = -torch.exp(self.A_log)  # (D, N): always < 0, so 0 < a < 1
        a = torch.exp(dt[..., None] * A)  # (..., D, N)
        b = dt[..., None] * B[..., None, :] * x[..., None]  # (..., D, N)
        return a, b, C

    def forward(self, x: torch.Tensor, method: str = "parallel") -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape (B, T, {self.dim}), got {tuple(x.shape)}")
        a, b, C = self.coefficients(x)  # (B, T, D, N), (B, T, D, N), (B, T, N)
        h = scan(a, b, method)  # (B, T, D, N)
        return (h * C[:, :, None, :]).sum(dim=-1) + self.D * x  # (B, T, D)

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One position: x_t (B, D), h (B, D, N) -> (y_t (B, D), new h)."""
        a, b, C = self.coefficients(x_t)  # (B, D, N), (B, D, N), (B, N)
        h = a * h + b  # (B, D, N)
        return (h * C[:, None, :]).sum(dim=-1) + self.D * x_t, h


@dataclass
class SSMConfig:
    """Sizes of an SSM language model. block_size is only the training window: the model has no limit."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_embd: int = 64
    d_state: int = 16
    expand: int = 2  # the SSM runs on expand * n_embd channels
    d_conv: int = 4  # width of the causal depthwise convolution before the SSM
    scan: str = "parallel"

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_embd", "d_state", "expand", "d_conv"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.scan not in ("parallel", "sequential"):
            raise ValueError(f"scan must be 'parallel' or 'sequential', got {self.scan!r}")


class SSMBlock(nn.Module):
    """x + out_proj(SSM(silu(conv(in_proj(ln(x))_x))) * silu(in_proj(ln(x))_z)): a Mamba-style block."""

    def __init__(self, c: SSMConfig):
        super().__init__()
        inner = c.expand * c.n_embd
        self.inner, self.d_conv = inner, c.d_conv
        self.ln = LayerNorm(c.n_embd)
        self.in_proj = nn.Linear(c.n_embd, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, c.d_conv, groups=inner, padding=c.d_conv - 1)
        self.ssm = SelectiveSSM(inner, c.d_state)
        self.out_proj = nn.Linear(inner, c.n_embd, bias=False)
        self.scan = c.scan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        u, z = self.in_proj(self.ln(x)).chunk(2, dim=-1)  # (B, T, inner) each
        u = self.conv(u.transpose(1, 2))[..., :T].transpose(1, 2)  # (B, T, inner): causal (drop the tail)
        y = self.ssm(F.silu(u), self.scan) * F.silu(z)  # (B, T, inner): the gate z
        return x + self.out_proj(y)  # (B, T, C)

    def init_state(self, batch: int, device=None) -> Pair:
        conv = torch.zeros(batch, self.inner, self.d_conv - 1, device=device)  # the last d_conv - 1 inputs
        return conv, torch.zeros(batch, self.inner, self.ssm.d_state, device=device)  # and the SSM state

    def step(self, x_t: torch.Tensor, state: Pair) -> tuple[torch.Tensor, Pair]:
        """x_t (B, C) and this block's (conv buffer, h) -> (new x_t, new state)."""
        conv_buf, h = state
        u, z = self.in_proj(self.ln(x_t)).chunk(2, dim=-1)  # (B, inner) each
        window = torch.cat([conv_buf, u[..., None]], dim=-1)  # (B, inner, d_conv)
        u = (window * self.conv.weight[:, 0, :]).sum(dim=-1) + self.conv.bias  # (B, inner)
        y, h = self.ssm.step(F.silu(u), h)  # (B, inner), (B, inner, N)
        return x_t + self.out_proj(y * F.silu(z)), (window[..., 1:], h)


class SSMLM(nn.Module):
    """Token embeddings (no position embeddings: the recurrence knows the order), SSM blocks, a tied head."""

    def __init__(self, config: SSMConfig):
        super().__init__()
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.blocks = nn.ModuleList(SSMBlock(c) for _ in range(c.n_layer))
        self.ln_f = LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in the book's GPT
        nn.init.normal_(self.wte.weight, std=0.02)
        for block in self.blocks:
            for layer in (block.in_proj, block.out_proj):
                nn.init.normal_(layer.weight, std=0.02)
            nn.init.normal_(block.out_proj.weight, std=0.02 / math.sqrt(2 * c.n_layer))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), loss or None), the same interface as helpers.gpt.GPT."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (B, T) token ids, got shape {tuple(idx.shape)}")
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets {tuple(targets.shape)} must have idx's shape {tuple(idx.shape)}")
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    def init_state(self, batch: int, device=None) -> list[Pair]:
        return [block.init_state(batch, device) for block in self.blocks]

    def step(self, idx_t: torch.Tensor, state: list[Pair]) -> tuple[torch.Tensor, list[Pair]]:
        """One token per sequence, idx_t (B,), and the state -> (logits (B, V), new state): O(1) per token."""
        x = self.wte(idx_t)  # (B, C)
        new = []
        for block, s in zip(self.blocks, state, strict=True):
            x, s = block.step(x, s)  # (B, C)
            new.append(s)
        return self.lm_head(self.ln_f(x)), new


def state_bytes(state: list[Pair]) -> int:
    """Bytes held by an SSMLM's generation state (it does not grow with the number of tokens)."""
    return sum(t.numel() * t.element_size() for pair in state for t in pair)
