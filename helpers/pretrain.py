"""Pretraining a GPT (chapter 18): batches of text, the training loop, and checkpoints that resume exactly.

What this module adds over helpers.gpt (the model) and helpers.schedules (the learning-rate schedule):

    get_batch(data, batch_size, block_size, generator)   random windows of block_size + 1 ids from a 1-D
                                                          tensor: inputs x and the same text shifted by one, y
    estimate_loss(model, data, iters, ...)                mean loss on a *fixed* set of windows (seeded), so
                                                          successive evaluations are comparable
    param_groups(model, weight_decay)                     AdamW groups: decay on the matrices of Linear layers
                                                          only (not biases, LayerNorms or embeddings)
    TrainConfig, TrainState, train(...)                   the loop: warm-up + cosine learning rate, gradient
                                                          clipping, periodic evaluation, a progress bar, bf16
                                                          autocast on CUDA
    save_checkpoint / load_checkpoint                     everything needed to resume - weights, AdamW's
                                                          moments, the step, the random-number generators,
                                                          the configs and the history - in one safetensors
                                                          file (tensors + JSON metadata; no pickle)
    sample(model, idx, max_new_tokens, ...)               plain sampling, to watch the model learn (chapter 19
                                                          does generation properly)
    load_shipped_gpt(device)                              the character-level GPT trained by
                                                          scripts/train_gpt.py and shipped in data/

Interrupting a run, saving, loading into a fresh model and optimiser, and carrying on gives bit-for-bit the
same weights and losses as a run that never stopped (tests/test_pretrain.py checks it on the CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from helpers.corpus import CharVocab
from helpers.gpt import GPT, GPTConfig
from helpers.normalization import LayerNorm as BookLayerNorm
from helpers.schedules import warmup_cosine

CHECKPOINT_FORMAT = "helpers.pretrain/1"
SHIPPED = "gpt_char_python_docs"  # data/<SHIPPED>.safetensors and data/<SHIPPED>.json


# --- batches ------------------------------------------------------------------------------------------------


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


# --- optimiser ----------------------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: the weight matrices of Linear layers decay; biases, norms and embeddings do not.

    Weight decay pulls weights towards zero. That regularises the big matrices that mix features; on a
    LayerNorm's scale it would fight the normalisation, and on a bias or an embedding row it only hurts
    rare tokens. The tied lm_head is the token embedding, so it does not decay either.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - embedding
    decay, no_decay = [], []
    for _, p in model.named_parameters():  # named_parameters lists a shared (tied) tensor once
        if p.requires_grad:
            (decay if id(p) in linear else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# --- the loop -----------------------------------------------------------------------------------------------


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


def make_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW over `param_groups(model, tc.weight_decay)` with tc's betas (lr is set every step)."""
    return torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr, betas=(tc.beta1, tc.beta2))


@dataclass
class History:
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
    history: History = field(default_factory=History)
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


# --- speed --------------------------------------------------------------------------------------------------


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


