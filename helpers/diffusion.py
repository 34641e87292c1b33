"""Diffusion (chapter 14): destroy images with noise step by step, and learn to undo one step.

What this module adds over helpers.generative (shared checks, draws and loop):

- a `NoiseSchedule` (beta_t, alpha_t, alpha-bar_t; `linear_schedule`, `cosine_schedule`); the one-step
  noising `noise_step` and its closed form `q_sample`;
- a `Denoiser` (an MLP with a sinusoidal `time_embedding`) trained by `diffusion_loss` to predict the noise;
  `predict_x0` and `posterior_mean`, the two halves of one step back;
- two samplers, `ddpm_sample` (ancestral, T steps) and `ddim_sample` (any number of steps; its `eta` runs
  from deterministic, 0, to DDPM-like, 1);
- conditioning: a `Denoiser` with `classes`, trained with label dropout, and `Guided`, classifier-free
  guidance with a scale;
- the noising slider's data and view: `forward_picture` / `forward_view`;
- the chapter's trained denoiser, shipped (`DENOISER_RECIPE`, `save_denoiser`, `load_shipped_denoiser`):
  data/make_denoiser.py trains it exactly as section 14.5 does, so the chapter can load it instead of
  spending most of its minute on training.

The model works in [-1, 1] (`to_signed`, `to_unit`). The maths uses steps t = 1..T; every schedule array
has an entry for t = 0 too (no noise), so `schedule.alpha_bar[t]` reads like the formula.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from helpers.data import data_path
from helpers.generative import PIXELS, check_images, rand, randint, randn
from helpers.mlp import MLP
from helpers.train import History
from helpers.widgets import slider_view


class NoiseSchedule:
    """beta_t for t = 1..T and what follows from it, each as a (T + 1,) tensor indexed by t (t = 0: no noise).

    alpha_t = 1 - beta_t;  alpha_bar_t = alpha_1 * ... * alpha_t  (alpha_bar_0 = 1);
    posterior_variance_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), the variance of
    q(x_{t-1} | x_t, x_0).
    """

    def __init__(self, betas, device: torch.device | str | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 1:
            raise ValueError(
                f"betas must be a non-empty vector (one per step), got shape {tuple(betas.shape)}"
            )
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta_t must lie strictly between 0 and 1")
        self.T = len(betas)
        beta = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # (T + 1,)
        alpha = 1.0 - beta
        alpha_bar = torch.cumprod(alpha, dim=0)  # (T + 1,), alpha_bar[0] = 1
        previous = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])  # alpha_bar_{t-1}
        posterior = beta * (1 - previous) / (1 - alpha_bar).clamp(min=1e-20)  # (T + 1,), 0 at t = 0 and 1
        as_float = lambda v: v.to(dtype=torch.float32, device=device)  # noqa: E731
        self.beta, self.alpha, self.alpha_bar = as_float(beta), as_float(alpha), as_float(alpha_bar)
        self.posterior_variance = as_float(posterior)

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """The same schedule with its tensors on `device` (the numbers are copied, not recomputed)."""
        moved = copy.copy(self)
        for name in ("beta", "alpha", "alpha_bar", "posterior_variance"):
            setattr(moved, name, getattr(self, name).to(device))
        return moved

    def check_t(self, t) -> torch.Tensor:
        """t (an int, or one per row) as a long tensor on the schedule's device; a clear error for a
        float or a step outside 0..T."""
        t = torch.as_tensor(t, device=self.beta.device)
        if t.dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
            raise ValueError(f"t must be an integer step, got dtype {t.dtype}")
        if bool(((t < 0) | (t > self.T)).any()):
            raise ValueError(f"t must be a step in 0..{self.T}, got {t.tolist()}")
        return t.long()


def linear_schedule(T: int = 200, beta_1: float | None = None, beta_T: float | None = None) -> NoiseSchedule:
    """beta_t rising in a straight line from beta_1 to beta_T. The defaults are the DDPM paper's
    (1e-4 to 0.02 over 1000 steps) rescaled by 1000 / T, so that any T ends in almost pure noise
    (beta_T is capped at 0.999 for very short schedules)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    beta_1 = min(1e-4 * 1000 / T, 0.999) if beta_1 is None else beta_1
    beta_T = min(0.02 * 1000 / T, 0.999) if beta_T is None else beta_T
    return NoiseSchedule(torch.linspace(beta_1, beta_T, T, dtype=torch.float64))


