"""Normalisation layers from scratch: LayerNorm, RMSNorm and BatchNorm1d (chapter 11).

Both subtract a mean and divide by a standard deviation, then apply a learned scale (`weight`) and shift
(`bias`). They differ in *which* numbers the mean is taken over:

- LayerNorm: over the features of each example separately (the last dimension). No state, and the same
  behaviour in training and evaluation - which is why transformers use it.
- BatchNorm1d: over the batch, feature by feature. In training it uses the batch's own statistics and
  keeps running averages of them; in evaluation it uses those running averages instead.

RMSNorm (used by Llama and most open models since) is LayerNorm without the mean and without the shift:
y = x / sqrt(mean(x^2) + eps) * weight. One statistic fewer, and no bias; chapter 17 swaps it in.

Parameter and buffer names are those of `torch.nn.LayerNorm` / `torch.nn.BatchNorm1d` (and GPT-2's
`ln_1.weight`, `ln_1.bias`), so state dicts load either way.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_layer_arguments(dim: int, eps: float) -> None:
    """The constructor checks LayerNorm and RMSNorm share: a positive int size and a positive eps."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")
    if not eps > 0:
        raise ValueError(f"eps must be positive (it keeps the division finite), got {eps}")


def layer_norm(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float = 1e-5
) -> torch.Tensor:
    """Normalise each row of x over its last dimension, then scale by `weight` and shift by `bias`.

    y = (x - mean) / sqrt(var + eps) * weight + bias, with the mean and the (biased, divide-by-n)
    variance taken over the last dimension. `weight` and `bias` have shape (C,) or are None.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive (it keeps the division finite), got {eps}")
    if x.dim() < 1:
        raise ValueError("layer_norm needs at least one dimension to normalise over, got a scalar")
    C = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (C,):
            raise ValueError(f"{name} has shape {tuple(p.shape)}, but x's last dimension is {C}")
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = x.var(dim=-1, unbiased=False, keepdim=True)  # (..., 1)
    y = (x - mean) / torch.sqrt(var + eps)  # (..., C)
    if weight is not None:
        y = y * weight  # (..., C)
    if bias is not None:
        y = y + bias  # (..., C)
    return y


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension of size `dim`, with a learned `weight` (ones) and `bias` (zeros)."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        _check_layer_arguments(dim, eps)
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(dim))  # (C,)
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None  # (C,) or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"LayerNorm({self.dim}) got input of shape {tuple(x.shape)}")
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """Divide each row of x by its root mean square over the last dimension, then scale by `weight`.

    y = x / sqrt(mean(x^2) + eps) * weight. The statistic is taken in float32 even for bf16/fp16 input
    (as Llama does), and the result is cast back to x's dtype before the scale.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive (it keeps the division finite), got {eps}")
    if x.dim() < 1:
        raise ValueError("rms_norm needs at least one dimension to normalise over, got a scalar")
    C = x.shape[-1]
    if weight is not None and weight.shape != (C,):
        raise ValueError(f"weight has shape {tuple(weight.shape)}, but x's last dimension is {C}")
    x32 = x.float()  # (..., C)
    ms = x32.pow(2).mean(dim=-1, keepdim=True)  # (..., 1): mean square, no mean subtracted
    y = (x32 * torch.rsqrt(ms + eps)).to(x.dtype)  # (..., C)
    return y if weight is None else weight * y  # (..., C)


class RMSNorm(nn.Module):
    """RMSNorm over the last dimension of size `dim`, with a learned `weight` (ones) and no bias."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        _check_layer_arguments(dim, eps)
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(dim))  # (C,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"RMSNorm({self.dim}) got input of shape {tuple(x.shape)}")
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class BatchNorm1d(nn.Module):
    """BatchNorm over the batch for input (N, C) or (N, C, L): statistics per feature (channel) C.

    Training: normalise with the batch's mean and biased variance, and update the running averages
    running = (1 - momentum) * running + momentum * batch (with the unbiased variance, as torch does).
    Evaluation: normalise with the running averages, so an example's output no longer depends on its batch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive (it keeps the division finite), got {eps}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None  # (C,)
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None  # (C,)
        self.register_buffer("running_mean", torch.zeros(num_features))  # (C,)
        self.register_buffer("running_var", torch.ones(num_features))  # (C,)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}) expects (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got {tuple(x.shape)}"
            )
        dims = (0,) if x.dim() == 2 else (0, 2)  # every axis except the feature axis
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1)  # to broadcast (C,) against x
        if self.training:
            n = x.numel() // self.num_features  # values per feature in this batch
            if n < 2:
                raise ValueError("BatchNorm1d in training mode needs more than one value per feature")
            mean = x.mean(dim=dims)  # (C,)
            var = x.var(dim=dims, unbiased=False)  # (C,)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))  # unbiased estimate
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var  # (C,), (C,)
        y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)  # like x
        if self.weight is not None:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)  # like x
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"
        )
