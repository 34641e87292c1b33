"""Exercises for chapter 14: generative models."""

import math

import numpy as np
import torch

from helpers.diffusion import NoiseSchedule, posterior_mean, predict_x0, q_sample
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register

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
def _steps_and_noise(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    T = int(rng.integers(2, 30))
    shape = (int(rng.integers(1, 4)), 8)
    betas = rng.uniform(0.001, 0.3, size=T)
    return rng.normal(size=shape), np.array(int(rng.integers(1, T + 1))), betas, rng.normal(size=shape)


def _steps_and_noise_and_z(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    x_t, t, betas, eps = _steps_and_noise(rng)
    return x_t, eps, t, betas, rng.normal(size=x_t.shape)


def _q_sample_helper(x0, t, betas, eps):
    """The chapter's own q_sample, on the schedule these betas make (float32 inside, hence atol 1e-5)."""
    x0, eps = torch.as_tensor(x0, dtype=torch.float32), torch.as_tensor(eps, dtype=torch.float32)
    return q_sample(x0, int(t), NoiseSchedule(betas), eps).double().numpy()


def _q_sample(x0, t, betas, eps):
    alpha_bar_t = np.prod(1 - betas[:t])  # (1 - beta_1) ... (1 - beta_t): the signal's variance left
    return np.sqrt(alpha_bar_t) * x0 + np.sqrt(1 - alpha_bar_t) * eps


def _one_step_only(x0, t, betas, eps):
    return np.sqrt(1 - betas[t - 1]) * x0 + np.sqrt(betas[t - 1]) * eps  # q(x_t | x_{t-1}), not q(x_t | x_0)


_FORWARD_BY_HAND = "compute alpha_bar_t from the betas with numpy and write the closed form yourself."
register(
    Exercise(
        key="14.2",
        title="noise a digit t steps at once",
        checker=by_hand(
            matches_function(_q_sample_helper, _steps_and_noise, atol=1e-5),
            {
                "helpers.diffusion.q_sample": _FORWARD_BY_HAND,
                "helpers.diffusion.NoiseSchedule": _FORWARD_BY_HAND,
                "helpers.diffusion.cosine_schedule": _FORWARD_BY_HAND,
                "helpers.diffusion.linear_schedule": _FORWARD_BY_HAND,
            },
        ),
        hint="one step keeps a fraction 1 - beta of the signal's variance, and the next step keeps a "
        "fraction of what is left: alpha_bar_t is the product of (1 - beta_s) for s = 1..t (betas[0] is "
        "beta_1). The weights of x0 and eps are the square roots of alpha_bar_t and 1 - alpha_bar_t.",
        solution=_q_sample,
        wrong=_one_step_only,
        explanation="x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps with alpha_bar_t = "
        "(1 - beta_1)...(1 - beta_t). Fractions of fractions multiply, so t steps collapse into one "
        "Gaussian jump. Using only beta_t is the single step q(x_t | x_{t-1}): right for t = 1 and wrong "
        "after, because it forgets the noise the earlier steps added.",
    )
)


# 14.3 ---------------------------------------------------------------------------------------------------
CHOICES = {
    "a": "about DDPM's score: with all 200 steps nothing is skipped, so nothing is lost",
    "b": "about DDIM's score at 20 or 50 steps: more deterministic steps do not close the gap",
    "c": "clearly above DDPM's score: no noise added means cleaner digits",
}


def _check_choice(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in CHOICES, (
        f"answer with one of the letters {sorted(CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "b", f"not ({picked}): {CHOICES[picked]}. Run the next cell and compare the rows."


register(
    Exercise(
        key="14.3",
        title="DDIM with all the steps (predict, then run)",
        checker=_check_choice,
        hint="DDIM with eta = 0 and DDPM with its fresh noise make the same 200 network runs. If the gap "
        "came from skipping steps, walking every step would close it; what else differs between the two?",
        solution="b",
        wrong="a",  # "the gap is the skipped steps": the common reading of the plateau
        explanation="Deterministic DDIM at 200 steps lands where it did at 20 (about 72% against DDPM's 83%):"
        " the gap is not the steps it skips. What DDPM has and DDIM with eta = 0 lacks is fresh noise at "
        "every step; turn eta up to 1 and the same 200 steps give DDPM's digits, sample for sample. With "
        "only a few steps the noise does not help, because each jump is too large to correct anything.",
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
        checker=by_hand(
            matches_function(_predict_x0, _noisy_images),
            {"helpers.diffusion.predict_x0": "solve the closed form for x0 with numpy yourself."},
        ),
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


# 14.5 ---------------------------------------------------------------------------------------------------
def _ddpm_step_helper(x_t, eps, t, betas, z):
    """The chapter's sampler step: predict_x0, clip, posterior_mean, plus sqrt(posterior variance) z."""
    schedule, t = NoiseSchedule(betas), int(t)
    x_t, eps, z = (torch.as_tensor(a, dtype=torch.float32) for a in (x_t, eps, z))
    x0_hat = predict_x0(x_t, eps, t, schedule).clamp(-1, 1)
    mean = posterior_mean(x0_hat, x_t, t, schedule)
    return (mean + schedule.posterior_variance[t].sqrt() * z).double().numpy()


def _ddpm_step(x_t, eps, t, betas, z):
    alpha_bar = np.cumprod(1 - betas)  # alpha_bar[t - 1] is alpha_bar_t
    ab_t = alpha_bar[t - 1]
    ab_prev = alpha_bar[t - 2] if t > 1 else 1.0  # alpha_bar_0 = 1: no noise yet
    beta_t = betas[t - 1]
    x0_hat = np.clip((x_t - np.sqrt(1 - ab_t) * eps) / np.sqrt(ab_t), -1, 1)  # the guess of the image
    mean = (
        np.sqrt(ab_prev) * beta_t / (1 - ab_t) * x0_hat
        + np.sqrt(1 - beta_t) * (1 - ab_prev) / (1 - ab_t) * x_t
    )
    variance = beta_t * (1 - ab_prev) / (1 - ab_t)  # the posterior's, 0 at t = 1
    return mean + np.sqrt(variance) * z


def _ddpm_step_with_beta_noise(x_t, eps, t, betas, z):
    alpha_bar = np.cumprod(1 - betas)
    ab_t, ab_prev, beta_t = alpha_bar[t - 1], (alpha_bar[t - 2] if t > 1 else 1.0), betas[t - 1]
    x0_hat = np.clip((x_t - np.sqrt(1 - ab_t) * eps) / np.sqrt(ab_t), -1, 1)
    mean = (
        np.sqrt(ab_prev) * beta_t / (1 - ab_t) * x0_hat
        + np.sqrt(1 - beta_t) * (1 - ab_prev) / (1 - ab_t) * x_t
    )
    return mean + np.sqrt(beta_t) * z  # the forward step's variance, not the posterior's


_STEP_BY_HAND = (
    "write the step with numpy: alpha_bar from the betas, x0_hat, the posterior mean and variance."
)
register(
    Exercise(
        key="14.5",
        title="one DDPM step back",
        checker=by_hand(
            matches_function(_ddpm_step_helper, _steps_and_noise_and_z, atol=1e-4),
            {
                "helpers.diffusion.posterior_mean": _STEP_BY_HAND,
                "helpers.diffusion.predict_x0": _STEP_BY_HAND,
                "helpers.diffusion.ddpm_sample": _STEP_BY_HAND,
                "helpers.diffusion.ddim_sample": _STEP_BY_HAND,
                "helpers.diffusion.NoiseSchedule": _STEP_BY_HAND,
            },
        ),
        hint="three moves: guess the image, x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), "
        "clipped to [-1, 1]; the posterior mean, sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0_hat + "
        "sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t; then add sqrt(variance) z with the "
        "posterior's variance beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t). alpha_bar_0 is 1.",
        solution=_ddpm_step,
        wrong=_ddpm_step_with_beta_noise,
        explanation="x_{t-1} = posterior_mean(clip(x0_hat), x_t) + sqrt(beta_tilde_t) z. The noise's "
        "variance is the posterior's, beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), "
        "which is smaller than beta_t and exactly 0 at t = 1, so the last step adds no noise to the "
        "finished image. (The DDPM paper found sigma_t^2 = beta_t works too when sampling from pure noise; "
        "the step this chapter's sampler takes, and the one DDIM with eta = 1 reproduces, is beta_tilde_t.)",
    )
)
