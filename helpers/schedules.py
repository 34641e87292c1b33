"""Learning-rate schedules as plain functions of the step number (chapter 11).

Each function returns the learning rate to use at optimiser step `step` (counting from 0). They are the
closed forms of torch's schedulers (`StepLR`, `CosineAnnealingLR`, and `LinearLR` then
`CosineAnnealingLR` for warm-up plus cosine), so a plot of the function is the schedule a run used.
To drive a torch optimiser with one, wrap it in `as_lambda` and hand it to `LambdaLR`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch


def _check(step: int, peak_lr: float) -> None:
    if step < 0:
        raise ValueError(f"step counts from 0, got {step}")
    if peak_lr <= 0:
        raise ValueError(f"peak_lr must be positive, got {peak_lr}")


def constant(step: int, peak_lr: float) -> float:
    """The same learning rate at every step."""
    _check(step, peak_lr)
    return peak_lr


def step_decay(step: int, peak_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """peak_lr, multiplied by gamma every `step_size` steps (torch's StepLR)."""
    _check(step, peak_lr)
    if step_size < 1 or not 0 < gamma <= 1:
        raise ValueError(f"need step_size >= 1 and 0 < gamma <= 1, got {step_size} and {gamma}")
    return peak_lr * gamma ** (step // step_size)


def cosine(step: int, peak_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """Half a cosine from peak_lr at step 0 to min_lr at `total_steps`, then min_lr (CosineAnnealingLR)."""
    _check(step, peak_lr)
    if total_steps < 1 or not 0 <= min_lr <= peak_lr:
        raise ValueError(f"need total_steps >= 1 and 0 <= min_lr <= peak_lr, got {total_steps}, {min_lr}")
    progress = min(step, total_steps) / total_steps  # 0 -> 1
    return min_lr + 0.5 * (peak_lr - min_lr) * (1 + math.cos(math.pi * progress))


def warmup_cosine(
    step: int, peak_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0
) -> float:
    """Linear warm-up over the first `warmup_steps` steps, ending at peak_lr, then a cosine down to min_lr.

    Warm-up: lr = peak_lr * (step + 1) / warmup_steps, so step 0 already moves a little and step
    warmup_steps - 1 reaches the peak. Afterwards: `cosine` over the remaining total_steps - warmup_steps.
    """
    if step < 0 or peak_lr <= 0:
        raise ValueError(f"need step >= 0 and peak_lr > 0, got step={step}, peak_lr={peak_lr}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return cosine(step - warmup_steps, peak_lr, total_steps - warmup_steps, min_lr)


def curve(schedule: Callable[..., float], steps: int, **params: float) -> np.ndarray:
    """The learning rate at steps 0 .. steps - 1, shape (steps,), for plotting."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return np.array([schedule(s, **params) for s in range(steps)])


def as_lambda(schedule: Callable[..., float], **params: float) -> Callable[[int], float]:
    """The schedule as a multiplier of the optimiser's own lr (which should be `peak_lr`), for LambdaLR."""
    peak = params["peak_lr"]
    return lambda step: schedule(step, **params) / peak


def torch_scheduler(
    optimizer: torch.optim.Optimizer, schedule: Callable[..., float], **params: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR setting the optimiser's lr to `schedule(step, **params)`; `.step()` it after each step."""
    for group in optimizer.param_groups:
        group["lr"] = params["peak_lr"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, as_lambda(schedule, **params))


def draw_schedules(ax, curves: dict[str, np.ndarray]):
    """Plot learning rate against step for each labelled curve."""
    for label, lrs in curves.items():
        ax.plot(np.arange(len(lrs)), lrs, label=label)
    ax.set(xlabel="step", ylabel="learning rate", ylim=(0, None))
    ax.legend(fontsize=8)
    return ax
