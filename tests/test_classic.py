"""Chapter 7's classic machine learning against scikit-learn (and its gradients against torch.autograd)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import Ridge as SkRidge
from sklearn.preprocessing import PolynomialFeatures

from helpers import classic, slider_view
from helpers.digits import load_digits_split

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(10)


def random_regression(rng, n=None, d=None):
    n = n or int(rng.integers(5, 60))
    d = d or int(rng.integers(1, min(n, 8)))
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d) + rng.normal(size=d) * 3  # scaled, off-centre
    y = X @ rng.normal(size=d) + rng.normal() + 0.5 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("seed", SEEDS)
def test_polynomial_features_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, int(rng.integers(1, 30)))
    degree = int(rng.integers(0, 9))
    for bias in (True, False):
        if degree == 0 and not bias:
            continue
        ours = classic.polynomial_features(x, degree, include_bias=bias)
        theirs = PolynomialFeatures(degree, include_bias=bias).fit_transform(x[:, None])
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_matches_sklearn(seed, fit_intercept):
    X, y = random_regression(np.random.default_rng(seed))
    ours = classic.linear_regression(X, y, fit_intercept=fit_intercept)
    theirs = SkLinearRegression(fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(ours.coef, theirs.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.intercept, theirs.intercept_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-8)


def test_least_squares_with_a_repeated_column_gives_the_minimum_norm_answer():
    rng = np.random.default_rng(0)
    X, y = random_regression(rng, n=30, d=3)
    X = np.column_stack([X, X[:, 0]])  # rank 3 of 4: infinitely many solutions
    ours = classic.linear_regression(X, y, fit_intercept=False)
    np.testing.assert_allclose(ours.coef, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.coef[0], ours.coef[3], rtol=1e-8)  # the weight is shared equally


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_matches_sklearn_and_its_closed_form(seed, fit_intercept):
    rng = np.random.default_rng(100 + seed)
    X, y = random_regression(rng)
    alpha = float(10 ** rng.uniform(-3, 3))
    ours = classic.ridge_regression(X, y, alpha, fit_intercept=fit_intercept)
    theirs = SkRidge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(ours.coef, theirs.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.intercept, theirs.intercept_, rtol=1e-7, atol=1e-8)
    Xc, yc = (X - X.mean(0), y - y.mean()) if fit_intercept else (X, y)
    closed = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ yc)  # (X^T X + alpha I)^-1 X^T y
    np.testing.assert_allclose(ours.coef, closed, rtol=1e-7, atol=1e-9)


def test_ridge_with_zero_alpha_is_least_squares_and_large_alpha_shrinks():
    X, y = random_regression(np.random.default_rng(3), n=40, d=4)
    np.testing.assert_allclose(classic.ridge_regression(X, y, 0.0).coef, classic.linear_regression(X, y).coef)
    norms = [np.linalg.norm(classic.ridge_regression(X, y, a).coef) for a in (0.0, 1.0, 100.0, 1e4)]
    assert all(a > b for a, b in zip(norms[:-1], norms[1:], strict=True))


@pytest.mark.parametrize("seed", SEEDS)
def test_pca_matches_sklearn(seed):
    rng = np.random.default_rng(200 + seed)
    n, d = int(rng.integers(10, 80)), int(rng.integers(2, 9))
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 5  # correlated, off-centre
    k = int(rng.integers(1, d + 1))
    ours = classic.PCA(k).fit(X)
    theirs = SkPCA(k, svd_solver="full").fit(X)
    signs = np.sign(np.sum(ours.components_ * theirs.components_, axis=1))  # components agree up to sign
    assert np.all(signs != 0)
    np.testing.assert_allclose(ours.components_, theirs.components_ * signs[:, None], atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.transform(X), theirs.transform(X) * signs, atol=1e-7)
    np.testing.assert_allclose(
        ours.inverse_transform(ours.transform(X)), theirs.inverse_transform(theirs.transform(X)), atol=1e-7
    )
    # each component's largest entry is positive: the book's sign convention
    assert np.all(ours.components_[np.arange(k), np.argmax(np.abs(ours.components_), axis=1)] > 0)


def test_pca_with_all_components_reconstructs_exactly():
    X = np.random.default_rng(1).normal(size=(30, 6))
    pca = classic.PCA().fit(X)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_ratio_.sum(), 1.0)


# --- logistic regression -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_hand_derived_gradients_match_autograd(seed):
    rng = np.random.default_rng(300 + seed)
    n, d, K = int(rng.integers(2, 30)), int(rng.integers(1, 6)), int(rng.integers(3, 6))
    X, lam = rng.normal(size=(n, d)), float(rng.uniform(0, 1))
    y = rng.integers(0, 2, n).astype(float)
    w, b = rng.normal(size=d), float(rng.normal())
    loss, gw, gb = classic.binary_loss_and_grad(w, b, X, y, lam)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(X) @ wt + bt, torch.tensor(y))
    ref = ref + lam / 2 * wt @ wt
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, bt.grad.item(), rtol=1e-10, atol=1e-12)

    labels = rng.integers(0, K, n)
    W, bK = rng.normal(size=(d, K)), rng.normal(size=K)
    loss, gW, gbK = classic.softmax_loss_and_grad(W, bK, X, np.eye(K)[labels], lam)
    Wt, bKt = torch.tensor(W, requires_grad=True), torch.tensor(bK, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(torch.tensor(X) @ Wt + bKt, torch.tensor(labels))
    ref = ref + lam / 2 * (Wt**2).sum()
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(gW, Wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gbK, bKt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sigmoid_and_softmax_match_torch_even_for_huge_inputs():
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 2.5, 40.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, no nan
        np.testing.assert_allclose(classic.sigmoid(z), torch.sigmoid(torch.tensor(z)).numpy(), rtol=1e-12)
        Z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
        np.testing.assert_allclose(
            classic.softmax(Z), torch.softmax(torch.tensor(Z), dim=1).numpy(), atol=1e-15
        )


def random_classification(rng, K):
    n, d = int(rng.integers(60, 200)), int(rng.integers(2, 6))
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2, d) + rng.normal(size=d)
    y = np.argmax(X @ rng.normal(size=(d, K)) + rng.gumbel(size=(n, K)), axis=1)  # noisy: not separable
    return X, y


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("K", [2, 3, 4])
def test_logistic_regression_matches_sklearn(seed, K):
    rng = np.random.default_rng(400 + seed)
    X, y = random_classification(rng, K)
    C = float(10 ** rng.uniform(-1.5, 1))
    ours = classic.LogisticRegression(C=C, max_steps=20000, tol=1e-9).fit(X, y)
    theirs = SkLogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    assert ours.converged_
    assert ours.coef_.shape == theirs.coef_.shape and ours.intercept_.shape == theirs.intercept_.shape
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    assert np.mean(ours.predict(X) == theirs.predict(X)) >= 0.99
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=0.011)


def test_logistic_regression_keeps_the_labels_it_was_given():
    rng = np.random.default_rng(7)
    X, y = random_classification(rng, 3)
    names = np.array(["cat", "dog", "emu"])[y]
    model = classic.LogisticRegression(C=1.0).fit(X, names)
    assert set(model.predict(X)) <= {"cat", "dog", "emu"}
    assert model.score(X, names) > 0.5
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_softmax_regression_on_the_digits():
    digits = load_digits_split()
    ours = classic.LogisticRegression(C=1.0, max_steps=500).fit(digits.X_train, digits.y_train)
    theirs = SkLogisticRegression(C=1.0, max_iter=2000).fit(digits.X_train, digits.y_train)
    assert ours.score(digits.X_test, digits.y_test) >= 0.93
    assert np.mean(ours.predict(digits.X_test) == theirs.predict(digits.X_test)) >= 0.97
    assert ours.loss_history_[-1] < ours.loss_history_[0] / 5


# --- the bias-variance slider, headless ----------------------------------------------------------------


def test_error_curves_behave():
    data = classic.make_curve_data(seed=0)
    train, test = classic.error_curves(data, range(16))
    assert np.all(np.diff(train) <= 1e-12)  # nested models: more degree never fits the training set worse
    assert test[15] > 5 * test.min()  # the unregularised degree-15 fit overfits
    train_r, test_r = classic.error_curves(data, [15], alpha=1e-3)
    assert test_r[0] < test[15] and train_r[0] > train[15]


def test_bias_variance_slider_redraws():
    data = classic.make_curve_data(seed=0)

    def draw(degree, log10_alpha):
        classic.draw_curve_fit(data, degree, log10_alpha)

    view = slider_view(draw, degree=(0, 15, 1, 3), log10_alpha=(-12.0, 2.0, 0.5, -12.0))
    first = view.image
    view.set(degree=15)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - first.astype(int)).sum() > 0
    overfit = view.image
    view.set(log10_alpha=-3.0)
    assert np.abs(view.image.astype(int) - overfit.astype(int)).sum() > 0
    wild, tamed = classic.fit_curve(data, 15, 1e-12), classic.fit_curve(data, 15, 1e-3)
    assert np.abs(tamed["model"].coef).max() < np.abs(wild["model"].coef).max()
    assert tamed["test_mse"] < wild["test_mse"]


# --- clear errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classic.polynomial_features(np.ones((3, 2)), 2), "one feature"),
        (lambda: classic.polynomial_features(np.ones(3), -1), "non-negative integer"),
        (lambda: classic.linear_regression(np.ones((4, 2)), np.ones(3)), "4 samples but y has 3"),
        (lambda: classic.linear_regression(np.ones((4, 2)), np.ones((4, 2))), "one target per sample"),
        (lambda: classic.linear_regression(np.ones((2, 2, 2)), np.ones(2)), "samples, features"),
        (lambda: classic.linear_regression([[1.0, np.nan]], [1.0]), "inf or nan"),
        (lambda: classic.ridge_regression(np.ones((4, 2)), np.ones(4), -1.0), "alpha must be >= 0"),
        (
            lambda: classic.linear_regression(np.ones((4, 2)), np.ones(4)).predict(np.ones((2, 3))),
            "2 features",
        ),
        (lambda: classic.PCA(0), "positive integer"),
        (lambda: classic.PCA(5).fit(np.ones((3, 4))), "at most 3"),
        (lambda: classic.PCA(2).transform(np.ones((3, 4))), "not fitted"),
        (lambda: classic.PCA(2).fit(np.eye(4)).inverse_transform(np.ones((2, 3))), "2 columns"),
        (lambda: classic.LogisticRegression(C=0.0), "C must be > 0"),
        (lambda: classic.LogisticRegression().fit(np.ones((3, 2)), [1, 1, 1]), "at least 2 classes"),
        (lambda: classic.LogisticRegression().fit(np.ones((3, 2)), [0, 1]), "one label per row"),
        (lambda: classic.LogisticRegression().predict(np.ones((3, 2))), "not fitted"),
        (lambda: classic.mse([1.0, 2.0], [1.0]), "shape"),
        (lambda: classic.make_curve_data(n_train=0), "n_train"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
