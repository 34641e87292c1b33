"""Exercises for chapter 8: automatic differentiation from scratch."""

import math

import numpy as np
import torch

from helpers.autograd import Value, unbroadcast
from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 8.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="8.1",
        title="two paths",
        checker=matches_value(5.0, what="dL/da"),
        hint="a reaches L along two paths: through s = a + b, and directly as the second factor of s * a. "
        "Work out each path's product of local derivatives, then add them.",
        solution=5.0,
        wrong=2.0,  # only the path through the direct factor: dL/da = s = a + b
        explanation="L = s * a with s = a + b. Along the direct edge, dL/da = s = 2. Along the path through "
        "s, dL/ds * ds/da = a * 1 = 3. A value used twice gets the sum: 2 + 3 = 5 (check: L = a^2 + ab, "
        "dL/da = 2a + b = 5). That sum is why every backward rule says `+=`: with `=`, the second path "
        "would overwrite the first.",
    )
)


# 8.2 ----------------------------------------------------------------------------------------------------
def _sigmoid(v):
    s = 1.0 / (1.0 + math.exp(-v.data))
    out = Value(s, (v,), "sigmoid")

    def _backward():  # d sigmoid(a)/da = s (1 - s)
        v.grad += s * (1.0 - s) * out.grad

    out._backward = _backward
    return out


def _sigmoid_with_a_wrong_rule(v):
    s = 1.0 / (1.0 + math.exp(-v.data))
    out = Value(s, (v,), "sigmoid")

    def _backward():
        v.grad += s * out.grad  # forgets the factor (1 - s)

    out._backward = _backward
    return out


def _check_sigmoid(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for x in [-3.0, -0.5, 0.0, 0.8, 2.5]:
        a = Value(x)
        s = answer(a)
        assert hasattr(s, "data") and hasattr(s, "backward"), (
            f"sigmoid(Value({x})) should return a Value, got {type(s).__name__}"
        )
        assert math.isclose(s.data, 1.0 / (1.0 + math.exp(-x)), rel_tol=1e-9), (
            f"sigmoid(Value({x})).data is {s.data:.6g}, but sigmoid({x}) = {1 / (1 + math.exp(-x)):.6g}"
        )
        loss = s * s + 3.0 * s  # s used twice, so a correct rule must add, not overwrite
        loss.backward()
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ts = torch.sigmoid(t)
        (ts * ts + 3.0 * ts).backward()
        assert math.isclose(a.grad, t.grad.item(), rel_tol=1e-9, abs_tol=1e-12), (
            f"at x = {x}: your gradient {a.grad:.6g} differs from torch's {t.grad.item():.6g}"
        )


register(
    Exercise(
        key="8.2",
        title="a new operation: sigmoid",
        checker=_check_sigmoid,
        hint="copy the pattern of `tanh`: compute s = 1 / (1 + exp(-a)), make "
        "`out = Value(s, (v,), 'sigmoid')`, and in `_backward` add the local derivative times out.grad to "
        "v.grad. The local derivative of the sigmoid can be written with s alone: s (1 - s).",
        solution=_sigmoid,
        wrong=_sigmoid_with_a_wrong_rule,
        explanation="The sigmoid's derivative is s(1 - s), where s is the output, so the backward rule needs "
        "nothing but the stored output. The checker builds s * s + 3 s, so it also catches `=` for `+=`.",
    )
)


# 8.3 ----------------------------------------------------------------------------------------------------
def _broadcast_case(rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    full = tuple(int(n) for n in rng.integers(2, 5, size=rng.integers(1, 4)))  # e.g. (3, 4, 2)
    dropped = int(rng.integers(0, len(full) + 1))
    shape = tuple(n if rng.random() < 0.5 else 1 for n in full[dropped:])
    return rng.normal(size=full), shape


def _only_leading_axes(grad, shape):
    return grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # forgets the axes stretched from size 1


def _check_unbroadcast(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(0)
    for _ in range(40):
        grad, shape = _broadcast_case(rng)
        got = answer(grad.copy(), shape)
        assert got is not None, "your function returned None: did you forget `return`?"
        got = np.asarray(got, dtype=float)
        want = unbroadcast(grad, shape)
        assert got.shape == want.shape, (
            f"for a gradient of shape {grad.shape} and an input of shape {shape} you return shape "
            f"{got.shape}; the input's gradient must have the input's shape {shape}"
        )
        assert np.allclose(got, want), (
            f"for a gradient of shape {grad.shape} and an input of shape {shape} the shape is right but "
            "the entries are not: each entry should be the sum over all the copies broadcasting made"
        )


register(
    Exercise(
        key="8.3",
        title="undo broadcasting",
        checker=_check_unbroadcast,
        hint="two kinds of copy: axes that broadcasting added in front (sum them away), and axes where the "
        "input had size 1 but the gradient does not (sum them with keepdims=True).",
        solution=unbroadcast,
        wrong=_only_leading_axes,
    )
)


# 8.4 ----------------------------------------------------------------------------------------------------
def _matmul_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, k, m = (int(s) for s in rng.integers(1, 6, size=3))
    return rng.normal(size=(n, k)), rng.normal(size=(n, m))  # A (n, k) and G = dL/dC (n, m)


def _grad_B(A, G):
    return A.T @ G  # (k, n) @ (n, m) -> (k, m), the shape of B


def _grad_B_transposed(A, G):
    return G.T @ A  # (m, k): the right numbers, but B's transpose


register(
    Exercise(
        key="8.4",
        title="the gradient of a matrix product",
        checker=matches_function(_grad_B, _matmul_case),
        hint="C = A @ B with A (n, k), B (k, m) and G = dL/dC (n, m). C_ij = sum_p A_ip B_pj, so B_pj "
        "moves every C_ij in column j, each with local derivative A_ip: add those up over i. Which product "
        "of A and G has B's shape (k, m)?",
        solution=_grad_B,
        wrong=_grad_B_transposed,
        explanation="dL/dB_pj = sum_i A_ip G_ij, which is (A^T G)_pj. The shapes alone nearly force it: "
        "(k, n) @ (n, m) is the only way to make (k, m) from A and G. B itself is not needed because C is "
        "linear in B: its local derivative with respect to B is A, whatever B is.",
    )
)
