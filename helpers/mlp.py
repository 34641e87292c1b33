"""A multilayer perceptron as a torch `nn.Sequential`: Linear, [norm], activation, [dropout], ..., Linear.

Chapter 10 builds a two-layer network on the digits by hand as an `nn.Module`; this is the same idea
for any list of layer sizes, so later chapters (and chapter 11's experiments on depth, initialisation,
normalisation and dropout) can say `MLP([64, 128, 128, 10], dropout=0.2)`. A normalisation layer is
passed in as a factory (`norm=torch.nn.BatchNorm1d`), so this module depends on nothing later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


class MLP(nn.Sequential):
    """Linear layers of the given `sizes` (input first, outputs last) with an activation between them.

    Each hidden block is Linear -> norm(width) if given -> activation -> Dropout(dropout) if dropout > 0.
    The last Linear has nothing after it: it returns logits.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Callable[[], nn.Module] = nn.ReLU,
        dropout: float = 0.0,
        norm: Callable[[int], nn.Module] | None = None,
        bias: bool = True,
    ):
        sizes = list(sizes)
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints (input, ..., output), got {sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a probability in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers.append(nn.Linear(fan_in, fan_out, bias=bias))
            if norm is not None:
                layers.append(norm(fan_out))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=bias))
        super().__init__(*layers)
        self.sizes = sizes

    def linears(self) -> list[nn.Linear]:
        """The Linear layers, first to last."""
        return [m for m in self if isinstance(m, nn.Linear)]
