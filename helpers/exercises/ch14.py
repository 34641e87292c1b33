"""Exercises for chapter 14: generative models."""

import math

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 14.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="14.1",
        title="a KL divergence by hand",
        checker=matches_value(0.5 * (1.0 + 0.25 - 1.0 - math.log(0.25)), atol=1e-3, what="the KL"),
        hint="per latent number, KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - ln sigma^2). "
        "The formula wants the variance sigma^2, and the standard deviation here is 0.5.",
        solution=0.5 * (1.0**2 + 0.5**2 - 1.0 - math.log(0.5**2)),
        wrong=0.5 * (1.0**2 + 0.5 - 1.0 - math.log(0.5)),  # puts the standard deviation where sigma^2 goes
        explanation="mu = 1 and sigma^2 = 0.25: 1/2 (1 + 0.25 - 1 - ln 0.25) = 1/2 (0.25 + 1.386) = 0.818 "
        "nats. The mu^2 term charges the encoder for moving the code away from 0, and sigma^2 - 1 - ln "
        "sigma^2 (zero only at sigma = 1) for making it narrower or wider than the prior.",
    )
)


# 14.2 ---------------------------------------------------------------------------------------------------
def _alpha_bar(betas):
    return np.cumprod(1 - betas)


def _betas(rng: np.random.Generator) -> tuple[np.ndarray]:
    return (rng.uniform(0.001, 0.3, size=int(rng.integers(1, 30))),)


def _adds_the_noise(betas):
    return 1 - np.cumsum(betas)  # right for one step, and close while the betas are tiny


register(
    Exercise(
        key="14.2",
        title="the signal left after t steps",
        checker=matches_function(_alpha_bar, _betas),
        hint="one step keeps a fraction alpha_t = 1 - beta_t of the signal's variance, and the next step "
        "keeps a fraction of what is left. Fractions of fractions multiply: np.cumprod.",
        solution=_alpha_bar,
        wrong=_adds_the_noise,
        explanation="alpha_bar_t = (1 - beta_1)(1 - beta_2)...(1 - beta_t), the running product, which "
        "np.cumprod(1 - betas) gives for every t at once. Subtracting the betas, 1 - (beta_1 + ... + "
        "beta_t), agrees while the betas are tiny but soon goes negative, which no fraction can be.",
    )
)


# 14.3 ---------------------------------------------------------------------------------------------------
def _reparameterize(mu, logvar, eps):
    return mu + np.exp(0.5 * logvar) * eps


def _codes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
    return rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape)


def _variance_as_scale(mu, logvar, eps):
    return mu + np.exp(logvar) * eps  # scales the noise by sigma^2 instead of sigma


register(
    Exercise(
        key="14.3",
        title="the reparameterisation trick",
        checker=matches_function(_reparameterize, _codes),
        hint="the encoder gives the log of the variance, log sigma^2. You need sigma itself to scale a "
        "standard normal eps: sigma = exp(log sigma^2 / 2).",
        solution=_reparameterize,
        wrong=_variance_as_scale,
        explanation="z = mu + sigma * eps with sigma = exp(logvar / 2). If eps ~ N(0, 1), then z ~ N(mu, "
        "sigma^2), and z is a plain differentiable function of mu and logvar, so backpropagation reaches "
        "the encoder. Scaling by exp(logvar) = sigma^2 gives the wrong spread whenever sigma is not 1.",
    )
)


# 14.4 ---------------------------------------------------------------------------------------------------
def _predict_x0(x_t, eps, alpha_bar_t):
    return (x_t - np.sqrt(1 - alpha_bar_t) * eps) / np.sqrt(alpha_bar_t)


def _noisy_images(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = (int(rng.integers(1, 4)), 64)
    return rng.normal(size=shape), rng.normal(size=shape), np.array(rng.uniform(0.01, 0.99))


def _forgets_the_square_roots(x_t, eps, alpha_bar_t):
    return (x_t - (1 - alpha_bar_t) * eps) / alpha_bar_t  # uses the variances as if they were the weights


register(
    Exercise(
        key="14.4",
        title="from predicted noise back to the image",
        checker=matches_function(_predict_x0, _noisy_images),
        hint="start from x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps and solve for x0: subtract "
        "the noise term, then divide by the signal's weight.",
        solution=_predict_x0,
        wrong=_forgets_the_square_roots,
        explanation="x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t). The weights in q_sample "
        "are square roots because they scale standard deviations, while alpha_bar_t and 1 - alpha_bar_t "
        "are the variances they leave. With the network's guess of eps in place of the true eps, this "
        "is the denoiser's guess of the clean digit, the x0_hat of both samplers.",
    )
)
