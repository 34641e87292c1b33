"""Weight initialisation: how large the random starting weights should be, and what goes wrong otherwise.

A layer y = W x sums fan_in products, so with weights of standard deviation s the variance of y is about
fan_in * s^2 times that of x. Repeat that through depth and the signal shrinks to nothing or blows up
unless fan_in * s^2 is about 1 (times a correction for the activation). This module gives the standard
choices (`init_std`), fills weights with them exactly as `torch.nn.init` does (`init_normal_`), and measures
the activations through a deep stack of layers (`activation_stds`) for chapter 11's plots and slider.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

#: The factor by which an activation changes the "fan_in * s^2 = 1" rule (torch.nn.init.calculate_gain).
GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3.0}
#: Fixed standard deviations that ignore the layer size: the naive choices.
FIXED = {"small": 0.01, "normal": 1.0}
KINDS = (*FIXED, "xavier", "kaiming")
ACTIVATIONS = {"linear": lambda z: z, "relu": torch.relu, "tanh": torch.tanh}


def init_std(kind: str, fan_in: int, fan_out: int | None = None, nonlinearity: str = "relu") -> float:
    """The standard deviation of N(0, s^2) weights for a layer with `fan_in` inputs and `fan_out` outputs.

    small / normal: 0.01 / 1.0 whatever the size. xavier (Glorot): sqrt(2 / (fan_in + fan_out)), gain 1,
    as torch.nn.init.xavier_normal_. kaiming (He): gain / sqrt(fan_in), gain sqrt(2) for ReLU, as
    torch.nn.init.kaiming_normal_(mode="fan_in").
    """
    if kind not in KINDS:
        raise ValueError(f"unknown init {kind!r}; choose from {KINDS}")
    if nonlinearity not in GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose from {sorted(GAINS)}")
    if fan_in < 1 or (fan_out is not None and fan_out < 1):
        raise ValueError(f"fan_in and fan_out must be positive, got {fan_in} and {fan_out}")
    if kind in FIXED:
        return FIXED[kind]
    if kind == "xavier":
        fan_out = fan_in if fan_out is None else fan_out
        return math.sqrt(2.0 / (fan_in + fan_out))
    return GAINS[nonlinearity] / math.sqrt(fan_in)


@torch.no_grad()
def init_normal_(
    weight: torch.Tensor, kind: str, nonlinearity: str = "relu", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill a (fan_out, fan_in) weight in place with N(0, init_std(...)^2) draws; returns it."""
    if weight.dim() != 2:
        raise ValueError(f"expected a (fan_out, fan_in) matrix, got shape {tuple(weight.shape)}")
    fan_out, fan_in = weight.shape
    return weight.normal_(0.0, init_std(kind, fan_in, fan_out, nonlinearity), generator=generator)


@torch.no_grad()
def activation_stds(
    weight_std: float,
    depth: int = 20,
    width: int = 256,
    nonlinearity: str = "relu",
    batch: int = 512,
    seed: int = 0,
) -> np.ndarray:
    """Push a batch of N(0, 1) inputs through `depth` random layers x -> act(W x) with N(0, weight_std^2)
    weights; return the standard deviation of the input and of each layer's output, shape (depth + 1,)."""
    if depth < 1 or width < 1 or batch < 2:
        raise ValueError(f"depth, width must be >= 1 and batch >= 2, got {depth}, {width}, {batch}")
    if weight_std < 0:
        raise ValueError(f"weight_std must be non-negative, got {weight_std}")
    if nonlinearity not in ACTIVATIONS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose from {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[nonlinearity]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=g, dtype=torch.float64)  # (B, width)
    stds = [x.std().item()]
    for _ in range(depth):
        W = torch.randn(width, width, generator=g, dtype=torch.float64) * weight_std  # (out, in)
        x = act(x @ W.T)  # (B, width)
        stds.append(x.std().item())
    return np.array(stds)


def draw_activation_stds(ax, curves: dict[str, np.ndarray], band: tuple[float, float] | None = (0.5, 2.0)):
    """Plot std per layer (log scale) for each labelled curve; shade `band`, where a signal is healthy."""
    for label, stds in curves.items():
        ax.semilogy(np.arange(len(stds)), np.clip(stds, 1e-30, None), marker=".", label=label)
    if band is not None:
        ax.axhspan(*band, color="green", alpha=0.1, label="healthy band")
    ax.set(xlabel="layer", ylabel="std of activations")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    return ax
