"""The reference solutions of chapters 5 to 7's exercises against the helper or library they mirror.

tests/test_exercises.py proves that every checker accepts its reference solution and rejects a tempting
wrong answer. Here each reference solution (and each value answer) is compared with an independent
oracle on random inputs: torch.distributions, torch.optim, torch.autograd, scipy.stats, scikit-learn or
chapter 5 to 7's own helpers, so that a checker and its solution cannot share a mistake.
"""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.decomposition import PCA as SkPCA
from sklearn.linear_model import Lasso as SkLasso
from sklearn.linear_model import LinearRegression as SkLinearRegression
from torch import distributions as D

from helpers import classic, optim, probability
from helpers.exercises import ch05, ch06, ch07, get, passes

SEEDS = range(5)


def t(value):
    return torch.tensor(value, dtype=torch.float64)


# chapter 5 ----------------------------------------------------------------------------------------------


def test_5_1_two_updates_of_the_posterior_helper():
    prior = np.array([ch05.PREVALENCE, 1 - ch05.PREVALENCE])
    likelihood = [ch05.SENSITIVITY, ch05.FALSE_POSITIVE]
    after_two = probability.posterior(probability.posterior(prior, likelihood), likelihood)[0]
    assert abs(get("5.1").solution - after_two) < 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_5_2_cauchy_inverse_cdf_is_torchs_and_scipys(seed):
    rng = np.random.default_rng(seed)
    u, loc, scale = rng.uniform(0.001, 0.999, 50), rng.normal() * 3, rng.uniform(0.1, 4)
    ours = ch05.cauchy_inverse_cdf(u, loc, scale)
    assert np.allclose(ours, D.Cauchy(t(loc), t(scale)).icdf(torch.from_numpy(u)).numpy(), rtol=1e-10)
    assert np.allclose(ours, scipy.stats.cauchy.ppf(u, loc, scale), rtol=1e-10)


def test_5_2_refuses_torchs_inverse_cdf():
    def via_torch(u, loc, scale):
        return D.Cauchy(t(loc), t(scale)).icdf(torch.from_numpy(np.asarray(u))).numpy()

    assert not passes("5.2", via_torch)


def test_5_3_is_the_entropy_helper():
    assert abs(get("5.3").solution - probability.entropy(ch05._PROBS)) < 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_5_4_kl_normal_is_torchs_closed_form(seed):
    rng = np.random.default_rng(seed)
    mu1, mu2, s1, s2 = rng.normal(), rng.normal(), rng.uniform(0.2, 3), rng.uniform(0.2, 3)
    oracle = D.kl_divergence(D.Normal(t(mu1), t(s1)), D.Normal(t(mu2), t(s2))).item()
    assert abs(ch05.kl_normal(mu1, s1, mu2, s2) - oracle) < 1e-12
    assert abs(probability.kl_gaussian(mu1, s1, mu2, s2) - oracle) < 1e-12


