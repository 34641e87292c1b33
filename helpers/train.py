"""A PyTorch training loop for the book: mini-batches, a progress bar, a loss history and its plot.

Chapter 10 builds this loop line by line; later chapters call `fit` and `plot_history` instead of
writing it again. The loop is deliberately plain: forward, loss, backward, step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from helpers.nn_numpy import smooth  # chapter 9's running mean, for the loss plot


@dataclass
class History:
    """Loss after every step, and whatever `evaluate` returned after every epoch."""

    step_loss: list[float] = field(default_factory=list)
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)

    def last(self, name: str) -> float:
        """The latest value of an epoch metric, e.g. `history.last("val_accuracy")`."""
        if not self.epoch_metrics or name not in self.epoch_metrics[-1]:
            known = sorted(self.epoch_metrics[-1]) if self.epoch_metrics else []
            raise KeyError(f"no epoch metric {name!r}; have {known}")
        return self.epoch_metrics[-1][name]


def fit(
    model: torch.nn.Module,
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | Iterable,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    grad_clip: float = 0.0,
) -> History:
    """Train `model` for `epochs` passes over `batches` (a DataLoader, or a function returning batches).

    Each step: move the batch to `device`, forward, `loss_fn(output, target)`, backward, clip the
    gradient's global norm to `grad_clip` if it is positive, optimizer step, then `scheduler.step()` if
    given. After each epoch `evaluate(model)` (in eval mode, no gradients) adds a row of metrics.
    Returns the History.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if not grad_clip >= 0:
        raise ValueError(f"grad_clip must be >= 0 (0: no clipping), got {grad_clip}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    history = History()
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    for _ in bar:
        model.train()
        for inputs, targets in batches() if callable(batches) else batches:
            inputs, targets = inputs.to(device), targets.to(device)
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.step_loss.append(loss.item())
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.epoch_metrics.append({k: float(v) for k, v in evaluate(model).items()})
            bar.set_postfix(history.epoch_metrics[-1])
        else:
            bar.set_postfix(loss=f"{history.step_loss[-1]:.4f}")
    model.eval()
    return history


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied (shared) tensor counts once."""
    params = list(model.parameters())  # parameters() yields a shared tensor once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """The fraction of rows of X whose largest output is the label in y."""
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size].to(device))  # (B, classes)
        correct += (logits.argmax(dim=-1) == y[start : start + batch_size].to(device)).sum().item()
    model.train(was_training)
    return correct / len(X)


def plot_history(history: History, ax: plt.Axes | None = None, window: int = 20, label: str = "train loss"):
    """Plot the loss per step (faint) and its running mean; returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(1, len(history.step_loss) + 1)
    line = ax.plot(steps, history.step_loss, alpha=0.25)[0]
    ax.plot(steps, smooth(history.step_loss, window), color=line.get_color(), label=label)
    ax.set(xlabel="step", ylabel="loss")
    ax.legend()
    return ax
