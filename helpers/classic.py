"""Chapter 7: classic machine learning from its formulas, checked against scikit-learn.

What this adds: `polynomial_features`; least squares (`linear_regression`) and `ridge_regression` solved
through the SVD; `PCA` with fit / transform / inverse_transform and explained variance; and
`LogisticRegression` (binary with the sigmoid, multinomial with the softmax) trained by full-batch
gradient descent with chapter 6's `helpers.optim.SGD`. Names and attributes follow scikit-learn
(`coef_`, `intercept_`, `components_`, `explained_variance_ratio_`, `C`) so `tests/test_classic.py`
can compare the two directly. The bias-variance slider's numbers come from `fit_curve`.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from helpers.optim import SGD


def _design(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]  # one feature
    if X.ndim != 2:
        raise ValueError(f"{name} must be (samples, features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains inf or nan")
    return X


def _targets(y, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if y.ndim != 1:
        raise ValueError(f"y must be one target per sample, shape (N,), got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"X has {n} samples but y has {len(y)}")
    return y


# --- features ------------------------------------------------------------------------------------------


def polynomial_features(x, degree: int, include_bias: bool = True) -> np.ndarray:
    """The columns 1, x, x^2, ..., x^degree of a single feature x (N,): shape (N, degree + 1)."""
    x = _design(x, "x")
    if x.shape[1] != 1:
        raise ValueError(f"polynomial_features takes one feature, shape (N,) or (N, 1); got {x.shape}")
    if not isinstance(degree, int | np.integer) or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    powers = np.arange(0 if include_bias else 1, degree + 1)
    return x**powers  # (N, 1) ** (P,) -> (N, P)


# --- linear regression ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    """y_hat = X @ coef + intercept."""

    coef: np.ndarray  # (d,)
    intercept: float

    def predict(self, X) -> np.ndarray:
        X = _design(X)
        if X.shape[1] != len(self.coef):
            raise ValueError(f"the model has {len(self.coef)} features but X has {X.shape[1]}")
        return X @ self.coef + self.intercept  # (N,)


def solve_least_squares(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """argmin_w ||y - X w||^2 + alpha ||w||^2 through X = U S V^T: w = V diag(s / (s^2 + alpha)) U^T y.

    With alpha = 0 this is the pseudo-inverse solution; singular values below a relative cutoff count as
    zero (the directions the data does not determine), as numpy.linalg.lstsq does.
    """
    U, s, Vt = np.linalg.svd(X, full_matrices=False)  # (N, r), (r,), (r, d)
    if alpha == 0.0:
        cutoff = np.finfo(float).eps * max(X.shape) * (s[0] if len(s) else 0.0)
        factors = np.divide(1.0, s, out=np.zeros_like(s), where=s > cutoff)
    else:
        factors = s / (s**2 + alpha)  # ridge shrinks each direction by s^2 / (s^2 + alpha)
    return Vt.T @ (factors * (U.T @ y))  # (d,)


def _fit_linear(X, y, alpha: float, fit_intercept: bool) -> LinearModel:
    X = _design(X)
    y = _targets(y, len(X))
    if fit_intercept:  # centre, solve without an intercept, then put the means back
        x_mean, y_mean = X.mean(axis=0), y.mean()
        coef = solve_least_squares(X - x_mean, y - y_mean, alpha)
        return LinearModel(coef, float(y_mean - x_mean @ coef))
    return LinearModel(solve_least_squares(X, y, alpha), 0.0)


def linear_regression(X, y, fit_intercept: bool = True) -> LinearModel:
    """Least squares: the coef (and intercept) minimising ||y - X coef - intercept||^2, via the SVD."""
    return _fit_linear(X, y, 0.0, fit_intercept)


def ridge_regression(X, y, alpha: float, fit_intercept: bool = True) -> LinearModel:
    """Ridge: minimise ||y - X coef - intercept||^2 + alpha ||coef||^2 (the intercept is not penalised).

    Closed form on centred data: coef = (X^T X + alpha I)^-1 X^T y, computed through the SVD.
    """
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    return _fit_linear(X, y, float(alpha), fit_intercept)


def mse(y, y_hat) -> float:
    """Mean squared error."""
    y, y_hat = np.asarray(y, dtype=float), np.asarray(y_hat, dtype=float)
    if y.shape != y_hat.shape:
        raise ValueError(f"y has shape {y.shape} but the predictions have {y_hat.shape}")
    return float(np.mean((y - y_hat) ** 2))


# --- the bias-variance workbench -----------------------------------------------------------------------


def true_curve(x):
    """The function the curve-fitting data is drawn from."""
    return np.sin(3 * np.asarray(x, dtype=float))


@dataclass(frozen=True)
class CurveData:
    """Noisy samples of `true_curve` on [-1, 1]: a small training set and a larger test set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    noise: float


