"""Exercises for chapter 7: classic machine learning, with the maths."""

import numpy as np

from helpers.classic import PCA, linear_regression, sigmoid
from helpers.digits import load_digits_split
from helpers.exercises.core import Exercise, matches_function, matches_value, register


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
        hint="set the derivatives of sum (y_i - a x_i - b)^2 with respect to a and b to zero. The b equation "
        "says the line passes through (mean x, mean y); put that into the a equation and centre x and y.",
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
        hint="in the SVD X = U S V^T, least squares divides by s_i along direction i and ridge multiplies by "
        "s_i / (s_i^2 + alpha) instead. Divide the second by the first.",
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
        hint="fit PCA() (all components) on digits.X_train, take np.cumsum of explained_variance_ratio_, and "
        "find the first position where it reaches 0.95. Positions count from 0; components count from 1.",
        solution=_K95,
        wrong=_K95 - 1,  # the index from np.argmax, not the count
        explanation="np.argmax(np.cumsum(ratio) >= 0.95) is the index of the first component that takes the "
        f"total past 95%; the number of components is that index + 1 = {_K95}.",
    )
)


# 7.4 ----------------------------------------------------------------------------------------------------
def logistic_gradient(w, X, y):
    """Gradient of the mean binary cross-entropy of sigmoid(X w) against y: X^T (p - y) / N."""
    p = sigmoid(X @ w)
    return X.T @ (p - y) / len(y)


def _uphill(w, X, y):
    p = sigmoid(X @ w)
    return X.T @ (y - p) / len(y)  # the sign flipped: the direction that makes the loss worse


def _logistic_inputs(rng):
    n, d = int(rng.integers(2, 20)), int(rng.integers(1, 5))
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.integers(0, 2, n).astype(float)


register(
    Exercise(
        key="7.4",
        title="the logistic-regression gradient",
        checker=matches_function(logistic_gradient, _logistic_inputs),
        hint="for one example the loss is -[y log p + (1 - y) log(1 - p)] with p = sigmoid(z) and z = x . w. "
        "Use dp/dz = p (1 - p): the derivative with respect to z collapses to p - y. Then the chain rule "
        "through z = x . w, and average over the rows.",
        solution=logistic_gradient,
        wrong=_uphill,
    )
)
