"""Chapter 5's densities, samplers, fits and information measures against torch.distributions and numpy.

Sampler tests use fixed seeds and honest tolerances: a sample mean must land within 5 standard errors
of the true mean, and the whole empirical CDF within the Dvoretzky-Kiefer-Wolfowitz band that a correct
sampler leaves with probability below 1e-6. The same checks are run on deliberately wrong samplers to
show that they can fail.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

from helpers import probability as P

SEEDS = range(10)


def t(value):
    """A float64 tensor (torch.tensor of a Python float would be float32)."""
    return torch.tensor(value, dtype=torch.float64)


def random_covariance(rng, d):
    A = rng.normal(size=(d, d))
    return A @ A.T + 0.3 * np.eye(d)  # symmetric positive definite


def random_distribution(rng, k, zeros=0):
    p = rng.dirichlet(np.full(k, 0.7))
    if zeros:
        p[rng.choice(k, size=zeros, replace=False)] = 0.0
        p /= p.sum()
    return p


# --- statistical checks that a sampler is right, with tolerances that a right sampler meets -------------


def mean_is_right(samples, mean, variance, z=5.0):
    """The sample mean is within z standard errors, sqrt(variance / n), of the true mean."""
    return abs(samples.mean() - mean) <= z * math.sqrt(variance / len(samples))


def variance_is_right(samples, variance, fourth_central_moment, z=5.0):
    """The sample variance is within z standard errors, sqrt((mu4 - sigma^4) / n), of the true one."""
    standard_error = math.sqrt((fourth_central_moment - variance**2) / len(samples))
    return abs(samples.var() - variance) <= z * standard_error


def cdf_is_right(samples, cdf, failure_probability=1e-6):
    """Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > t) <= 2 exp(-2 n t^2), so choose t from the
    failure probability. Checks the shape of the whole distribution, not just two moments."""
    n = len(samples)
    t = math.sqrt(math.log(2 / failure_probability) / (2 * n))
    ordered = np.sort(samples)
    F_true = cdf(ordered)
    above = np.arange(1, n + 1) / n - F_true
    below = F_true - np.arange(0, n) / n
    return max(above.max(), below.max()) <= t


def normal_sampler_is_right(samples, mu=0.0, sigma=1.0):
    return (
        mean_is_right(samples, mu, sigma**2)
        and variance_is_right(samples, sigma**2, 3 * sigma**4)
        and cdf_is_right(samples, lambda x: P.normal_cdf(x, mu, sigma))
    )


# --- Gaussian densities -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_logpdf_matches_torch_normal(seed):
    rng = np.random.default_rng(seed)
    mu, sigma = rng.normal(), rng.uniform(0.1, 3.0)
    x = rng.normal(mu, 3 * sigma, size=(4, 5))
    oracle = D.Normal(t(mu), t(sigma)).log_prob(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(P.gaussian_logpdf(x, mu, sigma), oracle, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P.gaussian_pdf(x, mu, sigma), np.exp(oracle), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_pdf_integrates_to_one_and_cdf_matches_torch(seed):
    rng = np.random.default_rng(seed)
    mu, sigma = rng.normal(), rng.uniform(0.2, 2.0)
    xs = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 20001)
    assert np.trapezoid(P.gaussian_pdf(xs, mu, sigma), xs) == pytest.approx(1.0, abs=1e-9)
    points = rng.normal(mu, 2 * sigma, size=20)
    oracle = D.Normal(t(mu), t(sigma)).cdf(torch.from_numpy(points)).numpy()
    np.testing.assert_allclose(P.normal_cdf(points, mu, sigma), oracle, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_mvn_logpdf_matches_torch_multivariate_normal(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    mean, cov = rng.normal(size=d), random_covariance(rng, d)
    x = rng.normal(size=(7, d))
    oracle = D.MultivariateNormal(torch.from_numpy(mean), torch.from_numpy(cov)).log_prob(torch.from_numpy(x))
    np.testing.assert_allclose(P.mvn_logpdf(x, mean, cov), oracle.numpy(), rtol=1e-10, atol=1e-10)
    assert P.mvn_logpdf(x[0], mean, cov).shape == ()  # one point in, one number out
    grid = x.reshape(7, 1, d)  # (7, 1, d): any leading shape
    assert P.mvn_logpdf(grid, mean, cov).shape == (7, 1)


def test_mvn_with_diagonal_covariance_is_a_product_of_1d_gaussians():
    rng = np.random.default_rng(0)
    mean, stds = rng.normal(size=3), rng.uniform(0.5, 2, size=3)
    x = rng.normal(size=(10, 3))
    product = P.gaussian_logpdf(x, mean, stds).sum(axis=1)
    np.testing.assert_allclose(P.mvn_logpdf(x, mean, np.diag(stds**2)), product, rtol=1e-12)


# --- samplers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_box_muller_gives_standard_normals(seed):
    z = P.box_muller(40_000, rng=seed)
    assert z.shape == (40_000,)
    assert normal_sampler_is_right(z)
    first, second = z[:20_000], z[20_000:]  # the cos and sin halves of the same pairs: uncorrelated
    assert abs(np.mean(first * second)) <= 5 / math.sqrt(20_000)


def test_box_muller_odd_counts_and_seeds_are_reproducible():
    assert P.box_muller(7, rng=3).shape == (7,)
    np.testing.assert_array_equal(P.box_muller(5, rng=3), P.box_muller(5, rng=3))
    assert not np.array_equal(P.box_muller(5, rng=3), P.box_muller(5, rng=4))


def test_the_normal_checks_can_fail():
    """The same checks reject plausible wrong samplers, so passing them means something."""
    rng = np.random.default_rng(0)
    u1, u2 = 1 - rng.random(20_000), rng.random(20_000)
    half_circle = np.sqrt(-2 * np.log(u1)) * np.sin(np.pi * u2)  # angle only over [0, pi): mean > 0
    no_two = np.sqrt(-np.log(u1)) * np.cos(2 * np.pi * u2)  # forgot the 2: variance 1/2
    uniform = (rng.random(40_000) - 0.5) * math.sqrt(12)  # mean 0 and variance 1, wrong shape
    assert not mean_is_right(half_circle, 0.0, 1.0)
    assert not variance_is_right(no_two, 1.0, 3.0)
    assert mean_is_right(uniform, 0.0, 1.0) and not cdf_is_right(uniform, P.normal_cdf)


@pytest.mark.parametrize("seed", range(5))
def test_sample_gaussian_has_the_asked_for_mean_and_spread(seed):
    rng = np.random.default_rng(seed + 100)
    mu, sigma = rng.normal() * 3, rng.uniform(0.1, 4)
    assert normal_sampler_is_right(P.sample_gaussian(30_000, mu, sigma, rng=seed), mu, sigma)


@pytest.mark.parametrize("seed", range(5))
def test_exponential_by_inverse_cdf(seed):
    rate = [0.5, 1.0, 2.0, 7.5, 0.1][seed]
    x = P.sample_exponential(30_000, rate, rng=seed)
    assert np.all(x >= 0)
    assert mean_is_right(x, 1 / rate, 1 / rate**2)
    assert variance_is_right(x, 1 / rate**2, 9 / rate**4)  # fourth central moment of Exp(rate): 9 / rate^4
    assert cdf_is_right(x, lambda v: 1 - np.exp(-rate * v))
    assert not cdf_is_right(x, lambda v: 1 - np.exp(-1.1 * rate * v))  # a 10% wrong rate is caught
    oracle = D.Exponential(t(rate)).icdf(t([0.1, 0.5, 0.99]))
    np.testing.assert_allclose(P.inverse_cdf_exponential([0.1, 0.5, 0.99], rate), oracle.numpy(), rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_discrete_frequencies(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    probs = random_distribution(rng, k, zeros=int(rng.integers(0, k - 1)))
    n = 50_000
    draws = P.sample_discrete(probs, n, rng=seed)
    assert draws.min() >= 0 and draws.max() < k
    counts = np.bincount(draws, minlength=k)
    assert np.all(counts[probs == 0] == 0)  # impossible outcomes never happen
    standard_errors = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) <= 5 * standard_errors + 1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_sample_mvn_mean_and_covariance(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    mean, cov = rng.normal(size=d), random_covariance(rng, d)
    n = 40_000
    x = P.sample_mvn(n, mean, cov, rng=seed)
    assert x.shape == (n, d)
    mean_errors = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(axis=0) - mean) <= 5 * mean_errors)
    # for Gaussian data the sample covariance entry (i, j) has variance (cov_ij^2 + cov_ii cov_jj) / n
    cov_errors = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(np.cov(x.T, bias=True).reshape(d, d) - cov) <= 5 * cov_errors)
    # every 1-D projection of a Gaussian is Gaussian: check one direction's whole distribution
    u = rng.normal(size=d)
    projected = x @ u
    assert cdf_is_right(projected, lambda v: P.normal_cdf(v, mean @ u, math.sqrt(u @ cov @ u)))


def test_covariance_axes_are_eigenvectors_largest_first():
    rng = np.random.default_rng(0)
    cov = random_covariance(rng, 3)
    variances, axes = P.covariance_axes(cov)
    assert np.all(np.diff(variances) <= 0)
    np.testing.assert_allclose(cov @ axes, axes * variances, atol=1e-10)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(variances, np.sort(np.linalg.eigvalsh(cov))[::-1])


# --- maximum likelihood -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_mle_gaussian_matches_numpy_and_maximises_the_likelihood(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.normal(), rng.uniform(0.5, 3), size=int(rng.integers(2, 300)))
    mu, var = P.mle_gaussian(x)
    assert mu == pytest.approx(np.mean(x)) and var == pytest.approx(np.var(x))  # numpy: ddof=0
    best = P.gaussian_log_likelihood(x, mu, math.sqrt(var))
    for _ in range(20):  # any other parameters are less likely
        other_mu, other_sigma = mu + rng.normal() * 0.3, math.sqrt(var) * math.exp(rng.normal() * 0.3)
        assert P.gaussian_log_likelihood(x, other_mu, other_sigma) < best
    assert P.gaussian_log_likelihood(x, mu, math.sqrt(var) * x.size / (x.size - 1)) < best  # n - 1 is not it
    oracle = D.Normal(t(mu), t(math.sqrt(var))).log_prob(torch.from_numpy(x)).sum()
    assert best == pytest.approx(oracle.item(), rel=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_mle_multivariate_gaussian_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    x = rng.normal(size=(int(rng.integers(d + 1, 200)), d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    mean, cov = P.mle_gaussian(x)
    np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.T, bias=True).reshape(d, d), atol=1e-10)


def test_mle_fit_by_gradient_ascent_agrees_with_the_closed_form():
    """Maximise the log-likelihood with torch's autograd and Adam; land on the closed form."""
    x = P.sample_gaussian(500, 2.0, 0.7, rng=0)
    mu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    log_sigma = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([mu, log_sigma], lr=0.1)
    data = torch.from_numpy(x)
    for _ in range(400):
        optimiser.zero_grad()
        nll = -D.Normal(mu, log_sigma.exp()).log_prob(data).mean()
        nll.backward()
        optimiser.step()
    closed_mu, closed_var = P.mle_gaussian(x)
    assert mu.item() == pytest.approx(closed_mu, abs=1e-5)
    assert math.exp(2 * log_sigma.item()) == pytest.approx(closed_var, rel=1e-4)


