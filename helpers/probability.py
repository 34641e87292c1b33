"""Chapter 5: probability and information, built from the formulas.

Gaussian densities in one and many dimensions (and their logarithms, which is what code should use),
samplers that turn uniform random numbers into other distributions (inverse-CDF sampling, Box-Muller,
a linear map for correlated Gaussians), maximum-likelihood fits, and the information measures that
training losses are made of: entropy, cross-entropy and KL divergence. torch.distributions does all of
this for real; tests/test_probability.py checks that the two agree on random parameters.
"""

from __future__ import annotations

import math

import numpy as np

LOG_2PI = math.log(2 * math.pi)


# --- checking inputs --------------------------------------------------------------------------------------


def as_rng(rng) -> np.random.Generator:
    """A numpy Generator: pass one, or an int seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def as_count(n, name: str = "n") -> int:
    """n as a non-negative int, or a clear error."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def as_positive(value, name: str) -> np.ndarray:
    """value as a float array whose entries are all positive and finite, or a clear error."""
    value = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(value) & (value > 0)):
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def as_probabilities(p, name: str = "p", atol: float = 1e-6) -> np.ndarray:
    """p as a float array of probabilities along its last axis: non-negative and summing to 1."""
    p = np.asarray(p, dtype=float)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError(f"{name} must be a list of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be non-negative and finite, got {p}")
    totals = p.sum(axis=-1)
    if not np.allclose(totals, 1.0, rtol=0, atol=atol):
        raise ValueError(f"{name} must sum to 1 along its last axis, but sums to {totals}")
    return p


def as_covariance(cov, d: int | None = None) -> np.ndarray:
    """cov as a (d, d) symmetric positive-definite matrix, or a clear error saying what is wrong."""
    cov = np.asarray(cov, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"a covariance matrix must be square, got shape {cov.shape}")
    if d is not None and cov.shape[0] != d:
        raise ValueError(f"the mean has {d} entries, so the covariance must be {d}x{d}, got {cov.shape}")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
        raise ValueError("a covariance matrix must be symmetric")
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise ValueError(
            "a covariance matrix must be positive definite (every variance along every axis > 0)"
        )
    return cov


# --- Gaussian densities -----------------------------------------------------------------------------------


def gaussian_logpdf(x, mu=0.0, sigma=1.0) -> np.ndarray:
    """log N(x | mu, sigma^2) = -(x - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2, elementwise."""
    sigma = as_positive(sigma, "sigma")
    z = (np.asarray(x, dtype=float) - mu) / sigma  # how many sigmas from the mean
    return -0.5 * z**2 - np.log(sigma) - 0.5 * LOG_2PI


def gaussian_pdf(x, mu=0.0, sigma=1.0) -> np.ndarray:
    """N(x | mu, sigma^2) = exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi)), elementwise."""
    return np.exp(gaussian_logpdf(x, mu, sigma))


def mvn_logpdf(x, mean, cov) -> np.ndarray:
    """log N(x | mean, cov) for points x of shape (..., d):
    -(x - mean)^T cov^-1 (x - mean) / 2 - log det(2 pi cov) / 2."""
    mean = np.asarray(mean, dtype=float)
    if mean.ndim != 1:
        raise ValueError(f"the mean must be a vector, got shape {mean.shape}")
    d = mean.shape[0]
    cov = as_covariance(cov, d)
    x = np.asarray(x, dtype=float)
    if x.shape[-1:] != (d,):
        raise ValueError(f"points must have {d} coordinates in their last axis, got shape {x.shape}")
    diff = (x - mean).reshape(-1, d)  # (N, d)
    solved = np.linalg.solve(cov, diff.T).T  # (N, d): cov^-1 (x - mean) for every point
    mahalanobis = np.sum(diff * solved, axis=1)  # (N,): squared distance in units of the covariance
    _, logdet = np.linalg.slogdet(cov)
    return (-0.5 * (mahalanobis + logdet + d * LOG_2PI)).reshape(x.shape[:-1])


def mvn_pdf(x, mean, cov) -> np.ndarray:
    """N(x | mean, cov) for points x of shape (..., d)."""
    return np.exp(mvn_logpdf(x, mean, cov))


def normal_cdf(x, mu=0.0, sigma=1.0) -> np.ndarray:
    """P(X <= x) for X ~ N(mu, sigma^2), through the error function: (1 + erf(z / sqrt 2)) / 2."""
    sigma = as_positive(sigma, "sigma")
    z = (np.asarray(x, dtype=float) - mu) / sigma
    return 0.5 * (1 + np.vectorize(math.erf, otypes=[float])(z / math.sqrt(2)))


