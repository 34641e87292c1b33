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
                                               with eos_token_id, each row stops at its end-of-sequence token
    StaticKVCache, StaticCacheModel            a preallocated cache: keys and values written in place into
                                               buffers made once (generate(StaticCacheModel(model), ...))
    generate_each(model, prompts, ...)         prompts of different lengths, each continued as if alone
    entropy_bits(probs)                        the uncertainty of a distribution, in bits

Each filter is a small pure function on a logits tensor (..., V), checked in tests/test_generate.py against
transformers' TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper.

The context limit. The book's GPT sees at most block_size positions (0 .. block_size - 1): GPT-2's learned
position embeddings have rows for those only, and a RoPE model such as the shipped one was trained on
windows no longer (helpers.gpt refuses more). Without the cache, each step simply feeds the last block_size
tokens. With the cache, each new token is one position further along, so once block_size positions are
cached there is no room for the next one; and with learned positions every cached key and value was
computed with its token's old position, so after cropping the window they are all stale. The cached path
therefore recomputes the cropped window from scratch at every step once the sequence has outgrown the
context (a full forward pass, exactly what the uncached path does). That keeps the two paths token-for-token
identical; the cache only saves work while the sequence fits. Models with relative positions (RoPE) often
keep a sliding cache instead (drop the oldest entry, keep the rest). That is cheaper but not exact either:
above the first layer, every cached key and value was computed while its token could still attend to
tokens that have since been evicted, so a sliding cache changes the output a little, whatever the positions.

Two ways to keep the cache. The model's own path returns new tensors at every step: torch.cat copies
every cached key and value to append one position, so step t moves O(t) memory per layer and a whole
generation O(T^2). StaticKVCache allocates each layer's (B, n_kv_head, max_len, hs) buffers once and writes
each new position into its slot; attention reads a view of the filled part, so nothing already cached is
copied again (Hugging Face calls this a static cache). StaticCacheModel hands those buffers to the model
whenever generate starts a cache. The tokens are the same either way (tests/test_generate.py);
scripts/bench_generate.py measures both.

Stopping. An instruct model ends its answer with an end-of-sequence token (GPT-2's <|endoftext|>, ChatML's
<|im_end|>; some models have several). With eos_token_id, a row that has produced one is finished: it gets
pad_token_id from then on, so the batch stays a rectangle, and the loop stops as soon as every row is
finished - transformers' generate does the same, and tests/test_generate.py checks the tokens match.

Prompts of different lengths. transformers pads them on the left and passes an attention mask (and
positions that skip the padding). The book's GPT has neither a mask nor position arguments, and a padding
token it could see would change its answer, so generate_each runs prompts of the same length together and
the others in separate batches: each prompt is continued exactly as if it were alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

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


def eos_ids(eos_token_id: int | Iterable[int] | None, vocab_size: int) -> torch.Tensor | None:
    """The end-of-sequence ids as a 1-D long tensor (None stays None); ValueError for ids not in the vocab."""
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if not ids or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in ids
    ):
        raise ValueError(f"eos_token_id must be token ids in [0, {vocab_size}), got {eos_token_id!r}")
    return torch.tensor(ids, dtype=torch.long)