# --- Bayes' rule --------------------------------------------------------------------------------------------


def test_posterior_matches_exact_fractions_and_a_simulation():
    prevalence, sensitivity, false_positive = 0.01, 0.95, 0.05
    sick_given_positive = P.posterior([prevalence, 1 - prevalence], [sensitivity, false_positive])[0]
    exact = Fraction(1, 100) * Fraction(95, 100)
    exact = exact / (exact + Fraction(99, 100) * Fraction(5, 100))
    assert sick_given_positive == pytest.approx(float(exact), rel=1e-12)
    rng = np.random.default_rng(0)
    n = 2_000_000
    sick = rng.random(n) < prevalence
    positive = np.where(sick, rng.random(n) < sensitivity, rng.random(n) < false_positive)
    simulated = sick[positive].mean()
    standard_error = math.sqrt(float(exact) * (1 - float(exact)) / positive.sum())
    assert abs(simulated - float(exact)) <= 5 * standard_error


def test_posterior_of_many_hypotheses_sums_to_one_and_updates_twice_like_once():
    rng = np.random.default_rng(1)
    prior = random_distribution(rng, 5)
    l1, l2 = rng.uniform(0.05, 1, size=5), rng.uniform(0.05, 1, size=5)
    once = P.posterior(prior, l1 * l2)  # two independent pieces of evidence at once
    twice = P.posterior(P.posterior(prior, l1), l2)  # yesterday's posterior is today's prior
    np.testing.assert_allclose(once, twice, rtol=1e-12)
    assert once.sum() == pytest.approx(1.0)


