"""Chapter 9's numpy network against torch: softmax and cross-entropy, the hand-derived backward pass
(against torch.autograd and against finite differences), SGD, training, the slider, and clear errors."""

import warnings

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

from helpers import slider_view
from helpers.calculus import numerical_gradient
from helpers.classic import softmax
from helpers.nn_numpy import MLP, confusion_matrix, cross_entropy_loss, log_softmax, one_hot, train

warnings.filterwarnings("ignore", message=".*non-interactive.*")


def torch_loss(leaves, n_layers, X, y):
    """The same network in torch: F.linear (x W^T + b, nn.Linear's layout), ReLU, cross-entropy."""
    h = torch.as_tensor(X, dtype=torch.float64)
    for l in range(1, n_layers + 1):
        h = F.linear(h, leaves[f"W{l}"], leaves[f"b{l}"])
        h = torch.relu(h) if l < n_layers else h
    return F.cross_entropy(h, torch.as_tensor(y)), h


def torch_leaves(model: MLP):
    return {name: torch.tensor(p, requires_grad=True) for name, p in model.params.items()}  # copies


@given(
    sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4),
    batch=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=200, deadline=None)
def test_forward_and_backward_match_torch_autograd(sizes, batch, seed):
    rng = np.random.default_rng(seed)
    model = MLP(sizes, seed=seed)
    for p in model.params.values():  # nonzero biases, so their gradients are tested in earnest
        p += rng.normal(scale=0.1, size=p.shape)
    X = rng.normal(size=(batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    logits, cache = model.forward(X)
    grads = model.backward(cache, y)
    leaves = torch_leaves(model)
    their_loss, their_logits = torch_loss(leaves, model.n_layers, X, y)
    their_loss.backward()
    np.testing.assert_allclose(logits, their_logits.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert cross_entropy_loss(logits, y) == pytest.approx(their_loss.item(), rel=1e-12, abs=1e-14)
    assert set(grads) == set(model.params)
    for name, g in grads.items():
        assert g.shape == model.params[name].shape, name
        np.testing.assert_allclose(g, leaves[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = MLP([6, 5, 4, 3], seed=1)
    X, y = rng.normal(size=(7, 6)), rng.integers(0, 3, size=7)
    grads = model.backward(model.forward(X)[1], y)
    for name, p in model.params.items():
        numeric = numerical_gradient(lambda _: model.loss(X, y), p, eps=1e-6)  # nudges p in place
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


def test_the_documented_gradient_shapes():
    model = MLP([64, 32, 10])
    grads = model.backward(model.forward(np.zeros((5, 64)))[1], np.arange(5))
    shapes = {name: g.shape for name, g in grads.items()}
    assert shapes == {"W1": (32, 64), "b1": (32,), "W2": (10, 32), "b2": (10,)}


@pytest.mark.parametrize("scale", [1.0, 50.0, 1000.0])
def test_softmax_log_softmax_and_cross_entropy_match_torch_even_for_huge_logits(scale):
    rng = np.random.default_rng(int(scale))
    z = rng.normal(size=(6, 5)) * scale
    y = rng.integers(0, 5, size=6)
    t = torch.as_tensor(z)
    np.testing.assert_allclose(softmax(z), torch.softmax(t, dim=-1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(log_softmax(z), torch.log_softmax(t, dim=-1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(softmax(z, axis=0), torch.softmax(t, dim=0).numpy(), rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(log_softmax(z)))
    assert cross_entropy_loss(z, y) == pytest.approx(F.cross_entropy(t, torch.as_tensor(y)).item(), rel=1e-12)
    np.testing.assert_allclose(softmax(z).sum(axis=-1), 1.0)


def test_the_naive_formulas_really_do_fail_where_the_stable_ones_do_not():
    z = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 5.0]])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        naive_log = np.log(naive)
    assert np.isnan(naive[0]).all() and np.isneginf(naive_log[1, 0])
    assert np.all(np.isfinite(softmax(z))) and log_softmax(z)[1, 0] == pytest.approx(
        -1005 - np.log1p(np.exp(-5)), rel=1e-12
    )


def test_one_step_of_sgd_matches_torch_optim():
    rng = np.random.default_rng(3)
    model = MLP([8, 6, 3], seed=3)
    X, y = rng.normal(size=(10, 8)), rng.integers(0, 3, size=10)
    leaves = torch_leaves(model)
    optimizer = torch.optim.SGD(leaves.values(), lr=0.2)
    for _ in range(3):
        model.step(model.backward(model.forward(X)[1], y), lr=0.2)
        optimizer.zero_grad()
        their_loss, _ = torch_loss(leaves, model.n_layers, X, y)
        their_loss.backward()
        optimizer.step()
    for name, p in model.params.items():
        np.testing.assert_allclose(p, leaves[name].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_he_initialisation_has_the_stated_shapes_and_spread():
    model = MLP([400, 300, 10], seed=0)
    assert model.params["W1"].shape == (300, 400) and model.params["b1"].shape == (300,)
    assert model.params["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert not model.params["b2"].any()
    np.testing.assert_array_equal(MLP([5, 4, 3], seed=7).params["W2"], MLP([5, 4, 3], seed=7).params["W2"])


def test_training_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR-like quadrants: not linearly separable
    model = MLP([2, 32, 2], seed=0)
    history = train(model, X, y, epochs=60, batch_size=32, lr=0.2, X_val=X, y_val=y, progress=False)
    assert len(history["step_loss"]) == 60 * 10 and len(history["val_accuracy"]) == 60
    assert np.mean(history["step_loss"][-10:]) < 0.5 * np.mean(history["step_loss"][:10])
    assert history["val_accuracy"][-1] > 0.9


def test_confusion_matrix_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 10, size=500), rng.integers(0, 10, size=500)
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 10), sklearn_confusion_matrix(y_true, y_pred, labels=range(10))
    )


def test_one_hot():
    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])


def test_learning_rate_slider_redraws_a_different_loss_curve():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, size=64)
    runs = {
        lr: train(MLP([4, 8, 3], seed=0), X, y, epochs=3, batch_size=16, lr=lr, progress=False)
        for lr in [0.01, 1.0]
    }
    assert runs[0.01]["step_loss"] != runs[1.0]["step_loss"]

    def draw(lr):
        plt.plot(runs[lr]["step_loss"])
        plt.ylim(0, 3)

    view = slider_view(draw, lr=widgets.SelectionSlider(options=[0.01, 1.0], value=0.01))
    before = view.image
    view.set(lr=1.0)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: MLP([64]), "at least an input and an output"),
        (lambda: MLP([64, 0, 10]), ">= 1"),
        (lambda: MLP([4, 3]).forward(np.ones((2, 5))), r"X must be \(batch, 4\)"),
        (lambda: MLP([4, 3]).forward(np.ones(4)), r"X must be \(batch, 4\)"),
        (lambda: cross_entropy_loss(np.ones((2, 3)), [0, 3]), r"integers in 0\.\.2"),
        (lambda: cross_entropy_loss(np.ones((2, 3)), [0.5, 1.0]), "integers"),
        (lambda: cross_entropy_loss(np.ones((2, 3)), [0, 1, 2]), "one label per row"),
        (lambda: cross_entropy_loss(np.ones(3), [0]), r"\(N, classes\)"),
        (lambda: MLP([4, 3]).backward(MLP([4, 3]).forward(np.ones((2, 4)))[1], [0]), "one label per row"),
        (lambda: train(MLP([4, 3]), np.ones((5, 4)), np.zeros(4, int), 1, 2, 0.1), "5 rows but y has 4"),
        (lambda: train(MLP([4, 3]), np.ones((5, 4)), np.zeros(5, int), 1, 2, 0.0), "lr > 0"),
        (lambda: confusion_matrix([0, 1], [0], 2), "differ in shape"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
