"""Exercises for chapter 4: vector calculus."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 4.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="4.1",
        title="a gradient by hand",
        checker=matches_value([4.0, 1.0 + np.cos(2.0)], atol=1e-6, what="your gradient"),
        hint="take one partial derivative at a time: for df/dx treat y as a fixed number, for df/dy treat x "
        "as a fixed number. Then put in x = 1, y = 2.",
        solution=np.array([2 * 1.0 * 2.0, 1.0**2 + np.cos(2.0)]),
        wrong=np.array([2.0, 1.0 + np.cos(2.0)]),  # differentiated x^2 y as 2x, dropping the y
        explanation="f(x, y) = x^2 y + sin(y). Holding y fixed, x^2 y is a constant times x^2, so "
        "df/dx = 2xy = 4 at (1, 2). Holding x fixed, x^2 y is a constant times y and sin(y) gives cos(y), "
        "so df/dy = x^2 + cos(y) = 1 + cos(2), about 0.584. The gradient is (4, 0.584).",
    )
)


# 4.2 ----------------------------------------------------------------------------------------------------
def _jacobian(x, y):
    """J of f(x, y) = (x y, x + y^2, sin x): one row per output, one column per input."""
    return np.array([[y, x], [1.0, 2.0 * y], [np.cos(x), 0.0]])


def _point(rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.normal()), float(rng.normal())


register(
    Exercise(
        key="4.2",
        title="rows are outputs, columns are inputs",
        checker=matches_function(_jacobian, _point),
        hint="f has 3 outputs and 2 inputs, so J is 3x2. Row i is the gradient of output i: "
        "(d f_i / dx, d f_i / dy). Check yourself with numerical_jacobian(lambda p: f(*p), [x, y]).",
        solution=_jacobian,
        wrong=lambda x, y: _jacobian(x, y).T,  # (2, 3): the transposed convention
        explanation="Row 1: x y changes at rate y with x and x with y. Row 2: x + y^2 gives (1, 2y). Row 3: "
        "sin x gives (cos x, 0). J is (outputs x inputs) = 3x2, so that J @ h, for a small step h in the "
        "plane, is how far the three outputs move.",
    )
)


# 4.3 ----------------------------------------------------------------------------------------------------
def _softplus_3x_derivative(x):
    """d/dx log(1 + exp(3x)) = 3 exp(3x) / (1 + exp(3x)) = 3 sigmoid(3x): outer rate times inner rate."""
    return 3.0 / (1.0 + np.exp(-3.0 * x))


def _some_xs(rng: np.random.Generator) -> tuple[np.ndarray]:
    return (rng.normal(size=int(rng.integers(1, 6))) * 2,)


register(
    Exercise(
        key="4.3",
        title="the chain rule",
        checker=matches_function(_softplus_3x_derivative, _some_xs),
        hint="it is outer(inner(x)) with inner(x) = 3x and outer(u) = log(1 + exp(u)). Multiply the outer "
        "derivative, taken at u = 3x, by the inner derivative.",
        solution=_softplus_3x_derivative,
        wrong=lambda x: 1.0 / (1.0 + np.exp(-3.0 * x)),  # forgot the inner derivative, 3
        explanation="outer'(u) = exp(u) / (1 + exp(u)) = sigmoid(u), so the derivative is sigmoid(3x) * 3. "
        "Forgetting the inner rate is the most common chain-rule slip; a numerical check catches it at once.",
    )
)

# 4.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="4.4",
        title="Taylor coefficients",
        checker=matches_value([1.0, 1.0, 0.0, -1.0 / 3.0], atol=1e-6, what="your coefficients"),
        hint="the coefficient of x^k is f^(k)(0) / k!. Either differentiate e^x cos x three times, or "
        "multiply the series 1 + x + x^2/2 + x^3/6 and 1 - x^2/2 and keep the terms up to x^3.",
        solution=np.array([1.0, 1.0, 0.0, -1.0 / 3.0]),
        wrong=np.array([1.0, 1.0, 0.0, -2.0]),  # the derivatives f^(k)(0), not divided by k!
        explanation="f(0) = 1, f'(0) = 1, f''(0) = 0 and f'''(0) = -2, so the coefficients f^(k)(0) / k! are "
        "1, 1, 0 and -2/6 = -1/3: e^x cos x = 1 + x - x^3/3 + ... Multiplying the two series gives the "
        "same: the x^3 terms are x^3/6 - x^3/2 = -x^3/3.",
    )
)


# 4.5 ----------------------------------------------------------------------------------------------------
def _grad_mse(w, X, y):
    """The gradient of L(w) = mean((X w - y)^2): (2 / n) X^T (X w - y)."""
    residual = X @ w - y  # (n,)
    return 2.0 / len(y) * X.T @ residual  # (d,)


def _regression(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = int(rng.integers(3, 9)), int(rng.integers(1, 4))
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.normal(size=n)


register(
    Exercise(
        key="4.5",
        title="a gradient that passes the check",
        checker=matches_function(_grad_mse, _regression),
        hint="write r = X w - y. Then L = (1/n) sum_i r_i^2, and the chain rule gives dL/dw = (1/n) sum_i "
        "2 r_i x_i, where x_i is row i of X. As matrices: (2 / n) X^T r. Test it with gradient_check before "
        "you submit it.",
        solution=_grad_mse,
        wrong=lambda w, X, y: X.T @ (X @ w - y) / len(y),  # lost the 2 from the square
        explanation="d(r_i^2)/dw = 2 r_i dr_i/dw = 2 r_i x_i, and averaging over the n rows gives "
        "(2/n) X^T (X w - y). Dropping the 2 gives an arrow in the right direction but half the length: "
        "gradient descent would still go downhill, which is why such bugs survive without a gradient check "
        "(its relative error is 0.5).",
    )
)