def cosine_schedule(T: int = 200, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """alpha_bar_t = f(t) / f(0) with f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), and beta_t = 1 -
    alpha_bar_t / alpha_bar_{t-1} (capped at max_beta). Noise arrives gently at first and last, which
    leaves more of the steps with something to learn on small images than the linear schedule does."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    steps = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((steps / T + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)  # (T,)
    return NoiseSchedule(betas)


def at_step(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t] on x's device, shaped to broadcast against x: a scalar for one t, (B, 1) for a t per row."""
    picked = values[t].to(device=x.device, dtype=x.dtype)
    return picked if picked.ndim == 0 else picked.reshape(-1, *([1] * (x.ndim - 1)))


def noise_step(x_prev: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor) -> torch.Tensor:
    """One forward step, a sample of q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)."""
    t = schedule.check_t(t)
    if noise.shape != x_prev.shape:
        raise ValueError(f"noise must have the shape of x, {tuple(x_prev.shape)}, got {tuple(noise.shape)}")
    beta_t = at_step(schedule.beta, t, x_prev)
    return torch.sqrt(1 - beta_t) * x_prev + torch.sqrt(beta_t) * noise


def q_sample(x0: torch.Tensor, t, schedule: NoiseSchedule, noise: torch.Tensor) -> torch.Tensor:
    """t steps at once, a sample of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I).

    t is one step for the whole batch, or a (B,) tensor with one step per row of x0.
    """
    t = schedule.check_t(t)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0, {tuple(x0.shape)}, got {tuple(noise.shape)}")
    alpha_bar_t = at_step(schedule.alpha_bar, t, x0)  # () or (B, 1)
    return torch.sqrt(alpha_bar_t) * x0 + torch.sqrt(1 - alpha_bar_t) * noise


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """Pixels from [0, 1] to [-1, 1], the range the diffusion model works in."""
    return 2 * x - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Pixels from [-1, 1] back to [0, 1], clipped."""
    return ((x + 1) / 2).clamp(0, 1)


def time_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Each step t as `dim` numbers: sines and cosines of t at frequencies from 1 down to 1/max_period."""
    if dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even number >= 2, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None, :]  # (B, dim/2)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (B, dim)


class Denoiser(nn.Module):
    """eps_theta(x_t, t): guesses the noise in a noisy image x_t, given the step t.

    A residual MLP: x_t and the time embedding of t go in through one Linear layer; then each block reads
    the running features plus a learned function of the time embedding (so every block knows how noisy
    its input is) through LayerNorm -> Linear -> SiLU -> Linear, and adds its answer back. The LayerNorm
    is PyTorch's fused one, the same function as chapter 11's `helpers.normalization.LayerNorm`, faster.
    With `classes` > 0 it is class-conditional: a learned vector per label is added to the time features,
    and the extra label `classes` means "no label" (what classifier-free guidance needs).
    """

    def __init__(
        self, hidden: int = 128, blocks: int = 2, time_dim: int = 32, pixels: int = PIXELS, classes: int = 0
    ):
        super().__init__()
        if hidden < 1 or blocks < 1:
            raise ValueError(f"hidden and blocks must be at least 1, got {hidden} and {blocks}")
        if classes < 0:
            raise ValueError(f"classes must be 0 (unconditional) or more, got {classes}")
        self.time_dim, self.pixels, self.classes = time_dim, pixels, classes
        self.time = MLP([time_dim, hidden, hidden], activation=nn.SiLU)
        self.inp = nn.Linear(pixels + time_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(hidden), nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden)
            )
            for _ in range(blocks)
        )
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, pixels)
        if classes:  # one learned vector per class, and one more (index `classes`) for "no label"
            self.label = nn.Embedding(classes + 1, hidden)

    def check_labels(self, labels: torch.Tensor | None, n: int, device) -> torch.Tensor:
        """labels as a (n,) long tensor on `device`; None means "no label" (index `classes`) for all n."""
        if labels is None:
            return torch.full((n,), self.classes, dtype=torch.long, device=device)
        if labels.shape != (n,) or bool(((labels < 0) | (labels > self.classes)).any()):
            raise ValueError(
                f"labels must be {n} class numbers in 0..{self.classes - 1} ({self.classes} = no label), "
                f"got shape {tuple(labels.shape)}"
            )
        return labels.to(device=device, dtype=torch.long)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x, pixels=self.pixels)
        if t.ndim != 1 or len(t) != len(x):
            raise ValueError(f"t must be one step per image, shape ({len(x)},), got {tuple(t.shape)}")
        emb = time_embedding(t, self.time_dim)  # (B, time_dim)
        h_t = self.time(emb)  # (B, hidden)
        if labels is not None and not self.classes:
            raise ValueError("this Denoiser is unconditional (classes=0): it takes no labels")
        if self.classes:
            labels = self.check_labels(labels, len(x), x.device)
            h_t = h_t + self.label(labels)  # (B, hidden): every block is told the class too
        h = self.inp(torch.cat([x, emb], dim=-1))  # (B, hidden)
        for block in self.blocks:
            h = h + block(h + h_t)  # (B, hidden)
        return self.out(self.norm(h))  # (B, pixels)


