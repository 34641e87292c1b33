"""Autoencoders (chapter 14): squeeze an image through a small code and back; the VAE makes it a distribution.

What this module adds over helpers.generative (shared checks, draws and loop) and helpers.mlp:

- `Autoencoder`: 64 pixels through a small code and back (chapter 10's `MLP` on each side).
- `VAE`: the encoder gives a Gaussian per image instead of a point; `reparameterize` samples it so that
  gradients flow; `gaussian_kl` is the closed-form KL to N(0, I) (chapter 5's `kl_gaussian`, in torch so
  autograd can run through it); `vae_loss` is the negative ELBO, reconstruction + KL.
- `interpolate`, `latent_grid`, and the latent slider's data and view: `decode_point` / `latent_view`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.generative import PIXELS, check_images, randn
from helpers.mlp import MLP
from helpers.widgets import slider_view


class Autoencoder(nn.Module):
    """x -> encoder -> z (a `latent`-number code) -> decoder -> x_hat, pixels in [0, 1] through a sigmoid."""

    def __init__(self, latent: int = 2, hidden: Sequence[int] = (128,), pixels: int = PIXELS):
        super().__init__()
        if latent < 1:
            raise ValueError(f"latent must be at least 1, got {latent}")
        self.latent, self.pixels = latent, pixels
        self.encoder = MLP([pixels, *hidden, latent])
        self.decoder = MLP([latent, *reversed(hidden), pixels])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, pixels=self.pixels)
        return self.encoder(x)  # (B, latent)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # (B, pixels), in [0, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))  # (B, pixels)


def autoencoder_loss(model: Autoencoder, x: torch.Tensor, generator=None):
    """Mean squared reconstruction error per pixel: mean over the batch of |x - x_hat|^2 / 64."""
    loss = F.mse_loss(model(x), x)
    return loss, {"loss": loss.item()}


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2): a sample of N(mu, sigma^2)
    that is a differentiable function of mu and logvar (the randomness sits in eps alone)."""
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have one shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    eps = randn(mu.shape, generator, mu.device, mu.dtype)  # (B, k)
    return mu + torch.exp(0.5 * logvar) * eps  # (B, k)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ), summed over the last axis, in nats:
    1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)."""
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have one shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=-1)  # (B,)


class VAE(nn.Module):
    """A variational autoencoder: the encoder gives a mean and a log-variance per latent number (a
    Gaussian q(z | x)); the decoder gives each pixel's Bernoulli logit, p(x | z)."""

    def __init__(self, latent: int = 2, hidden: Sequence[int] = (256,), pixels: int = PIXELS):
        super().__init__()
        if latent < 1:
            raise ValueError(f"latent must be at least 1, got {latent}")
        self.latent, self.pixels = latent, pixels
        self.encoder = MLP([pixels, *hidden, 2 * latent])
        self.decoder = MLP([latent, *reversed(hidden), pixels])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, latent)."""
        check_images(x, pixels=self.pixels)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, latent) each
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's image for each code: pixel probabilities in [0, 1], (B, pixels)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(logits of x_hat (B, pixels), mu (B, latent), logvar (B, latent)) for one sample z per image."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)  # (B, latent)
        return self.decoder(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images: z from the prior N(0, I), then the decoder. (n, pixels)."""
        device = next(self.parameters()).device
        z = randn((n, self.latent), generator, device)  # (n, latent)
        return self.decode(z)


def vae_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0):
    """The negative ELBO per image, averaged over the batch: reconstruction + beta * KL.

    reconstruction = -log p(x | z) for one z ~ q(z | x): binary cross-entropy summed over the 64 pixels.
    KL = KL(q(z | x) || N(0, I)) in closed form. beta = 1 is the ELBO; beta = 0 drops the prior.
    The digits' pixels are grey levels in [0, 1], not 0 or 1: the cross-entropy is still smallest where
    the decoder's pixel equals x's, but it is then an unnormalised log-likelihood (the usual choice).
    """
    if beta < 0:
        raise ValueError(f"beta must be 0 or more, got {beta}")
    logits, mu, logvar = model(x, generator)  # (B, 64), (B, k), (B, k)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)  # (B,)
    kl = gaussian_kl(mu, logvar)  # (B,)
    loss = (reconstruction + beta * kl).mean()
    parts = {"loss": loss.item(), "reconstruction": reconstruction.mean().item(), "kl": kl.mean().item()}
    return loss, parts


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points on the straight line from z0 to z1 (both ends included): (steps, k)."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(
            f"z0 and z1 must be vectors of one length, got {tuple(z0.shape)} and {tuple(z1.shape)}"
        )
    w = torch.linspace(0.0, 1.0, steps, device=z0.device, dtype=z0.dtype)[:, None]  # (steps, 1)
    return (1 - w) * z0 + w * z1  # (steps, k)


def latent_grid(decode: Callable[[torch.Tensor], torch.Tensor], lim: float = 2.5, n: int = 15, device=None):
    """Decode an n x n grid of 2-D codes in [-lim, lim]^2 into one picture: an (8n, 8n) numpy array.
    Rows run from z2 = +lim at the top to -lim at the bottom, columns from z1 = -lim to +lim."""
    if n < 1 or lim <= 0:
        raise ValueError(f"need n >= 1 and lim > 0, got n={n}, lim={lim}")
    values = torch.linspace(-lim, lim, n)
    # z1[i, j] = values[j] and z2[i, j] = values[n - 1 - i], each (n, n): row 0 is the top, z2 = +lim
    z1, z2 = torch.meshgrid(values, values.flip(0), indexing="xy")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=-1).to(device)  # (n*n, 2)
    with torch.no_grad():
        images = decode(z).reshape(n, n, 8, 8).cpu()  # (row, column, 8, 8)
    return images.permute(0, 2, 1, 3).reshape(8 * n, 8 * n).numpy()


def decode_point(
    decode: Callable[[torch.Tensor], torch.Tensor], z1: float, z2: float, device=None
) -> np.ndarray:
    """The decoder's (8, 8) image for the single 2-D code (z1, z2)."""
    z = torch.tensor([[z1, z2]], dtype=torch.float32, device=device)  # (1, 2)
    with torch.no_grad():
        return decode(z).reshape(8, 8).cpu().numpy()


def latent_view(decode, codes: np.ndarray, labels: np.ndarray, lim: float = 3.0, device=None):
    """Sliders z1, z2 that move a star over the 2-D latent space (the codes of real digits, coloured by
    class) and show what the decoder draws at the star."""
    codes, labels = np.asarray(codes), np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or len(codes) != len(labels):
        raise ValueError(f"codes must be (N, 2) with one label each, got {codes.shape} and {labels.shape}")

    def draw(z1, z2):
        fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
        points = left.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
        plt.colorbar(points, ax=left, ticks=range(10))
        left.plot([z1], [z2], marker="*", color="k", markersize=16)
        left.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="$z_1$", ylabel="$z_2$", aspect="equal")
        right.imshow(decode_point(decode, z1, z2, device), cmap="gray_r", vmin=0, vmax=1)
        right.set(xticks=[], yticks=[], title=f"decoded at ({z1:.1f}, {z2:.1f})")

    return slider_view(draw, z1=(-lim, lim, 0.1, 0.0), z2=(-lim, lim, 0.1, 0.0))