# --- information --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_entropy_cross_entropy_and_kl_match_torch(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 10))
    p = random_distribution(rng, k, zeros=int(rng.integers(0, k - 1)))
    q = random_distribution(rng, k)
    torch_p, torch_q = D.Categorical(probs=torch.from_numpy(p)), D.Categorical(probs=torch.from_numpy(q))
    nats = math.e
    assert P.entropy(p, base=nats) == pytest.approx(torch_p.entropy().item(), abs=1e-12)
    assert P.entropy(p) == pytest.approx(torch_p.entropy().item() / math.log(2), abs=1e-12)  # bits
    assert P.kl_divergence(p, q, base=nats) == pytest.approx(
        D.kl_divergence(torch_p, torch_q).item(), abs=1e-12
    )
    # cross-entropy is what F.cross_entropy computes from logits and a target distribution
    ce = F.cross_entropy(torch.log(torch.from_numpy(q))[None], torch.from_numpy(p)[None])
    assert P.cross_entropy(p, q, base=nats) == pytest.approx(ce.item(), abs=1e-12)
    # and cross-entropy = entropy + KL, in any base
    assert P.cross_entropy(p, q) == pytest.approx(P.entropy(p) + P.kl_divergence(p, q), abs=1e-12)


def test_information_known_values_and_batches():
    assert P.entropy([0.5, 0.5]) == pytest.approx(1.0)  # a fair coin: one bit
    assert P.entropy(np.full(8, 1 / 8)) == pytest.approx(3.0)
    assert P.entropy([1.0, 0.0, 0.0]) == 0.0  # certainty: no information
    assert P.kl_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0
    assert P.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf  # q rules out what p allows
    assert P.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(1.0)  # the other way: finite
    batch = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    np.testing.assert_allclose(P.entropy(batch), [P.entropy(row) for row in batch])


