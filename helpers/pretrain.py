"""Pretraining a GPT (chapter 18): batches of text, a fair evaluation, AdamW's groups and the loop.

What this module adds over helpers.gpt (the model) and helpers.schedules (the learning-rate schedule):

    get_batch(data, batch_size, block_size, generator)   random windows of block_size + 1 ids from a 1-D
                                                          tensor: inputs x and the same text shifted by one, y
    estimate_loss(model, data, iters, ...)                mean loss on a *fixed* set of windows (seeded), so
                                                          successive evaluations are comparable
    param_groups(model, weight_decay), make_adamw         AdamW groups: decay on the matrices of Linear layers
                                                          only (not biases, LayerNorms or embeddings)
    TrainConfig, TrainState, TrainingLog, train(...)      the loop: warm-up + cosine learning rate, gradient
                                                          clipping, periodic evaluation, a progress bar, bf16
                                                          autocast on CUDA; the log of every loss
    use_fused_layernorm(model)                            PyTorch's fused LayerNorm in place of the book's

Saving and resuming a run is helpers.checkpoints; watching the model learn (samples, loss curves) is
helpers.watch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.gpt import GPT
from helpers.normalization import LayerNorm as BookLayerNorm
from helpers.schedules import warmup_cosine


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    block_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of block_size + 1 ids from the 1-D tensor `data`.

    Returns (x, y), each (batch_size, block_size): x is a window's first block_size ids and y the same
    window shifted left by one, so y[b, t] is the id that follows x[b, :t + 1]. The start positions come
    from `generator` (a CPU torch.Generator), so a seeded generator gives the same batches every run.
    """
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if batch_size < 1 or block_size < 1:
        raise ValueError(f"batch_size and block_size must be positive, got {batch_size} and {block_size}")
    if len(data) < block_size + 1:
        raise ValueError(
            f"data has {len(data)} ids, too few for one window of block_size + 1 = {block_size + 1}"
        )
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (B, T + 1)
    windows = data[offsets]  # (B, T + 1)
    x, y = windows[:, :-1], windows[:, 1:]  # (B, T), (B, T)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """A bf16 (or fp16) autocast context on `device`, or a context that does nothing when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    data: torch.Tensor,
    iters: int = 20,
    batch_size: int = 12,
    block_size: int | None = None,
    seed: int = 1337,
    amp_dtype: torch.dtype | None = None,
) -> float:
    """The model's mean next-token loss on `iters` batches of windows from `data`.

    The windows come from a generator seeded with `seed`, so every call sees the same fixed subset: two
    evaluations differ only because the model changed. The training random state is not touched.
    """
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    block_size = block_size or model.config.block_size
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(iters):
        x, y = get_batch(data, batch_size, block_size, generator, device)  # (B, T), (B, T)
        with autocast(device, amp_dtype):
            _, loss = model(x, y)
        total += loss.item()
    model.train(was_training)
    return total / iters


@torch.no_grad()
def evaluate_all(
    model: nn.Module,
    data: torch.Tensor,
    block_size: int | None = None,
    batch_size: int = 64,
    amp_dtype: torch.dtype | None = None,
) -> float:
    """The mean next-token loss over *all* of `data`: cut into consecutive windows of block_size, each
    predicted once (the last window may be shorter). Exact and deterministic, but slower than
    estimate_loss; use it for a final figure."""
    block_size = block_size or model.config.block_size
    if data.dim() != 1 or len(data) < 2:
        raise ValueError(f"data must be a 1-D tensor of at least 2 ids, got shape {tuple(data.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n_full = (len(data) - 1) // block_size  # windows with all block_size targets
    starts = torch.arange(n_full) * block_size  # (N,)
    total, count = 0.0, 0
    for i in range(0, n_full, batch_size):
        offsets = starts[i : i + batch_size, None] + torch.arange(block_size + 1)  # (B, T + 1)
        windows = data[offsets].to(device)  # (B, T + 1)
        with autocast(device, amp_dtype):
            logits, _ = model(windows[:, :-1])  # (B, T, V)
        targets = windows[:, 1:]  # (B, T)
        total += F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="sum").item()
        count += targets.numel()
    rest = data[n_full * block_size :]  # the last, shorter window (with its own target)
    if len(rest) > 1:
        with autocast(device, amp_dtype):
            logits, _ = model(rest[None, :-1].to(device))  # (1, t, V)
        total += F.cross_entropy(logits[0].float(), rest[1:].to(device), reduction="sum").item()
        count += len(rest) - 1
    model.train(was_training)
    return total / count