# --- checkpoints --------------------------------------------------------------------------------------------


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor stored once (the tied lm_head is wte: safetensors wants one)."""
    tensors, seen = {}, set()
    for name, t in model.state_dict(keep_vars=False).items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        tensors[name] = t.detach().contiguous().cpu()
    return tensors


def save_checkpoint(
    path: str | Path,
    model: GPT,
    optimizer: torch.optim.Optimizer | None = None,
    state: TrainState | None = None,
    tc: TrainConfig | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a safetensors file with the model's weights and, if given, all that a resumed run needs.

    Tensors: "model.<name>" (each tied tensor once), "optim.<i>.<key>" (AdamW's step, exp_avg, exp_avg_sq
    for parameter i), "rng.torch" / "rng.cuda" / "rng.mps" (the global generators, for dropout) and
    "rng.batches" (the batch generator). Metadata (JSON strings): the GPTConfig, the TrainConfig, the step,
    the history, the optimiser's hyper-parameters, and `extra` (anything JSON-able, e.g. a vocabulary).
    """
    tensors = {f"model.{k}": v for k, v in _model_tensors(model).items()}
    meta = {"format": CHECKPOINT_FORMAT, "gpt_config": json.dumps(asdict(model.config))}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, per_param in sd["state"].items():
            for key, value in per_param.items():
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
        meta["param_groups"] = json.dumps(sd["param_groups"])
    if state is not None:
        tensors["rng.batches"] = state.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        if torch.backends.mps.is_available():
            tensors["rng.mps"] = torch.mps.get_rng_state()
        meta["step"] = str(state.step)
        meta["seconds"] = repr(state.seconds)
        meta["history"] = json.dumps(asdict(state.history))
    if tc is not None:
        meta["train_config"] = json.dumps(asdict(tc))
    if extra is not None:
        meta["extra"] = json.dumps(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def read_safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file, read by hand: 8 bytes (little-endian length n), then n bytes
    of JSON giving each tensor's dtype, shape and byte range, and "__metadata__" (strings). The raw
    tensor bytes follow. Nothing in the file is code, which is why loading one is safe."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


@dataclass
class Checkpoint:
    """What load_checkpoint found: the model, and whatever else the file held (else None)."""

    model: GPT
    optimizer: torch.optim.Optimizer | None
    state: TrainState | None
    train_config: TrainConfig | None
    extra: dict | None


def load_checkpoint(
    path: str | Path,
    model: GPT | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
    restore_rng: bool = True,
) -> Checkpoint:
    """Read a file written by save_checkpoint.

    model: a GPT to load the weights into (its config must match), or None to build one from the stored
    config on `device`. optimizer: an optimiser over that model's parameters, to receive AdamW's state.
    restore_rng: also set torch's global generator(s) to their saved state, so dropout continues exactly.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path.name} is not a {CHECKPOINT_FORMAT} checkpoint (format {meta.get('format')!r})"
        )
    config = GPTConfig(**json.loads(meta["gpt_config"]))
    if model is None:
        model = GPT(config).to(device)
    elif model.config != config:
        raise ValueError(f"the checkpoint's config {config} differs from the model's {model.config}")
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    if "lm_head.weight" not in weights:  # tied: stored once, as the token embedding
        weights["lm_head.weight"] = weights["transformer.wte.weight"]
    model.load_state_dict(weights)

    if optimizer is not None:
        if "param_groups" not in meta:
            raise ValueError(f"{path.name} holds no optimizer state")
        groups = json.loads(meta["param_groups"])
        for g in groups:
            g["betas"] = tuple(g["betas"])
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                per_param.setdefault(int(i), {})[name] = value
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})

    state = None
    if "step" in meta:
        state = TrainState(step=int(meta["step"]), seconds=float(meta["seconds"]))
        state.generator.set_state(tensors["rng.batches"])
        state.history = History(**json.loads(meta["history"]))
        if restore_rng:
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["rng.cuda"])
            if "rng.mps" in tensors and torch.backends.mps.is_available():
                torch.mps.set_rng_state(tensors["rng.mps"])
    tc = None
    if "train_config" in meta:
        known = {f.name for f in fields(TrainConfig)}
        tc = TrainConfig(**{k: v for k, v in json.loads(meta["train_config"]).items() if k in known})
    extra = json.loads(meta["extra"]) if "extra" in meta else None
    return Checkpoint(model=model, optimizer=optimizer, state=state, train_config=tc, extra=extra)


# --- watching it learn --------------------------------------------------------------------------------------


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
    model: GPT, vocab: CharVocab, prompt: str, n: int, temperature: float = 1.0, seed: int = 0
) -> str:
    """`prompt` and n sampled characters after it (seeded, so repeatable)."""
    device = next(model.parameters()).device
    idx = vocab.tensor(prompt)[None].to(device)  # (1, T)
    out = sample(model, idx, n, temperature, torch.Generator().manual_seed(seed))
    return vocab.decode(out[0].tolist())


def plot_losses(ax: plt.Axes, history: History, window: int = 25) -> plt.Axes:
    """The loss of each step (faint), its running mean, and the evaluations on train and validation."""
    from helpers.train import smooth

    steps = np.arange(1, len(history.step_loss) + 1)
    ax.plot(steps, history.step_loss, color="C0", alpha=0.2, lw=0.8)
    ax.plot(steps, smooth(history.step_loss, window), color="C0", label="training batches (running mean)")
    if not all(math.isnan(v) for v in history.train_loss):
        ax.plot(history.eval_step, history.train_loss, "o-", color="C2", ms=4, label="train (fixed subset)")
    ax.plot(history.eval_step, history.val_loss, "o-", color="C3", ms=4, label="validation (fixed subset)")
    ax.set(xlabel="step", ylabel="loss (nats per token)")
    ax.legend(fontsize=8)
    return ax


def snapshot(history: History, samples: dict[int, str], step: int) -> dict:
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


def draw_snapshot(history: History, samples: dict[int, str], step: int, width: int = 64) -> dict:
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


# --- the shipped model --------------------------------------------------------------------------------------


def load_shipped_gpt(device: torch.device | str = "cpu") -> tuple[GPT, CharVocab, dict]:
    """The character-level GPT that scripts/train_gpt.py trained on the book's corpus.

    Returns (model in eval mode on `device`, its CharVocab, info): info is data/gpt_char_python_docs.json
    (config, vocabulary, validation loss, steps, seconds, the command that made it). Both files are checked
    against data/MANIFEST.sha256 first.
    """
    from helpers.data import data_path

    info = json.loads(data_path(f"{SHIPPED}.json").read_text(encoding="utf-8"))
    checkpoint = load_checkpoint(data_path(f"{SHIPPED}.safetensors"), device=device, restore_rng=False)
    vocab = CharVocab(tuple(info["vocab"]))
    if vocab.size != checkpoint.model.config.vocab_size:
        raise ValueError(
            f"the vocabulary has {vocab.size} characters, the model {checkpoint.model.config.vocab_size}"
        )
    return checkpoint.model.eval(), vocab, info


def bits_per_char(loss: float) -> float:
    """A loss in nats per character as bits per character (divide by ln 2)."""
    return loss / math.log(2)
