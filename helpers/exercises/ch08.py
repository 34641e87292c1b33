"""Exercises for chapter 8: automatic differentiation from scratch."""

import math

import numpy as np
import torch

from helpers.autograd import Value, unbroadcast
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register

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


_SIGMOID_POINTS = [-3.0, -0.5, 0.0, 0.8, 2.5]


def _torch_reference(points: list[float]) -> list[float]:
    """d/dx of s*s + 3s with s = sigmoid(x), by torch.autograd, worked out once before any check runs."""
    grads = []
    for x in points:
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        ts = torch.sigmoid(t)
        (ts * ts + 3.0 * ts).backward()
        grads.append(t.grad.item())
    return grads


_SIGMOID_GRADS = _torch_reference(_SIGMOID_POINTS)


def _check_sigmoid_rule(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for x, want in zip(_SIGMOID_POINTS, _SIGMOID_GRADS, strict=True):
        a = Value(x)
        s = answer(a)
        assert hasattr(s, "data") and hasattr(s, "_backward"), (
            f"sigmoid(Value({x})) should return a Value, got {type(s).__name__}"
        )
        sx = 1.0 / (1.0 + math.exp(-x))
        assert math.isclose(s.data, sx, rel_tol=1e-9), (
            f"sigmoid(Value({x})).data is {s.data:.6g}, but sigmoid({x}) = {sx:.6g}"
        )
        assert len(s.parents) == 1 and s.parents[0] is a, (
            "return ONE new node whose only parent is v, with its own _backward: built from exp, + and / "
            "the engine writes the backward for you, and this exercise is to write it yourself"
        )
        a.grad, s.grad = 0.0, 1.7  # call your rule on its own: it must add 1.7 * s (1 - s) to v.grad
        s._backward()
        assert math.isclose(a.grad, 1.7 * sx * (1 - sx), rel_tol=1e-9, abs_tol=1e-12), (
            f"at x = {x} with out.grad = 1.7 your _backward adds {a.grad:.6g} to v.grad; the chain rule "
            f"says 1.7 * (local derivative) = {1.7 * sx * (1 - sx):.6g}"
        )
        a.grad = 5.0
        s._backward()
        assert math.isclose(a.grad, 5.0 + 1.7 * sx * (1 - sx), rel_tol=1e-9), (
            "your _backward overwrites v.grad: it must add (+=), or a value used twice loses a path"
        )
        loss = s * s + 3.0 * s  # s used twice, so a correct rule must add, not overwrite
        loss.backward()
        assert math.isclose(a.grad, want, rel_tol=1e-9, abs_tol=1e-12), (
            f"at x = {x}: your gradient {a.grad:.6g} differs from torch's {want:.6g}"
        )


_check_sigmoid = by_hand(
    _check_sigmoid_rule,
    {
        "torch.autograd.grad": "write the local derivative into _backward yourself.",
        "torch.autograd.backward": "write the local derivative into _backward yourself.",
        "torch.Tensor.backward": "write the local derivative into _backward yourself.",
    },
)


def _sigmoid_composed(v):
    return 1.0 / (1.0 + (-v).exp())  # right numbers, but the engine's existing rules do the work


register(
    Exercise(
        key="8.2",
        title="a new operation: sigmoid",
        checker=_check_sigmoid,
        hint="copy the pattern of `tanh`: compute s = 1 / (1 + math.exp(-v.data)) as a plain float, make "
        "`out = Value(s, (v,), 'sigmoid')`, and in `_backward` add the local derivative times out.grad to "
        "v.grad. The local derivative of the sigmoid can be written with s alone: s (1 - s).",
        solution=_sigmoid,
        wrong=_sigmoid_with_a_wrong_rule,
        explanation="The sigmoid's derivative is s(1 - s), where s is the output, so the backward rule needs "
        "nothing but the stored output. The checker calls your _backward on its own (so composing exp, + "
        "and / does not count: that reuses rules someone else wrote), then builds s * s + 3 s, so it also "
        "catches `=` for `+=`.",
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

# 8.5 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="8.5",
        title="predict: memory against batch size",
        checker=matches_value(2.0, atol=0.05, what="your factor"),
        hint="which of the kept arrays have a batch axis? The parameters are not among the intermediate "
        "values counted here.",
        solution=2.0,
        wrong=1.0,  # "training memory is the model's size": the parameters do not grow, the activations do
        explanation="Every intermediate value in the graph - the input batch, each layer's pre-activation "
        "and activation, the logits - has one row per example, so doubling the batch doubles them all: the "
        "factor is 2 (the loss itself is a single number). The parameters stay the same size. This is why "
        "the batch size (and, in a transformer, the sequence length) is the knob that runs a training job "
        "out of memory.",
    )
)


# 8.6 ----------------------------------------------------------------------------------------------------
def _rows(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(1, 3))) + (int(rng.integers(2, 7)),)
    x = rng.normal(size=shape) * 2
    y = np.exp(x - x.max(axis=-1, keepdims=True))
    return y / y.sum(axis=-1, keepdims=True), rng.normal(size=shape)  # y = softmax(x) and v = dL/dy


def _softmax_vjp_formula(y, v):
    # the Jacobian of one row is diag(y) - y y^T, so v^T J = y * v - y (v . y), row by row
    return y * (v - (v * y).sum(axis=-1, keepdims=True))  # (..., C)


def _softmax_vjp(y, v):
    return y * (v - (v * y).sum(axis=-1, keepdims=True))  # (..., C): v^T (diag(y) - y y^T), row by row


def _softmax_vjp_diagonal_only(y, v):
    return y * (1 - y) * v  # keeps only diag(y(1 - y)): forgets that each output depends on every input


_NO_AUTOGRAD = "work out v^T J from the softmax's Jacobian, diag(y) - y y^T, and write it with numpy."
register(
    Exercise(
        key="8.6",
        title="the softmax's vector-Jacobian product",
        checker=by_hand(
            matches_function(_softmax_vjp_formula, _rows, atol=1e-10),
            {
                "torch.func.vjp": _NO_AUTOGRAD,
                "torch.autograd.grad": _NO_AUTOGRAD,
                "torch.autograd.functional.vjp": _NO_AUTOGRAD,
                "torch.autograd.functional.jacobian": _NO_AUTOGRAD,
                "torch.Tensor.backward": _NO_AUTOGRAD,
            },
        ),
        hint="for one row, y_i = e^{x_i} / sum_k e^{x_k}, so dy_i/dx_j = y_i (1[i = j] - y_j): the Jacobian "
        "is diag(y) - y y^T. Multiply the row vector v by it without building it: y * v minus y times the "
        "number (v . y). Sum over the last axis only, with keepdims=True, so that batches of rows work too.",
        solution=_softmax_vjp,
        wrong=_softmax_vjp_diagonal_only,
        explanation="v^T (diag(y) - y y^T) = y * v - (v . y) y. The Jacobian of a row of C numbers has C^2 "
        "entries; the VJP needs 3C multiply-adds and never forms it - the same economy as every backward "
        "rule in this chapter. The tempting answer keeps only the diagonal, as if softmax acted on each "
        "entry alone, like the sigmoid; but every output shares the denominator, so every input moves every "
        "output.",
    )
)