def param_groups(model: nn.Module, weight_decay: float, decay_embeddings: bool = False) -> list[dict]:
    """Two AdamW groups: the weight matrices of Linear layers decay; biases, norms and embeddings do not.

    Weight decay pulls weights towards zero. That regularises the big matrices that mix features; on a
    LayerNorm's scale it would fight the normalisation, and on a bias or an embedding row it only hurts
    rare tokens. The tied lm_head is the token embedding, so it does not decay either.
    decay_embeddings=True decays every matrix, the embedding tables too (a common recipe's choice: every
    parameter with two or more dimensions), and still no bias or norm scale.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    linear = linear | embedding if decay_embeddings else linear - embedding
    decay, no_decay = [], []
    for _, p in model.named_parameters():  # named_parameters lists a shared (tied) tensor once
        if p.requires_grad:
            (decay if id(p) in linear else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass
class TrainConfig:
    """How to train. The learning rate warms up linearly for warmup_steps, then follows a cosine from lr
    down to min_lr at max_steps."""

    max_steps: int = 2000
    batch_size: int = 12
    block_size: int | None = None  # None: the model's block_size
    lr: float = 1e-3  # the peak learning rate
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # clip the gradient's global norm to this (0: no clipping)
    eval_interval: int = 250  # evaluate after every eval_interval steps (and at the start and the end)
    eval_iters: int = 20  # batches per evaluation
    eval_batch_size: int | None = None  # None: batch_size
    eval_train: bool = True  # also evaluate on the training split (False: val only, train_loss is nan)
    decay_embeddings: bool = False  # weight decay on the embedding tables too (see param_groups)
    amp: str = "auto"  # "auto": bf16 autocast on CUDA, none elsewhere; "bf16"; "none"
    seed: int = 0  # seeds the batch generator

    def __post_init__(self):
        if self.max_steps < 1 or self.batch_size < 1 or self.eval_interval < 1 or self.eval_iters < 1:
            raise ValueError("max_steps, batch_size, eval_interval and eval_iters must be positive")
        if not 0 <= self.warmup_steps < self.max_steps:
            raise ValueError(f"need 0 <= warmup_steps < max_steps, got {self.warmup_steps}, {self.max_steps}")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr, got {self.min_lr} and {self.lr}")
        if self.amp not in ("auto", "bf16", "none"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'none', got {self.amp!r}")

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step `step` (from 0)."""
        return warmup_cosine(step, self.lr, self.warmup_steps, self.max_steps, self.min_lr)

    def amp_dtype(self, device: torch.device | str) -> torch.dtype | None:
        """bf16 when autocast is on for this device, else None."""
        on = self.amp == "bf16" or (self.amp == "auto" and torch.device(device).type == "cuda")
        return torch.bfloat16 if on else None