# --- samplers: everything from uniform numbers ------------------------------------------------------------


def inverse_cdf_exponential(u, rate=1.0) -> np.ndarray:
    """F^-1(u) for the exponential distribution, whose CDF is F(x) = 1 - exp(-rate x)."""
    rate = as_positive(rate, "rate")
    return -np.log1p(-np.asarray(u, dtype=float)) / rate


def sample_exponential(n, rate=1.0, rng=0) -> np.ndarray:
    """n exponential samples by inverse-CDF sampling: push uniform numbers through F^-1."""
    u = as_rng(rng).random(as_count(n))  # (n,) uniform on [0, 1)
    return inverse_cdf_exponential(u, rate)


def sample_discrete(probs, n, rng=0) -> np.ndarray:
    """n draws of an index i with probability probs[i]: the first i whose cumulative probability
    exceeds a uniform u (inverse-CDF sampling for a list of outcomes; how a language model samples)."""
    probs = as_probabilities(probs, "probs")
    if probs.ndim != 1:
        raise ValueError(f"probs must be one list of probabilities, got shape {probs.shape}")
    cdf = np.cumsum(probs)  # (k,)
    u = as_rng(rng).random(as_count(n)) * cdf[-1]  # (n,); scaled so rounding in the sum cannot overflow
    return np.searchsorted(cdf, u, side="right")  # (n,) indices in 0..k-1


def box_muller(n, rng=0) -> np.ndarray:
    """n standard normal samples from uniform ones: radius sqrt(-2 log u1), angle 2 pi u2, and the two
    coordinates of that point are two independent N(0, 1) numbers."""
    n = as_count(n)
    pairs = (n + 1) // 2
    generator = as_rng(rng)
    u1 = 1.0 - generator.random(pairs)  # (pairs,) in (0, 1]: log(u1) stays finite
    u2 = generator.random(pairs)  # (pairs,)
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]


def sample_gaussian(n, mu=0.0, sigma=1.0, rng=0) -> np.ndarray:
    """n samples of N(mu, sigma^2): shift and stretch standard normals, mu + sigma z."""
    sigma = as_positive(sigma, "sigma")
    return mu + sigma * box_muller(n, rng)


def sample_mvn(n, mean, cov, rng=0) -> np.ndarray:
    """n samples of N(mean, cov) as rows, shape (n, d): x = mean + L z with z standard normal and
    L L^T = cov (the Cholesky factor), because the covariance of L z is L L^T."""
    mean = np.asarray(mean, dtype=float)
    if mean.ndim != 1:
        raise ValueError(f"the mean must be a vector, got shape {mean.shape}")
    cov = as_covariance(cov, mean.shape[0])
    L = np.linalg.cholesky(cov)  # (d, d), lower triangular
    z = box_muller(as_count(n) * mean.shape[0], rng).reshape(n, mean.shape[0])  # (n, d)
    return mean + z @ L.T  # (n, d): each row is mean + L z


def covariance_axes(cov) -> tuple[np.ndarray, np.ndarray]:
    """The axes of a Gaussian's elliptical contours: eigenvalues (variances along the axes, largest
    first) and unit eigenvectors as the columns of a matrix, each with its largest entry positive."""
    cov = as_covariance(cov)
    variances, axes = np.linalg.eigh(cov)  # ascending
    variances, axes = variances[::-1], axes[:, ::-1]
    biggest = np.argmax(np.abs(axes), axis=0)  # an axis has no direction: make its largest entry positive
    return variances, axes * np.sign(axes[biggest, np.arange(axes.shape[1])])


def gaussian_2d(mean_x, mean_y, std_x, std_y, rho) -> tuple[np.ndarray, np.ndarray]:
    """The mean and covariance of a 2-D Gaussian from its two means, two standard deviations and the
    correlation rho in (-1, 1): cov = [[sx^2, rho sx sy], [rho sx sy, sy^2]]."""
    std_x, std_y = float(as_positive(std_x, "std_x")), float(as_positive(std_y, "std_y"))
    if not -1 < rho < 1:
        raise ValueError(f"the correlation rho must be strictly between -1 and 1, got {rho}")
    cov = np.array([[std_x**2, rho * std_x * std_y], [rho * std_x * std_y, std_y**2]])
    return np.array([mean_x, mean_y], dtype=float), cov


