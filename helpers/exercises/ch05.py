"""Exercises for chapter 5: probability and information."""

import math

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.probability import kl_gaussian

# 5.1 ----------------------------------------------------------------------------------------------------
PREVALENCE, SENSITIVITY, FALSE_POSITIVE = 0.01, 0.95, 0.05
_after_one = PREVALENCE * SENSITIVITY / (PREVALENCE * SENSITIVITY + (1 - PREVALENCE) * FALSE_POSITIVE)
_after_two = _after_one * SENSITIVITY / (_after_one * SENSITIVITY + (1 - _after_one) * FALSE_POSITIVE)

register(
    Exercise(
        key="5.1",
        title="a second positive test",
        checker=matches_value(_after_two, atol=1e-4, what="your probability"),
        hint="after the first positive test, the probability of having the condition is about 0.161. Use "
        "that as the prior for the second test and apply Bayes' rule again, with the same sensitivity and "
        "false positive rate.",
        solution=_after_two,
        wrong=_after_one,  # stopped after one update
        explanation="Yesterday's posterior is today's prior. With prior 0.161, P(sick | 2nd positive) = "
        "0.161 * 0.95 / (0.161 * 0.95 + 0.839 * 0.05) = 0.785. In one step: 0.01 * 0.95^2 / (0.01 * 0.95^2 "
        "+ 0.99 * 0.05^2). Two independent positives take the odds from 1:99 to 1:99 * 19 * 19 = 361:99.",
    )
)


# 5.2 ----------------------------------------------------------------------------------------------------
def cauchy_inverse_cdf(u, loc, scale):
    """Solve u = 1/2 + arctan((x - loc) / scale) / pi for x."""
    return loc + scale * np.tan(np.pi * (u - 0.5))


