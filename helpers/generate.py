"""Generating text (chapter 19): from next-token logits to a token, and a loop with a KV cache.

What this module adds over helpers.gpt (the model, whose forward already accepts past_kv / use_cache):

    apply_temperature(logits, temperature)     logits / T: T < 1 sharpens the distribution, T > 1 flattens it
    top_k_filter(logits, k)                    keep the k largest logits, set the rest to -inf
    top_p_filter(logits, p)                    keep the smallest set of most likely tokens whose probability
                                               adds up to at least p (nucleus sampling), the rest -inf
    next_token_probs(logits, ...)              the three above in Hugging Face's order, then softmax
    greedy(logits)                             the most likely token
    sample_from(probs, generator)              one draw per row by inverting the cumulative distribution
    next_token(logits, ...)                    greedy when temperature == 0, else a filtered, seeded draw
    generate(model, idx, max_new_tokens, ...)  the loop, with or without the KV cache (same tokens either way)
    entropy_bits(probs)                        the uncertainty of a distribution, in bits

Each filter is a small pure function on a logits tensor (..., V), checked in tests/test_generate.py against
transformers' TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper.

The context limit. The book's GPT has learned position embeddings for positions 0 .. block_size - 1 only.
Without the cache, each step simply feeds the last block_size tokens. With the cache, each new token is one
position further along, so once block_size positions are cached there is no room for the next one; and
every cached key and value was computed with its token's old position, so after cropping the window they
are all stale. The cached path therefore recomputes the cropped window from scratch at every step once the
sequence has outgrown the context (a full forward pass, exactly what the uncached path does). That keeps
the two paths token-for-token identical; the cache only saves work while the sequence fits. Models with
relative positions (RoPE) can instead keep a sliding cache; with learned absolute positions that would
change the model's output.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(
            f"logits must be a tensor (..., V) with V >= 1, got {getattr(logits, 'shape', logits)!r}"
        )
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) is the temperature-T distribution; T = 1 leaves the logits as they are."""
    check_logits(logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive (use greedy() for temperature 0), got {temperature}")
    return logits / temperature  # (..., V)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row and set the others to -inf (ties with the k-th are kept)."""
    check_logits(logits)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1) the k-th largest logit
    return logits.masked_fill(logits < kth, -math.inf)  # (..., V)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities add up to at least p; -inf the rest.

    Sort the probabilities from largest to smallest and keep a token while the mass *before* it is still
    below p: the token that carries the running total over p is kept, the ones after it are not. The most
    likely token is always kept; p = 1 keeps everything.
    """
    check_logits(logits)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if p == 1.0:
        return logits  # everything is kept (rounding in the running total must not drop the far tail)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V), (..., V)
    sorted_probs = torch.softmax(sorted_logits.double(), dim=-1)  # (..., V) float64: a precise running total
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # (..., V) probability above each token
    drop_sorted = mass_before >= p  # (..., V) the set already reached p without this token
    drop_sorted[..., 0] = False  # the top token always stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # (..., V) back in vocabulary order
    return logits.masked_fill(drop, -math.inf)  # (..., V)


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution a sampler draws from: temperature, then top-k, then top-p, then softmax.

    temperature == 0 means greedy: all probability on the most likely token.
    """
    check_logits(logits)
    if temperature == 0:
        return torch.nn.functional.one_hot(greedy(logits), logits.shape[-1]).to(logits.dtype)  # (..., V)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16/fp16 -> fp32
    logits = apply_temperature(logits, temperature)  # (..., V)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)  # (..., V)


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The index of the largest logit in each row: (..., V) -> (...)."""
    check_logits(logits)
    return logits.argmax(dim=-1)


def sample_from(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of probs (B, V), drawn by inverting the cumulative distribution: (B, V) -> (B,).

    Draw u uniform in [0, 1) and return the first token whose cumulative probability exceeds u * total.
    The uniform numbers come from `generator` (a CPU generator) on the CPU, so a seeded generator gives the
    same tokens on any device, and a tiny rounding difference in probs changes a token only if u lands
    within that difference of a boundary.
    """
    if probs.dim() != 2:
        raise ValueError(f"probs must be (B, V), got shape {tuple(probs.shape)}")
    if (probs < 0).any() or not torch.isfinite(probs).all():
        raise ValueError("probs must be finite and non-negative")
    cdf = torch.cumsum(probs.detach().double().cpu(), dim=-1)  # (B, V)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=torch.float64)  # (B, 1)
    idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)  # (B, 1) first entry > u * total
    return idx.clamp(max=probs.shape[-1] - 1).squeeze(-1).to(probs.device)  # (B,)


