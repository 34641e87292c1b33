"""The reference solutions of chapter 14's exercises, checked against the library and helpers they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
torch.distributions or with helpers.diffusion (itself tested against Bayes' rule and the papers' algorithms
in tests/test_generative.py) on random inputs: 14.5's step, repeated, must reproduce `ddpm_sample` draw
for draw. The build-it checkers are shown to refuse the helpers they exist to refuse. (14.3 is a
prediction; the notebook asserts the measurement its answer rests on.)
"""

import math

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from helpers import diffusion as dif
from helpers.exercises import check, get, passes


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a shortcut it exists to refuse."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it" in out)


def random_steps(rng, shape=(3, 64)):
    T = int(rng.integers(2, 40))
    betas = rng.uniform(0.0005, 0.3, size=T)
    return betas, int(rng.integers(1, T + 1)), rng.normal(size=shape), rng.normal(size=shape)


def test_14_1_kl_matches_torch_distributions():
    one = torch.ones((), dtype=torch.float64)
    want = kl_divergence(Normal(one, 0.5 * one), Normal(0 * one, one)).item()
    assert math.isclose(get("14.1").solution, want, rel_tol=1e-12)


def test_14_2_reference_is_q_sample_on_the_schedule_the_betas_make():
    rng = np.random.default_rng(0)
    for _ in range(50):
        betas, t, x0, eps = random_steps(rng)
        ours = get("14.2").solution(x0, t, betas, eps)
        schedule = dif.NoiseSchedule(betas)
        want = dif.q_sample(torch.tensor(x0), t, schedule, torch.tensor(eps)).numpy()
        np.testing.assert_allclose(ours, want, atol=1e-5)


def test_14_2_reference_has_the_closed_forms_moments():
    """Mean sqrt(alpha_bar_t) x0 and variance 1 - alpha_bar_t over many eps, alpha_bar from torch.cumprod."""
    rng = np.random.default_rng(1)
    betas, x0 = rng.uniform(0.01, 0.1, size=30), rng.normal(size=(1, 8))
    alpha_bar = torch.cumprod(1 - torch.tensor(betas), 0)[19].item()
    draws = get("14.2").solution(x0, 20, betas, rng.normal(size=(200_000, 8)))
    assert np.allclose(draws.mean(0), math.sqrt(alpha_bar) * x0[0], atol=5 * math.sqrt(1 / 200_000))
    assert np.allclose(draws.var(0), 1 - alpha_bar, rtol=0.02)


def _q_sample_with_the_helper(x0, t, betas, eps):
    schedule = dif.NoiseSchedule(betas)
    return dif.q_sample(torch.tensor(x0), int(t), schedule, torch.tensor(eps)).double().numpy()


def test_14_2_refuses_the_helpers(capsys):
    assert refused("14.2", _q_sample_with_the_helper, capsys)
    assert refused("14.2", dif.q_sample, capsys)
    assert callable(dif.q_sample) and dif.q_sample.__name__ == "q_sample"  # restored after the check


def test_14_4_reference_is_predict_x0():
    rng = np.random.default_rng(2)
    for _ in range(50):
        betas, t, x_t, eps = random_steps(rng)
        schedule = dif.NoiseSchedule(betas)
        alpha_bar_t = schedule.alpha_bar[t].item()
        want = dif.predict_x0(torch.tensor(x_t), torch.tensor(eps), t, schedule).numpy()
        np.testing.assert_allclose(get("14.4").solution(x_t, eps, alpha_bar_t), want, rtol=1e-5, atol=1e-5)


def _predict_x0_with_the_helper(x_t, eps, alpha_bar_t):
    schedule = dif.NoiseSchedule([1 - float(alpha_bar_t)])  # one step whose alpha_bar is the given one
    return dif.predict_x0(torch.tensor(x_t), torch.tensor(eps), 1, schedule).double().numpy()


def test_14_4_refuses_the_helper(capsys):
    assert refused("14.4", _predict_x0_with_the_helper, capsys)


@torch.no_grad()
def test_14_5_reference_step_repeated_is_ddpm_sample_draw_for_draw():
    """x_T, then one step per t with the same z the sampler draws: the sampler's output, to float32."""
    torch.manual_seed(0)
    model = dif.Denoiser(hidden=32, blocks=2).eval()
    step = get("14.5").solution
    for schedule in (dif.linear_schedule(25), dif.cosine_schedule(25)):
        betas = schedule.beta[1:].double().numpy()
        want, _ = dif.ddpm_sample(model, schedule, 4, torch.Generator().manual_seed(3))
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(4, 64, generator=gen).double().numpy()  # x_T, drawn as the sampler draws it
        for t in range(schedule.T, 0, -1):
            eps = model(torch.tensor(x, dtype=torch.float32), torch.full((4,), t)).double().numpy()
            z = torch.randn(4, 64, generator=gen).double().numpy() if t > 1 else np.zeros((4, 64))
            x = step(x, eps, t, betas, z)
        np.testing.assert_allclose(x, want.double().numpy(), atol=2e-4)


def test_14_5_reference_without_clipping_is_the_papers_update():
    """Where the clip is idle, the paper's update:

    x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        betas, t, _, z = random_steps(rng)
        alpha_bar = np.cumprod(1 - betas)
        x0 = rng.uniform(-0.9, 0.9, size=z.shape)  # eps chosen so that x0_hat = x0, inside [-1, 1]
        eps = rng.normal(size=z.shape)
        x_t = np.sqrt(alpha_bar[t - 1]) * x0 + np.sqrt(1 - alpha_bar[t - 1]) * eps
        prev = alpha_bar[t - 2] if t > 1 else 1.0
        sigma = np.sqrt(betas[t - 1] * (1 - prev) / (1 - alpha_bar[t - 1]))
        paper = (x_t - betas[t - 1] / np.sqrt(1 - alpha_bar[t - 1]) * eps) / np.sqrt(
            1 - betas[t - 1]
        ) + sigma * z
        np.testing.assert_allclose(get("14.5").solution(x_t, eps, t, betas, z), paper, rtol=1e-9, atol=1e-9)


def _step_with_the_helpers(x_t, eps, t, betas, z):
    schedule, t = dif.NoiseSchedule(betas), int(t)
    x_t, eps, z = (torch.tensor(a, dtype=torch.float32) for a in (x_t, eps, z))
    x0_hat = dif.predict_x0(x_t, eps, t, schedule).clamp(-1, 1)
    return (dif.posterior_mean(x0_hat, x_t, t, schedule) + schedule.posterior_variance[t].sqrt() * z).numpy()


def test_14_5_refuses_the_helpers_and_the_forward_steps_variance(capsys):
    assert refused("14.5", _step_with_the_helpers, capsys)
    assert not passes("14.5", get("14.5").wrong)  # beta_t instead of the posterior's variance
    assert callable(dif.posterior_mean) and dif.posterior_mean.__name__ == "posterior_mean"