class StaticKVCache:
    """One layer's KV cache in buffers allocated once: k and v of shape (B, n_kv_head, max_len, hs).

    append(k, v) writes T new positions into the next free slots in place and returns views of all the
    filled positions, (B, n_kv_head, length, hs) each; cache[0] and cache[1] are those views too, so the
    cache stands wherever a (k, v) pair does (helpers.attention.SelfAttention calls append instead of
    torch.cat). reset() empties it without freeing the memory. StaticKVCache.for_model makes one per layer.
    """

    def __init__(
        self,
        batch: int,
        n_kv_head: int,
        max_len: int,
        head_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        sizes = {"batch": batch, "n_kv_head": n_kv_head, "max_len": max_len, "head_size": head_size}
        for name, n in sizes.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        shape = (batch, n_kv_head, max_len, head_size)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (B, nkv, max_len, hs)
        self.v = torch.zeros(shape, device=device, dtype=dtype)  # (B, nkv, max_len, hs)
        self.length = 0  # positions filled so far

    @classmethod
    def for_model(cls, model: nn.Module, batch: int, max_len: int) -> list[StaticKVCache]:
        """One empty cache per layer of the book's GPT (its n_kv_head, head size, device and dtype)."""
        c = model.config
        if not isinstance(max_len, int) or not 1 <= max_len <= c.block_size:
            raise ValueError(f"max_len must be an int from 1 to block_size {c.block_size}, got {max_len!r}")
        p = next(model.parameters())
        n_kv_head = c.n_head if c.n_kv_head is None else c.n_kv_head
        return [
            cls(batch, n_kv_head, max_len, c.n_embd // c.n_head, device=p.device, dtype=p.dtype)
            for _ in range(c.n_layer)
        ]

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, n_kv_head, T, hs) after the cached positions; return all of them (views)."""
        B, nkv, _, hs = self.k.shape
        if k.dim() != 4 or k.shape != v.shape or (k.shape[0], k.shape[1], k.shape[3]) != (B, nkv, hs):
            raise ValueError(
                f"k and v must both be (B={B}, n_kv_head={nkv}, T, hs={hs}), "
                f"got {tuple(k.shape)} and {tuple(v.shape)}"
            )
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(
                f"{self.length} cached + {k.shape[2]} new positions exceed max_len {self.max_len}"
            )
        self.k[:, :, self.length : end] = k  # (B, nkv, T, hs) written in place: nothing else is copied
        self.v[:, :, self.length : end] = v
        self.length = end
        return self[0], self[1]

    def __getitem__(self, i: int) -> torch.Tensor:
        """0: the cached keys, 1: the cached values, each a view (B, n_kv_head, length, hs)."""
        return (self.k, self.v)[i][:, :, : self.length]  # (B, nkv, length, hs)

    def reset(self) -> None:
        self.length = 0


class StaticCacheModel(nn.Module):
    """The book's GPT with a preallocated KV cache: generate(StaticCacheModel(model, max_len), idx, ...).

    Whenever a forward asks for a cache without passing one (generate's first step, or its refill of a
    cropped window), this wrapper passes its own StaticKVCache list instead, emptied, so the model writes
    into buffers made once (on the first call, for that batch size) rather than growing new tensors with
    torch.cat. Everything else goes straight to the model; generate itself is unchanged. max_len
    (default: block_size) is how many positions the buffers hold; prompt + new tokens must fit in it
    unless it is block_size.
    """

    def __init__(self, model: nn.Module, max_len: int | None = None):
        super().__init__()
        self.model = model
        self.config = model.config
        self.max_len = self.config.block_size if max_len is None else max_len
        if not isinstance(self.max_len, int) or not 1 <= self.max_len <= self.config.block_size:
            raise ValueError(
                f"max_len must be an int from 1 to block_size {self.config.block_size}, got {max_len!r}"
            )
        self.caches: list[StaticKVCache] | None = None

    def forward(self, idx: torch.Tensor, targets=None, past_kv=None, use_cache: bool = False):
        if use_cache and past_kv is None:
            p = next(self.model.parameters())
            made_for = None if self.caches is None else self.caches[0].k
            if made_for is None or (made_for.shape[0], made_for.device, made_for.dtype) != (
                idx.shape[0],
                p.device,
                p.dtype,
            ):  # first call, or another batch size, device or dtype: make the buffers (again)
                self.caches = StaticKVCache.for_model(self.model, idx.shape[0], self.max_len)
            for layer in self.caches:
                layer.reset()  # fill from position 0
            past_kv = self.caches
        return self.model(idx, targets, past_kv=past_kv, use_cache=use_cache)


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
    eos_token_id: int | Iterable[int] | None = None,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """Extend idx (B, T) by up to max_new_tokens tokens and return (B, T + new).

    Without the cache every step runs the model on the last block_size tokens and keeps the last logits.
    With it, the first step runs the whole prompt once and stores every layer's keys and values; each later
    step feeds only the newest token and appends its key and value. When the sequence no longer fits in
    block_size, the cached path recomputes the cropped window (see the module docstring), so both paths give
    the same tokens: identical for greedy decoding, and for sampling with the same seeded generator.

    eos_token_id (one id or several): a row that produced one is finished and is padded with pad_token_id
    (default: the first eos id) from then on; the loop ends when all rows are finished, so new can be less
    than max_new_tokens. Without it, new == max_new_tokens.
    """
    if idx.dim() != 2 or idx.shape[1] < 1 or idx.dtype != torch.long:
        raise ValueError(f"idx must be a (B, T) long tensor with T >= 1, got {tuple(idx.shape)} {idx.dtype}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    vocab_size = model.config.vocab_size
    stop = eos_ids(eos_token_id, vocab_size)
    if pad_token_id is not None and (
        not isinstance(pad_token_id, int)
        or isinstance(pad_token_id, bool)
        or not 0 <= pad_token_id < vocab_size
    ):
        raise ValueError(f"pad_token_id must be a token id in [0, {vocab_size}), got {pad_token_id!r}")
    if stop is not None:
        stop = stop.to(idx.device)
        pad = int(stop[0]) if pad_token_id is None else pad_token_id
        finished = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)  # (B,)
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
        if stop is not None:
            nxt = nxt.masked_fill(finished, pad)  # (B,) finished rows only grow padding
            finished |= torch.isin(nxt, stop)  # (B,)
        idx = torch.cat([idx, nxt[:, None]], dim=1)  # (B, T + 1)
        if stop is not None and bool(finished.all()):
            break
    model.train(was_training)
    return idx


def generate_each(
    model: nn.Module,
    prompts: Sequence[Sequence[int] | torch.Tensor],
    max_new_tokens: int,
    eos_token_id: int | Iterable[int] | None = None,
    **options,
) -> list[torch.Tensor]:
    """Continue prompts of different lengths; returns one 1-D tensor per prompt: prompt + its new tokens.

    Prompts of equal length run together as one batch (generate), others in their own batches, so no row
    ever sees padding. A row's new tokens end with its first eos token (kept) or after max_new_tokens.
    options are generate's (temperature, top_k, top_p, use_cache, generator).
    """
    if isinstance(prompts, torch.Tensor) or not prompts:
        raise ValueError("prompts must be a non-empty list of token-id lists or 1-D tensors")
    rows = [torch.as_tensor(p, dtype=torch.long) for p in prompts]
    if any(r.dim() != 1 or len(r) < 1 for r in rows):
        raise ValueError(
            f"every prompt must be 1-D with at least one token, got shapes {[r.shape for r in rows]}"
        )
    device = next(model.parameters()).device
    stop = eos_ids(eos_token_id, model.config.vocab_size)
    out: list[torch.Tensor | None] = [None] * len(rows)
    for length in sorted({len(r) for r in rows}):
        which = [i for i, r in enumerate(rows) if len(r) == length]
        batch = torch.stack([rows[i] for i in which]).to(device)  # (b, length)
        eos = None if stop is None else stop.tolist()
        result = generate(model, batch, max_new_tokens, eos_token_id=eos, **options)  # (b, length + n)
        for i, row in zip(which, result.cpu(), strict=True):
            new = row[length:]  # (n,)
            if stop is not None and torch.isin(new, stop).any():
                new = new[: int(torch.isin(new, stop).nonzero()[0]) + 1]  # up to and with the first eos
            out[i] = torch.cat([rows[i], new])
    return out


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
