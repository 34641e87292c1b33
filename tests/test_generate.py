"""helpers.generate: the sampling filters against transformers' logits warpers on random logits, the sampler
against the probabilities it draws from, the KV-cached loop against the uncached one (same greedy tokens,
same sampled tokens for the same seed, past the context limit too) and against transformers' own greedy
generate on the same weights, stopping at end-of-sequence tokens and with left-padded prompts of different
lengths too; the shipped model with its BPE tokenizer (the same tokens with and without the cache, past
its context too); the slider's numbers; clear errors."""

import functools
import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from helpers import slider_view
from helpers.checkpoints import load_shipped_gpt
from helpers.data import data_path
from helpers.generate import (
    StaticCacheModel,
    StaticKVCache,
    apply_temperature,
    entropy_bits,
    full_passes,
    generate,
    generate_each,
    greedy,
    next_token,
    next_token_probs,
    sample_from,
    sampling_picture,
    top_k_filter,
    top_p_filter,
)
from helpers.gpt import GPT, GPTConfig, config_from_hf, load_hf_gpt2_state_dict
from tests.conftest import random_hf_gpt2

warnings.filterwarnings("ignore", message=".*non-interactive.*")

V = 50


def random_logits(seed, rows=4, vocab=V, scale=3.0):
    return scale * torch.randn(
        rows, vocab, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


# --- the filters against transformers --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("temperature", [0.1, 0.7, 1.0, 2.5])
def test_temperature_matches_transformers(seed, temperature):
    logits = random_logits(seed)
    theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
    torch.testing.assert_close(apply_temperature(logits, temperature), theirs)


def test_temperature_one_changes_nothing_and_small_temperature_approaches_greedy():
    logits = random_logits(0)
    torch.testing.assert_close(apply_temperature(logits, 1.0), logits, rtol=0, atol=0)
    top = greedy(logits)  # (4,)
    mass = [
        next_token_probs(logits, t).gather(-1, top[:, None]).min().item() for t in (2.0, 1.0, 0.3, 0.05, 0.01)
    ]
    assert all(a < b for a, b in zip(mass, mass[1:], strict=False)), mass  # the top token gains as T falls
    gap = (logits.topk(2).values[:, 0] - logits.topk(2).values[:, 1]).min().item()
    assert (
        mass[-1] > 1 - V * math.exp(-gap / 0.01) - 1e-12
    )  # each other token is at most exp(-gap/T) as likely
    onehot = next_token_probs(logits, 0.0)
    torch.testing.assert_close(onehot, torch.nn.functional.one_hot(top, V).double())
    assert torch.allclose(next_token_probs(logits, 1e6), torch.full_like(logits, 1 / V), atol=1e-4)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 2, 7, 49, 50, 80])