def diffusion_loss(
    model: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator=None,
    snr_cap: float | None = None,
    labels: torch.Tensor | None = None,
    drop: float = 0.0,
):
    """Predict the noise: pick t uniformly in 1..T and eps ~ N(0, I) per image, make x_t = q_sample(x0, t,
    eps), and return the squared error between eps and model(x_t, t), averaged. x0 is in [-1, 1].

    snr_cap (min-SNR weighting): the signal-to-noise ratio of step t is alpha_bar_t / (1 - alpha_bar_t);
    where it is above snr_cap (the last, nearly clean steps) the image's error is weighted by
    snr_cap / SNR, below 1. None keeps DDPM's plain average.

    labels (a class-conditional model): the model is told each image's class, except that each label is
    replaced by "no label" with probability `drop` (label dropout), so that one network learns both the
    conditional and the unconditional noise, which classifier-free guidance (`Guided`) combines.
    """
    check_images(x0, "x0")
    if snr_cap is not None and snr_cap <= 0:
        raise ValueError(f"snr_cap must be positive (or None), got {snr_cap}")
    if not 0 <= drop <= 1:
        raise ValueError(f"drop is a probability in [0, 1], got {drop}")
    B = len(x0)
    t = randint(schedule.T, (B,), generator, x0.device)  # (B,), uniform in 1..T
    eps = randn(x0.shape, generator, x0.device)  # (B, 64)
    x_t = q_sample(x0, t, schedule, eps)  # (B, 64)
    if labels is None:
        guess = model(x_t, t)  # (B, 64)
    else:
        forget = rand((B,), generator, x0.device) < drop  # (B,): these images are shown without a label
        guess = model(x_t, t, torch.where(forget, model.classes, labels.to(x0.device)))  # (B, 64)
    error = ((guess - eps) ** 2).mean(dim=-1)  # (B,)
    if snr_cap is not None:
        alpha_bar_t = at_step(schedule.alpha_bar, schedule.check_t(t), error)  # (B,)
        snr = alpha_bar_t / (1 - alpha_bar_t)  # (B,)
        error = error * snr.clamp(max=snr_cap) / snr
    loss = error.mean()
    return loss, {"loss": loss.item()}


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: NoiseSchedule) -> torch.Tensor:
    """Undo q_sample with a guess of the noise eps:

    x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t).
    """
    t = schedule.check_t(t)
    alpha_bar_t = at_step(schedule.alpha_bar, t, x_t)
    return (x_t - torch.sqrt(1 - alpha_bar_t) * eps) / torch.sqrt(alpha_bar_t)


def posterior_mean(x0: torch.Tensor, x_t: torch.Tensor, t, schedule: NoiseSchedule) -> torch.Tensor:
    """The mean of q(x_{t-1} | x_t, x_0), the one step back that the forward process implies (t >= 1):

    mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) * x0
         + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * x_t.

    Its variance is `schedule.posterior_variance[t]`. Both follow from Bayes' rule for the Gaussians
    q(x_{t-1} | x_0) and q(x_t | x_{t-1}); tests/test_generative.py derives them that way too.
    """
    t = schedule.check_t(t)
    if bool((t < 1).any()):
        raise ValueError("the posterior q(x_{t-1} | x_t, x_0) needs t >= 1")
    if x0.shape != x_t.shape:
        raise ValueError(f"x0 and x_t must have one shape, got {tuple(x0.shape)} and {tuple(x_t.shape)}")
    beta_t, alpha_t = at_step(schedule.beta, t, x_t), at_step(schedule.alpha, t, x_t)
    alpha_bar_t, alpha_bar_prev = at_step(schedule.alpha_bar, t, x_t), at_step(schedule.alpha_bar, t - 1, x_t)
    x0_weight = torch.sqrt(alpha_bar_prev) * beta_t / (1 - alpha_bar_t)
    x_t_weight = torch.sqrt(alpha_t) * (1 - alpha_bar_prev) / (1 - alpha_bar_t)
    return x0_weight * x0 + x_t_weight * x_t


