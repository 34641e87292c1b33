"""Chapter 4: derivatives you can compute without knowing calculus, and the tools to check them.

A derivative is a limit of slopes. Take the limit "not quite": nudge the input by a small eps and
measure how much the output moves. That gives numerical gradients and Jacobians for any function you
can call, which is exactly what you need to test a hand-written backward pass (chapters 8 and 9).
The price is accuracy: eps too large and the slope is of a chord, not the tangent (truncation error);
eps too small and the output difference drowns in floating-point rounding. Central differences with
eps around 1e-6 in float64 balance the two. Taylor polynomials are here too: the same "best local
approximation" idea, carried past the linear term. Last, the matrix calculus backpropagation runs on:
vector-Jacobian products of a linear layer and of softmax, which never build the Jacobian itself, and the
Riemann sum that reads an integral as an area and as a weighted sum.
"""

from __future__ import annotations

import math

import numpy as np


def as_step(eps) -> float:
    """The step eps as a positive float, or a clear error."""
    if isinstance(eps, str | bool) or np.ndim(eps) != 0 or not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    return float(eps)


def as_scalar(value, what: str = "f") -> float:
    """f's output as a Python float, or a clear error if f did not return a single number."""
    size = int(np.size(value)) if not hasattr(value, "numel") else int(value.numel())
    if size != 1:
        shape = tuple(getattr(value, "shape", ()))
        raise ValueError(f"{what} must return a single number (a scalar), got an output of shape {shape}")
    return float(value.item() if hasattr(value, "item") else value)


def as_nudgeable(x) -> np.ndarray:
    """The float64 array that gets nudged: x itself when it already is one (so f may read x through
    another reference, such as a model's weights), otherwise a contiguous float64 copy."""
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.flags.writeable and x.flags.c_contiguous:
        return x
    return np.array(x, dtype=np.float64, order="C")