@pytest.mark.parametrize("seed", SEEDS)
def test_kl_between_gaussians_matches_torch(seed):
    rng = np.random.default_rng(seed)
    mu1, mu2, s1, s2 = rng.normal(), rng.normal(), rng.uniform(0.2, 3), rng.uniform(0.2, 3)
    oracle = D.kl_divergence(D.Normal(t(mu1), t(s1)), D.Normal(t(mu2), t(s2))).item()
    assert P.kl_gaussian(mu1, s1, mu2, s2) == pytest.approx(oracle, rel=1e-10, abs=1e-12)


def test_kl_between_gaussians_is_a_monte_carlo_average():
    """KL(p || q) = E_p[log p(x) - log q(x)]: estimate it with our own samples and compare."""
    mu1, s1, mu2, s2 = 0.3, 0.8, -0.5, 1.6
    x = P.sample_gaussian(200_000, mu1, s1, rng=1)
    log_ratio = P.gaussian_logpdf(x, mu1, s1) - P.gaussian_logpdf(x, mu2, s2)
    standard_error = log_ratio.std() / math.sqrt(x.size)
    assert abs(log_ratio.mean() - P.kl_gaussian(mu1, s1, mu2, s2)) <= 5 * standard_error


# --- the 2-D Gaussian slider --------------------------------------------------------------------------------


def test_gaussian_2d_picture_numbers():
    picture = P.gaussian_2d_picture(0.5, -1.0, 1.5, 0.6, 0.7, n=4000, points=161, half_width=7.0)
    sx, sy, rho = 1.5, 0.6, 0.7
    np.testing.assert_allclose(picture["cov"], [[sx**2, rho * sx * sy], [rho * sx * sy, sy**2]])
    cell = (picture["grid_x"][0, 1] - picture["grid_x"][0, 0]) ** 2
    assert picture["density"].sum() * cell == pytest.approx(1.0, abs=1e-3)  # a density integrates to 1
    peak = np.unravel_index(np.argmax(picture["density"]), picture["density"].shape)
    assert abs(picture["grid_x"][peak] - 0.5) <= 0.1 and abs(picture["grid_y"][peak] + 1.0) <= 0.1
    n = 4000
    assert np.all(
        np.abs(picture["sample_mean"] - picture["mean"]) <= 5 * np.sqrt(np.diag(picture["cov"]) / n)
    )
    cov = picture["cov"]
    cov_errors = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(picture["sample_cov"] - cov) <= 5 * cov_errors)
    major = picture["axes"][:, 0]
    assert major[0] * major[1] > 0  # positive correlation: the long axis runs up and to the right