def make_curve_data(n_train: int = 20, n_test: int = 200, noise: float = 0.3, seed: int = 0) -> CurveData:
    """Draw x uniformly on [-1, 1] and y = true_curve(x) + Gaussian noise of std `noise`."""
    if n_train < 1 or n_test < 1 or noise < 0:
        raise ValueError(f"need n_train, n_test >= 1 and noise >= 0; got {n_train}, {n_test}, {noise}")
    rng = np.random.default_rng(seed)
    x_train, x_test = rng.uniform(-1, 1, n_train), rng.uniform(-1, 1, n_test)
    y_train = true_curve(x_train) + noise * rng.normal(size=n_train)
    y_test = true_curve(x_test) + noise * rng.normal(size=n_test)
    return CurveData(x_train, y_train, x_test, y_test, noise)


def fit_curve(data: CurveData, degree: int, alpha: float = 0.0, grid_points: int = 200) -> dict:
    """Fit a polynomial of `degree` (ridge with `alpha`, least squares if 0); everything the slider shows."""
    model = ridge_regression(polynomial_features(data.x_train, degree), data.y_train, alpha)
    grid = np.linspace(-1, 1, grid_points)
    return {
        "model": model,
        "grid": grid,
        "curve": model.predict(polynomial_features(grid, degree)),
        "train_mse": mse(data.y_train, model.predict(polynomial_features(data.x_train, degree))),
        "test_mse": mse(data.y_test, model.predict(polynomial_features(data.x_test, degree))),
    }


def error_curves(data: CurveData, degrees, alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test mean squared error for each degree: two arrays of len(degrees)."""
    fits = [fit_curve(data, int(d), alpha) for d in degrees]
    return np.array([f["train_mse"] for f in fits]), np.array([f["test_mse"] for f in fits])


def draw_curve_fit(data: CurveData, degree: int, log10_alpha: float, max_degree: int = 15) -> dict:
    """The slider's picture: the data, the true curve and the fit (left); train and test error (right)."""
    alpha = 10.0**log10_alpha
    fit = fit_curve(data, degree, alpha)
    degrees = np.arange(max_degree + 1)
    train, test = error_curves(data, degrees, alpha)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    left.plot(data.x_test, data.y_test, ".", color="grey", alpha=0.35, label="test data")
    left.plot(data.x_train, data.y_train, "o", color="C0", label="training data")
    left.plot(fit["grid"], true_curve(fit["grid"]), "--", color="black", lw=1, label="true curve")
    left.plot(fit["grid"], fit["curve"], color="C3", lw=2, label=f"degree {degree} fit")
    left.set(ylim=(-2.2, 2.2), xlabel="x", ylabel="y")
    left.set_title(f"train MSE {fit['train_mse']:.3f}, test MSE {fit['test_mse']:.3f}")
    left.legend(loc="lower right", fontsize=8)
    right.semilogy(degrees, train, "o-", color="C0", label="train")
    right.semilogy(degrees, test, "o-", color="C3", label="test")
    right.axvline(degree, color="grey", lw=1)
    right.axhline(data.noise**2, color="black", ls=":", lw=1, label="noise variance")
    right.set(xlabel="polynomial degree", ylabel="mean squared error", title=f"alpha = {alpha:.1e}")
    right.legend()
    fig.tight_layout()
    return fit


# --- PCA -----------------------------------------------------------------------------------------------


class PCA:
    """Principal component analysis from the SVD of the centred data.

    fit: X - mean = U S V^T; the components are the rows of V^T (directions of most variance first), the
    variance along component i is s_i^2 / (N - 1). Each component's sign is fixed so that its largest
    entry (in absolute value) is positive, so results do not depend on the SVD routine's sign choices.
    """

    def __init__(self, n_components: int | None = None):
        if n_components is not None and (not isinstance(n_components, int | np.integer) or n_components < 1):
            raise ValueError(f"n_components must be a positive integer or None, got {n_components!r}")
        self.n_components = n_components

    def fit(self, X) -> PCA:
        X = _design(X)
        n, d = X.shape
        if n < 2:
            raise ValueError("PCA needs at least 2 samples to measure variance")
        k = min(n, d) if self.n_components is None else self.n_components
        if k > min(n, d):
            raise ValueError(f"n_components={k} but X of shape {X.shape} has at most {min(n, d)} components")
        self.mean_ = X.mean(axis=0)  # (d,)
        _, s, Vt = np.linalg.svd(X - self.mean_, full_matrices=False)  # (r,), (r, d)
        biggest = np.argmax(np.abs(Vt), axis=1)
        signs = np.sign(Vt[np.arange(len(Vt)), biggest])  # (r,)
        Vt = Vt * signs[:, None]
        self.components_ = Vt[:k]  # (k, d)
        self.singular_values_ = s[:k]
        self.explained_variance_ = s[:k] ** 2 / (n - 1)
        self.explained_variance_ratio_ = s[:k] ** 2 / np.sum(s**2)
        self.n_components_ = k
        return self

    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet: call fit(X) first")

    def transform(self, X) -> np.ndarray:
        """Coordinates of X along the components: (X - mean) V_k, shape (N, k)."""
        self._check_fitted()
        X = _design(X)
        if X.shape[1] != len(self.mean_):
            raise ValueError(f"PCA was fitted on {len(self.mean_)} features, X has {X.shape[1]}")
        return (X - self.mean_) @ self.components_.T  # (N, k)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, Z) -> np.ndarray:
        """Back to the original space from k coordinates: Z V_k^T + mean, shape (N, d)."""
        self._check_fitted()
        Z = _design(Z, "Z")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"Z must have {self.n_components_} columns (one per component), got {Z.shape[1]}"
            )
        return Z @ self.components_ + self.mean_  # (N, d)


