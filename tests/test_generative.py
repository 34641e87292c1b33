"""Chapter 14's generative models: the forward process's closed form against t single steps (in
distribution) and against its own recursion; the VAE's KL against torch.distributions and chapter 5; the
reparameterisation trick's samples and gradients; the samplers' shapes and determinism; DDIM's eta (1 on
every step is DDPM, sample for sample); the class-conditional Denoiser, label dropout and classifier-free
guidance against their formulas; training lowers each loss; the two sliders moved headless; clear errors."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from helpers import autoencoders as ae
from helpers import diffusion as dif
from helpers import generative as g
from helpers.data import sha256_of
from helpers.digits import load_digits_split
from helpers.probability import kl_gaussian
from helpers.train import History

warnings.filterwarnings("ignore", message=".*non-interactive.*")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the forward process ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [dif.linear_schedule, dif.cosine_schedule])
@pytest.mark.parametrize("T", [1, 10, 200])
def test_schedule_matches_its_definitions(make, T):
    schedule = make(T)
    beta = schedule.beta.double().numpy()
    assert beta.shape == (T + 1,) and beta[0] == 0 and np.all((beta[1:] > 0) & (beta[1:] < 1))
    alpha_bar = np.cumprod(1 - beta)  # numpy's own cumulative product
    np.testing.assert_allclose(schedule.alpha_bar.double().numpy(), alpha_bar, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(schedule.alpha.double().numpy(), 1 - beta, rtol=1e-6, atol=1e-7)
    posterior = beta[1:] * (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:])  # alpha_bar[:-1] is alpha_bar_{t-1}
    np.testing.assert_allclose(
        schedule.posterior_variance[1:].double().numpy(), posterior, rtol=1e-5, atol=1e-12
    )
    if T == 200:
        assert alpha_bar[-1] < 1e-3, "the last step should be almost pure noise"


def test_linear_schedule_rescales_the_ddpm_betas():
    schedule = dif.linear_schedule(1000)
    assert math.isclose(float(schedule.beta[1]), 1e-4, rel_tol=1e-5)
    assert math.isclose(float(schedule.beta[-1]), 0.02, rel_tol=1e-5)
    short = dif.linear_schedule(100)
    assert math.isclose(float(short.beta[-1]), 0.2, rel_tol=1e-5)


@pytest.mark.parametrize("make", [dif.linear_schedule, dif.cosine_schedule])
def test_closed_form_is_the_recursion_of_mean_and_variance(make):
    """Exactly: if x_{t-1} has mean m x0 and variance v, one step gives mean sqrt(1 - beta) m x0 and
    variance (1 - beta) v + beta; after t steps that must be sqrt(alpha_bar_t) x0 and 1 - alpha_bar_t."""
    schedule = make(200)
    beta = schedule.beta.double().numpy()
    m, v = 1.0, 0.0
    for t in range(1, schedule.T + 1):
        m, v = math.sqrt(1 - beta[t]) * m, (1 - beta[t]) * v + beta[t]
        assert math.isclose(m, math.sqrt(schedule.alpha_bar[t]), rel_tol=1e-5, abs_tol=1e-7)
        assert math.isclose(v, 1 - float(schedule.alpha_bar[t]), rel_tol=1e-5, abs_tol=1e-7)


@pytest.mark.parametrize("t", [1, 5, 40, 120, 200])
def test_closed_form_matches_t_single_steps_in_distribution(t):
    """Noise a fixed image t times one step at a time, and once with q_sample, N times each: both
    sample means and variances must agree with sqrt(alpha_bar_t) x0 and 1 - alpha_bar_t within five
    standard errors (a correct pair fails this about once in a million runs per pixel)."""
    schedule = dif.linear_schedule(200)
    N, gen = 20_000, generator(t)
    x0 = torch.linspace(-1, 1, 8).repeat(N, 1)  # (N, 8): the same 8-pixel image N times
    stepped = x0.clone()
    for step in range(1, t + 1):
        stepped = dif.noise_step(stepped, step, schedule, torch.randn(x0.shape, generator=gen))
    jumped = dif.q_sample(x0, t, schedule, torch.randn(x0.shape, generator=gen))
    alpha_bar = float(schedule.alpha_bar[t])
    mean, var = math.sqrt(alpha_bar) * x0[0], 1 - alpha_bar  # (8,), a number
    mean_se = math.sqrt(var / N)  # standard error of a sample mean
    var_se = var * math.sqrt(2 / (N - 1))  # standard error of a Gaussian sample variance
    for samples in (stepped, jumped):
        assert torch.all((samples.mean(0) - mean).abs() < 5 * mean_se)
        assert torch.all((samples.var(0) - var).abs() < 5 * var_se)
        corr = torch.corrcoef(samples[:, :2].T)[0, 1]  # pixels get independent noise
        assert abs(corr) < 5 / math.sqrt(N)


def test_closed_form_with_zero_noise_and_one_t_per_row():
    schedule = dif.linear_schedule(50)
    x0 = torch.randn(4, 64, generator=generator(0))
    t = torch.tensor([0, 1, 25, 50])
    x_t = dif.q_sample(x0, t, schedule, torch.zeros_like(x0))
    for row in range(4):
        torch.testing.assert_close(x_t[row], schedule.alpha_bar[t[row]].sqrt() * x0[row])
    torch.testing.assert_close(dif.q_sample(x0, 0, schedule, torch.randn_like(x0)), x0)  # t = 0: no noise


def test_predict_x0_undoes_q_sample():
    schedule = dif.cosine_schedule(100)
    x0, eps = torch.randn(6, 64, generator=generator(1)), torch.randn(6, 64, generator=generator(2))
    t = torch.tensor([1, 10, 30, 50, 70, 90])
    x_t = dif.q_sample(x0, t, schedule, eps)
    torch.testing.assert_close(dif.predict_x0(x_t, eps, t, schedule), x0, atol=1e-4, rtol=1e-4)


def test_schedule_to_a_device_copies_the_numbers():
    schedule = dif.cosine_schedule(30)
    moved = schedule.to("cpu")
    assert moved is not schedule and moved.T == schedule.T
    for name in ("beta", "alpha", "alpha_bar", "posterior_variance"):
        assert torch.equal(getattr(moved, name), getattr(schedule, name))


def test_random_numbers_come_from_the_generator_whatever_the_device():
    want = torch.randn(3, 4, generator=generator(26))
    torch.testing.assert_close(g.randn((3, 4), generator(26), "cpu"), want, rtol=0, atol=0)
    steps = g.randint(7, (1000,), generator(27))
    assert steps.min() == 1 and steps.max() == 7  # 1..T, never 0
    assert g.randn((2, 2)).shape == (2, 2) and g.randint(3, (5,)).shape == (5,)


def test_pixel_ranges_round_trip():
    x = torch.rand(5, 64, generator=generator(3))
    signed = dif.to_signed(x)
    assert signed.min() >= -1 and signed.max() <= 1
    torch.testing.assert_close(dif.to_unit(signed), x)
    assert dif.to_unit(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 1.0]


# --- the VAE ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_gaussian_kl_matches_torch_distributions_and_chapter_5(seed):
    gen = generator(seed)
    mu = 2 * torch.randn(7, 3, generator=gen, dtype=torch.float64)  # (B, k)
    logvar = 2 * torch.randn(7, 3, generator=gen, dtype=torch.float64)  # (B, k)
    ours = ae.gaussian_kl(mu, logvar)  # (B,)
    torch_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(ours, torch_kl)
    chapter5 = kl_gaussian(mu.numpy(), (0.5 * logvar).exp().numpy(), 0.0, 1.0).sum(-1)
    np.testing.assert_allclose(ours.numpy(), chapter5, rtol=1e-10)
    assert torch.all(ours >= 0)
    assert ae.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0  # q = prior: KL is zero


def test_gaussian_kl_gradient_matches_the_formula():
    mu = torch.randn(4, 2, generator=generator(4), requires_grad=True)
    logvar = torch.randn(4, 2, generator=generator(5), requires_grad=True)
    ae.gaussian_kl(mu, logvar).sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach())  # d/dmu of mu^2 / 2
    torch.testing.assert_close(logvar.grad, 0.5 * (logvar.detach().exp() - 1))


def test_reparameterized_samples_have_the_right_mean_and_std():
    N = 40_000
    mu = torch.tensor([[-2.0, 0.0, 3.0]]).expand(N, 3)  # (N, 3)
    std = torch.tensor([0.5, 1.0, 2.0])
    z = ae.reparameterize(mu, (2 * std.log()).expand(N, 3), generator(6))  # (N, 3)
    assert torch.all((z.mean(0) - mu[0]).abs() < 5 * std / math.sqrt(N))
    assert torch.all((z.std(0) - std).abs() < 5 * std / math.sqrt(2 * (N - 1)))
    assert abs(torch.corrcoef(z.T)[0, 1]) < 5 / math.sqrt(N)


def test_reparameterize_is_torch_distributions_rsample():
    mu = torch.randn(4, 3, generator=generator(28), dtype=torch.float64)
    logvar = torch.randn(4, 3, generator=generator(29), dtype=torch.float64)
    torch.manual_seed(5)
    ours = ae.reparameterize(mu, logvar)  # no generator: torch's global random state, like rsample
    torch.manual_seed(5)
    theirs = Normal(mu, (0.5 * logvar).exp()).rsample()
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_reparameterized_gradients_flow_to_mu_and_logvar():
    mu = torch.randn(3, 2, generator=generator(7), requires_grad=True)
    logvar = torch.randn(3, 2, generator=generator(8), requires_grad=True)
    z = ae.reparameterize(mu, logvar, generator(9))
    eps = (z - mu) / (0.5 * logvar).exp()  # the noise that was drawn
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar).exp() * eps.detach())  # dz/dlogvar


def test_vae_loss_is_bernoulli_likelihood_plus_kl():
    torch.manual_seed(0)
    model = ae.VAE(latent=3, hidden=(16,))
    x = torch.bernoulli(torch.full((5, 64), 0.3), generator=generator(10))  # binary pixels
    loss, parts = ae.vae_loss(model, x, generator(11))
    logits, mu, logvar = model(x, generator(11))  # the same z, drawn from the same generator state
    reconstruction = -Bernoulli(logits=logits).log_prob(x).sum(-1)  # (B,)
    kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)  # (B,)
    torch.testing.assert_close(loss, (reconstruction + kl).mean())
    assert math.isclose(parts["reconstruction"], reconstruction.mean().item(), rel_tol=1e-5)
    assert math.isclose(parts["kl"], kl.mean().item(), rel_tol=1e-5)
    loss0, _ = ae.vae_loss(model, x, generator(11), beta=0.0)
    torch.testing.assert_close(loss0, reconstruction.mean())


def test_model_shapes():
    x = torch.rand(5, 64, generator=generator(12))
    autoencoder = ae.Autoencoder(latent=2, hidden=(32,))
    assert autoencoder.encode(x).shape == (5, 2) and autoencoder(x).shape == (5, 64)
    assert 0 <= autoencoder(x).min() and autoencoder(x).max() <= 1
    vae = ae.VAE(latent=4, hidden=(32,))
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, 4)
    logits, mu, logvar = vae(x)
    assert logits.shape == (5, 64) and mu.shape == (5, 4)
    assert vae.decode(mu).shape == (5, 64) and vae.sample(3).shape == (3, 64)
    denoiser = dif.Denoiser(hidden=32, blocks=2)
    assert denoiser(x, torch.arange(5)).shape == (5, 64)
    assert dif.time_embedding(torch.arange(5), 8).shape == (5, 8)
    torch.testing.assert_close(dif.time_embedding(torch.zeros(1), 4), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))


def test_interpolation_and_latent_grid():
    z0, z1 = torch.tensor([0.0, 1.0]), torch.tensor([2.0, -1.0])
    line = ae.interpolate(z0, z1, 5)
    assert line.shape == (5, 2)
    torch.testing.assert_close(line[0], z0)
    torch.testing.assert_close(line[-1], z1)
    torch.testing.assert_close(line[2], (z0 + z1) / 2)
    grid = ae.latent_grid(lambda z: z[:, :1].repeat(1, 64) / 10 + 0.5, lim=2.0, n=3)  # brightness = z1
    assert grid.shape == (24, 24)
    assert grid[0, 0] < grid[0, 8] < grid[0, 16]  # z1 grows from left to right
    flat = ae.latent_grid(lambda z: z[:, 1:].repeat(1, 64) / 10 + 0.5, lim=2.0, n=3)  # brightness = z2
    assert flat[0, 0] > flat[8, 0] > flat[16, 0]  # z2 is largest in the top row


# --- the samplers ----------------------------------------------------------------------------------------
def small_denoiser() -> dif.Denoiser:
    torch.manual_seed(0)
    return dif.Denoiser(hidden=32, blocks=2).eval()


def test_ddpm_sampler_shapes_and_kept_steps():
    schedule = dif.linear_schedule(20)
    x, kept = dif.ddpm_sample(small_denoiser(), schedule, 6, generator(13), keep=(20, 10, 0))
    assert x.shape == (6, 64) and sorted(kept) == [0, 10, 20]
    torch.testing.assert_close(kept[0], x)
    assert all(v.shape == (6, 64) for v in kept.values())


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "vae"])
def test_samplers_are_deterministic_given_a_generator(sampler):
    schedule, model = dif.cosine_schedule(30), small_denoiser()
    vae = ae.VAE(latent=2, hidden=(16,))
    draw = {
        "ddpm": lambda gen: dif.ddpm_sample(model, schedule, 4, gen)[0],
        "ddim": lambda gen: dif.ddim_sample(model, schedule, 4, 10, gen),
        "vae": lambda gen: vae.sample(4, gen),
    }[sampler]
    first, again, other = draw(generator(0)), draw(generator(0)), draw(generator(1))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert (first - other).abs().max() > 1e-3


def test_ddpm_step_is_the_posterior_mean_of_the_predicted_x0():
    """The sampler's mean, written with eps, equals the mean of q(x_{t-1} | x_t, x0) at x0 = predict_x0."""
    schedule = dif.linear_schedule(50)
    x_t, eps = torch.randn(3, 64, generator=generator(14)), torch.randn(3, 64, generator=generator(15))
    for t in (2, 25, 50):
        beta, alpha, ab, ab_prev = (
            schedule.beta[t],
            schedule.alpha[t],
            schedule.alpha_bar[t],
            schedule.alpha_bar[t - 1],
        )
        eps_form = (x_t - beta / (1 - ab).sqrt() * eps) / alpha.sqrt()
        x0 = dif.predict_x0(x_t, eps, t, schedule)
        posterior_mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
        torch.testing.assert_close(eps_form, posterior_mean, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("t", [1, 2, 17, 50])
def test_posterior_is_bayes_rule_for_the_two_gaussians(t):
    """q(x_{t-1} | x_t, x0) is proportional to q(x_{t-1} | x0) q(x_t | x_{t-1}): a product of two Gaussians
    in x_{t-1}, N(a x0, u) and N(x_t / c, beta / c^2) with a = sqrt(alpha_bar_{t-1}), u = 1 - a^2,
    c = sqrt(alpha_t). Precisions add, and the mean is the precision-weighted average of the two means."""
    schedule = dif.linear_schedule(50)
    beta, ab_prev = schedule.beta.double()[t], schedule.alpha_bar.double()[t - 1]
    a, u, c = ab_prev.sqrt(), 1 - ab_prev, (1 - beta).sqrt()
    x0 = torch.randn(4, 64, generator=generator(20), dtype=torch.float64)
    x_t = torch.randn(4, 64, generator=generator(21), dtype=torch.float64)
    precision = (1 / u if t > 1 else math.inf) + c**2 / beta  # at t = 1, x_{t-1} = x0 exactly: u = 0
    mean = x0 if t == 1 else (a * x0 / u + c * x_t / beta) / precision
    torch.testing.assert_close(dif.posterior_mean(x0, x_t, t, schedule), mean, rtol=1e-5, atol=1e-5)
    # 1e-3: the schedule stores float32, and 1 - alpha_bar_{t-1} loses digits when alpha_bar is near 1
    assert math.isclose(float(schedule.posterior_variance[t]), 1 / precision, rel_tol=1e-3, abs_tol=1e-9)


def test_posterior_matches_regression_on_simulated_pairs():
    """Simulate (x_{t-1}, x_t) from the forward process for one fixed x0 and regress x_{t-1} on x_t: for
    jointly Gaussian numbers the conditional mean is that straight line and the conditional variance the
    residual variance. Both must match posterior_mean and posterior_variance."""
    schedule, t, N = dif.cosine_schedule(40), 12, 400_000
    gen = generator(22)
    x0 = torch.full((N, 1), 0.7, dtype=torch.float64)
    ab_prev = schedule.alpha_bar.double()[t - 1]
    x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * torch.randn(
        N, 1, generator=gen, dtype=torch.float64
    )
    beta = schedule.beta.double()[t]
    x_t = (1 - beta).sqrt() * x_prev + beta.sqrt() * torch.randn(N, 1, generator=gen, dtype=torch.float64)
    design = torch.cat([torch.ones_like(x_t), x_t], dim=1)  # (N, 2): intercept and slope
    coef = torch.linalg.lstsq(design, x_prev).solution  # (2, 1)
    residual_var = (x_prev - design @ coef).var()
    probe = torch.tensor([[-1.0], [0.0], [1.5]], dtype=torch.float64)  # three values of x_t
    want = dif.posterior_mean(torch.full_like(probe, 0.7), probe, t, schedule)
    got = coef[0] + coef[1] * probe
    torch.testing.assert_close(got, want, atol=5e-3, rtol=0)
    assert math.isclose(residual_var.item(), float(schedule.posterior_variance[t]), rel_tol=0.02)


def reference_ddpm(model, schedule, n, gen):
    """Algorithm 2 of the DDPM paper (Ho et al., 2020), line by line, with sigma_t^2 = posterior variance."""
    x = torch.randn(n, 64, generator=gen)
    for t in range(schedule.T, 0, -1):
        z = torch.randn(n, 64, generator=gen) if t > 1 else torch.zeros(n, 64)
        beta, alpha, ab = schedule.beta[t], schedule.alpha[t], schedule.alpha_bar[t]
        eps = model(x, torch.full((n,), t))
        x = (x - beta / (1 - ab).sqrt() * eps) / alpha.sqrt() + schedule.posterior_variance[t].sqrt() * z
    return x


def reference_ddim(model, schedule, n, steps, gen):
    """Equation 12 of the DDIM paper (Song et al., 2021) with sigma = 0, on the steps T, ..., 0."""
    x = torch.randn(n, 64, generator=gen)
    times = np.round(np.linspace(schedule.T, 0, steps + 1)).astype(int)
    for t, s in zip(times[:-1], times[1:], strict=True):
        ab_t, ab_s = schedule.alpha_bar[t], schedule.alpha_bar[s]
        eps = model(x, torch.full((n,), int(t)))
        x = ab_s.sqrt() * (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt() + (1 - ab_s).sqrt() * eps
    return x


@torch.no_grad()
def test_samplers_without_clipping_are_the_papers_algorithms():
    model = small_denoiser()
    for schedule in (dif.linear_schedule(25), dif.cosine_schedule(25)):
        # the sampler draws x_T, then one z per step from T to 2, in the same order as the reference
        ours, _ = dif.ddpm_sample(model, schedule, 5, generator(23), clip=False)
        torch.testing.assert_close(
            ours, reference_ddpm(model, schedule, 5, generator(23)), rtol=1e-4, atol=1e-4
        )
        for steps in (1, 4, 25):
            ours = dif.ddim_sample(model, schedule, 5, steps, generator(24), clip=False)
            want = reference_ddim(model, schedule, 5, steps, generator(24))
            torch.testing.assert_close(ours, want, rtol=1e-4, atol=1e-4)


def test_clipping_keeps_the_guess_of_x0_among_real_pixels():
    schedule, model = dif.cosine_schedule(30), small_denoiser()
    for clipped in (
        dif.ddpm_sample(model, schedule, 50, generator(25))[0],
        dif.ddim_sample(model, schedule, 50, 5, generator(25)),
    ):
        assert clipped.min() >= -1 - 1e-5 and clipped.max() <= 1 + 1e-5  # the last step returns x0_hat
    unclipped = dif.ddim_sample(model, schedule, 50, 5, generator(25), clip=False)
    assert unclipped.abs().max() > 1.5  # an untrained model's guesses leave the range


def test_ddim_times_are_even_distinct_and_end_at_zero():
    assert dif.ddim_times(200, 4) == [200, 150, 100, 50, 0]
    assert dif.ddim_times(10, 10) == list(range(10, -1, -1))
    for T, steps in [(200, 7), (199, 13), (50, 49), (3, 2)]:
        times = dif.ddim_times(T, steps)
        assert len(times) == steps + 1 and times[0] == T and times[-1] == 0
        assert all(a > b for a, b in zip(times, times[1:], strict=False))


def test_ddim_with_a_perfect_denoiser_returns_the_image():
    """If the network always knew the true noise, DDIM (no fresh noise) would land exactly on x0."""
    schedule = dif.cosine_schedule(40)
    x0 = torch.rand(1, 64, generator=generator(16)) * 2 - 1

    class Oracle(torch.nn.Module):
        pixels = 64

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t):  # x = sqrt(ab) x0 + sqrt(1 - ab) eps, solved for eps
            ab = schedule.alpha_bar[t][:, None]
            return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    out = dif.ddim_sample(Oracle(), schedule, 3, steps=8, generator=generator(17))
    torch.testing.assert_close(out, x0.expand(3, 64), atol=1e-3, rtol=1e-3)


# --- training --------------------------------------------------------------------------------------------
def tiny_digits(n: int = 256) -> torch.Tensor:
    from helpers.digits import load_digits_split

    return torch.as_tensor(load_digits_split().X_train[:n], dtype=torch.float32)  # (n, 64) in [0, 1]


@pytest.mark.parametrize("kind", ["autoencoder", "vae", "diffusion"])
def test_a_short_training_run_lowers_the_loss(kind):
    X = tiny_digits()
    torch.manual_seed(0)
    schedule = dif.linear_schedule(50)
    model, loss_fn, data = {
        "autoencoder": (ae.Autoencoder(2, (32,)), ae.autoencoder_loss, X),
        "vae": (ae.VAE(2, (32,)), ae.vae_loss, X),
        "diffusion": (
            dif.Denoiser(64, 2),
            lambda m, b, generator: dif.diffusion_loss(m, b, schedule, generator),
            dif.to_signed(X),
        ),
    }[kind]
    history = g.train(model, loss_fn, data, epochs=15, batch_size=64, progress=False)
    assert len(history.step_loss) == 15 * 4 and len(history.epoch_metrics) == 15
    first, last = np.mean(history.step_loss[:4]), np.mean(history.step_loss[-4:])
    assert last < 0.8 * first, f"{kind}: loss went from {first:.4f} to {last:.4f}"
    assert not model.training


def test_training_is_reproducible():
    X = tiny_digits(128)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = ae.VAE(2, (16,))
        runs.append(g.train(model, ae.vae_loss, X, epochs=2, batch_size=32, progress=False).step_loss)
    assert runs[0] == runs[1]


def test_judge_counts_confident_images():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):  # (B, 1, 8, 8) -> logits: class 3, sure when the image is bright
            logits = torch.zeros(len(x), 10)
            logits[:, 3] = 10 * x.mean(dim=(1, 2, 3))
            return logits

    images = torch.cat([torch.ones(3, 64), torch.zeros(1, 64)])
    verdict = g.judge(Fixed(), images, threshold=0.9)
    assert verdict["confident_fraction"] == 0.75
    assert verdict["counts"].tolist() == [
        1,
        0,
        0,
        3,
        0,
        0,
        0,
        0,
        0,
        0,
    ]  # a blank image: all logits tie, argmax 0
    assert np.isclose(verdict["confidence"][-1], 0.1)