def test_5_4_refuses_the_helper_and_torch():
    assert not passes("5.4", lambda a, b, c, d: probability.kl_gaussian(a, b, c, d))
    assert not passes(
        "5.4", lambda a, b, c, d: D.kl_divergence(D.Normal(t(a), t(b)), D.Normal(t(c), t(d))).item()
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_5_5_laplace_fit_is_scipys_maximum_likelihood(seed):
    rng = np.random.default_rng(seed)
    x = rng.laplace(rng.normal() * 2, rng.uniform(0.3, 3), size=2 * int(rng.integers(2, 40)) + 1)
    mu, b = ch05.laplace_fit(x)
    loc, scale = scipy.stats.laplace.fit(x)
    assert abs(mu - loc) < 1e-9 and abs(b - scale) < 1e-9
    best = scipy.stats.laplace.logpdf(x, mu, b).sum()
    for d_mu, d_b in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:  # any small move lowers the likelihood
        assert scipy.stats.laplace.logpdf(x, mu + d_mu, b + d_b).sum() < best


@pytest.mark.parametrize("seed", SEEDS)
def test_5_6_joint_density_is_marginal_times_conditional(seed):
    """The product rule as the oracle: log p(a, b) = log p(a) + log p(b | a), with torch's densities."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 7))
    k = int(rng.integers(1, d))
    A = rng.normal(size=(d, d))
    cov, mean, x = A @ A.T + 0.3 * np.eye(d), rng.normal(size=d), rng.normal(size=d)
    cond_mean, cond_cov = ch05.condition_gaussian(mean, cov, x[:k])
    joint = D.MultivariateNormal(torch.from_numpy(mean), torch.from_numpy(cov)).log_prob(torch.from_numpy(x))
    marginal = D.MultivariateNormal(torch.from_numpy(mean[:k]), torch.from_numpy(cov[:k, :k]))
    conditional = D.MultivariateNormal(torch.from_numpy(cond_mean), torch.from_numpy(cond_cov))
    total = marginal.log_prob(torch.from_numpy(x[:k])) + conditional.log_prob(torch.from_numpy(x[k:]))
    assert abs(joint.item() - total.item()) < 1e-9


def test_5_7_spread_of_a_sum_by_simulation():
    rng = np.random.default_rng(0)
    total = rng.normal(1, 3, 400_000) + rng.normal(2, 4, 400_000)
    assert abs(total.std() - get("5.7").solution) < 5 * 5 / math.sqrt(2 * total.size)


# chapter 6 ----------------------------------------------------------------------------------------------


def test_6_1_just_below_converges_and_just_above_diverges():
    lr = get("6.1").solution
    surface = optim.quadratic(ch06.H_61)
    assert np.linalg.norm(optim.run(surface, "sgd", steps=2000, lr=0.99 * lr).end) < 1e-3
    assert optim.run(surface, "sgd", steps=2000, lr=1.01 * lr).diverged or (
        np.linalg.norm(optim.run(surface, "sgd", steps=2000, lr=1.01 * lr).end) > 10
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_6_2_momentum_step_is_torchs_sgd(seed):
    rng = np.random.default_rng(seed)
    n, lr, momentum = int(rng.integers(1, 6)), rng.uniform(0.01, 0.5), rng.uniform(0, 0.99)
    x, b = rng.normal(size=n), np.zeros(n)
    p = torch.tensor(x.copy(), requires_grad=True)
    oracle = torch.optim.SGD([p], lr=lr, momentum=momentum)
    for _ in range(10):
        g = rng.normal(size=n)
        x, b = ch06.momentum_step(x, b, g, lr, momentum)
        p.grad = torch.from_numpy(g.copy())
        oracle.step()
        assert np.allclose(x, p.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_6_3_two_steps_of_torchs_adam():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    oracle = torch.optim.Adam([p], lr=ch06.LR_63)
    for g in (ch06.G1_63, ch06.G2_63):
        p.grad = torch.from_numpy(g.copy())
        oracle.step()
    assert np.allclose(get("6.3").solution, p.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_6_4_is_a_saddle_by_autograd():
    def f(p):
        return p[0] ** 3 - 3 * p[0] + p[1] ** 2

    point = torch.tensor(get("6.4").solution, dtype=torch.float64, requires_grad=True)
    (gradient,) = torch.autograd.grad(f(point), point)
    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(f, point.detach()))
    assert torch.allclose(gradient, torch.zeros(2, dtype=torch.float64))
    assert eigenvalues.min() < 0 < eigenvalues.max()


@pytest.mark.parametrize("seed", SEEDS)
def test_6_5_adam_step_is_the_helpers_adam(seed):
    rng = np.random.default_rng(seed)
    n, lr, betas, eps = int(rng.integers(1, 6)), rng.uniform(0.001, 0.1), (0.85, 0.995), 1e-6
    x0 = rng.normal(size=n)
    ours, state = x0.copy(), (x0.copy(), np.zeros(n), np.zeros(n))
    helper = optim.Adam([ours], lr=lr, betas=betas, eps=eps)
    for step in range(1, 20):
        g = rng.normal(size=n)
        helper.step([g])
        state = ch06.adam_step(*state, g, step, lr, *betas, eps)
        assert np.allclose(state[0], ours, rtol=1e-12, atol=1e-14)


class NotebookAdam(optim.Optimizer):
    """Like the notebook cell `class Adam(Optimizer)` of chapter 6: a copy, not helpers.optim.Adam itself."""

    update = optim.Adam.update


def test_6_5_refuses_an_optimiser_class_even_the_notebooks_own():
    def via_helper(x, m, v, g, t, lr, beta1, beta2, eps):
        x = x.copy()
        optim.Adam([x], lr=lr, betas=(beta1, beta2), eps=eps).step([g])
        return x, m, v

    def via_notebook_class(x, m, v, g, t, lr, beta1, beta2, eps):
        x = x.copy()
        NotebookAdam([x], lr=lr, betas=(beta1, beta2), eps=eps).step([g])
        return x, m, v

    assert not passes("6.5", via_helper)
    with pytest.raises(AssertionError, match="optimiser class"):
        get("6.5").checker(via_notebook_class)


def test_6_6_noise_of_a_batch_four_times_bigger():
    rng = np.random.default_rng(0)
    per_example = rng.exponential(size=100_000)  # any distribution: the rule is about averages
    spread = {B: rng.choice(per_example, size=(20_000, B)).mean(axis=1).std() for B in (16, 64)}
    assert abs(spread[16] / spread[64] - get("6.6").solution) < 0.05


# chapter 7 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_7_1_fit_line_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, 40)
    y = rng.normal() * x + rng.normal() + rng.normal(size=40)
    sk = SkLinearRegression().fit(x[:, None], y)
    assert np.allclose(ch07.fit_line(x, y), [sk.coef_[0], sk.intercept_])


def test_7_2_ridge_over_least_squares_along_a_singular_direction():
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.normal(size=(20, 2)))
    V, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    X = U @ np.diag([3.0, 0.5]) @ V.T  # singular values 3 and 0.5
    y = U[:, 0] * 2.0  # lies along the first left singular vector
    ridge = classic.ridge_regression(X, y, 1.0, fit_intercept=False).coef
    plain = classic.linear_regression(X, y, fit_intercept=False).coef
    assert np.allclose(ridge, get("7.2").solution * plain)


def test_7_3_is_scikit_learns_count():
    X = ch07.load_digits_split().X_train
    assert SkPCA(n_components=0.95, svd_solver="full").fit(X).n_components_ == get("7.3").solution


@pytest.mark.parametrize("seed", SEEDS)
def test_7_4_sigmoid_mse_gradient_is_autograds(seed):
    rng = np.random.default_rng(seed)
    w, X, y = rng.normal(size=3), rng.normal(size=(15, 3)), rng.integers(0, 2, 15).astype(float)
    w_t = torch.tensor(w, requires_grad=True)
    ((torch.sigmoid(torch.from_numpy(X) @ w_t) - torch.from_numpy(y)) ** 2).mean().backward()
    assert np.allclose(ch07.sigmoid_mse_gradient(w, X, y), w_t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
def test_7_5_power_iteration_is_scikit_learns_first_component(seed):
    X, _ = ch07._pca_data(100 + seed)
    first = SkPCA(n_components=1, svd_solver="full").fit(X).components_[0]
    assert abs(abs(ch07.top_direction(X) @ first) - 1) < 1e-10
    assert np.allclose(abs(classic.PCA(1).fit(X).components_[0] @ first), 1)


def test_7_5_refuses_an_eigensolver_and_pca():
    assert not passes("7.5", lambda X: np.linalg.eigh(np.cov(X.T))[1][:, -1])
    assert not passes("7.5", lambda X: classic.PCA(1).fit(X).components_[0])
    assert not passes("7.5", lambda X: SkPCA(1).fit(X).components_[0])


def test_7_6_ridge_has_no_exact_zeros_where_the_lasso_has_six():
    rng = np.random.default_rng(7)  # the notebook's data
    X = rng.normal(size=(100, 10))
    w_true = np.array([3.0, -2.0, 1.5, 1.0, 0, 0, 0, 0, 0, 0])
    y = X @ w_true + rng.normal(scale=0.5, size=100)
    ridge = classic.ridge_regression(X, y, 100.0, fit_intercept=False).coef
    lasso = SkLasso(alpha=0.2, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y).coef_
    assert np.sum(ridge == 0) == get("7.6").solution
    assert np.array_equal(lasso == 0, w_true == 0)