def test_gaussian_2d_axes_follow_the_knobs():
    round_cloud = P.gaussian_2d_picture(0, 0, 1.0, 1.0, 0.0)
    np.testing.assert_allclose(round_cloud["axis_variances"], [1.0, 1.0])
    tall = P.gaussian_2d_picture(0, 0, 0.5, 2.0, 0.0)
    np.testing.assert_allclose(np.abs(tall["axes"][:, 0]), [0.0, 1.0], atol=1e-12)
    nearly_a_line = P.gaussian_2d_picture(0, 0, 1.0, 1.0, 0.99)
    assert nearly_a_line["axis_variances"][1] == pytest.approx(0.01)  # 1 - rho: the cloud flattens
    np.testing.assert_allclose(np.abs(nearly_a_line["axes"][:, 0]), [1 / math.sqrt(2)] * 2)


def test_gaussian_2d_slider_moves_the_picture():
    import matplotlib.pyplot as plt

    from helpers import slider_view

    def draw(mean_x, mean_y, std_x, std_y, rho):
        picture = P.gaussian_2d_picture(mean_x, mean_y, std_x, std_y, rho, n=200)
        fig, ax = plt.subplots()
        ax.contour(picture["grid_x"], picture["grid_y"], picture["density"], levels=6)
        ax.scatter(*picture["samples"].T, s=3)
        ax.set(xlim=(-5, 5), ylim=(-5, 5))

    view = slider_view(
        draw,
        mean_x=(-2.0, 2.0, 0.1, 0.0),
        mean_y=(-2.0, 2.0, 0.1, 0.0),
        std_x=(0.3, 2.0, 0.1, 1.0),
        std_y=(0.3, 2.0, 0.1, 1.0),
        rho=(-0.95, 0.95, 0.05, 0.0),
    )
    images = [view.image]
    for move in [{"rho": 0.8}, {"std_x": 1.8}, {"mean_y": -1.5}]:
        view.set(**move)
        images.append(view.image)
    for before, after in zip(images[:-1], images[1:], strict=True):
        assert np.abs(after.astype(int) - before.astype(int)).sum() > 0
    assert view.values == {"mean_x": 0.0, "mean_y": -1.5, "std_x": 1.8, "std_y": 1.0, "rho": 0.8}


# --- clear errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: P.gaussian_pdf(0.0, 0.0, 0.0), "sigma must be positive"),
        (lambda: P.gaussian_logpdf(0.0, 0.0, -1.0), "sigma must be positive"),
        (lambda: P.mvn_logpdf(np.zeros(2), np.zeros(2), [[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (lambda: P.mvn_logpdf(np.zeros(2), np.zeros(2), [[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (lambda: P.mvn_logpdf(np.zeros(3), np.zeros(2), np.eye(2)), "2 coordinates"),
        (lambda: P.sample_mvn(5, np.zeros(3), np.eye(2)), "3x3"),
        (lambda: P.entropy([0.5, 0.6]), "sum to 1"),
        (lambda: P.entropy([1.5, -0.5]), "non-negative"),
        (lambda: P.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5]), "same shape"),
        (lambda: P.cross_entropy([0.5, 0.5], [1.0]), "same shape"),
        (lambda: P.sample_discrete([[0.5, 0.5]], 3), "one list"),
        (lambda: P.box_muller(-1), "non-negative integer"),
        (lambda: P.box_muller(10, rng="seed"), "Generator"),
        (lambda: P.gaussian_2d(0, 0, 1, 1, 1.0), "strictly between -1 and 1"),
        (lambda: P.mle_gaussian(np.zeros(0)), "n >= 1"),
        (lambda: P.posterior([0.5, 0.5], [0.1, 0.2, 0.3]), "shape of the prior"),
        (lambda: P.posterior([1.0, 0.0], [0.0, 0.5]), "probability 0"),
        (lambda: P.kl_gaussian(0, 1, 0, 0), "sigma2 must be positive"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
