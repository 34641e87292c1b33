"""helpers.attention against PyTorch: F.scaled_dot_product_attention and nn.MultiheadAttention on random
shapes, the fused and from-scratch paths of the module against each other, the KV cache against no cache,
and the chapter 16 temperature slider moved headless."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import slider_view
from helpers.attention import SelfAttention, causal_mask, scaled_dot_product_attention
from helpers.generate import StaticKVCache  # chapter 19's preallocated cache, through chapter 16's hook
from helpers.transformer import rope

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(8)


def random_qkv(seed, T_q=None, T_k=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    r = np.random.default_rng(seed)
    batch = tuple(int(n) for n in r.integers(1, 4, size=int(r.integers(0, 3))))  # 0 to 2 batch dims
    T_k = int(r.integers(1, 12)) if T_k is None else T_k
    T_q = T_k if T_q is None else T_q
    d, d_v = int(r.integers(1, 17)), int(r.integers(1, 9))
    q = torch.randn(*batch, T_q, d, generator=g, dtype=dtype)
    k = torch.randn(*batch, T_k, d, generator=g, dtype=dtype)
    v = torch.randn(*batch, T_k, d_v, generator=g, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_and_causal_match_pytorch(seed):
    q, k, v = random_qkv(seed)
    for is_causal in (False, True):
        ours = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        theirs = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_boolean_and_additive_masks_and_scale_match_pytorch(seed):
    q, k, v = random_qkv(seed, T_q=5, T_k=7)
    g = torch.Generator().manual_seed(100 + seed)
    allowed = torch.rand(5, 7, generator=g) < 0.6
    allowed[:, 0] = True  # every query may see at least one key (else both give nan)
    additive = torch.randn(5, 7, generator=g, dtype=torch.float64)
    for mask in (allowed, additive):
        for scale in (None, 0.3):
            ours = scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_match_pytorch(seed):
    q, k, v = (t.requires_grad_() for t in random_qkv(seed))
    ours = torch.autograd.grad(
        scaled_dot_product_attention(q, k, v, is_causal=True).square().sum(), (q, k, v)
    )
    theirs = torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum(), (q, k, v)
    )
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_causal_mask_is_aligned_to_the_end_of_the_keys():
    for T_q, T_k in [(1, 1), (3, 3), (1, 5), (3, 7), (7, 7)]:
        expected = torch.tensor([[j <= i + T_k - T_q for j in range(T_k)] for i in range(T_q)])
        assert torch.equal(causal_mask(T_q, T_k), expected)
    q, k, v = random_qkv(3, T_q=3, T_k=6)
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(3, 6))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_weights_are_a_distribution_and_causal_weights_hide_the_future():
    q, k, v = random_qkv(5, T_q=6, T_k=6)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
    assert (w >= 0).all()
    assert torch.all(w[..., ~causal_mask(6)] == 0)
    torch.testing.assert_close(out, w @ v)


def test_dropout_keeps_the_expected_weights_and_zero_dropout_is_exact():
    q, k, v = random_qkv(1, T_q=4, T_k=4, dtype=torch.float32)
    torch.testing.assert_close(
        scaled_dot_product_attention(q, k, v, dropout_p=0.0), F.scaled_dot_product_attention(q, k, v)
    )
    torch.manual_seed(0)
    _, plain = scaled_dot_product_attention(q, k, v, return_weights=True)
    many = (4000, *[1] * q.dim())  # 4000 independent draws of the dropout mask, in one call
    _, draws = scaled_dot_product_attention(
        q.repeat(many), k.repeat(many), v.repeat(many), dropout_p=0.3, return_weights=True
    )
    assert ((draws == 0).float().mean() - 0.3).abs() < 0.02  # about 30% of the weights are dropped
    torch.testing.assert_close(draws.mean(0), plain, atol=0.05, rtol=0.0)  # unbiased: the mean is kept


@pytest.mark.parametrize(
    ("shapes", "kwargs", "message"),
    [
        (((3, 4), (3, 5), (3, 2)), {}, "same last dim"),
        (((3, 4), (3, 4), (2, 2)), {}, "same number of positions"),
        (((4,), (3, 4), (3, 2)), {}, "at least 2 dims"),
        (((3, 4), (3, 4), (3, 2)), {"dropout_p": 1.0}, "dropout_p"),
    ],
)
def test_bad_inputs_get_clear_errors(shapes, kwargs, message):
    q, k, v = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v, **kwargs)


def test_causal_mask_errors():
    with pytest.raises(ValueError, match="T_q <= T_k"):
        causal_mask(5, 3)
    with pytest.raises(ValueError, match="multiple of n_head"):
        SelfAttention(10, 3)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        SelfAttention(8, 2)(torch.randn(2, 3, 6))


# --- the multi-head module --------------------------------------------------------------------------------


def make_module(seed, n_embd=24, n_head=4, fused=True, causal=True):
    torch.manual_seed(seed)
    module = SelfAttention(n_embd, n_head, fused=fused, causal=causal).double()
    for p in module.parameters():  # random biases too, so a bias mix-up cannot hide behind zeros
        nn.init.normal_(p, std=0.3)
    return module


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("causal", [True, False])
def test_module_matches_nn_multihead_attention(seed, causal):
    module = make_module(seed, causal=causal)
    mha = nn.MultiheadAttention(24, 4, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # same layout: q, k, v weights stacked as rows of one (3C, C) matrix
        mha.in_proj_weight.copy_(module.c_attn.weight)
        mha.in_proj_bias.copy_(module.c_attn.bias)
        mha.out_proj.weight.copy_(module.c_proj.weight)
        mha.out_proj.bias.copy_(module.c_proj.bias)
    T = 1 + seed
    x = torch.randn(3, T, 24, dtype=torch.float64)
    hidden = ~causal_mask(T) if causal else None  # nn.MultiheadAttention: True means *not* allowed
    theirs, _ = mha(x, x, x, attn_mask=hidden, need_weights=False)
    for fused in (True, False):
        module.fused = fused
        torch.testing.assert_close(module(x), theirs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fused_and_from_scratch_paths_agree(seed):
    module = make_module(seed, n_embd=32, n_head=8)
    x = torch.randn(2, 10, 32, dtype=torch.float64, requires_grad=True)
    fused = module(x)
    module.fused = False
    scratch = module(x)
    torch.testing.assert_close(fused, scratch, rtol=1e-10, atol=1e-10)
    g1 = torch.autograd.grad(fused.sum(), x)[0]
    g2 = torch.autograd.grad(scratch.sum(), x)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 1, 3], [2, 5, 2]])
def test_kv_cache_gives_the_same_outputs_as_no_cache(fused, chunks):
    module = make_module(7, fused=fused)
    x = torch.randn(2, sum(chunks), 24, dtype=torch.float64)
    full = module(x)
    outputs, past, start = [], None, 0
    for n in chunks:  # feed the sequence in pieces, carrying the cache
        y, past = module(x[:, start : start + n], past_kv=past, use_cache=True)
        outputs.append(y)
        start += n
        assert past[0].shape == (2, 4, start, 6) and past[1].shape == (2, 4, start, 6)
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, rtol=1e-10, atol=1e-10)


def test_causal_module_ignores_the_future_and_heads_are_independent():
    module = make_module(2)
    x = torch.randn(1, 8, 24, dtype=torch.float64)
    changed = x.clone()
    changed[:, 5:] += 1.0
    torch.testing.assert_close(module(x)[:, :5], module(changed)[:, :5])
    assert not torch.allclose(module(x)[:, 5:], module(changed)[:, 5:])
    bidirectional = make_module(2, causal=False)
    assert not torch.allclose(bidirectional(x)[:, :5], bidirectional(changed)[:, :5])


def test_module_dropout_only_in_training():
    torch.manual_seed(0)
    module = SelfAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 6, 16)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    assert not torch.allclose(module(x), module(x))


# --- chapter 16's temperature slider, moved headless ------------------------------------------------------


def test_temperature_slider_sharpens_and_flattens_the_weights():
    torch.manual_seed(0)
    q, k = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    v = torch.eye(6, dtype=torch.float64)

    def weights(temperature):
        return scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / (8**0.5 * temperature))

    def draw(temperature):
        plt.imshow(weights(temperature).numpy(), vmin=0, vmax=1)

    view = slider_view(draw, temperature=(0.05, 5.0, 0.05, 1.0))
    before = view.image
    view.set(temperature=0.1)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    cold, warm, hot = weights(1e-4), weights(1.0), weights(1000.0)
    # Cold: a hard lookup, all weight on the best-matching visible key (a dict would do this).
    best = (q @ k.T).masked_fill(~causal_mask(6), float("-inf")).argmax(-1)
    torch.testing.assert_close(cold, F.one_hot(best, 6).double(), atol=1e-6, rtol=0)
    # Hot: a plain average of everything visible.
    uniform = causal_mask(6).double() / causal_mask(6).sum(-1, keepdim=True)
    torch.testing.assert_close(hot, uniform, atol=1e-3, rtol=0)
    entropy = [-(w * w.clamp_min(1e-12).log()).sum() for w in (cold, warm, hot)]
    assert entropy[0] < entropy[1] < entropy[2]


# --- grouped-query attention and the rotary hook (chapter 17's modern block) ------------------------------


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("n_kv_head", [1, 2, 6])
def test_grouped_query_attention_matches_sdpa_with_repeated_kv_heads(n_kv_head, fused):
    torch.manual_seed(n_kv_head)
    C, nh, hs = 48, 6, 8
    attn = SelfAttention(C, nh, n_kv_head=n_kv_head, fused=fused).eval()
    assert attn.c_attn.weight.shape == (C + 2 * n_kv_head * hs, C)
    x = torch.randn(2, 9, C)
    q, k, v = attn.c_attn(x).split([C, n_kv_head * hs, n_kv_head * hs], dim=-1)
    q = q.view(2, 9, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = (
        k.view(2, 9, n_kv_head, hs).transpose(1, 2).repeat_interleave(nh // n_kv_head, dim=1)
    )  # (B, nh, T, hs)
    v = (
        v.view(2, 9, n_kv_head, hs).transpose(1, 2).repeat_interleave(nh // n_kv_head, dim=1)
    )  # (B, nh, T, hs)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 9, C)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), attn.c_proj(y), atol=1e-5, rtol=1e-5)


def test_gqa_kv_cache_holds_only_the_kv_heads_and_saves_memory():
    torch.manual_seed(0)
    C, nh, T = 64, 8, 20
    x = torch.randn(1, T, C)
    sizes = {}
    for n_kv in (8, 2, 1):
        attn = SelfAttention(C, nh, n_kv_head=n_kv).eval()
        with torch.no_grad():
            full = attn(x)
            y1, cache = attn(x[:, :12], use_cache=True)
            y2, cache = attn(x[:, 12:], past_kv=cache, use_cache=True)
        torch.testing.assert_close(torch.cat([y1, y2], 1), full, atol=1e-5, rtol=1e-5)
        assert cache[0].shape == (1, n_kv, T, C // nh)
        sizes[n_kv] = sum(t.numel() * t.element_size() for t in cache)
    print(f"KV cache bytes for 20 positions: MHA {sizes[8]}, GQA(2) {sizes[2]}, MQA {sizes[1]}")
    assert sizes[8] == 4 * sizes[2] == 8 * sizes[1] == 2 * T * C * 4  # n_head / n_kv_head times smaller


def test_rotary_hook_gets_the_cached_length_as_offset():
    seen = []

    def rotary(t, offset):
        seen.append((t.shape[1], t.shape[2], offset))
        return t

    attn = SelfAttention(16, 4, n_kv_head=2, rotary=rotary).eval()
    with torch.no_grad():
        _, cache = attn(torch.randn(1, 5, 16), use_cache=True)
        attn(torch.randn(1, 1, 16), past_kv=cache)
    assert seen == [(4, 5, 0), (2, 5, 0), (4, 1, 5), (2, 1, 5)]  # q then k, heads, new positions, offset


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("n_kv_head", "rotary"), [(4, None), (2, None), (1, rope()), (2, rope(500.0))])
def test_a_cache_object_with_append_gives_the_same_outputs_as_concatenation(fused, n_kv_head, rotary):
    torch.manual_seed(3)
    module = SelfAttention(24, 4, fused=fused, n_kv_head=n_kv_head, rotary=rotary).double().eval()
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    full = module(x)
    static = StaticKVCache(2, n_kv_head, 9, 6, dtype=torch.float64)  # (B, n_kv_head, max_len, hs) buffers
    buffer = static.k.data_ptr()
    outputs, concat, start = [], None, 0
    for n in (4, 1, 1, 3):  # the prompt, then one token at a time, then a chunk
        y, present = module(x[:, start : start + n], past_kv=static, use_cache=True)
        y_concat, concat = module(x[:, start : start + n], past_kv=concat, use_cache=True)
        start += n
        assert present is static and static.length == start and static.k.data_ptr() == buffer
        torch.testing.assert_close(y, y_concat, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(static[0], concat[0], rtol=0, atol=0)  # the same keys, written in place
        torch.testing.assert_close(static[1], concat[1], rtol=0, atol=0)
        outputs.append(y)
    torch.testing.assert_close(torch.cat(outputs, dim=1), full, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="exceed max_len"):
        module(x[:, :1], past_kv=static)  # the buffer is full


def test_qkv_bias_is_separate_from_the_output_bias():
    attn = SelfAttention(16, 4, bias=False, qkv_bias=True)
    assert attn.c_attn.bias is not None and attn.c_proj.bias is None


def test_bad_kv_head_counts_get_clear_errors():
    for n_kv in (0, 3, 5):
        with pytest.raises(ValueError, match=r"multiple of n_kv_head"):
            SelfAttention(16, 4, n_kv_head=n_kv)
