"""Chapter 11's initialisation rules against torch.nn.init, and the activation statistics of its slider."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers import slider_view
from helpers.initialization import activation_stds, draw_activation_stds, init_normal_, init_std

warnings.filterwarnings("ignore", message=".*non-interactive.*")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("nonlinearity", ["relu", "tanh", "linear"])
def test_kaiming_and_xavier_fill_exactly_like_torch_nn_init(seed, nonlinearity):
    g = torch.Generator().manual_seed(seed)
    fan_out, fan_in = (int(s) for s in torch.randint(1, 300, (2,), generator=g))
    for kind, oracle in [
        (
            "kaiming",
            lambda w, gen: torch.nn.init.kaiming_normal_(w, nonlinearity=nonlinearity, generator=gen),
        ),
        ("xavier", lambda w, gen: torch.nn.init.xavier_normal_(w, generator=gen)),
    ]:
        ours, theirs = torch.empty(fan_out, fan_in), torch.empty(fan_out, fan_in)
        init_normal_(ours, kind, nonlinearity, generator=torch.Generator().manual_seed(seed))
        oracle(theirs, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_gains_and_stds_match_torch():
    for name in ["relu", "tanh", "linear"]:
        assert init_std("kaiming", 1, nonlinearity=name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init_std("kaiming", 512) == pytest.approx(math.sqrt(2 / 512))
    assert init_std("xavier", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert init_std("small", 10_000) == 0.01 and init_std("normal", 3) == 1.0


def test_a_big_kaiming_matrix_has_the_promised_std():
    w = init_normal_(torch.empty(1000, 500), "kaiming", generator=torch.Generator().manual_seed(0))
    assert w.std().item() == pytest.approx(math.sqrt(2 / 500), rel=0.01)


def test_activation_stds_through_depth_collapse_explode_or_stay():
    width = 256
    stds = {
        kind: activation_stds(init_std(kind, width, width), depth=20, width=width)
        for kind in ["small", "normal", "xavier", "kaiming"]
    }
    assert all(s.shape == (21,) for s in stds.values())
    assert np.all((stds["kaiming"][1:] > 0.5) & (stds["kaiming"][1:] < 2.0))
    assert stds["small"][-1] < 1e-15  # shrinks by 0.01 * sqrt(256 / 2) = 0.11 per layer
    assert stds["normal"][-1] > 1e15  # grows by sqrt(256 / 2) = 11 per layer
    assert stds["xavier"][-1] < 0.01  # ReLU halves the variance each layer; Xavier does not make up for it
    tanh = activation_stds(init_std("xavier", width, width), depth=20, width=width, nonlinearity="tanh")
    assert tanh[-1] > 0.05  # with tanh, Xavier decays only slowly
    np.testing.assert_array_equal(stds["kaiming"], activation_stds(math.sqrt(2 / 256), 20, 256))  # seeded


def test_init_slider_headless():
    def draw(scale, depth):
        _, ax = plt.subplots()
        draw_activation_stds(
            ax, {f"{scale} x Kaiming": activation_stds(scale * math.sqrt(2 / 64), depth, 64)}
        )

    view = slider_view(draw, scale=(0.25, 2.0, 0.25, 1.0), depth=(5, 30, 5, 10))
    before = view.image
    view.set(scale=2.0)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    assert (
        activation_stds(2.0 * math.sqrt(2 / 64), 10, 64)[-1]
        > 100 * activation_stds(math.sqrt(2 / 64), 10, 64)[-1]
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: init_std("orthogonal", 3), "unknown init"),
        (lambda: init_std("kaiming", 3, nonlinearity="gelu"), "unknown nonlinearity"),
        (lambda: init_std("kaiming", 0), "positive"),
        (lambda: init_normal_(torch.empty(3), "kaiming"), "fan_out, fan_in"),
        (lambda: activation_stds(0.1, depth=0), "depth"),
        (lambda: activation_stds(-0.1), "non-negative"),
        (lambda: activation_stds(0.1, nonlinearity="gelu"), "unknown nonlinearity"),
    ],
)
def test_bad_arguments_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
