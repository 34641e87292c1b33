"""Exercises for chapter 7: classic machine learning, with the maths."""

import numpy as np

from helpers.classic import PCA, linear_regression, sigmoid
from helpers.digits import load_digits_split
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register


# 7.1 ----------------------------------------------------------------------------------------------------
def fit_line(x, y):
    """Least-squares slope and intercept for one feature: slope = cov(x, y) / var(x)."""
    dx, dy = x - x.mean(), y - y.mean()
    slope = np.sum(dx * dy) / np.sum(dx * dx)
    return np.array([slope, y.mean() - slope * x.mean()])


def _through_the_origin(x, y):
    slope = np.sum(x * y) / np.sum(x * x)  # forgets to centre: the best line through (0, 0)
    return np.array([slope, y.mean() - slope * x.mean()])


def _line_data(rng):
    n = int(rng.integers(3, 30))
    x = rng.uniform(-2, 5, n)
    return x, rng.normal() * x + rng.normal() * 3 + rng.normal(size=n)


def _reference_line(x, y):
    model = linear_regression(x, y)
    return np.array([model.coef[0], model.intercept])


register(
    Exercise(
        key="7.1",
        title="the best straight line",
        checker=matches_function(_reference_line, _line_data),
        hint="set the derivatives of sum (y_i - a x_i - b)^2 with respect to a and b to zero. The b "
        "equation says the line passes through (mean x, mean y); put that into the a equation and centre x "
        "and y.",
        solution=fit_line,
        wrong=_through_the_origin,
    )
)

# 7.2 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="7.2",
        title="how much does ridge shrink?",
        checker=matches_value(9.0 / 10.0, atol=1e-9, what="your factor"),
        hint="in the SVD X = U S V^T, least squares divides by s_i along direction i and ridge multiplies "
        "by s_i / (s_i^2 + alpha) instead. Divide the second by the first.",
        solution=3.0**2 / (3.0**2 + 1.0),
        wrong=3.0 / (3.0 + 1.0),  # s / (s + alpha): forgets that s is squared
        explanation="Least squares gives (u_i . y) / s_i along v_i; ridge gives s_i (u_i . y) / (s_i^2 + "
        "alpha). Their ratio is s_i^2 / (s_i^2 + alpha) = 9 / 10 = 0.9: strong directions (large s) are "
        "barely touched, weak ones (s^2 much smaller than alpha) are shrunk almost to zero.",
    )
)

# 7.3 ----------------------------------------------------------------------------------------------------
_ratio = np.cumsum(PCA().fit(load_digits_split().X_train).explained_variance_ratio_)
_K95 = int(np.argmax(_ratio >= 0.95)) + 1  # the first k whose cumulative ratio reaches 95%
register(
    Exercise(
        key="7.3",
        title="components for 95% of the variance",
        checker=matches_value(_K95, what="your number of components"),
        hint="fit PCA() (all components) on digits.X_train, take np.cumsum of explained_variance_ratio_, "
        "and find the first position where it reaches 0.95. Positions count from 0; components count from "
        "1.",
        solution=_K95,
        wrong=_K95 - 1,  # the index from np.argmax, not the count
        explanation="np.argmax(np.cumsum(ratio) >= 0.95) is the index of the first component that takes the "
        f"total past 95%; the number of components is that index + 1 = {_K95}.",
    )
)


# 7.4 ----------------------------------------------------------------------------------------------------
def sigmoid_mse_gradient(w, X, y):
    """Gradient of mean((sigmoid(X w) - y)^2): 2 X^T ((p - y) p (1 - p)) / N, with p = sigmoid(X w)."""
    p = sigmoid(X @ w)
    return 2 * X.T @ ((p - y) * p * (1 - p)) / len(y)


def _cross_entropy_gradient(w, X, y):
    return X.T @ (sigmoid(X @ w) - y) / len(y)  # the gradient of a different loss: the text's


def _logistic_inputs(rng):
    n, d = int(rng.integers(2, 20)), int(rng.integers(1, 5))
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.integers(0, 2, n).astype(float)


register(
    Exercise(
        key="7.4",
        title="the gradient of squared error through a sigmoid",
        checker=matches_function(sigmoid_mse_gradient, _logistic_inputs),
        hint="for one example the loss is (p - y)^2 with p = sigmoid(z) and z = x . w. The chain rule: d/dp "
        "is 2 (p - y), dp/dz is p (1 - p), dz/dw is x. Nothing cancels this time. Average over rows.",
        solution=sigmoid_mse_gradient,
        wrong=_cross_entropy_gradient,
        explanation="dl/dz = 2 (p - y) p (1 - p), so the gradient is 2 X^T ((p - y) p (1 - p)) / N. The "
        "extra factor p (1 - p) is what cross-entropy cancels: for a confidently wrong example (p near 0, y "
        "= 1) it is near 0 and the squared error hardly pushes, as chapter 5's picture showed.",
    )
)


