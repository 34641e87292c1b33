"""Pruning (chapter 27): set weights to zero, either anywhere (unstructured) or in a fixed N:M pattern.

    magnitude_mask(w, sparsity)     keep the largest |w|, zero exactly round(sparsity * numel) entries
    n_m_mask(w, n=2, m=4)           in every group of m consecutive inputs, keep the n largest |w|: the 2:4
                                    pattern that NVIDIA's sparse tensor cores run at up to twice the speed
    prune_linears(model, ...)       a copy of a model with those masks applied to its Linear weights
    sparsity(t)                     the fraction of entries that are exactly zero

Zeros only save time when a kernel knows where they are: a dense matmul multiplies by zero as fast as by
anything else. Unstructured zeros need a sparse format (indices per value) that pays off only at high
sparsity; the 2:4 pattern is regular enough for hardware to skip the zeros with two bits of index each.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A boolean mask of w's shape, True where w is kept: all but the round(sparsity * numel) smallest |w|.

    Ties are broken by position (a stable sort), so the number of zeros is exact.
    """
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise ValueError(f"w must be a floating-point tensor, got {getattr(w, 'dtype', type(w))}")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    n_zero = round(sparsity * w.numel())
    order = torch.sort(w.abs().flatten(), stable=True).indices  # (N,) smallest |w| first
    keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    keep[order[:n_zero]] = False
    return keep.reshape(w.shape)


def n_m_mask(w: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep the n largest |w| in each group of m consecutive entries along the last dim (N:M sparsity)."""
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise ValueError(f"w must be a floating-point tensor, got {getattr(w, 'dtype', type(w))}")
    if not 0 < n <= m:
        raise ValueError(f"need 0 < n <= m, got n={n}, m={m}")
    if w.dim() < 1 or w.shape[-1] % m:
        raise ValueError(f"the last dim ({w.shape[-1] if w.dim() else None}) must be a multiple of m={m}")
    groups = w.abs().reshape(-1, m)  # (G, m)
    top = groups.topk(n, dim=-1).indices  # (G, n)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)  # (G, m)
    return keep.reshape(w.shape)


def sparsity(t: torch.Tensor) -> float:
    """The fraction of entries of t that are exactly zero."""
    return (t == 0).sum().item() / t.numel()


def prune_linears(
    model: nn.Module, method: str = "magnitude", amount: float = 0.5, skip: tuple[str, ...] = ("lm_head",)
) -> nn.Module:
    """A deep copy of `model` whose Linear weights are pruned, each layer on its own.

    method "magnitude": unstructured, `amount` = the fraction zeroed per layer; "2:4": n_m_mask(w, 2, 4)
    (amount is ignored: always half). The tied lm_head (the embedding) is skipped by default.
    """
    if method not in ("magnitude", "2:4"):
        raise ValueError(f"method must be 'magnitude' or '2:4', got {method!r}")
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for module in pruned.modules():
            for name, child in module.named_children():
                if isinstance(child, nn.Linear) and name not in skip:
                    w = child.weight
                    mask = magnitude_mask(w, amount) if method == "magnitude" else n_m_mask(w, 2, 4)
                    w.mul_(mask)
    return pruned