def numerical_gradient(f, x, eps=1e-6) -> np.ndarray:
    """The gradient of a scalar function f at x, by central differences: one pair of calls per entry.

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps). x may have any shape; the result has x's
    shape. f is called with a float64 array. When x is a float64 numpy array it is that very array,
    nudged in place one entry at a time and restored exactly before returning (even if f raises).
    """
    eps = as_step(eps)
    x = as_nudgeable(x)
    flat = x.reshape(-1)  # a view (x is contiguous): writing flat[i] nudges x
    grad = np.zeros(x.size)
    for i in range(x.size):
        old = flat[i]
        try:
            flat[i] = old + eps
            f_plus = as_scalar(f(x))
            flat[i] = old - eps
            f_minus = as_scalar(f(x))
        finally:
            flat[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(x.shape)


def numerical_jacobian(f, x, eps=1e-6) -> np.ndarray:
    """The Jacobian of f at x by central differences: J[i, j] = d f_i / d x_j.

    f maps an array of x's shape to an array of any shape; the result has shape f(x).shape + x.shape
    (the convention of torch.autograd.functional.jacobian), so for vectors it is the (m, n) matrix whose
    row i is the gradient of output i. x is nudged as in `numerical_gradient`.
    """
    eps = as_step(eps)
    x = as_nudgeable(x)
    out_shape = np.shape(np.asarray(f(x), dtype=float))
    flat = x.reshape(-1)  # a view (x is contiguous): writing flat[j] nudges x
    J = np.zeros((int(np.prod(out_shape)), x.size))  # (m, n): one column per input entry
    for j in range(x.size):
        old = flat[j]
        try:
            flat[j] = old + eps
            f_plus = np.asarray(f(x), dtype=float)
            flat[j] = old - eps
            f_minus = np.asarray(f(x), dtype=float)
        finally:
            flat[j] = old
        if f_plus.shape != out_shape or f_minus.shape != out_shape:
            raise ValueError(f"f returned shape {f_plus.shape} after a nudge but {out_shape} at x")
        J[:, j] = (f_plus - f_minus).reshape(-1) / (2 * eps)
    return J.reshape(out_shape + x.shape)


def relative_error(a, b, floor: float = 1e-8) -> np.ndarray:
    """|a - b| / max(|a|, |b|, floor), entry by entry: scale-free, and safe where both are near zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def gradient_check(f, grad_f, x, eps=1e-6, floor: float = 1e-8) -> float:
    """The largest relative error between a hand-written gradient grad_f(x) and the numerical one.

    Rules of thumb in float64 with eps = 1e-6: below 1e-7 the gradient is right; above 1e-3 it is wrong
    (a missing factor, a transposed matrix, a sign); in between, look closer (kinks such as ReLU at 0).
    Entries where both gradients are below `floor` count only their absolute difference.
    """
    x = np.array(x, dtype=np.float64)  # a copy: grad_f sees the same x that f was nudged around
    analytic = np.asarray(grad_f(x), dtype=float)
    if analytic.shape != x.shape:
        raise ValueError(f"grad_f must return an array of x's shape {x.shape}, got {analytic.shape}")
    numeric = numerical_gradient(f, x, eps)
    return float(relative_error(analytic, numeric, floor).max(initial=0.0))


def difference_errors(f, df, x: float, eps_values) -> dict[str, np.ndarray]:
    """How far the forward and central difference slopes of a 1-D f at x are from the true f'(x), for
    each step in eps_values: the numbers behind the error-versus-eps plot."""
    eps_values = np.asarray(eps_values, dtype=float)
    if eps_values.ndim != 1 or not np.all(eps_values > 0):
        raise ValueError("eps_values must be a 1-D array of positive steps")
    x, exact = float(x), float(df(x))
    forward = np.array([(f(x + h) - f(x)) / h for h in eps_values])
    central = np.array([(f(x + h) - f(x - h)) / (2 * h) for h in eps_values])
    return {"eps": eps_values, "forward": np.abs(forward - exact), "central": np.abs(central - exact)}


# --- Taylor polynomials -----------------------------------------------------------------------------------


def taylor_polynomial(derivatives, center: float, x) -> np.ndarray:
    """The Taylor polynomial built from f(a), f'(a), ..., f^(n)(a) at a = center, evaluated at x:

        p(x) = sum_k f^(k)(a) (x - a)^k / k!

    derivatives is the list [f(a), f'(a), ..., f^(n)(a)]; its length fixes the order n.
    """
    derivatives = np.asarray(derivatives, dtype=float)
    if derivatives.ndim != 1 or derivatives.size == 0:
        raise ValueError(
            f"derivatives must be a non-empty list [f(a), f'(a), ...], got shape {derivatives.shape}"
        )
    h = np.asarray(x, dtype=float) - float(center)
    p = np.zeros_like(h)
    for k, d_k in enumerate(derivatives):
        p = p + d_k * h**k / math.factorial(k)
    return p


#: The functions the Taylor slider offers, as sympy expressions in the symbol x (made on first use).
TAYLOR_FUNCTIONS = {
    "sin(x)": "sin(x)",
    "exp(-x^2) cos(3x)": "exp(-x**2) * cos(3*x)",
    "1 / (1 + x^2)": "1 / (1 + x**2)",
}

_DERIVATIVE_CACHE: dict[str, list] = {}


def derivative_functions(name: str, order: int) -> list:
    """f, f', ..., f^(order) of a function in TAYLOR_FUNCTIONS, differentiated by sympy and turned into
    numpy functions (cached, so moving a slider does not repeat the algebra)."""
    import sympy as sp

    if name not in TAYLOR_FUNCTIONS:
        raise ValueError(f"no function {name!r}; choose one of {sorted(TAYLOR_FUNCTIONS)}")
    if not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(f"order must be a non-negative integer, got {order!r}")
    x = sp.Symbol("x")
    cached = _DERIVATIVE_CACHE.setdefault(name, [])
    if not cached:
        cached.append((sp.sympify(TAYLOR_FUNCTIONS[name], locals={"x": x}), None))
    while len(cached) <= order:
        cached.append((sp.diff(cached[-1][0], x), None))
    for k in range(order + 1):
        expr, fn = cached[k]
        if fn is None:
            cached[k] = (expr, sp.lambdify(x, expr, "numpy"))
    return [fn for _, fn in cached[: order + 1]]


def taylor_picture(name: str, order: int, center: float, xs, tolerance: float = 0.05) -> dict[str, object]:
    """Everything the Taylor slider draws, as numbers: f and its Taylor polynomial of the given order
    about `center` on the grid xs, the error, and the interval around the centre where the error stays
    below `tolerance` (the polynomial is "good" there)."""
    xs = np.asarray(xs, dtype=float)
    if xs.ndim != 1 or xs.size < 2 or not np.all(np.diff(xs) > 0):
        raise ValueError("xs must be an increasing 1-D grid of at least two points")
    if not xs[0] <= center <= xs[-1]:
        raise ValueError(f"center {center} is outside the grid [{xs[0]}, {xs[-1]}]")
    fns = derivative_functions(name, order)
    derivatives = [float(fn(center)) for fn in fns]
    f = np.broadcast_to(np.asarray(fns[0](xs), dtype=float), xs.shape)
    p = taylor_polynomial(derivatives, center, xs)
    error = np.abs(f - p)
    good = error < tolerance
    i = int(np.argmin(np.abs(xs - center)))  # walk out from the centre while the error stays small
    lo, hi = i, i
    while lo > 0 and good[lo - 1]:
        lo -= 1
    while hi < xs.size - 1 and good[hi + 1]:
        hi += 1
    return {
        "x": xs,
        "f": f,
        "p": p,
        "error": error,
        "derivatives": np.array(derivatives),
        "good_interval": (float(xs[lo]), float(xs[hi])) if good[i] else (float(center), float(center)),
    }


# --- matrix calculus: vector-Jacobian products ------------------------------------------------------------


def linear_vjp(x, W, grad_y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward of y = x W^T + b: given grad_y = dL/dy, return (dL/dx, dL/dW, dL/db).

    x is (..., n) - a vector, a batch (B, n) or a sequence batch (B, T, n) - W is (m, n) and grad_y has
    y's shape (..., m). Each position's row gives dL/dx = grad_y W and an outer product grad_y^T x to
    dL/dW; W and b are shared by every position, so their gradients add up over all of them.
    """
    x, W, grad_y = (np.asarray(a, dtype=float) for a in (x, W, grad_y))
    if W.ndim != 2:
        raise ValueError(f"W must be a matrix (m, n), got shape {W.shape}")
    m, n = W.shape
    if x.ndim == 0 or x.shape[-1] != n:
        raise ValueError(f"W is {m}x{n}, so x needs {n} entries in its last axis, got shape {x.shape}")
    if grad_y.shape != x.shape[:-1] + (m,):
        raise ValueError(f"grad_y must have y's shape {x.shape[:-1] + (m,)}, got {grad_y.shape}")
    grad_x = grad_y @ W  # (..., m) @ (m, n) -> (..., n)
    rows_x, rows_g = x.reshape(-1, n), grad_y.reshape(-1, m)  # (B*T, n), (B*T, m): every position a row
    grad_W = rows_g.T @ rows_x  # (m, n): the sum over positions of the outer products g x^T
    grad_b = rows_g.sum(axis=0)  # (m,)
    return grad_x, grad_W, grad_b


def softmax_jacobian(p) -> np.ndarray:
    """The Jacobian dp/dz of p = softmax(z), from p alone: diag(p) - p p^T, for every row of p (..., C).

    Entry (i, j) is p_i (delta_ij - p_j): raising logit j raises p_j and lowers every other p_i in
    proportion to it. The result has shape (..., C, C); each row sums to 0 (adding one number to every
    logit changes no probability).
    """
    p = np.asarray(p, dtype=float)
    if p.ndim == 0 or not np.allclose(p.sum(axis=-1), 1.0) or np.any(p < 0):
        raise ValueError("p must hold probabilities along its last axis (non-negative, summing to 1)")
    return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]  # (..., C, C)


# --- the integral as an area and as a weighted sum -------------------------------------------------------


def riemann_sum(f, a: float, b: float, n: int, rule: str = "midpoint") -> float:
    """The area under f on [a, b] as n thin rectangles: sum_i f(x_i) dx with dx = (b - a) / n.

    rule picks where each rectangle's height is read: "left" end, "midpoint" (error ~ 1/n^2) or the
    "trapezoid" average of both ends (also ~ 1/n^2). f must accept a numpy array of points.
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of pieces, got {n!r}")
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"need finite a < b, got a = {a}, b = {b}")
    edges = np.linspace(a, b, n + 1)
    dx = (b - a) / n
    if rule == "left":
        heights = np.asarray(f(edges[:-1]), dtype=float)
    elif rule == "midpoint":
        heights = np.asarray(f((edges[:-1] + edges[1:]) / 2), dtype=float)
    elif rule == "trapezoid":
        ends = np.asarray(f(edges), dtype=float)
        heights = (ends[:-1] + ends[1:]) / 2
    else:
        raise ValueError(f"rule must be 'left', 'midpoint' or 'trapezoid', got {rule!r}")
    return float(heights.sum() * dx)