# 7.5 ----------------------------------------------------------------------------------------------------
def top_direction(X):
    """The first principal direction of the rows of X, by power iteration on the covariance."""
    Xc = X - X.mean(axis=0)  # (N, d): PCA is about spread, not position
    C = Xc.T @ Xc / (len(X) - 1)  # (d, d)
    v = np.ones(X.shape[1]) / np.sqrt(X.shape[1])  # any start that is not orthogonal to the answer
    for _ in range(1000):
        w = C @ v
        w = w / np.linalg.norm(w)
        if np.linalg.norm(w - v) < 1e-13:
            break
        v = w
    return w


def _uncentred_direction(X):
    v = np.ones(X.shape[1])
    for _ in range(500):
        v = X.T @ (X @ v)  # forgets to subtract the mean: finds the direction of the mean instead
        v = v / np.linalg.norm(v)
    return v


def _pca_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(3, 8))
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # (d, d) a random rotation
    spreads = np.sort(rng.uniform(0.3, 1.0, d))[::-1] * np.r_[2.0, np.ones(d - 1)]  # a clear top direction
    X = rng.normal(size=(200, d)) * spreads @ Q.T + 5 * rng.normal(size=d)  # (200, d), off-centre
    Xc = X - X.mean(axis=0)
    _, vectors = np.linalg.eigh(Xc.T @ Xc)
    return X, vectors[:, -1]


_PCA_CASES = [_pca_data(seed) for seed in range(8)]  # made now: the check refuses np.linalg.eigh


def _check_top_direction(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for X, want in _PCA_CASES:
        got = answer(X.copy())
        assert got is not None, "your function returned None: did you forget `return`?"
        got = np.asarray(got, dtype=float)
        assert got.shape == want.shape, (
            f"for {X.shape[1]} features return shape {want.shape}, not {got.shape}"
        )
        assert abs(np.linalg.norm(got) - 1) < 1e-6, (
            f"return a unit vector (yours has length {np.linalg.norm(got):.4g})"
        )
        assert abs(got @ want) > 1 - 1e-8, (
            f"on data with {X.shape[1]} features your direction is {np.round(got, 3)}, but the first "
            f"principal direction is {np.round(want, 3)} (or its negative)"
        )


_NO_SOLVER = "multiply by the covariance and normalise, again and again: that is the exercise."
register(
    Exercise(
        key="7.5",
        title="PCA by power iteration",
        checker=by_hand(
            _check_top_direction,
            {
                "numpy.linalg.eigh": _NO_SOLVER,
                "numpy.linalg.eig": _NO_SOLVER,
                "numpy.linalg.svd": _NO_SOLVER,
                "torch.linalg.eigh": _NO_SOLVER,
                "torch.linalg.svd": _NO_SOLVER,
                "helpers.classic.PCA": _NO_SOLVER,
                "sklearn.decomposition.PCA": _NO_SOLVER,
            },
        ),
        hint="centre X, form C = Xc^T Xc / (N - 1), start from any unit vector v and repeat v <- C v / ||C "
        "v||. The part of v along the top eigenvector grows by lambda_1 each time, every other part by a "
        "smaller lambda_i, so v turns towards the top direction. Stop when v stops changing.",
        solution=top_direction,
        wrong=_uncentred_direction,
        explanation="Write the start as v = sum c_i q_i in C's eigenvectors. After k multiplications it is "
        "sum c_i lambda_i^k q_i, and dividing by lambda_1^k leaves c_1 q_1 plus parts that shrink like "
        "(lambda_i / lambda_1)^k. That is section 7.5's maximiser of v^T C v, found with nothing but "
        "matrix-vector products; large-scale PCA and the top singular value of a weight matrix are computed "
        "this way.",
    )
)

# 7.6 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="7.6",
        title="predict: exact zeros from ridge",
        checker=matches_value(0, what="your count"),
        hint="ridge's answer along each singular direction is multiplied by s^2 / (s^2 + alpha). Can a "
        "product of non-zero numbers be exactly zero?",
        solution=0,
        wrong=6,  # the six features that do not matter: ridge shrinks them, it does not remove them
        explanation="None. Ridge's closed form multiplies each singular direction by s^2 / (s^2 + alpha), "
        "which is small for a large alpha but never 0, so every coefficient is shrunk and none is removed. "
        "The squared penalty's slope, 2 alpha w, vanishes as w approaches 0, so near 0 it stops pushing. "
        "The lasso's |w| keeps pushing with the same force all the way to 0, and stops there.",
    )
)