def test_top_k_matches_transformers_and_keeps_exactly_k(seed, k):
    logits = random_logits(seed)
    ours = top_k_filter(logits, k)
    theirs = TopKLogitsWarper(k)(None, logits.clone())
    torch.testing.assert_close(ours, theirs)
    finite = torch.isfinite(ours)
    assert (finite.sum(-1) == min(k, V)).all()
    kept_min = ours.masked_fill(~finite, math.inf).min(-1).values  # (4,)
    dropped_max = logits.masked_fill(finite, -math.inf).max(-1).values  # (4,)
    assert (kept_min > dropped_max).all()  # the kept ones are the largest
    torch.testing.assert_close(ours[finite], logits[finite])  # and they are unchanged


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("scale", [0.5, 3.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_top_p_matches_transformers_and_keeps_the_smallest_set_reaching_p(seed, p, scale, dtype):
    logits = random_logits(seed, scale=scale).to(dtype)
    ours = top_p_filter(logits, p)
    theirs = TopPLogitsWarper(p)(None, logits.clone())
    torch.testing.assert_close(ours, theirs)
    probs = torch.softmax(logits.double(), -1)
    for row in range(len(logits)):
        kept = torch.isfinite(ours[row])
        assert probs[row][kept].sum() >= p - 1e-12  # the kept set reaches p
        smallest_kept = probs[row][kept].min()
        assert probs[row][kept].sum() - smallest_kept < p  # and no smaller set of the top tokens does
        assert (probs[row][~kept] <= smallest_kept).all()  # it is made of the most likely tokens


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("temperature", "k", "p"), [(0.7, 10, 0.9), (1.3, 3, 0.5), (1.0, None, 0.8), (0.5, 20, None)]
)
def test_the_three_together_match_transformers_chain(seed, temperature, k, p):
    logits = random_logits(seed)
    chain = [TemperatureLogitsWarper(temperature)]
    chain += [TopKLogitsWarper(k)] if k else []
    chain += [TopPLogitsWarper(p)] if p else []
    theirs = torch.softmax(LogitsProcessorList(chain)(None, logits.clone()), -1)
    torch.testing.assert_close(next_token_probs(logits, temperature, k, p), theirs)


def test_entropy_against_torch_distributions():
    probs = torch.softmax(random_logits(3), -1)
    nats = torch.distributions.Categorical(probs=probs).entropy()
    torch.testing.assert_close(entropy_bits(probs), nats / math.log(2))
    assert entropy_bits(torch.tensor([1.0, 0.0, 0.0])).item() == 0.0
    assert entropy_bits(torch.full((8,), 1 / 8)).item() == pytest.approx(3.0)


# --- the sampler -----------------------------------------------------------------------------------------


def test_sampler_draws_with_the_right_frequencies_and_never_a_filtered_token():
    logits = top_k_filter(random_logits(1, rows=1, vocab=12, scale=1.0), 6)  # 6 tokens with probability 0
    probs = torch.softmax(logits, -1)  # (1, 12)
    n = 40_000
    draws = sample_from(probs.expand(n, -1), torch.Generator().manual_seed(0))  # (n,)
    freq = torch.bincount(draws, minlength=12).double() / n
    assert (freq[probs[0] == 0] == 0).all()
    sd = (probs[0] * (1 - probs[0]) / n).sqrt()
    assert ((freq - probs[0]).abs() <= 5 * sd + 1e-12).all(), (freq, probs)
    # the same frequencies as torch.distributions' sampler, within sampling noise
    torch.manual_seed(0)
    theirs = torch.distributions.Categorical(probs=probs[0]).sample((n,))
    their_freq = torch.bincount(theirs, minlength=12).double() / n
    assert ((freq - their_freq).abs() <= 7 * sd + 1e-12).all()


def test_sampler_is_reproducible_from_a_seed():
    probs = torch.softmax(random_logits(2, rows=3), -1)
    a = [sample_from(probs, g) for g in [torch.Generator().manual_seed(5)] for _ in range(10)]
    b = [sample_from(probs, g) for g in [torch.Generator().manual_seed(5)] for _ in range(10)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert (
        next_token(random_logits(2, rows=3), temperature=0).tolist()
        == greedy(random_logits(2, rows=3)).tolist()
    )


# --- the loop and the KV cache ---------------------------------------------------------------------------

SMALL = {"vocab_size": 37, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32}


@functools.cache
def small_gpt(seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**SMALL)).eval()
    with torch.no_grad():  # larger weights than GPT-2's init, so the next token depends on the context
        for p in model.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    return model


CACHES = ("concat", "static")  # the model's own torch.cat cache, or StaticCacheModel's preallocated one


def with_cache(model, cache):
    return StaticCacheModel(model) if cache == "static" else model


def prompt(seed, B=2, T=5):
    return torch.randint(0, SMALL["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("T", [1, 5, 16, 20])  # inside, at and beyond the context limit
@pytest.mark.parametrize("cache", CACHES)
def test_cached_greedy_is_identical_to_uncached_even_past_block_size(seed, T, cache):
    model, idx = small_gpt(seed), prompt(seed, T=T)
    new = 30  # the sequence outgrows block_size = 16
    slow = generate(model, idx, new, temperature=0, use_cache=False)
    fast = generate(with_cache(model, cache), idx, new, temperature=0, use_cache=True)
    assert slow.shape == (2, T + new)
    assert torch.equal(slow[:, :T], idx)
    assert torch.equal(fast, slow)
    forgetful = idx  # the same loop, but the model only ever sees the last token: what a lost cache gives
    for _ in range(new):
        forgetful = torch.cat([forgetful, greedy(model(forgetful[:, -1:])[0][:, -1])[:, None]], dim=1)
    assert not torch.equal(forgetful, slow)  # the context matters, so the equality above means something


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("temperature", "k", "p"), [(1.0, None, None), (0.8, 5, None), (1.2, None, 0.9)])
@pytest.mark.parametrize("cache", CACHES)
def test_cached_sampling_is_identical_to_uncached_with_the_same_seed(seed, temperature, k, p, cache):
    model, idx = small_gpt(seed), prompt(seed)
    kw = {"temperature": temperature, "top_k": k, "top_p": p}
    slow = generate(model, idx, 25, use_cache=False, generator=torch.Generator().manual_seed(seed), **kw)
    fast = generate(
        with_cache(model, cache), idx, 25, use_cache=True, generator=torch.Generator().manual_seed(seed), **kw
    )
    other = generate(
        model, idx, 25, use_cache=True, generator=torch.Generator().manual_seed(seed + 100), **kw
    )
    assert torch.equal(fast, slow)
    assert not torch.equal(other, slow)  # the seed matters, so the equality above means something


SHIPPED_BLOCK = {
    "norm": "rmsnorm",
    "mlp": "swiglu",
    "position": "rope",
    "bias": False,
    "tie_embeddings": True,
}


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("cache", CACHES)
def test_the_shipped_models_block_gives_the_same_tokens_past_block_size(seed, cache):
    # the shipped model's choices (RMSNorm, SwiGLU, RoPE, tied head) at a toy size: RoPE has no position
    # table, so the cropped window is recomputed for a different reason - the model refuses > block_size
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**SMALL, **SHIPPED_BLOCK)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    idx = prompt(seed, T=12)
    for how in ({"temperature": 0}, {"temperature": 1.0, "top_p": 0.9}):
        runs = [
            generate(m, idx, 20, use_cache=c, generator=torch.Generator().manual_seed(seed), **how)
            for m, c in ((model, False), (with_cache(model, cache), True))
        ]
        assert torch.equal(runs[0], runs[1])
        assert runs[0].shape == (2, 12 + 20)  # 32 tokens: twice the context of 16


def test_the_shipped_model_and_its_bpe_tokenizer_generate_the_same_with_and_without_the_cache():
    model, tok, _ = load_shipped_gpt("cpu")  # shipped in data/, checked against the manifest
    c = model.config
    assert (c.position, c.vocab_size) == ("rope", tok.vocab_size)
    text = data_path("python_docs_311_val.txt").read_text(encoding="utf-8")[:3000]
    ids = tok.encode(text)[: c.block_size - 2]  # 2 new tokens fit, the last 2 need a cropped window
    idx = torch.tensor(ids)[None]  # (1, 254)
    slow = generate(model, idx, 4, temperature=0, use_cache=False)
    fast = generate(model, idx, 4, temperature=0)
    assert torch.equal(slow, fast)
    short = torch.tensor(tok.encode("This module provides"))[None]  # (1, 3)
    out = generate(model, short, 6, generator=torch.Generator().manual_seed(0))  # (1, 9)
    assert torch.equal(
        out, generate(model, short, 6, use_cache=False, generator=torch.Generator().manual_seed(0))
    )
    assert tok.decode(out[0].tolist()).startswith("This module provides")


def count_forward_lengths(model, run):
    """The length T of every forward call's input, in order."""
    lengths = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(args[0].shape[1]), with_kwargs=True
    )
    try:
        run()
    finally:
        handle.remove()
    return lengths