def _uniforms_loc_scale(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    u = rng.uniform(0.01, 0.99, int(rng.integers(1, 8)))
    return u, float(rng.normal() * 2), float(rng.uniform(0.2, 5.0))


register(
    Exercise(
        key="5.2",
        title="inverse-CDF sampling for the Cauchy distribution",
        checker=by_hand(
            matches_function(cauchy_inverse_cdf, _uniforms_loc_scale),
            {"torch.distributions.Cauchy.icdf": "solve u = F(x) for x with numpy."},
        ),
        hint="set u = 1/2 + arctan((x - loc) / scale) / pi, subtract 1/2, multiply by pi, and undo the "
        "arctan with np.tan; then multiply by scale and add loc.",
        solution=cauchy_inverse_cdf,
        wrong=lambda u, loc, scale: loc + scale * np.tan(np.pi * u),  # forgot to subtract the 1/2
        explanation="pi (u - 1/2) = arctan((x - loc) / scale), so x = loc + scale * tan(pi (u - 1/2)). u = "
        "1/2 lands on the centre, u near 0 or 1 far out in the tails: tan blows up, which is why a Cauchy "
        "sample has no mean (the running average of Cauchy draws never settles).",
    )
)

# 5.3 ----------------------------------------------------------------------------------------------------
_PROBS = np.array([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16])
_BITS = float(-(_PROBS * np.log2(_PROBS)).sum())
register(
    Exercise(
        key="5.3",
        title="entropy in bits",
        checker=matches_value(_BITS, atol=1e-6, what="your entropy"),
        hint="H = sum over outcomes of p * log2(1 / p). With these probabilities every log2(1 / p) is a "
        "whole number (1, 2, 3, 4, 4): you can do it on paper. Use log base 2, not the natural log.",
        solution=_BITS,
        wrong=_BITS * math.log(2),  # the same sum with the natural logarithm: nats, not bits
        explanation="H = 1/2 * 1 + 1/4 * 2 + 1/8 * 3 + 1/16 * 4 + 1/16 * 4 = 0.5 + 0.5 + 0.375 + 0.25 + "
        "0.25 = 1.875 bits. The code 0, 10, 110, 1110, 1111 spends exactly those lengths, so it averages "
        "1.875 bits per symbol, and no code can do better. In nats (natural log) the same quantity is 1.30.",
    )
)


# 5.4 ----------------------------------------------------------------------------------------------------
def kl_normal(mu1, sigma1, mu2, sigma2):
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) in nats."""
    return np.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


def _two_gaussians(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return float(rng.normal()), float(rng.uniform(0.3, 3)), float(rng.normal()), float(rng.uniform(0.3, 3))


register(
    Exercise(
        key="5.4",
        title="KL between two Gaussians",
        checker=by_hand(
            matches_function(kl_gaussian, _two_gaussians),
            {
                "helpers.probability.kl_gaussian": "derive the formula and write it with np.log.",
                "torch.distributions.kl_divergence": "derive the formula and write it with np.log.",
                "torch.distributions.kl.kl_divergence": "derive the formula and write it with np.log.",
            },
        ),
        hint="KL(p || q) = E_p[log p(x) - log q(x)]. Write out the two log-densities; the expectation under "
        "p of (x - mu1)^2 is sigma1^2, and of (x - mu2)^2 is sigma1^2 + (mu1 - mu2)^2. Careful: which sigma "
        "goes in the denominator?",
        solution=kl_normal,
        wrong=lambda mu1, sigma1, mu2, sigma2: kl_normal(mu2, sigma2, mu1, sigma1),  # KL(q || p)
        explanation="log p - log q = log(sigma2 / sigma1) - (x - mu1)^2 / (2 sigma1^2) + (x - mu2)^2 / (2 "
        "sigma2^2). Averaging over x ~ p: log(sigma2 / sigma1) - 1/2 + (sigma1^2 + (mu1 - mu2)^2) / (2 "
        "sigma2^2). Swapping the roles of p and q gives a different number: KL is not symmetric.",
    )
)


# 5.5 ----------------------------------------------------------------------------------------------------
def laplace_fit(x):
    """Maximum likelihood for p(x) = exp(-|x - mu| / b) / (2 b): mu = the median, b = mean |x - mu|."""
    mu = np.median(x)
    return np.array([mu, np.mean(np.abs(x - mu))])


def _odd_sized_data(rng: np.random.Generator) -> tuple[np.ndarray]:
    n = 2 * int(rng.integers(1, 10)) + 1  # odd: the median is one data point, so mu is unique
    return (rng.laplace(rng.normal() * 3, rng.uniform(0.5, 2), size=n),)


register(
    Exercise(
        key="5.5",
        title="maximum likelihood for the Laplace distribution",
        checker=matches_function(laplace_fit, _odd_sized_data),
        hint="the negative log-likelihood is n log(2b) + sum |x_i - mu| / b. For mu only the sum of "
        "distances matters, and d|x - mu|/dmu is -1 or +1: the slope is zero where as many points lie above "
        "mu as below. Then set the derivative with respect to b to zero.",
        solution=laplace_fit,
        wrong=lambda x: np.array([np.mean(x), np.std(x)]),  # the Gaussian fit: mean and standard deviation
        explanation="d/dmu sum |x_i - mu| = (number of points below mu) - (number above): zero at the "
        "median. d/db [n log(2b) + S / b] = n / b - S / b^2 = 0 gives b = S / n, the mean absolute distance "
        "from the median. The Gaussian's squared distances make the mean the centre; the Laplace's absolute "
        "distances make it the median, which a single wild data point cannot drag far.",
    )
)


# 5.6 ----------------------------------------------------------------------------------------------------
def condition_gaussian(mean, cov, a):
    """N(mean, cov) with its first len(a) coordinates observed to be a: the mean and covariance of the rest.

    mean_b + S_ba S_aa^-1 (a - mean_a)  and  S_bb - S_ba S_aa^-1 S_ab  (the Schur complement).
    """
    k = len(a)
    S_aa, S_ab, S_bb = cov[:k, :k], cov[:k, k:], cov[k:, k:]
    gain = np.linalg.solve(S_aa, S_ab).T  # (d - k, k): S_ba S_aa^-1, as S_aa is symmetric
    return mean[k:] + gain @ (a - mean[:k]), S_bb - gain @ S_ab


def _ignores_the_correlation(mean, cov, a):
    k = len(a)
    return mean[k:], cov[k:, k:]  # the marginal of the rest: as if a told us nothing


def _check_conditional(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = int(rng.integers(2, 6))
        k = int(rng.integers(1, d))
        A = rng.normal(size=(d, d))
        cov = A @ A.T + 0.5 * np.eye(d)  # (d, d) symmetric positive definite
        mean, a = rng.normal(size=d), rng.normal(size=k) * 2
        precision = np.linalg.inv(cov)  # a second route: the conditional's precision is a block of it
        want_cov = np.linalg.inv(precision[k:, k:])
        want_mean = mean[k:] - want_cov @ precision[k:, :k] @ (a - mean[:k])
        got = answer(mean.copy(), cov.copy(), a.copy())
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (mean, cov)"
        got_mean, got_cov = np.asarray(got[0], dtype=float), np.asarray(got[1], dtype=float)
        assert got_mean.shape == (d - k,), f"with d = {d}, k = {k} the mean should have shape ({d - k},)"
        assert got_cov.shape == (d - k, d - k), (
            f"with d = {d}, k = {k} the covariance should be {d - k}x{d - k}"
        )
        assert np.allclose(got_cov, want_cov, atol=1e-8), f"the covariance is wrong (d = {d}, k = {k})"
        assert np.allclose(got_mean, want_mean, atol=1e-8), f"the mean is wrong (d = {d}, k = {k})"


register(
    Exercise(
        key="5.6",
        title="conditioning a Gaussian on several coordinates",
        checker=_check_conditional,
        hint="split mean and cov into blocks: a = the first k coordinates, b = the rest. Section 5.9's "
        "formula has numbers where you need blocks: the division by Sigma_11 becomes a solve with S_aa, and "
        "Sigma_21 becomes the block S_ba.",
        solution=condition_gaussian,
        wrong=_ignores_the_correlation,
    )
)

# 5.7 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="5.7",
        title="predict: the spread of a sum",
        checker=matches_value(5.0, atol=0.01, what="your standard deviation"),
        hint="standard deviations do not add. What adds, for independent variables?",
        solution=5.0,
        wrong=7.0,  # adding the standard deviations
        explanation="For independent X and Y the variances add: Var[X + Y] = 3^2 + 4^2 = 25, so the "
        "standard deviation is 5, not 3 + 4 = 7. Spreads add like the sides of a right-angled triangle: the "
        "two sources of noise partly cancel. Only perfectly correlated variables have standard deviations "
        "that add.",
    )
)