def next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The next token for each row of logits (B, V): greedy if temperature == 0, else a filtered draw."""
    if temperature == 0:
        return greedy(logits)  # (B,)
    return sample_from(next_token_probs(logits, temperature, top_k, top_p), generator)  # (B,)


@torch.inference_mode()  # like no_grad, and skips autograd's version counters too
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend idx (B, T) by max_new_tokens tokens and return (B, T + max_new_tokens).

    Without the cache every step runs the model on the last block_size tokens and keeps the last logits.
    With it, the first step runs the whole prompt once and stores every layer's keys and values; each later
    step feeds only the newest token and appends its key and value. When the sequence no longer fits in
    block_size, the cached path recomputes the cropped window (see the module docstring), so both paths give
    the same tokens: identical for greedy decoding, and for sampling with the same seeded generator.
    """
    if idx.dim() != 2 or idx.shape[1] < 1 or idx.dtype != torch.long:
        raise ValueError(f"idx must be a (B, T) long tensor with T >= 1, got {tuple(idx.shape)} {idx.dtype}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    block_size = model.config.block_size
    was_training = model.training
    model.eval()
    past = None  # one (k, v) per layer, each (B, nh, T_cached, hs)
    for _ in range(max_new_tokens):
        if use_cache and past is not None and past[0][0].shape[2] < block_size:
            logits, _, past = model(
                idx[:, -1:], past_kv=past, use_cache=True
            )  # (B, 1, V): the new token only
        elif use_cache:
            logits, _, past = model(idx[:, -block_size:], use_cache=True)  # (B, T, V): fill the cache
        else:
            logits, _ = model(idx[:, -block_size:])  # (B, T, V): recompute everything
        nxt = next_token(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B,)
        idx = torch.cat([idx, nxt[:, None]], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum p log2 p over the last axis (0 log 0 = 0): 0 for a sure thing, log2 V for uniform."""
    if probs.dim() < 1:
        raise ValueError("probs must have a last axis")
    logs = torch.log2(probs.clamp_min(torch.finfo(probs.dtype).tiny))
    return -(probs * logs).where(probs > 0, torch.zeros_like(probs)).sum(dim=-1)


def full_passes(prompt_len: int, new_tokens: int, block_size: int) -> int:
    """How many times the cached generate() runs the model on a whole window instead of one token.

    Step 0 always fills the cache. Step j >= 1 sees prompt_len + j tokens and can use the cache only while
    they fit: prompt_len + j <= block_size. Every later step recomputes the cropped window.
    """
    if min(prompt_len, block_size) < 1 or new_tokens < 0:
        raise ValueError("need prompt_len >= 1, block_size >= 1 and new_tokens >= 0")
    if new_tokens == 0:
        return 0
    return 1 + max(0, min(new_tokens - 1, prompt_len + new_tokens - 1 - block_size))


def sampling_picture(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> dict:
    """The numbers behind chapter 19's sliders, for one row of logits (V,).

    Returns {"raw": softmax(logits), "probs": next_token_probs(...), "kept": how many tokens can still be
    drawn, "entropy_raw" / "entropy": the two entropies in bits}, all as float64 numpy / Python numbers.
    """
    if logits.dim() != 1:
        raise ValueError(f"give one row of logits (V,), got shape {tuple(logits.shape)}")
    raw = torch.softmax(logits.double(), dim=-1)  # (V,)
    probs = next_token_probs(logits.double(), temperature, top_k, top_p)  # (V,)
    return {
        "raw": raw.cpu().numpy(),
        "probs": probs.cpu().numpy(),
        "kept": int((probs > 0).sum()),
        "entropy_raw": float(entropy_bits(raw)),
        "entropy": float(entropy_bits(probs)),
    }
