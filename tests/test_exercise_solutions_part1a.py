"""Chapters 1-4: each reference solution against the helper or library it mirrors, on random inputs.

tests/test_exercises.py proves every checker accepts its solution and rejects its wrong answer; here the
solutions themselves meet an oracle that does not share their code, and the build-it checkers are shown to
refuse the library shortcut and the chapter's own helper.
"""

import numpy as np
import pytest
import torch

from helpers import calculus, decompositions, geometry, linalg
from helpers.exercises import get, passes
from helpers.exercises.core import _verdict

RNG_SEEDS = range(10)


def reference(key):
    return get(key).solution


# --- chapter 1 ------------------------------------------------------------------------------------------


def test_1_1_the_matrix_sends_the_two_arrows_where_the_exercise_says():
    A = reference("1.1")
    assert np.allclose(A @ [1, 1], [3, 1]) and np.allclose(A @ [1, -1], [1, 3])


def test_1_3_undo_against_numpy_inverse():
    from helpers.exercises.ch01 import SHEAR, STRETCH

    assert np.allclose(reference("1.3"), np.linalg.inv(STRETCH @ SHEAR))
    assert np.allclose(reference("1.3") @ STRETCH @ SHEAR, np.eye(2))


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_1_2_back_substitution_against_numpy_and_the_helper(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    U = np.triu(rng.normal(size=(n, n))) + np.diag(rng.choice([-2.0, 2.0], n))
    c = rng.normal(size=n)
    x = reference("1.2")(U, c)
    assert np.allclose(x, np.linalg.solve(U, c)) and np.allclose(x, linalg.back_substitute(U, c))


def test_1_4_rank_and_nullity_against_numpy():
    from helpers.exercises.ch01 import RANK_EXERCISE

    rank = np.linalg.matrix_rank(RANK_EXERCISE)
    assert list(reference("1.4")) == [rank, RANK_EXERCISE.shape[1] - rank]
    _, s, Vt = np.linalg.svd(RANK_EXERCISE)
    kernel = Vt[rank:]  # (nullity, n): the directions the matrix sends to zero
    assert np.allclose(RANK_EXERCISE @ kernel.T, 0) and len(kernel) == reference("1.4")[1]


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_1_5_forward_elimination_is_the_helpers_and_solves_like_numpy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    A, b = rng.normal(size=(n, n)), rng.normal(size=n)
    U, c = reference("1.5")(A, b)
    U_helper, c_helper, _ = linalg.eliminate(A, b)
    assert np.allclose(U, U_helper) and np.allclose(c, c_helper)
    assert np.allclose(linalg.back_substitute(U, c), np.linalg.solve(A, b))


def test_1_6_the_prediction_is_what_elimination_without_pivoting_returns():
    U, c = get("1.5").wrong(np.array([[1e-20, 1.0], [1.0, 1.0]]), np.array([1.0, 2.0]))  # no pivoting
    assert linalg.back_substitute(U, c)[0] == reference("1.6")
    assert np.allclose(np.linalg.solve([[1e-20, 1.0], [1.0, 1.0]], [1.0, 2.0]), 1.0)  # the truth is 1


# --- chapter 2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_2_3_and_2_5_projections_against_lstsq_and_the_helpers(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 9))
    A, b = rng.normal(size=(m, int(rng.integers(1, m + 1)))), rng.normal(size=m)
    p = reference("2.5")(b, A)
    assert np.allclose(p, A @ np.linalg.lstsq(A, b, rcond=None)[0]) and np.allclose(p, geometry.project(b, A))
    a = A[:, 0]
    assert np.allclose(reference("2.3")(b, a), geometry.project_onto_line(b, a))
    assert np.allclose(reference("2.3")(b, a), np.outer(a, a) @ b / (a @ a))


def test_2_1_and_2_2_against_numpy():
    v = np.array([3.0, -4.0, 12.0])
    assert np.allclose(reference("2.1"), [np.linalg.norm(v, p) for p in (1, 2, np.inf)])
    assert np.allclose(reference("2.1"), [geometry.norm(v, p) for p in (1, 2, np.inf)])
    u, w = np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0])
    assert np.isclose(reference("2.2"), np.degrees(np.arccos(u @ w / np.linalg.norm(u) / np.linalg.norm(w))))
    assert np.isclose(reference("2.2"), np.degrees(geometry.angle(u, w)))