def gaussian_2d_picture(mean_x, mean_y, std_x, std_y, rho, n=400, seed=0, half_width=5.0, points=81):
    """Everything the 2-D Gaussian slider draws, as numbers: the density on a grid, n samples (the same
    underlying standard normals for every setting, so moving a slider moves the cloud smoothly), the
    contour axes, and the sample covariance."""
    mean, cov = gaussian_2d(mean_x, mean_y, std_x, std_y, rho)
    ticks = np.linspace(-half_width, half_width, points)
    grid_x, grid_y = np.meshgrid(ticks, ticks)  # (points, points) each
    density = mvn_pdf(np.stack([grid_x, grid_y], axis=-1), mean, cov)  # (points, points)
    samples = sample_mvn(n, mean, cov, rng=seed)  # (n, 2)
    variances, axes = covariance_axes(cov)
    return {
        "mean": mean,
        "cov": cov,
        "grid_x": grid_x,
        "grid_y": grid_y,
        "density": density,
        "samples": samples,
        "axis_variances": variances,
        "axes": axes,
        "sample_mean": samples.mean(axis=0),
        "sample_cov": np.cov(samples.T, bias=True),
    }


# --- maximum likelihood -----------------------------------------------------------------------------------


def gaussian_log_likelihood(x, mu, sigma) -> float:
    """log of the probability density of all of x under N(mu, sigma^2): a sum of log-densities."""
    return float(np.sum(gaussian_logpdf(x, mu, sigma)))


def mle_gaussian(x) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Maximum-likelihood Gaussian for data x: (mean, variance) for x of shape (n,), (mean, covariance)
    for x of shape (n, d). The estimates divide by n, not n - 1: that is what maximises the likelihood."""
    x = np.asarray(x, dtype=float)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"x must be n samples, shape (n,) or (n, d) with n >= 1, got shape {x.shape}")
    n = x.shape[0]
    mean = x.sum(axis=0) / n  # () or (d,)
    diff = x - mean  # (n,) or (n, d)
    if x.ndim == 1:
        return float(mean), float(diff @ diff / n)
    return mean, diff.T @ diff / n  # (d,), (d, d)


# --- Bayes' rule ------------------------------------------------------------------------------------------


def posterior(prior, likelihood) -> np.ndarray:
    """Bayes' rule over a list of hypotheses: P(h | data) = P(data | h) P(h) / sum_h' P(data | h') P(h')."""
    prior = as_probabilities(prior, "prior")
    likelihood = np.asarray(likelihood, dtype=float)
    if likelihood.shape != prior.shape or np.any(likelihood < 0) or np.any(likelihood > 1):
        raise ValueError(f"likelihood must be probabilities of the shape of the prior {prior.shape}")
    joint = prior * likelihood  # P(h and data)
    evidence = joint.sum(axis=-1, keepdims=True)  # P(data)
    if np.any(evidence == 0):
        raise ValueError("the data has probability 0 under every hypothesis")
    return joint / evidence


# --- information ------------------------------------------------------------------------------------------


def entropy(p, base=2.0) -> np.ndarray:
    """H(p) = -sum_i p_i log p_i along the last axis (0 log 0 = 0): in bits for base 2, nats for base e."""
    p = as_probabilities(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1) / math.log(base)


def cross_entropy(p, q, base=2.0) -> np.ndarray:
    """H(p, q) = -sum_i p_i log q_i: the average code length when data from p is coded for q.
    Infinite where q gives probability 0 to an outcome that p allows."""
    p, q = as_probabilities(p, "p"), as_probabilities(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(q), 0.0)
    return terms.sum(axis=-1) / math.log(base)


def kl_divergence(p, q, base=2.0) -> np.ndarray:
    """KL(p || q) = sum_i p_i log(p_i / q_i) = H(p, q) - H(p): the extra code length for coding p's data
    with q's code. Zero only when p = q; not symmetric in p and q."""
    p, q = as_probabilities(p, "p"), as_probabilities(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1) / math.log(base)


def kl_gaussian(mu1, sigma1, mu2, sigma2) -> np.ndarray:
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) in nats, in closed form:
    log(sigma2 / sigma1) + (sigma1^2 + (mu1 - mu2)^2) / (2 sigma2^2) - 1/2."""
    sigma1, sigma2 = as_positive(sigma1, "sigma1"), as_positive(sigma2, "sigma2")
    return np.log(sigma2 / sigma1) + (sigma1**2 + (np.asarray(mu1) - mu2) ** 2) / (2 * sigma2**2) - 0.5