@torch.no_grad()
def ddpm_sample(
    model: Denoiser,
    schedule: NoiseSchedule,
    n: int,
    generator: torch.Generator | None = None,
    keep: Sequence[int] = (),
    clip: bool = True,
    progress: bool = False,
):
    """Ancestral sampling: x_T ~ N(0, I), then for t = T..1 one step back through the posterior,

        x0_hat = predict_x0(x_t, eps_theta(x_t, t), t)   (clipped to [-1, 1] if `clip`),
        x_{t-1} = posterior_mean(x0_hat, x_t, t) + sigma_t z,   z ~ N(0, I), none at t = 1,

    with sigma_t^2 the posterior variance. Without clipping this is exactly the DDPM paper's update
    x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) + sigma_t z. Returns x_0 in
    [-1, 1], (n, 64), and a dict {t: x_t} of the steps listed in `keep` (t = T is the starting noise,
    t = 0 the result).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    device = next(model.parameters()).device
    x = randn((n, model.pixels), generator, device)  # (n, 64): x_T
    kept = {schedule.T: x.clone()} if schedule.T in keep else {}
    for t in tqdm(range(schedule.T, 0, -1), desc="denoising", disable=not progress, leave=False):
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long))  # (n, 64)
        x0_hat = predict_x0(x, eps, t, schedule)  # (n, 64)
        if clip:
            x0_hat = x0_hat.clamp(-1, 1)
        x = posterior_mean(x0_hat, x, t, schedule)  # (n, 64): the mean of x_{t-1}
        if t > 1:
            x = x + torch.sqrt(at_step(schedule.posterior_variance, t, x)) * randn(x.shape, generator, device)
        if t - 1 in keep:
            kept[t - 1] = x.clone()
    return x, kept


def ddim_times(T: int, steps: int) -> list[int]:
    """The steps DDIM visits: `steps` + 1 evenly spaced whole numbers from T down to 0."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T}, got {steps}")
    return np.round(np.linspace(T, 0, steps + 1)).astype(int).tolist()  # spacing T / steps >= 1: distinct


@torch.no_grad()
def ddim_sample(
    model: Denoiser,
    schedule: NoiseSchedule,
    n: int,
    steps: int = 20,
    generator: torch.Generator | None = None,
    clip: bool = True,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM: the same trained model, visiting only `steps` of the T steps. From x_t: x0_hat = predict_x0(x_t,
    eps, t) (clipped to [-1, 1] if `clip`, and then eps is recomputed to agree with it), then for the next
    step s < t

        x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps + sigma z,   z ~ N(0, I),
        sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s).

    eta = 0 adds no new noise (deterministic); eta = 1 with steps = T is DDPM's ancestral step. Returns
    x_0 in [-1, 1], (n, 64)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if eta < 0:
        raise ValueError(f"eta must be 0 or more, got {eta}")
    times = ddim_times(schedule.T, steps)  # T, ..., 0
    device = next(model.parameters()).device
    x = randn((n, model.pixels), generator, device)  # (n, 64): x_T
    for t, s in zip(times[:-1], times[1:], strict=True):
        eps = model(x, torch.full((n,), t, device=device, dtype=torch.long))  # (n, 64)
        x0_hat = predict_x0(x, eps, t, schedule)  # (n, 64)
        alpha_bar_t = at_step(schedule.alpha_bar, schedule.check_t(t), x)
        if clip:
            x0_hat = x0_hat.clamp(-1, 1)
            eps = (x - torch.sqrt(alpha_bar_t) * x0_hat) / torch.sqrt(1 - alpha_bar_t)  # (n, 64)
        alpha_bar_s = at_step(schedule.alpha_bar, schedule.check_t(s), x)
        variance = eta**2 * (1 - alpha_bar_s) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_s)  # sigma^2
        x = torch.sqrt(alpha_bar_s) * x0_hat + torch.sqrt((1 - alpha_bar_s - variance).clamp(min=0)) * eps
        if eta > 0 and s > 0:
            x = x + torch.sqrt(variance) * randn(x.shape, generator, device)  # (n, 64): x_s
    return x


class Guided(nn.Module):
    """Classifier-free guidance: a class-conditional Denoiser seen as an unconditional one, for the samplers.

    eps = eps(x_t, t, no label) + scale * (eps(x_t, t, label) - eps(x_t, t, no label)): scale 0 ignores the
    label, 1 is the conditional model, above 1 pushes further in the direction the label points.
    """

    def __init__(self, model: Denoiser, labels: torch.Tensor, scale: float):
        super().__init__()
        if not model.classes:
            raise ValueError("guidance needs a class-conditional Denoiser (classes > 0)")
        if labels.ndim != 1:
            raise ValueError(f"labels must be one class number per sample, got shape {tuple(labels.shape)}")
        self.model, self.labels, self.scale, self.pixels = model, labels, float(scale), model.pixels

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        unconditional = self.model(x, t)  # (B, 64): the label replaced by "no label"
        if self.scale == 0:
            return unconditional
        conditional = self.model(x, t, self.labels)  # (B, 64)
        return unconditional + self.scale * (conditional - unconditional)