# --- the sliders, moved headless -------------------------------------------------------------------------
def test_forward_slider_redraws_and_shows_q_sample():
    schedule = dif.linear_schedule(100)
    x0 = dif.to_signed(tiny_digits(3))
    noise = torch.randn(x0.shape, generator=generator(18))
    view = dif.forward_view(x0, schedule, noise, t=0)
    before = view.image
    view.set(t=60)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    picture = dif.forward_picture(x0, 60, schedule, noise)
    np.testing.assert_allclose(picture["x_t"], dif.q_sample(x0, 60, schedule, noise).reshape(3, 8, 8).numpy())
    assert math.isclose(picture["signal"] ** 2 + picture["noise"] ** 2, 1.0, rel_tol=1e-6)
    np.testing.assert_allclose(
        dif.forward_picture(x0, 0, schedule, noise)["x_t"], x0.reshape(3, 8, 8).numpy()
    )


def test_latent_slider_redraws_and_decodes_the_point():
    torch.manual_seed(0)
    vae = ae.VAE(latent=2, hidden=(16,)).eval()
    codes, labels = np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10
    view = ae.latent_view(vae.decode, codes, labels)
    before = view.image
    view.set(z1=2.0, z2=-1.5)
    assert view.values == {"z1": 2.0, "z2": -1.5}
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    image = ae.decode_point(vae.decode, 2.0, -1.5)
    torch.testing.assert_close(
        torch.as_tensor(image).reshape(1, 64), vae.decode(torch.tensor([[2.0, -1.5]])).detach()
    )