# --- logistic regression -------------------------------------------------------------------------------


def sigmoid(z) -> np.ndarray:
    """1 / (1 + e^-z), computed without overflow for large |z|."""
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(logits, axis: int = -1) -> np.ndarray:
    """exp(z_i) / sum_j exp(z_j) along `axis`, computed after subtracting the max (which cancels)."""
    z = np.asarray(logits, dtype=float)
    z = z - z.max(axis=axis, keepdims=True)  # the largest entry becomes 0: exp cannot overflow
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def binary_loss_and_grad(w, b, X, y, lam: float = 0.0):
    """Mean binary cross-entropy of p = sigmoid(X w + b) against y in {0, 1}, plus lam/2 ||w||^2.

    Returns (loss, dL/dw, dL/db). The gradient, derived by hand: dL/dw = X^T (p - y) / N + lam w and
    dL/db = mean(p - y).
    """
    z = X @ w + b  # (N,) logits
    loss = np.mean(np.logaddexp(0.0, z) - y * z) + lam / 2 * w @ w  # -log p = log(1 + e^z) - z y
    r = sigmoid(z) - y  # (N,) the residual p - y
    return loss, X.T @ r / len(y) + lam * w, np.mean(r)


def softmax_loss_and_grad(W, b, X, Y, lam: float = 0.0):
    """Mean cross-entropy of P = softmax(X W + b) against one-hot Y (N, K), plus lam/2 ||W||^2.

    Returns (loss, dL/dW, dL/db): dL/dW = X^T (P - Y) / N + lam W and dL/db = mean over rows of (P - Y).
    """
    Z = X @ W + b  # (N, K) logits
    Z = Z - Z.max(axis=1, keepdims=True)  # the same probabilities, and exp cannot overflow
    E = np.exp(Z)  # (N, K)
    total = E.sum(axis=1, keepdims=True)  # (N, 1)
    loss = np.mean(np.log(total[:, 0]) - np.sum(Y * Z, axis=1)) + lam / 2 * np.sum(W * W)  # -log p_y
    R = E / total - Y  # (N, K): softmax minus one-hot
    return loss, X.T @ R / len(Y) + lam * W, R.mean(axis=0)