def forward_picture(
    x0: torch.Tensor, t: int, schedule: NoiseSchedule, noise: torch.Tensor
) -> dict[str, object]:
    """What the forward-process slider shows at step t: x_t = q_sample(x0, t, noise) as (B, 8, 8) images in
    [-1, 1], and how much of x_t is signal (sqrt(alpha_bar_t)) and how much noise (sqrt(1 - alpha_bar_t))."""
    t = int(schedule.check_t(t))
    x_t = q_sample(x0, t, schedule, noise)  # (B, 64)
    alpha_bar_t = float(schedule.alpha_bar[t])
    return {
        "x_t": x_t.detach().cpu().reshape(-1, 8, 8).numpy(),
        "signal": math.sqrt(alpha_bar_t),
        "noise": math.sqrt(1 - alpha_bar_t),
    }


def forward_view(x0: torch.Tensor, schedule: NoiseSchedule, noise: torch.Tensor, t: int = 20):
    """A slider for t over the forward process: the digits x0 (B, 64) in [-1, 1] noised to step t, beside
    the signal and noise weights sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) for every step."""
    steps = np.arange(schedule.T + 1)
    signal = schedule.alpha_bar.cpu().sqrt().numpy()  # (T + 1,)

    def draw(t):
        picture = forward_picture(x0, t, schedule, noise)
        images = picture["x_t"]
        fig, axes = plt.subplots(
            1,
            len(images) + 1,
            figsize=(2 * len(images) + 4, 2.4),
            gridspec_kw={"width_ratios": [1] * len(images) + [2.5]},
        )
        for ax, image in zip(axes, images, strict=False):
            ax.imshow(image, cmap="gray_r", vmin=-1, vmax=1)
            ax.set(xticks=[], yticks=[])
        axes[0].set_title(f"x_t at t = {t}", loc="left")
        curves = axes[-1]
        curves.plot(steps, signal, label=r"signal $\sqrt{\bar\alpha_t}$")
        curves.plot(steps, np.sqrt(1 - signal**2), label=r"noise $\sqrt{1-\bar\alpha_t}$")
        curves.axvline(t, color="k", lw=1)
        curves.set(xlabel="t", ylim=(0, 1.05))
        curves.legend(fontsize=8, loc="center right")

    return slider_view(draw, t=(0, schedule.T, 1, t))


# the trained denoiser, shipped ------------------------------------------------------------------------------
SHIPPED_DENOISER = "denoiser_digits"  # data/denoiser_digits.safetensors and .json, by data/make_denoiser.py
DENOISER_RECIPE = {  # section 14.5's model and training run; the chapter asserts that it uses the same
    "hidden": 256,
    "blocks": 3,
    "T": 200,
    "schedule": "cosine",
    "snr_cap": 5.0,
    "epochs": 250,
    "cosine_decay": True,
    "seed": 0,
}


def save_denoiser(
    model: Denoiser, history: History, recipe: dict, out_dir: Path, name: str = SHIPPED_DENOISER
):
    """Write <out_dir>/<name>.safetensors (the float32 weights) and <name>.json (recipe, training curve)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(out_dir / f"{name}.safetensors"))
    record = {"recipe": recipe, "step_loss": history.step_loss, "epoch_metrics": history.epoch_metrics}
    (out_dir / f"{name}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")


def load_shipped_denoiser(
    model: Denoiser, name: str = SHIPPED_DENOISER, data_dir: Path | None = None
) -> tuple[History, dict]:
    """Load the shipped weights into `model` (built with the recipe's sizes); return (history, recipe).

    Both files are checked against data/MANIFEST.sha256 (helpers.data.data_path). A model of other sizes
    is refused with the sizes the weights need.
    """
    record = json.loads(data_path(f"{name}.json", data_dir).read_text(encoding="utf-8"))
    recipe = record["recipe"]
    weights = load_file(str(data_path(f"{name}.safetensors", data_dir)))
    mine = model.state_dict()
    if set(mine) != set(weights) or any(mine[k].shape != weights[k].shape for k in weights):
        raise ValueError(
            f"the shipped weights are for Denoiser(hidden={recipe['hidden']}, blocks={recipe['blocks']}); "
            "build the model with those sizes"
        )
    model.load_state_dict(weights)
    return History(step_loss=record["step_loss"], epoch_metrics=record["epoch_metrics"]), recipe
