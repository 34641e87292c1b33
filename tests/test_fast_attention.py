"""helpers.fast_attention against torch: online softmax, tiled and sliding-window attention, linear
attention."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn.functional as F

from helpers.attention import scaled_dot_product_attention
from helpers.fast_attention import (
    LinearAttentionState,
    linear_attention,
    linear_attention_recurrent,
    linear_attention_step,
    online_softmax,
    online_softmax_stats,
    peak_memory,
    score_bytes,
    sliding_window_mask,
    tile_profile,
    tiled_attention,
)

SEEDS = range(6)


def rand(*shape, g):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", SEEDS)
def test_online_softmax_is_torch_softmax(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 300, (1,), generator=g))
    x = rand(3, n, g=g) * 30  # large spreads: the running max matters
    block = int(torch.randint(1, n + 1, (1,), generator=g))
    torch.testing.assert_close(online_softmax(x, block), torch.softmax(x, dim=-1))
    m, l = online_softmax_stats(iter(x.split(block, dim=-1)))  # a one-pass iterator is enough
    torch.testing.assert_close(m + torch.log(l), torch.logsumexp(x, dim=-1))


def test_online_softmax_does_not_overflow():
    x = torch.tensor([[1000.0, 999.0, -1000.0]])
    torch.testing.assert_close(online_softmax(x, 1), torch.softmax(x, dim=-1))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("causal", [False, True])
def test_tiled_attention_is_sdpa(seed, causal):
    g = torch.Generator().manual_seed(seed)
    B, H = (int(x) for x in torch.randint(1, 4, (2,), generator=g))
    T = int(torch.randint(1, 90, (1,), generator=g))
    d, d_v = (int(x) for x in torch.randint(1, 17, (2,), generator=g))
    block = int(torch.randint(1, 40, (1,), generator=g))  # usually not a divisor of T: a ragged last tile
    q, k, v = rand(B, H, T, d, g=g), rand(B, H, T, d, g=g), rand(B, H, T, d_v, g=g)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(tiled_attention(q, k, v, block, is_causal=causal), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_tiled_attention_with_more_keys_than_queries(seed):
    g = torch.Generator().manual_seed(seed)
    T_q, T_k = 7, 30
    q, k, v = rand(2, T_q, 8, g=g), rand(2, T_k, 8, g=g), rand(2, T_k, 5, g=g)
    torch.testing.assert_close(tiled_attention(q, k, v, 4), F.scaled_dot_product_attention(q, k, v))
    # causal with a cache: aligned to the end of the keys, as helpers.attention does
    torch.testing.assert_close(
        tiled_attention(q, k, v, 4, is_causal=True), scaled_dot_product_attention(q, k, v, is_causal=True)
    )


def test_tiled_attention_float32_tolerance():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 300, 32, generator=g)
    out = tiled_attention(q, k, v, 64, is_causal=True)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("window", [1, 3, 16, 17, 100])
@pytest.mark.parametrize("block", [5, 16])
def test_sliding_window_is_sdpa_with_a_banded_mask(window, block):
    g = torch.Generator().manual_seed(window)
    q, k, v = rand(2, 3, 50, 8, g=g), rand(2, 3, 50, 8, g=g), rand(2, 3, 50, 4, g=g)
    mask = sliding_window_mask(50, 50, window)  # (T, T)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(tiled_attention(q, k, v, block, window=window), expected)


def test_sliding_window_mask_is_a_band():
    mask = sliding_window_mask(6, 6, 3)
    for i in range(6):
        for j in range(6):
            assert bool(mask[i, j]) == (0 <= i - j < 3)
    assert torch.equal(sliding_window_mask(6, 6, 6), torch.ones(6, 6, dtype=torch.bool).tril())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_parallel_matches_its_definition(seed, causal):
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(1, 30, (1,), generator=g))
    q, k, v = rand(2, T, 6, g=g), rand(2, T, 6, g=g), rand(2, T, 3, g=g)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    out = linear_attention(q, k, v, causal=causal)
    for i in range(T):
        js = range(i + 1) if causal else range(T)
        w = torch.stack([(phi_q[:, i] * phi_k[:, j]).sum(-1) for j in js], dim=-1)  # (2, n)
        expected = (w[..., None] * v[:, list(js)]).sum(1) / (w.sum(-1, keepdim=True) + 1e-6)
        torch.testing.assert_close(out[:, i], expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_attention_recurrent_equals_parallel(seed):
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(1, 60, (1,), generator=g))
    q, k, v = rand(2, 3, T, 8, g=g), rand(2, 3, T, 8, g=g), rand(2, 3, T, 5, g=g)
    torch.testing.assert_close(linear_attention_recurrent(q, k, v), linear_attention(q, k, v))


def test_linear_attention_state_does_not_grow():
    state = LinearAttentionState.zeros((2,), 8, 5)
    n = state.numel()
    for _ in range(10):
        _, state = linear_attention_step(state, torch.randn(2, 8), torch.randn(2, 8), torch.randn(2, 5))
    assert state.numel() == n == 2 * (8 * 5 + 8)


def test_score_bytes_by_hand():
    assert score_bytes(8192, 8192) == 8192 * 8192 * 4
    assert score_bytes(10, 20, n_head=3, batch=2, dtype=torch.bfloat16) == 2 * 3 * 10 * 20 * 2
    with pytest.raises(ValueError, match="positive"):
        score_bytes(0, 4)


def test_peak_memory_sees_torch_allocations_on_the_cpu():
    n = 1 << 20
    peak = peak_memory(lambda: torch.ones(n) + 1)  # two float32 tensors of n live at once
    assert 2 * 4 * n <= peak <= 3 * 4 * n
    with pytest.raises(ValueError, match="measures"):
        peak_memory(lambda: None, "meta")


def test_tiled_memory_grows_linearly_and_naive_quadratically():
    small, big = tile_profile(512, 16, 64), tile_profile(1024, 16, 64)
    assert big.naive_peak_bytes > 3.5 * small.naive_peak_bytes  # T x T: doubling T quadruples it
    assert big.peak_bytes < 2.5 * small.peak_bytes  # linear in T
    assert big.naive_peak_bytes >= score_bytes(1024, 1024)
    assert big.peak_bytes < big.naive_peak_bytes / 10


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tiled_attention(torch.randn(4, 8), torch.randn(4, 6), torch.randn(4, 6)), "same last dim"),
        (lambda: tiled_attention(torch.randn(4, 8), torch.randn(4, 8), torch.randn(5, 8)), "same number"),
        (lambda: tiled_attention(torch.randn(8), torch.randn(8), torch.randn(8)), "at least 2 dims"),
        (lambda: tiled_attention(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8), 0), "block_size"),
        (
            lambda: tiled_attention(torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8), window=0),
            "window",
        ),
        (lambda: online_softmax(torch.randn(4), 0), "block_size"),
        (lambda: online_softmax_stats([]), "at least one chunk"),
        (lambda: online_softmax_stats([torch.randn(2, 0)]), "at least one entry"),
        (lambda: sliding_window_mask(4, 4, 0), "window"),
        (lambda: linear_attention(torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 4)), "T_q == T_k"),
        (lambda: linear_attention_recurrent(torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 4)), "T_q"),
        (lambda: tile_profile(0), "positive"),
        (lambda: tile_profile(8, repeats=0), "repeats"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_causal_with_fewer_keys_is_an_error():
    q, k = torch.randn(6, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match="T_q <= T_k"):
        tiled_attention(q, k, k, is_causal=True)


def test_tile_size_slider_moves_headless():
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only this test draws

    from helpers.widgets import slider_view  # noqa: PLC0415 - only this test needs widgets

    runs = {b: tile_profile(256, 16, b) for b in (32, 256)}

    def draw(block):
        plt.bar(["peak KiB"], [runs[block].peak_bytes / 1024])
        plt.ylim(0, max(r.peak_bytes for r in runs.values()) / 1024)

    view = slider_view(draw, block=(32, 256, 224, 32))
    small = view.image
    view.set(block=256)
    assert runs[256].peak_bytes > 2 * runs[32].peak_bytes  # a bigger tile holds more scores
    assert (view.image != small).any()