@pytest.mark.parametrize(("T", "new"), [(1, 10), (5, 11), (5, 12), (5, 30), (16, 4), (20, 6), (3, 0)])
@pytest.mark.parametrize("cache", CACHES)
def test_the_cache_feeds_one_token_until_the_window_is_full(T, new, cache):
    model, idx = small_gpt(), prompt(0, T=T)
    cached = count_forward_lengths(model, lambda: generate(with_cache(model, cache), idx, new, temperature=0))
    uncached = count_forward_lengths(model, lambda: generate(model, idx, new, temperature=0, use_cache=False))
    block = SMALL["block_size"]
    assert uncached == [min(T + j, block) for j in range(new)]
    assert len(cached) == new
    assert sum(n > 1 or j == 0 for j, n in enumerate(cached)) == full_passes(T, new, block)
    for j, n in enumerate(cached):
        assert n == (min(T + j, block) if j == 0 or T + j > block else 1)


@pytest.mark.parametrize(
    "modern", [{}, {"n_kv_head": 1}, {"position": "rope", "n_kv_head": 2, "n_head": 4}]
)  # GPT-2, multi-query attention, RoPE with grouped-query attention
def test_static_cache_gives_the_same_tokens_with_gqa_and_rope(modern):
    torch.manual_seed(1)
    model = GPT(GPTConfig(**{**SMALL, **modern})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    idx = prompt(1, T=4)
    slow = generate(model, idx, 20, temperature=0, use_cache=False)
    assert torch.equal(generate(model, idx, 20, temperature=0), slow)
    static = StaticCacheModel(model)  # buffers of block_size = 16 positions; 4 + 20 tokens outgrow them
    assert torch.equal(generate(static, idx, 20, temperature=0), slow)
    buffer = static.caches[0].k.data_ptr()
    n_kv_head = model.config.n_kv_head or model.config.n_head
    hs = model.config.n_embd // model.config.n_head
    assert static.caches[0].k.shape == (2, n_kv_head, 16, hs)  # (B, kv heads only, max_len, hs)
    assert torch.equal(generate(static, idx, 20, temperature=0), slow)  # again, in the same buffers
    assert static.caches[0].k.data_ptr() == buffer
    assert torch.equal(generate(static, idx[:1], 20, temperature=0), slow[:1])  # another batch size


def test_static_cache_writes_in_place_into_one_buffer_per_layer():
    model = small_gpt()
    idx = prompt(0, T=3)
    past = StaticKVCache.for_model(model, batch=2, max_len=10)
    assert len(past) == SMALL["n_layer"] and past[0].k.shape == (2, 2, 10, 16)  # (B, n_kv_head, max_len, hs)
    buffers = [(c.k.data_ptr(), c.v.data_ptr()) for c in past]
    with torch.no_grad():
        logits, _, present = model(idx, past_kv=past, use_cache=True)  # fill 3 positions
        _, _, concat = model(idx, use_cache=True)
        for c, (k, v) in zip(present, concat, strict=True):
            assert c[0].shape == (2, 2, 3, 16)
            torch.testing.assert_close(c[0], k, rtol=0, atol=0)
            torch.testing.assert_close(c[1], v, rtol=0, atol=0)
        nxt = logits[:, -1:].argmax(-1)  # (B, 1)
        logits_static, _, present = model(nxt, past_kv=present, use_cache=True)
        logits_concat, _, _ = model(nxt, past_kv=concat, use_cache=True)
    assert all(a is b for a, b in zip(present, past, strict=True))  # the same objects come back
    assert [(c.k.data_ptr(), c.v.data_ptr()) for c in past] == buffers  # never reallocated
    assert past[0].length == 4 and past[0][0].data_ptr() == past[0].k.data_ptr()  # a view of the buffer
    torch.testing.assert_close(logits_static, logits_concat, rtol=1e-6, atol=1e-6)
    past[0].reset()
    assert past[0][0].shape[2] == 0


def test_full_passes_formula():
    assert full_passes(5, 30, 16) == 1 + (5 + 30 - 1 - 16)
    assert full_passes(1, 256, 256) == 1  # the 256th new token is predicted from 256 tokens: still fits
    assert full_passes(1, 257, 256) == 2  # the 257th is predicted from 257: one full pass
    assert full_passes(300, 10, 256) == 10
    assert full_passes(4, 0, 16) == 0


@functools.cache
def hf_gpt2(seed=0):
    model = random_hf_gpt2(**SMALL, seed=seed, bos_token_id=0, eos_token_id=None, pad_token_id=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0 if p.dim() == 2 else 1.0)
    return model


@pytest.mark.parametrize("seed", range(3))
def test_greedy_matches_transformers_generate_on_the_same_weights(seed):
    hf = hf_gpt2(seed)
    model = load_hf_gpt2_state_dict(GPT(config_from_hf(hf.config)).eval(), hf.state_dict())
    idx = prompt(seed, T=4)
    new = SMALL["block_size"] - 4  # transformers' GPT-2 cannot go past its n_positions
    with torch.no_grad():
        theirs = hf.generate(
            idx, attention_mask=torch.ones_like(idx), max_new_tokens=new, min_new_tokens=new, do_sample=False
        )
    ours = generate(model, idx, new, temperature=0)
    assert torch.equal(ours, theirs)


def eos_that_stop(model, idx, steps):
    """Token ids that a free-running greedy generation produces at the given step of each row: using them
    as end-of-sequence tokens makes the rows stop at different times (or earlier, if they appear before)."""
    free = generate(model, idx, max(steps) + 1, temperature=0)
    return sorted({int(free[b, idx.shape[1] + s]) for b, s in enumerate(steps)})


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("use_cache", [True, False])
def test_stopping_at_eos_matches_transformers_generate(seed, use_cache):
    hf = hf_gpt2(seed)
    model = load_hf_gpt2_state_dict(GPT(config_from_hf(hf.config)).eval(), hf.state_dict())
    idx = prompt(seed, B=3, T=4)
    eos = eos_that_stop(model, idx, steps=[2, 5, 8])
    new = SMALL["block_size"] - 4
    with torch.no_grad():
        theirs = hf.generate(
            idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=new,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=0,
        )
    ours = generate(model, idx, new, temperature=0, use_cache=use_cache, eos_token_id=eos, pad_token_id=0)
    assert torch.equal(ours, theirs)
    assert ours.shape[1] < 4 + new  # it stopped early: every row reached an eos
    for row in ours[:, 4:].tolist():  # each row: tokens, one eos, then only padding
        first = min(j for j, t in enumerate(row) if t in eos)
        assert all(t == 0 for t in row[first + 1 :])
    assert any(t not in eos for row in ours[:, 4:].tolist() for t in row[:1])  # not all stopped at once


def test_a_single_eos_id_and_the_default_padding():
    model, idx = small_gpt(), prompt(0, B=2, T=3)
    (eos,) = eos_that_stop(model, idx[:1], steps=[4])
    out = generate(model, idx, 12, temperature=0, eos_token_id=eos)
    free = generate(model, idx, 12, temperature=0)
    assert torch.equal(out[0, : 3 + 5], free[0, : 3 + 5])  # the same tokens up to and with the eos
    assert out[0, 3 + 4] == eos
    assert (out[0, 3 + 5 :] == eos).all()  # padded with the eos id when no pad id is given
    assert torch.equal(generate(model, idx, 12, temperature=0, eos_token_id=None), free)


def test_sampling_with_eos_is_the_same_with_and_without_the_cache():
    model, idx = small_gpt(1), prompt(1, B=4, T=3)
    eos = [0, 1, 2, 3]  # common enough that sampled rows stop at different steps
    runs = [
        generate(model, idx, 20, use_cache=c, generator=torch.Generator().manual_seed(3), eos_token_id=eos)
        for c in (True, False)
    ]
    assert torch.equal(runs[0], runs[1])
    stops = [next((j for j, t in enumerate(row) if t in eos), None) for row in runs[0][:, 3:].tolist()]
    assert len(set(stops)) > 1, stops  # rows finished at different steps, so the padding was exercised
    each = generate_each(model, [r for r in idx], 20, eos_token_id=iter(eos), temperature=0)
    assert [e.tolist() for e in each] == [
        generate_each(model, [r], 20, eos_token_id=eos, temperature=0)[0].tolist() for r in idx
    ]


@pytest.mark.parametrize("seed", range(3))
def test_different_prompt_lengths_match_transformers_with_left_padding(seed):
    hf = hf_gpt2(seed)
    model = load_hf_gpt2_state_dict(GPT(config_from_hf(hf.config)).eval(), hf.state_dict())
    g = torch.Generator().manual_seed(seed)
    lengths = [3, 6, 2, 6]
    prompts = [torch.randint(1, SMALL["vocab_size"], (n,), generator=g) for n in lengths]
    eos = eos_that_stop(model, prompts[1][None], steps=[3])
    new = SMALL["block_size"] - max(lengths)
    width = max(lengths)
    padded = torch.zeros(len(prompts), width, dtype=torch.long)  # left padding with pad id 0
    mask = torch.zeros_like(padded)
    for i, p in enumerate(prompts):
        padded[i, width - len(p) :], mask[i, width - len(p) :] = p, 1
    with torch.no_grad():
        theirs = hf.generate(
            padded, attention_mask=mask, max_new_tokens=new, do_sample=False, eos_token_id=eos, pad_token_id=0
        )
    ours = generate_each(model, prompts, new, eos_token_id=eos, temperature=0)
    for i, p in enumerate(prompts):
        row = theirs[i, width:].tolist()
        cut = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
        assert ours[i].tolist() == p.tolist() + row[:cut], i
    assert len(ours[1]) <= lengths[1] + 4 and int(ours[1][-1]) in eos  # prompt 1 stops at an eos
    # each prompt is continued as if it were alone
    for p, o in zip(prompts, ours, strict=True):
        alone = generate(model, p[None], new, temperature=0, eos_token_id=eos)[0]
        assert torch.equal(o, alone[: len(o)]) and (alone[len(o) :] == eos[0]).all()


# --- the slider ------------------------------------------------------------------------------------------


def test_sampling_picture_numbers():
    logits = random_logits(4, rows=1)[0]
    base = sampling_picture(logits)
    np.testing.assert_allclose(base["probs"], base["raw"])
    assert base["kept"] == V and base["entropy"] == pytest.approx(base["entropy_raw"])
    assert sampling_picture(logits, top_k=7)["kept"] == 7
    nucleus = sampling_picture(logits, top_p=0.6)
    assert np.sort(base["raw"])[::-1][: nucleus["kept"]].sum() >= 0.6
    assert np.sort(base["raw"])[::-1][: nucleus["kept"] - 1].sum() < 0.6
    assert (
        sampling_picture(logits, temperature=0.3)["entropy"]
        < base["entropy"]
        < sampling_picture(logits, 2.0)["entropy"]
    )
    assert sampling_picture(logits, temperature=0)["kept"] == 1


def test_slider_moves_the_distribution_and_the_continuation():
    model = small_gpt()
    idx = prompt(0, B=1)
    with torch.no_grad():
        logits = model(idx)[0][0, -1]  # (V,)
    texts = []

    def draw(temperature, k, p):
        picture = sampling_picture(logits, temperature, k, p)
        out = generate(model, idx, 12, temperature, k, p, generator=torch.Generator().manual_seed(0))
        texts.append(out[0, -12:].tolist())
        fig, ax = plt.subplots()
        ax.bar(range(len(picture["probs"])), picture["probs"])
        ax.set_title(f"kept {picture['kept']}: {texts[-1]}")

    view = slider_view(draw, temperature=(0.0, 2.0, 0.1, 1.0), k=(1, 37, 1, 37), p=(0.05, 1.0, 0.05, 1.0))
    before = view.image
    view.set(k=2)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    assert sampling_picture(logits, 1.0, 2, 1.0)["kept"] == 2
    view.set(k=37, temperature=0.0)
    assert texts[-1] == generate(model, idx, 12, temperature=0)[0, -12:].tolist()  # T = 0 is greedy
    view.set(temperature=1.0)
    np.testing.assert_array_equal(view.image, before)  # back where it started: the same picture


# --- clear errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: apply_temperature(torch.zeros(3), 0.0), "temperature must be positive"),
        (lambda: top_k_filter(torch.zeros(3), 0), "k must be a positive int"),
        (lambda: top_k_filter(torch.zeros(3), 2.5), "k must be a positive int"),
        (lambda: top_p_filter(torch.zeros(3), 0.0), r"p must be in \(0, 1\]"),
        (lambda: top_p_filter(torch.zeros(3), 1.5), r"p must be in \(0, 1\]"),
        (lambda: greedy(torch.zeros(3, dtype=torch.long)), "floating point"),
        (lambda: sample_from(torch.ones(3)), r"\(B, V\)"),
        (lambda: sample_from(-torch.ones(1, 3)), "non-negative"),
        (lambda: generate(small_gpt(), torch.zeros(5, dtype=torch.long), 3), r"\(B, T\)"),
        (lambda: generate(small_gpt(), torch.zeros(1, 5), 3), "long"),
        (lambda: generate(small_gpt(), prompt(0), -1), "max_new_tokens"),
        (lambda: generate(small_gpt(), prompt(0), 2, temperature=-1.0), "temperature must be >= 0"),
        (lambda: sampling_picture(torch.zeros(2, 3)), "one row"),
        (lambda: generate(small_gpt(), prompt(0), 2, eos_token_id=37), "eos_token_id must be token ids"),
        (lambda: generate(small_gpt(), prompt(0), 2, eos_token_id=[]), "eos_token_id must be token ids"),
        (lambda: generate(small_gpt(), prompt(0), 2, eos_token_id=[1, -1]), "eos_token_id must be token ids"),
        (lambda: generate(small_gpt(), prompt(0), 2, eos_token_id=1, pad_token_id=99), "pad_token_id"),
        (lambda: generate(small_gpt(), prompt(0), 2, eos_token_id=1, pad_token_id=True), "pad_token_id"),
        (lambda: generate_each(small_gpt(), [], 2), "non-empty list"),
        (lambda: generate_each(small_gpt(), prompt(0), 2), "non-empty list"),
        (lambda: generate_each(small_gpt(), [[1, 2], []], 2), "at least one token"),
        (lambda: full_passes(0, 3, 4), "prompt_len"),
        (lambda: StaticCacheModel(small_gpt(), max_len=17), "max_len must be an int from 1 to block_size"),
        (lambda: generate(StaticCacheModel(small_gpt(), max_len=6), prompt(0), 3), "exceed max_len 6"),
        (lambda: StaticKVCache(0, 2, 8, 4), "batch must be a positive int"),
        (lambda: StaticKVCache(1, 2, 8.0, 4), "max_len must be a positive int"),
        (lambda: StaticKVCache.for_model(small_gpt(), 1, 17), "max_len must be an int from 1 to block_size"),
        (
            lambda: StaticKVCache(1, 2, 4, 3).append(torch.zeros(1, 2, 5, 3), torch.zeros(1, 2, 5, 3)),
            "exceed",
        ),
        (
            lambda: StaticKVCache(1, 2, 4, 3).append(torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 2, 3)),
            "k and v",
        ),
        (
            lambda: StaticKVCache(1, 2, 4, 3).append(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 1, 3)),
            "k and v",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
