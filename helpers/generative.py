"""Generative models (chapter 14): what the autoencoder, the VAE and the diffusion model share.

What this adds over the classifiers of chapters 10-12: models that learn what digits look like rather
than which digit an image is, and can then draw new ones. The models themselves are in
helpers.autoencoders (autoencoder, VAE) and helpers.diffusion (DDPM, DDIM); this module holds

- `check_images`, `randn`, `rand`, `randint`: the shape check and the seeded draws all three use;
- `train`: one small training loop for all three (tqdm bar, a `helpers.train.History` for
  `plot_history`); its loss takes the model and a generator (VAE draws, diffusion noise and t), which
  helpers.train.fit's loss_fn(output, target) cannot express;
- `judge`: what chapter 12's classifier makes of a batch of images.

Random numbers: every function that draws takes an optional torch.Generator; the numbers are drawn on
the generator's device and moved to the model's, so a seeded CPU generator gives the same draws on the
CPU, CUDA and MPS. Images are rows of 64 pixels in [0, 1] (`helpers.digits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.schedules import cosine, torch_scheduler
from helpers.train import History

PIXELS = 64  # 8 x 8 digits, flattened


LossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]


def check_images(x: torch.Tensor, name: str = "x", pixels: int = PIXELS) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != pixels:
        raise ValueError(
            f"{name} must be a tensor of shape (B, {pixels}), got {getattr(x, 'shape', type(x))}"
        )


def randn(shape, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """Standard normal numbers of `shape` on `device`. With a generator they are drawn on the generator's
    own device and then moved, so a CPU generator gives the same numbers whatever device the model is on."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def rand(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Numbers uniform in [0, 1), drawn like `randn` (on the generator's device, then moved)."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def randint(high: int, shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Integers uniform in 1..high, drawn like `randn` (on the generator's device, then moved)."""
    if generator is None:
        return torch.randint(1, high + 1, shape, device=device)
    return torch.randint(1, high + 1, shape, generator=generator, device=generator.device).to(device)


def train(
    model: nn.Module,
    loss_fn: LossFn,
    X: torch.Tensor,
    epochs: int,
    lr: float = 2e-3,
    batch_size: int = 128,
    seed: int = 0,
    cosine_decay: bool = False,
    progress: bool = True,
    labels: torch.Tensor | None = None,
) -> History:
    """Adam on `loss_fn(model, batch, generator) -> (loss, {name: number})` over shuffled batches of X.

    With `cosine_decay` the learning rate falls from lr to 0 along half a cosine (chapter 11's schedule).
    Records the loss after every step (`history.step_loss`, for `helpers.train.plot_history`) and, per
    epoch, the batch-average of each named number and the learning rate of the epoch's last step
    (`history.epoch_metrics`). Runs on the model's device. Two CPU torch.Generators seeded by `seed` draw
    the order of the batches and every random number the loss uses, so a run draws the same numbers on
    every device. With `labels` (one per row of X) the loss is called as loss_fn(model, batch, generator,
    labels=the batch's labels), for a class-conditional model.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs} and {batch_size}")
    if labels is not None and labels.shape != (len(X),):
        raise ValueError(f"labels must be one per row of X, shape ({len(X)},), got {tuple(labels.shape)}")
    device = next(model.parameters()).device
    X = X.to(device)
    labels = None if labels is None else labels.to(device)
    order = torch.Generator().manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(X) / batch_size)
    scheduler = None
    if cosine_decay:
        scheduler = torch_scheduler(optimizer, cosine, peak_lr=lr, total_steps=epochs * steps_per_epoch)
    history = History()
    model.train()
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    for _ in bar:
        totals: dict[str, float] = {}
        batches = torch.randperm(len(X), generator=order).split(batch_size)
        for rows in batches:
            rows = rows.to(device)
            if labels is None:
                loss, parts = loss_fn(model, X[rows], generator=generator)
            else:
                loss, parts = loss_fn(model, X[rows], generator=generator, labels=labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last_lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            history.step_loss.append(loss.item())
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value / len(batches)
        history.epoch_metrics.append({**totals, "lr": last_lr})
        bar.set_postfix(loss=f"{history.step_loss[-1]:.4f}")
    model.eval()
    return history


@torch.no_grad()
def judge(classifier: nn.Module, images: torch.Tensor, threshold: float = 0.9) -> dict[str, object]:
    """What a digit classifier makes of images (B, 64) in [0, 1]: for each, its most likely class and that
    class's probability; the fraction of images it calls some digit with probability >= threshold; and
    how many images it gives each class."""
    check_images(images, "images")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a probability in (0, 1], got {threshold}")
    if images.min() < -1e-6 or images.max() > 1 + 1e-6:
        raise ValueError(
            f"images must be pixels in [0, 1] (diffusion samples: pass to_unit(x)), "
            f"got values from {images.min().item():.3f} to {images.max().item():.3f}"
        )
    device = next(classifier.parameters()).device
    logits = classifier(images.to(device).reshape(-1, 1, 8, 8))  # (B, 10)
    confidence, label = F.softmax(logits, dim=-1).max(dim=-1)  # (B,), (B,)
    confidence, label = confidence.cpu().numpy(), label.cpu().numpy()
    return {
        "confidence": confidence,
        "label": label,
        "confident_fraction": float((confidence >= threshold).mean()),
        "counts": np.bincount(label, minlength=logits.shape[-1]),
    }