# --- clear errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dif.NoiseSchedule([0.1, 1.5]), "strictly between 0 and 1"),
        (lambda: dif.NoiseSchedule([]), "non-empty"),
        (lambda: dif.linear_schedule(0), "positive int"),
        (
            lambda: dif.q_sample(torch.zeros(2, 64), 11, dif.linear_schedule(10), torch.zeros(2, 64)),
            r"0\.\.10",
        ),
        (
            lambda: dif.q_sample(torch.zeros(2, 64), 1.5, dif.linear_schedule(10), torch.zeros(2, 64)),
            "integer",
        ),
        (
            lambda: dif.q_sample(torch.zeros(2, 64), 1, dif.linear_schedule(10), torch.zeros(2, 8)),
            "shape of x0",
        ),
        (
            lambda: dif.noise_step(torch.zeros(2, 64), 1, dif.linear_schedule(10), torch.zeros(3, 64)),
            "shape of x",
        ),
        (lambda: ae.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 2)), "one shape"),
        (lambda: ae.reparameterize(torch.zeros(2, 3), torch.zeros(3)), "one shape"),
        (lambda: ae.Autoencoder().encode(torch.zeros(2, 8, 8)), r"\(B, 64\)"),
        (lambda: ae.VAE(latent=0), "latent"),
        (lambda: ae.vae_loss(ae.VAE(), torch.zeros(2, 64), beta=-1.0), "beta"),
        (lambda: dif.Denoiser()(torch.zeros(2, 64), torch.zeros(3, dtype=torch.long)), "one step per image"),
        (lambda: dif.time_embedding(torch.arange(3), 5), "even"),
        (lambda: dif.ddpm_sample(dif.Denoiser(), dif.linear_schedule(5), 0), "at least 1"),
        (lambda: dif.ddim_sample(dif.Denoiser(), dif.linear_schedule(5), 2, steps=6), r"1\.\.5"),
        (lambda: ae.interpolate(torch.zeros(2), torch.zeros(3), 4), "one length"),
        (lambda: ae.interpolate(torch.zeros(2), torch.zeros(2), 1), "at least 2"),
        (lambda: g.train(ae.VAE(), ae.vae_loss, torch.zeros(4, 64), epochs=0), "at least 1"),
        (lambda: ae.latent_view(lambda z: z, np.zeros((5, 3)), np.zeros(5)), r"\(N, 2\)"),
        (
            lambda: dif.posterior_mean(torch.zeros(2, 64), torch.zeros(2, 64), 0, dif.linear_schedule(5)),
            "t >= 1",
        ),
        (
            lambda: dif.posterior_mean(torch.zeros(2, 64), torch.zeros(3, 64), 1, dif.linear_schedule(5)),
            "one shape",
        ),
        (lambda: dif.ddim_times(10, 0), r"1\.\.10"),
        (lambda: dif.ddim_sample(dif.Denoiser(), dif.linear_schedule(5), 0), "at least 1"),
        (
            lambda: dif.diffusion_loss(
                dif.Denoiser(), torch.zeros(2, 64), dif.linear_schedule(5), snr_cap=0.0
            ),
            "snr_cap",
        ),
        (lambda: dif.ddim_sample(dif.Denoiser(), dif.linear_schedule(5), 2, 2, eta=-0.5), "eta"),
        (lambda: dif.Denoiser(classes=-1), "classes"),
        (
            lambda: dif.Denoiser()(torch.zeros(2, 64), torch.ones(2, dtype=torch.long), torch.zeros(2)),
            "unconditional",
        ),
        (
            lambda: dif.Denoiser(classes=3)(
                torch.zeros(2, 64), torch.ones(2, dtype=torch.long), torch.tensor([0, 4])
            ),
            r"0\.\.2",
        ),
        (lambda: dif.Guided(dif.Denoiser(), torch.zeros(2, dtype=torch.long), 2.0), "class-conditional"),
        (
            lambda: dif.diffusion_loss(
                dif.Denoiser(classes=2),
                torch.zeros(2, 64),
                dif.linear_schedule(5),
                labels=torch.zeros(2),
                drop=2,
            ),
            "drop",
        ),
        (lambda: g.train(ae.VAE(), ae.vae_loss, torch.zeros(4, 64), 1, labels=torch.zeros(3)), "one per row"),
        (lambda: g.judge(dif.Denoiser(), torch.full((2, 64), -1.0)), r"\[0, 1\]"),
        (lambda: g.judge(dif.Denoiser(), torch.zeros(2, 64), threshold=1.5), "threshold"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_snr_cap_scales_down_only_the_nearly_clean_steps():
    class Zero(torch.nn.Module):  # predicts no noise at all, so each image's error is mean(eps^2)
        def forward(self, x, t):
            return torch.zeros_like(x)

    schedule, x0 = dif.linear_schedule(100), torch.zeros(500, 64)
    plain, _ = dif.diffusion_loss(Zero(), x0, schedule, generator(19))
    capped, _ = dif.diffusion_loss(Zero(), x0, schedule, generator(19), snr_cap=2.0)
    gen = generator(19)  # draw the same t and eps again, the way diffusion_loss draws them
    t = torch.randint(1, 101, (500,), generator=gen)
    eps = torch.randn(500, 64, generator=gen)
    snr = schedule.alpha_bar[t] / (1 - schedule.alpha_bar[t])
    weight = torch.where(snr > 2.0, 2.0 / snr, torch.ones_like(snr))
    torch.testing.assert_close(plain, (eps**2).mean())
    torch.testing.assert_close(capped, ((eps**2).mean(-1) * weight).mean())
    assert capped < plain


def test_cosine_decay_follows_chapter_11s_schedule():
    from helpers.schedules import cosine

    X = tiny_digits(64)
    torch.manual_seed(0)
    history = g.train(
        ae.Autoencoder(2, (8,)),
        ae.autoencoder_loss,
        X,
        epochs=4,
        lr=0.01,
        batch_size=16,
        cosine_decay=True,
        progress=False,
    )
    lrs = [m["lr"] for m in history.epoch_metrics]
    want = [cosine(4 * (epoch + 1) - 1, peak_lr=0.01, total_steps=16) for epoch in range(4)]
    np.testing.assert_allclose(lrs, want, rtol=1e-9)
    flat = g.train(ae.Autoencoder(2, (8,)), ae.autoencoder_loss, X, epochs=2, lr=0.01, progress=False)
    assert [m["lr"] for m in flat.epoch_metrics] == [0.01, 0.01]


# --- DDIM's eta, conditioning and guidance --------------------------------------------------------------
@torch.no_grad()
@pytest.mark.parametrize("make", [dif.linear_schedule, dif.cosine_schedule])
def test_ddim_with_eta_one_on_every_step_is_ddpm(make):
    """sigma^2 = the posterior variance when s = t - 1, and the fresh noise is drawn in DDPM's order."""
    schedule, model = make(30), small_denoiser()
    ddpm, _ = dif.ddpm_sample(model, schedule, 6, generator(30))
    ddim = dif.ddim_sample(model, schedule, 6, 30, generator(30), eta=1.0)
    torch.testing.assert_close(ddim, ddpm, rtol=1e-4, atol=1e-4)
    t = torch.arange(2, 31)  # the formula's sigma^2 with eta = 1 and s = t - 1 is the posterior variance
    ab_t, ab_s = schedule.alpha_bar[t].double(), schedule.alpha_bar[t - 1].double()
    sigma2 = (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    torch.testing.assert_close(sigma2.float(), schedule.posterior_variance[t], rtol=1e-4, atol=1e-7)


@torch.no_grad()
def test_ddim_eta_zero_is_deterministic_and_eta_adds_fresh_noise():
    schedule, model = dif.cosine_schedule(30), small_denoiser()
    plain = dif.ddim_sample(model, schedule, 4, 10, generator(31))
    torch.testing.assert_close(
        dif.ddim_sample(model, schedule, 4, 10, generator(31), eta=0.0), plain, rtol=0, atol=0
    )
    noisy = dif.ddim_sample(model, schedule, 4, 10, generator(31), eta=0.5)
    assert (noisy - plain).abs().max() > 1e-3  # same x_T, different path


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_with_a_perfect_denoiser_returns_the_image_for_any_eta(eta):
    """Whatever fresh noise is added, a network that names the noise exactly recomputes x0 at every step."""
    schedule = dif.cosine_schedule(40)
    x0 = torch.rand(1, 64, generator=generator(32)) * 2 - 1

    class Oracle(torch.nn.Module):
        pixels = 64

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, t):
            ab = schedule.alpha_bar[t][:, None]
            return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    out = dif.ddim_sample(Oracle(), schedule, 3, steps=8, generator=generator(33), eta=eta)
    torch.testing.assert_close(out, x0.expand(3, 64), atol=1e-3, rtol=1e-3)


def conditional_denoiser() -> dif.Denoiser:
    torch.manual_seed(1)
    model = dif.Denoiser(hidden=32, blocks=2, classes=3).eval()
    torch.nn.init.normal_(model.label.weight)  # make the labels matter in an untrained model
    return model


@torch.no_grad()
def test_conditional_denoiser_uses_its_labels_and_no_label_is_the_extra_one():
    model, x, t = (
        conditional_denoiser(),
        torch.randn(4, 64, generator=generator(34)),
        torch.tensor([1, 5, 9, 3]),
    )
    no_label = model(x, t)
    torch.testing.assert_close(model(x, t, torch.full((4,), 3)), no_label, rtol=0, atol=0)  # index 3 = none
    assert (model(x, t, torch.tensor([0, 1, 2, 0])) - no_label).abs().max() > 1e-3
    unconditional = small_denoiser()  # classes=0 keeps the old model: no label table, same parameters
    assert not hasattr(unconditional, "label") and unconditional.classes == 0


@torch.no_grad()
def test_guidance_is_the_formula_and_its_two_ends_are_the_two_models():
    model, x, t = conditional_denoiser(), torch.randn(5, 64, generator=generator(35)), torch.arange(1, 6)
    labels = torch.tensor([0, 1, 2, 1, 0])
    conditional, unconditional = model(x, t, labels), model(x, t)
    torch.testing.assert_close(dif.Guided(model, labels, 0.0)(x, t), unconditional)
    torch.testing.assert_close(dif.Guided(model, labels, 1.0)(x, t), conditional)
    want = unconditional + 3.0 * (conditional - unconditional)
    torch.testing.assert_close(dif.Guided(model, labels, 3.0)(x, t), want)
    sample = dif.ddim_sample(dif.Guided(model, labels, 2.0), dif.cosine_schedule(20), 5, 4, generator(36))
    assert sample.shape == (5, 64)  # the samplers take the guided model like any denoiser


def test_label_dropout_hides_each_label_with_probability_drop():
    seen = []

    class Recorder(torch.nn.Module):
        classes = 3

        def forward(self, x, t, labels=None):
            seen.append(labels.clone())
            return torch.zeros_like(x)

    schedule, x0, labels = dif.linear_schedule(10), torch.zeros(4000, 64), torch.randint(0, 3, (4000,))
    for drop in (0.0, 0.25, 1.0):
        dif.diffusion_loss(Recorder(), x0, schedule, generator(37), labels=labels, drop=drop)
        hidden = seen[-1] == 3
        assert abs(hidden.float().mean().item() - drop) < 0.03
        assert torch.equal(seen[-1][~hidden], labels[~hidden])  # the others keep their own label
    # the same t and eps are drawn with or without labels: drop = 1 is the unconditional loss
    model = conditional_denoiser()
    with_none, _ = dif.diffusion_loss(model, x0[:50], schedule, generator(38))
    all_hidden, _ = dif.diffusion_loss(model, x0[:50], schedule, generator(38), labels=labels[:50], drop=1.0)
    torch.testing.assert_close(all_hidden, with_none)


def test_train_hands_each_batch_its_own_labels():
    X = torch.arange(300, dtype=torch.float32)[:, None].repeat(1, 64) / 300  # row i holds i / 300
    labels = torch.arange(300)
    model = torch.nn.Linear(64, 64)

    def loss_fn(model, batch, generator, labels):
        assert torch.equal((batch[:, 0] * 300).round().long(), labels)  # the rows' own labels
        return model(batch).pow(2).mean(), {}

    g.train(model, loss_fn, X, epochs=2, batch_size=64, progress=False, labels=labels)


def test_rand_is_uniform_and_drawn_from_the_generator():
    u = g.rand((20_000,), generator(39))
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01
    torch.testing.assert_close(u, torch.rand(20_000, generator=generator(39)), rtol=0, atol=0)


def test_the_shipped_denoiser_is_the_recipes_model_and_is_trained():
    model = dif.Denoiser(hidden=dif.DENOISER_RECIPE["hidden"], blocks=dif.DENOISER_RECIPE["blocks"])
    history, recipe = dif.load_shipped_denoiser(model)
    assert recipe == dif.DENOISER_RECIPE
    assert sum(p.numel() for p in model.parameters()) == 906_304
    assert len(history.step_loss) == 250 * 11 and history.step_loss[-1] < history.step_loss[0] / 3
    # trained: on test digits its noise guess beats answering 0 (error 1) by far in the middle of the chain
    _, X_test, _, _ = load_digits_split().tensors(device="cpu")
    schedule = dif.cosine_schedule(recipe["T"])
    gen = torch.Generator().manual_seed(0)
    x0 = dif.to_signed(X_test)  # (450, 64)
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.full((len(x0),), 100)
    with torch.no_grad():
        error = ((model(dif.q_sample(x0, t, schedule, noise), t) - noise) ** 2).mean().item()
    assert error < 0.3


def test_load_shipped_denoiser_refuses_a_model_of_other_sizes():
    with pytest.raises(ValueError, match=r"Denoiser\(hidden=256, blocks=3\)"):
        dif.load_shipped_denoiser(dif.Denoiser(hidden=128, blocks=3))


def test_save_and_load_denoiser_round_trip(tmp_path):
    torch.manual_seed(0)
    model = dif.Denoiser(hidden=16, blocks=1)
    history = History(step_loss=[1.0, 0.5], epoch_metrics=[{"loss": 0.75}])
    dif.save_denoiser(model, history, {"hidden": 16, "blocks": 1}, tmp_path, name="tiny")
    names = ["tiny.json", "tiny.safetensors"]
    (tmp_path / "MANIFEST.sha256").write_text("".join(f"{sha256_of(tmp_path / n)}  {n}\n" for n in names))
    fresh = dif.Denoiser(hidden=16, blocks=1)
    loaded, recipe = dif.load_shipped_denoiser(fresh, name="tiny", data_dir=tmp_path)
    assert recipe == {"hidden": 16, "blocks": 1} and loaded == history
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True)
    )