class LogisticRegression:
    """Logistic regression trained by full-batch gradient descent (Nesterov momentum, chapter 6).

    Minimises the mean cross-entropy + 1/(2 C N) ||coef||^2, which has the same minimiser as
    scikit-learn's sum of cross-entropies + 1/(2 C) ||coef||^2 (C = inf: no penalty; the intercept is
    never penalised). Two classes use the sigmoid and one weight vector; more use the softmax.
    The learning rate is 1 / (a bound on the loss's curvature), so no tuning is needed.
    """

    def __init__(self, C: float = 1.0, max_steps: int = 5000, tol: float = 1e-6, momentum: float = 0.9):
        if not C > 0:
            raise ValueError(f"C must be > 0 (np.inf for no penalty), got {C}")
        if max_steps < 1 or tol < 0:
            raise ValueError(f"need max_steps >= 1 and tol >= 0, got {max_steps} and {tol}")
        self.C, self.max_steps, self.tol, self.momentum = C, max_steps, tol, momentum

    def fit(self, X, y, progress: bool = False) -> LogisticRegression:
        X = _design(X)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must hold one label per row of X ({len(X)}), got shape {y.shape}")
        self.classes_, labels = np.unique(y, return_inverse=True)
        K = len(self.classes_)
        if K < 2:
            raise ValueError(f"need at least 2 classes to tell apart, got {K}")
        n, d = X.shape
        lam = 0.0 if np.isinf(self.C) else 1.0 / (self.C * n)
        spread = (
            np.linalg.norm(np.column_stack([X, np.ones(n)]), 2) ** 2 / n
        )  # largest eigenvalue of X1^T X1 / N
        if K == 2:
            target = labels.astype(float)  # (N,) in {0, 1}
            w, b = np.zeros(d), np.zeros(1)
            curvature = spread / 4 + lam  # the sigmoid's slope is at most 1/4

            def loss_and_grad():
                loss, gw, gb = binary_loss_and_grad(w, b[0], X, target, lam)
                return loss, gw, np.array([gb])
        else:
            target = np.eye(K)[labels]  # (N, K) one-hot
            w, b = np.zeros((d, K)), np.zeros(K)
            curvature = spread / 2 + lam  # the softmax's Hessian is at most 1/2 in operator norm

            def loss_and_grad():
                return softmax_loss_and_grad(w, b, X, target, lam)

        opt = SGD([w, b], lr=1.0 / curvature, momentum=self.momentum, nesterov=self.momentum > 0)
        self.loss_history_ = []
        bar = tqdm(range(self.max_steps), desc="gradient descent", disable=not progress, leave=False)
        for step in bar:
            loss, gw, gb = loss_and_grad()
            self.loss_history_.append(float(loss))
            size = np.sqrt(np.sum(gw**2) + np.sum(gb**2))
            if size < self.tol:
                break
            opt.step([gw, gb])
            if step % 100 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", grad=f"{size:.1e}")
        self.n_steps_ = len(self.loss_history_)
        self.converged_ = bool(size < self.tol)
        self.coef_ = w.T.reshape(1 if K == 2 else K, d)  # scikit-learn's layout: (1, d) or (K, d)
        self.intercept_ = b.copy()
        return self

    def decision_function(self, X) -> np.ndarray:
        """The logits: (N,) for two classes, (N, K) for more."""
        if not hasattr(self, "coef_"):
            raise ValueError("this model is not fitted yet: call fit(X, y) first")
        X = _design(X)
        if X.shape[1] != self.coef_.shape[1]:
            raise ValueError(f"the model has {self.coef_.shape[1]} features but X has {X.shape[1]}")
        Z = X @ self.coef_.T + self.intercept_  # (N, 1) or (N, K)
        return Z[:, 0] if len(self.classes_) == 2 else Z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (N, K) (two columns for two classes, like scikit-learn)."""
        Z = self.decision_function(X)
        if len(self.classes_) == 2:
            p = sigmoid(Z)
            return np.column_stack([1 - p, p])
        return softmax(Z)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        P = self.predict_proba(X)  # (N, K)
        return self.classes_[np.argmax(P, axis=1)]

    def score(self, X, y) -> float:
        """Accuracy: the fraction of rows whose predicted class is y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
