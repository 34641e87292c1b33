"""The MLP builder: its layers, that it computes the hand-written stack, and clear errors."""

import pytest
import torch
from torch import nn

from helpers.mlp import MLP


def test_layers_in_order():
    model = MLP([64, 32, 16, 10], dropout=0.5, norm=nn.BatchNorm1d)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert [(m.in_features, m.out_features) for m in model.linears()] == [(64, 32), (32, 16), (16, 10)]
    assert [type(m).__name__ for m in MLP([3, 4])] == ["Linear"]
    assert sum(p.numel() for p in MLP([64, 32, 10]).parameters()) == 64 * 32 + 32 + 32 * 10 + 10


def test_computes_the_same_as_the_explicit_formula():
    torch.manual_seed(0)
    model = MLP([5, 7, 3], activation=nn.Tanh).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    (W1, b1), (W2, b2) = [(m.weight, m.bias) for m in model.linears()]
    expected = torch.tanh(x @ W1.T + b1) @ W2.T + b2  # (4, 3)
    torch.testing.assert_close(model(x), expected)
    assert all(m.bias is None for m in MLP([5, 7, 3], bias=False).linears())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [64]}, "at least two"),
        ({"sizes": [64, 0, 10]}, "positive"),
        ({"sizes": [4, 2], "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)