def test_2_4_the_best_line_against_lstsq():
    t, y = np.arange(4.0), np.array([1.0, 3.0, 4.0, 4.0])
    assert np.allclose(reference("2.4"), np.linalg.lstsq(np.column_stack([np.ones(4), t]), y, rcond=None)[0])


def test_2_6_the_prediction_matches_the_experiment():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 2000, 1000))
    mean_abs_cos = np.mean(
        np.abs(np.sum(u * v, axis=1)) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    )
    assert abs(mean_abs_cos - reference("2.6")) < 0.002
    assert passes("2.6", mean_abs_cos)


# --- chapter 3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_3_3_and_3_4_against_numpy(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=tuple(int(k) for k in rng.integers(2, 8, size=2)))
    U, s, Vt = np.linalg.svd(A)
    assert np.allclose(reference("3.3")(A), s[0] * np.outer(U[:, 0], Vt[0]))
    energy = np.cumsum(s**2) / np.sum(s**2)
    fraction = float(rng.uniform(0.5, 0.99))
    assert reference("3.4")(s, fraction) == int(np.argmax(energy >= fraction)) + 1


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_3_5_gram_schmidt_qr_against_numpy_and_chapter_2(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 7))
    A = rng.normal(size=(n + int(rng.integers(0, 5)), n))
    Q, R = reference("3.5")(A)
    Q_np, R_np = np.linalg.qr(A)
    signs = np.sign(np.diag(R_np))
    assert np.allclose(Q, Q_np * signs) and np.allclose(R, R_np * signs[:, None])
    Q_gs, R_gs = geometry.gram_schmidt(A)
    assert np.allclose(Q, Q_gs) and np.allclose(R, R_gs)


def test_3_1_3_2_3_6_against_numpy():
    A = np.diag([5.0, 1.0, 1.0])  # any 3x3 matrix with det 5
    assert np.isclose(np.linalg.det(2 * A), reference("3.1"))
    assert np.allclose(np.sort(np.linalg.eigvalsh([[2.0, 1.0], [1.0, 2.0]]))[::-1], reference("3.2"))
    M = np.array([[1.0, 100.0], [0.0, 1.0]])
    assert np.allclose(np.linalg.eigvals(M), 1.0)
    assert abs(np.linalg.svd(M, compute_uv=False)[0] - reference("3.6")) < 0.01
    assert np.isclose(decompositions.power_iteration(M.T @ M).value, reference("3.6") ** 2, rtol=1e-3)


# --- chapter 4 ------------------------------------------------------------------------------------------


def torch_grad(f, *inputs):
    tensors = [torch.tensor(np.asarray(x, dtype=float), requires_grad=True) for x in inputs]
    return [g.numpy() for g in torch.autograd.grad(f(*tensors), tensors)]


def test_4_1_and_4_4_against_autograd_and_sympy():
    import sympy as sp

    (grad,) = torch_grad(lambda p: p[0] ** 2 * p[1] + torch.sin(p[1]), [1.0, 2.0])
    assert np.allclose(reference("4.1"), grad, atol=1e-12)
    x = sp.Symbol("x")
    series = sp.Poly(sp.series(sp.exp(x) * sp.cos(x), x, 0, 4).removeO(), x)
    assert np.allclose(reference("4.4"), [float(series.coeff_monomial(x**k)) for k in range(4)])


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_4_2_4_3_4_5_against_autograd(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=2) * 3
    J = torch.autograd.functional.jacobian(
        lambda p: torch.stack([p[0] * p[1], p[0] + p[1] ** 2, torch.sin(p[0])]), torch.tensor([x, y])
    ).numpy()
    assert np.allclose(reference("4.2")(x, y), J, atol=1e-12)
    xs = rng.normal(size=5) * 3
    (d,) = torch_grad(lambda t: torch.nn.functional.softplus(3 * t).sum(), xs)
    assert np.allclose(reference("4.3")(xs), d, atol=1e-12)
    w, X, y_ = rng.normal(size=3), rng.normal(size=(7, 3)), rng.normal(size=7)
    (g,) = torch_grad(lambda v: ((torch.from_numpy(X) @ v - torch.from_numpy(y_)) ** 2).mean(), w)
    assert np.allclose(reference("4.5")(w, X, y_), g, atol=1e-12)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=["vector", "(B, n)", "(B, T, n)"])