def make_adamw(model: nn.Module, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW over `param_groups(model, tc.weight_decay, tc.decay_embeddings)` with tc's betas (lr is set
    every step)."""
    groups = param_groups(model, tc.weight_decay, tc.decay_embeddings)
    return torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2))


@dataclass
class TrainingLog:
    """The loss of every training step, and one row per evaluation."""

    step_loss: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time since the start, at each evaluation
    eval_seconds: list[float] = field(default_factory=list)  # how long each evaluation itself took


@dataclass
class TrainState:
    """Where a run is: steps done, the batch generator, the history and the wall time so far."""

    step: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator)
    history: TrainingLog = field(default_factory=TrainingLog)
    seconds: float = 0.0

    @classmethod
    def fresh(cls, seed: int) -> TrainState:
        return cls(generator=torch.Generator().manual_seed(seed))


def train(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    tc: TrainConfig,
    state: TrainState | None = None,
    until: int | None = None,
    on_eval: Callable[[TrainState, GPT], bool | None] | None = None,
    progress: bool = True,
) -> TrainState:
    """Train `model` from state.step up to step `until` (default tc.max_steps) and return the state.

    Each step: set the learning rate from the schedule, draw a batch, forward (under bf16 autocast on
    CUDA), backward, clip the gradient norm, optimizer step. After every tc.eval_interval steps, at the
    very start and at max_steps, evaluate on fixed subsets of train_data and val_data and call
    `on_eval(state, model)`; if it returns True, training stops there. Stopping at `until` < max_steps
    and calling again with the returned state (or one restored by load_checkpoint) continues the same run.
    """
    state = TrainState.fresh(tc.seed) if state is None else state
    until = tc.max_steps if until is None else until
    if not state.step <= until <= tc.max_steps:
        raise ValueError(f"until must be between the current step {state.step} and max_steps {tc.max_steps}")
    device = next(model.parameters()).device
    amp_dtype = tc.amp_dtype(device)
    block_size = tc.block_size or model.config.block_size
    h = state.history
    start = time.perf_counter() - state.seconds

    def evaluate() -> bool:
        kw = {
            "batch_size": tc.eval_batch_size or tc.batch_size,
            "block_size": block_size,
            "amp_dtype": amp_dtype,
        }
        began = time.perf_counter()
        h.eval_step.append(state.step)
        h.train_loss.append(
            estimate_loss(model, train_data, tc.eval_iters, **kw) if tc.eval_train else math.nan
        )
        h.val_loss.append(estimate_loss(model, val_data, tc.eval_iters, **kw))
        state.seconds = time.perf_counter() - start
        h.seconds.append(state.seconds)
        h.eval_seconds.append(time.perf_counter() - began)
        bar.set_postfix(train=f"{h.train_loss[-1]:.3f}", val=f"{h.val_loss[-1]:.3f}")
        return bool(on_eval(state, model)) if on_eval is not None else False

    bar = tqdm(total=until, initial=state.step, desc="training", disable=not progress, leave=False)
    model.train()
    stop = state.step == 0 and not h.eval_step and evaluate()
    while state.step < until and not stop:
        lr = tc.lr_at(state.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(train_data, tc.batch_size, block_size, state.generator, device)  # (B, T), (B, T)
        with autocast(device, amp_dtype):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        state.step += 1
        h.step_loss.append(loss.item())
        bar.update(1)
        if state.step % tc.eval_interval == 0 or state.step == tc.max_steps:
            stop = evaluate()
    state.seconds = time.perf_counter() - start
    bar.close()
    model.eval()
    return state


def use_fused_layernorm(model: nn.Module) -> nn.Module:
    """Replace every from-scratch helpers.normalization.LayerNorm in `model` by torch.nn.LayerNorm.

    The from-scratch layer runs the formula as about seven separate tensor operations (mean, variance,
    subtract, divide, ...), each a pass over memory with its own autograd node; torch's layer is one fused
    kernel. The new layers share the old Parameter objects, so the state dict, its names and the numbers
    (to float rounding) are unchanged. Returns the model (changed in place).
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, BookLayerNorm):
                fused = nn.LayerNorm(child.dim, eps=child.eps, bias=child.bias is not None)
                fused = fused.to(device=child.weight.device, dtype=child.weight.dtype)
                fused.weight = child.weight
                if child.bias is not None:
                    fused.bias = child.bias
                setattr(module, name, fused)
    return model


def bits_per_byte(nats_per_token: float, tokens: int, n_bytes: int) -> float:
    """A mean loss in nats per token as bits per byte of the text those tokens spell.

    Tokenizers cut text differently, so their losses per token cannot be compared: a tokenizer with longer
    tokens has fewer, harder predictions to make. The total information is what counts: tokens x nats per
    token, in bits (divide by ln 2), spread over the bytes of UTF-8 text the tokens cover.
    """
    if tokens < 1 or n_bytes < 1:
        raise ValueError(f"tokens and n_bytes must be positive, got {tokens} and {n_bytes}")
    return nats_per_token * tokens / (math.log(2) * n_bytes)
