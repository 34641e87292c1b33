"""Watching a GPT learn (chapter 18): what it writes, and its loss curves, as training goes.

What this module adds over helpers.pretrain (the loop and its TrainingLog):

    sample(model, idx, max_new_tokens, ...)   plain sampling, no cache (chapter 19 does generation properly)
    sample_text(model, vocab, prompt, n)      the same from a prompt string, seeded
    plot_losses(ax, log)                      every step's loss, its running mean, and the evaluations
    snapshot / draw_snapshot                  the data and the picture of the chapter's training slider
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.corpus import CharVocab
from helpers.gpt import GPT
from helpers.nn_numpy import smooth
from helpers.pretrain import TrainingLog
from helpers.tokenizers import Tokenizer


@torch.no_grad()
def sample(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend idx (B, T) by max_new_tokens ids, each drawn from softmax(logits / temperature).

    The simplest generator: no cache, the context cropped to the model's block_size. Random draws use
    `generator` (a CPU generator), so a seeded generator gives the same text on any device.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        context = idx[:, -model.config.block_size :]  # (B, <= block_size)
        logits, _ = model(context)  # (B, T, V)
        probs = torch.softmax(logits[:, -1, :].float() / temperature, dim=-1)  # (B, V)
        nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)  # (B, 1)
        idx = torch.cat([idx, nxt], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx


def sample_text(
    model: GPT, vocab: CharVocab | Tokenizer, prompt: str, n: int, temperature: float = 1.0, seed: int = 0
) -> str:
    """`prompt` and n sampled tokens after it (characters for a CharVocab; seeded, so repeatable)."""
    device = next(model.parameters()).device
    idx = torch.tensor(vocab.encode(prompt), dtype=torch.long)[None].to(device)  # (1, T)
    out = sample(model, idx, n, temperature, torch.Generator().manual_seed(seed))
    return vocab.decode(out[0].tolist())


def plot_losses(ax: plt.Axes, history: TrainingLog, window: int = 25) -> plt.Axes:
    """The loss of each step (faint), its running mean, and the evaluations on train and validation."""
    steps = np.arange(1, len(history.step_loss) + 1)
    ax.plot(steps, history.step_loss, color="C0", alpha=0.2, lw=0.8)
    ax.plot(steps, smooth(history.step_loss, window), color="C0", label="training batches (running mean)")
    if not all(math.isnan(v) for v in history.train_loss):
        ax.plot(history.eval_step, history.train_loss, "o-", color="C2", ms=4, label="train (fixed subset)")
    ax.plot(history.eval_step, history.val_loss, "o-", color="C3", ms=4, label="validation (fixed subset)")
    ax.set(xlabel="step", ylabel="loss (nats per token)")
    ax.legend(fontsize=8)
    return ax


def snapshot(history: TrainingLog, samples: dict[int, str], step: int) -> dict:
    """The latest evaluation at or before `step`: its step, train and validation loss, and the sample
    generated then (`samples` maps an evaluation's step to its text)."""
    done = [s for s in history.eval_step if s <= step and s in samples]
    if not done:
        raise ValueError(f"no evaluation with a sample at or before step {step}")
    i = history.eval_step.index(done[-1])
    return {
        "step": done[-1],
        "train_loss": history.train_loss[i],
        "val_loss": history.val_loss[i],
        "text": samples[done[-1]],
    }


def draw_snapshot(history: TrainingLog, samples: dict[int, str], step: int, width: int = 64) -> dict:
    """The loss curves with a marker at `step`, and beside them what the model wrote at that point."""
    snap = snapshot(history, samples, step)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 3]})
    plot_losses(left, history)
    left.axvline(snap["step"], color="k", lw=1)
    left.set_title(f"step {snap['step']}: validation loss {snap['val_loss']:.2f}")
    lines = []
    for line in snap["text"].splitlines()[:14]:
        lines += [line[i : i + width] for i in range(0, max(len(line), 1), width)]
    right.text(0, 1, "\n".join(lines[:14]), family="monospace", fontsize=8.5, va="top", ha="left")
    right.set_axis_off()
    right.set_title("what the model writes now (seeded sample)", loc="left")
    fig.tight_layout()
    return snap