def test_4_6_linear_backward_against_autograd_and_the_helper(shape):
    rng = np.random.default_rng(len(shape))
    x, W, b, g = (
        rng.normal(size=(*shape, 5)),
        rng.normal(size=(3, 5)),
        rng.normal(size=3),
        rng.normal(size=(*shape, 3)),
    )
    ours = reference("4.6")(x, W, g)
    theirs = torch_grad(
        lambda x, W, b: (torch.nn.functional.linear(x, W, b) * torch.from_numpy(g)).sum(), x, W, b
    )
    for mine, oracle, helper in zip(ours, theirs, calculus.linear_vjp(x, W, g), strict=True):
        assert np.allclose(mine, oracle, atol=1e-12) and np.allclose(mine, helper, atol=1e-12)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=["vector", "(B, C)", "(B, T, C)"])
def test_4_7_softmax_backward_against_autograd_and_the_jacobian(shape):
    rng = np.random.default_rng(len(shape))
    z, g = rng.normal(size=(*shape, 6)), rng.normal(size=(*shape, 6))
    p = torch.softmax(torch.from_numpy(z), dim=-1).numpy()
    ours = reference("4.7")(p, g)
    (theirs,) = torch_grad(lambda z: (torch.softmax(z, dim=-1) * torch.from_numpy(g)).sum(), z)
    assert np.allclose(ours, theirs, atol=1e-12)
    assert np.allclose(ours, np.einsum("...i,...ij->...j", g, calculus.softmax_jacobian(p)), atol=1e-12)


def test_4_8_the_rows_of_the_softmax_jacobian_sum_to_the_prediction():
    z = torch.randn(5, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), z).numpy()
    assert np.allclose(J.sum(axis=1), reference("4.8"), atol=1e-12)


# --- the build-it checkers refuse shortcuts -------------------------------------------------------------


@pytest.mark.parametrize(
    "key, shortcut, named",
    [
        ("1.2", lambda U, c: np.linalg.solve(U, c), "numpy.linalg.solve"),
        ("1.2", np.linalg.solve, "numpy.linalg.solve"),  # the library function itself as the answer
        ("1.2", linalg.back_substitute, "helpers.linalg.back_substitute"),
        ("1.5", lambda A, b: linalg.eliminate(A, b)[:2], "helpers.linalg.eliminate"),
        ("2.5", lambda b, A: A @ np.linalg.lstsq(A, b, rcond=None)[0], "numpy.linalg.lstsq"),
        ("2.5", geometry.project, "helpers.geometry.project"),
        ("3.5", lambda A: np.linalg.qr(A), "numpy.linalg.qr"),
        ("3.5", geometry.gram_schmidt, "helpers.geometry.gram_schmidt"),
        ("4.6", calculus.linear_vjp, "helpers.calculus.linear_vjp"),
    ],
)
def test_build_it_checkers_refuse_the_shortcut(key, shortcut, named):
    ok, why = _verdict(key, shortcut)
    assert ok is False and named in why


def test_derivative_checkers_refuse_nudging_and_autograd():
    f = lambda p: np.array([p[0] * p[1], p[0] + p[1] ** 2, np.sin(p[0])])  # noqa: E731
    assert not passes("4.2", lambda x, y: calculus.numerical_jacobian(f, [x, y]))

    def numerical_jacobian(f, x, eps=1e-5):  # a reader's own copy, as the chapter's cell defines one
        x = np.asarray(x, dtype=float)
        steps = np.eye(len(x)) * eps
        return np.stack([(f(x + h) - f(x - h)) / (2 * eps) for h in steps], axis=1)

    ok, why = _verdict("4.2", lambda x, y: numerical_jacobian(f, [x, y]))
    assert ok is False and "nudging" in why

    def by_hand_nudging(x):  # central differences written inline, at their best step: still 1e-11 off
        h = 1e-5
        return (np.log1p(np.exp(3 * (x + h))) - np.log1p(np.exp(3 * (x - h)))) / (2 * h)

    ok, why = _verdict("4.3", by_hand_nudging)
    assert ok is False and "numerical derivative" in why

    def autograd(x):
        t = torch.tensor(x, requires_grad=True)
        torch.nn.functional.softplus(3 * t).sum().backward()
        return t.grad.numpy()

    ok, why = _verdict("4.3", autograd)
    assert ok is False and "torch.Tensor.backward" in why
    assert passes("4.3", lambda x: 3 * np.exp(3 * x) / (1 + np.exp(3 * x)))  # any exact formula passes
