"""Exercises for chapter 5: probability and information."""

import math

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.probability import inverse_cdf_exponential, kl_gaussian

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
def _exponential_inverse_cdf(u, rate):
    """Solve u = 1 - exp(-rate x) for x: x = -log(1 - u) / rate."""
    return -np.log(1 - u) / rate


def _uniforms_and_rate(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    return rng.random(int(rng.integers(1, 8))), float(rng.uniform(0.2, 5.0))


register(
    Exercise(
        key="5.2",
        title="inverse-CDF sampling",
        checker=matches_function(inverse_cdf_exponential, _uniforms_and_rate),
        hint="set u = F(x) = 1 - exp(-rate x) and solve for x: move the exponential to one side, take the "
        "logarithm, divide by -rate.",
        solution=_exponential_inverse_cdf,
        wrong=lambda u, rate: -np.log(1 - u) * rate,  # multiplied by the rate instead of dividing
        explanation="1 - u = exp(-rate x), so log(1 - u) = -rate x and x = -log(1 - u) / rate. A larger "
        "rate means events come sooner, so the waiting times must get shorter: divide by the rate. Feeding "
        "uniform numbers through this function gives exponential samples with mean 1 / rate.",
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
def _kl_normal(mu1, sigma1, mu2, sigma2):
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) in nats."""
    return np.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


def _two_gaussians(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return float(rng.normal()), float(rng.uniform(0.3, 3)), float(rng.normal()), float(rng.uniform(0.3, 3))


register(
    Exercise(
        key="5.4",
        title="KL between two Gaussians",
        checker=matches_function(kl_gaussian, _two_gaussians),
        hint="KL(p || q) = E_p[log p(x) - log q(x)]. Write out the two log-densities; the expectation under "
        "p of (x - mu1)^2 is sigma1^2, and of (x - mu2)^2 is sigma1^2 + (mu1 - mu2)^2. Careful: which sigma "
        "goes in the denominator?",
        solution=_kl_normal,
        wrong=lambda mu1, sigma1, mu2, sigma2: _kl_normal(mu2, sigma2, mu1, sigma1),  # KL(q || p)
        explanation="log p - log q = log(sigma2 / sigma1) - (x - mu1)^2 / (2 sigma1^2) + (x - mu2)^2 / (2 "
        "sigma2^2). Averaging over x ~ p: log(sigma2 / sigma1) - 1/2 + (sigma1^2 + (mu1 - mu2)^2) / (2 "
        "sigma2^2). Swapping the roles of p and q gives a different number: KL is not symmetric.",
    )
)


# 5.5 ----------------------------------------------------------------------------------------------------
def _mle_variance(x):
    """The maximum-likelihood variance: the mean squared distance from the sample mean (divide by n)."""
    return np.mean((x - np.mean(x)) ** 2)


def _some_data(rng: np.random.Generator) -> tuple[np.ndarray]:
    return (rng.normal(rng.normal(), rng.uniform(0.5, 2), size=int(rng.integers(2, 12))),)


register(
    Exercise(
        key="5.5",
        title="the maximum-likelihood variance",
        checker=matches_function(_mle_variance, _some_data),
        hint="set the derivative of the log-likelihood with respect to sigma to zero, with mu at its "
        "maximum, the sample mean. Count carefully what you divide by.",
        solution=_mle_variance,
        wrong=lambda x: np.var(x, ddof=1),  # the unbiased estimate divides by n - 1
        explanation="d/dsigma [-n log sigma - sum (x_i - mu)^2 / (2 sigma^2)] = -n / sigma + sum (x_i - "
        "mu)^2 / sigma^3 = 0 gives sigma^2 = sum (x_i - mean)^2 / n. Dividing by n - 1 instead gives the "
        "unbiased estimate (right on average over many data sets), which is slightly less likely for the "
        "data you have. For large n the two are the same to many digits.",
    )
)
