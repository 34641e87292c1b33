"""helpers.transformer: GELU against PyTorch and transformers, the MLP and block (shapes, gradients, causal
property, KV cache), and the positional encodings: sinusoidal values from the formula, RoPE's
relative-position property on random vectors and RoPE against the transformers (LLaMA) implementation."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import slider_view
from helpers.attention import SelfAttention
from helpers.normalization import RMSNorm
from helpers.transformer import (
    MLP,
    Block,
    SwiGLU,
    apply_rope,
    frequencies,
    gelu,
    rope,
    rope_angles,
    sinusoidal_encoding,
    swiglu_hidden,
)

warnings.filterwarnings("ignore", message=".*non-interactive.*")


def test_gelu_matches_pytorch_and_gpt2s_gelu_new():
    from transformers.activations import NewGELUActivation

    x = torch.randn(1000, dtype=torch.float64) * 4
    torch.testing.assert_close(gelu(x), F.gelu(x, approximate="tanh"), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gelu(x), NewGELUActivation()(x), rtol=1e-12, atol=1e-12)
    assert (gelu(x) - F.gelu(x)).abs().max() < 1e-3  # close to the exact GELU too


def test_mlp_shapes_gradients_and_formula():
    torch.manual_seed(0)
    mlp = MLP(16).double()
    x = torch.randn(2, 5, 16, dtype=torch.float64, requires_grad=True)
    y = mlp(x)
    assert y.shape == (2, 5, 16)
    assert mlp.c_fc.weight.shape == (64, 16) and mlp.c_proj.weight.shape == (16, 64)
    expected = gelu(x @ mlp.c_fc.weight.T + mlp.c_fc.bias) @ mlp.c_proj.weight.T + mlp.c_proj.bias
    torch.testing.assert_close(y, expected)
    y.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mlp.parameters())
    assert x.grad.abs().sum() > 0
    # position-wise: each position's output depends on that position only
    torch.testing.assert_close(mlp(x[:, 2:3]), y[:, 2:3])


def make_block(seed=0, **kwargs):
    torch.manual_seed(seed)
    block = Block(24, 4, **kwargs).double()
    for p in block.parameters():
        nn.init.normal_(p, std=0.2)
    return block


def test_block_is_pre_ln_with_residuals():
    block = make_block()
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    h = x + block.attn(block.ln_1(x))
    expected = h + block.mlp(block.ln_2(h))
    torch.testing.assert_close(block(x), expected)
    names = {n for n, _ in block.named_parameters()}
    assert {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_proj.bias", "ln_2.weight"} <= names
    assert {"mlp.c_fc.weight", "mlp.c_proj.weight"} <= names


def torch_encoder_layer_like(block, norm_first=True):
    """torch.nn.TransformerEncoderLayer with the block's weights: the same pre-LN block, built by PyTorch."""
    C = block.ln_1.weight.shape[0]
    layer = nn.TransformerEncoderLayer(
        C,
        block.attn.n_head,
        dim_feedforward=4 * C,
        dropout=0.0,
        activation=lambda x: F.gelu(x, approximate="tanh"),
        batch_first=True,
        norm_first=norm_first,
        dtype=torch.float64,
    )
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)
        layer.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
        layer.self_attn.out_proj.weight.copy_(block.attn.c_proj.weight)
        layer.self_attn.out_proj.bias.copy_(block.attn.c_proj.bias)
        layer.linear1.load_state_dict(block.mlp.c_fc.state_dict())
        layer.linear2.load_state_dict(block.mlp.c_proj.state_dict())
        layer.norm1.load_state_dict(block.ln_1.state_dict())
        layer.norm2.load_state_dict(block.ln_2.state_dict())
    return layer.eval()


@pytest.mark.parametrize("seed", range(3))
def test_block_matches_torch_transformer_encoder_layer(seed):
    block = make_block(seed)
    layer = torch_encoder_layer_like(block)
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    mask = nn.Transformer.generate_square_subsequent_mask(9, dtype=torch.float64)
    torch.testing.assert_close(block(x), layer(x, src_mask=mask, is_causal=True), rtol=1e-9, atol=1e-9)
    bidirectional = make_block(seed, causal=False)
    torch.testing.assert_close(
        bidirectional(x), torch_encoder_layer_like(bidirectional)(x), rtol=1e-9, atol=1e-9
    )


def test_without_positions_bidirectional_attention_cannot_see_order():
    block = make_block(4, causal=False)
    x = torch.randn(1, 7, 24, dtype=torch.float64)
    perm = torch.randperm(7)
    torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm])  # shuffle in, same shuffle out
    causal = make_block(4)
    assert not torch.allclose(causal(x[:, perm]), causal(x)[:, perm])  # the causal mask does see order


def test_block_matches_torch_layer_norm():
    block = make_block()
    ln = nn.LayerNorm(24, dtype=torch.float64)
    ln.load_state_dict(block.ln_1.state_dict())
    x = torch.randn(3, 4, 24, dtype=torch.float64)
    torch.testing.assert_close(block.ln_1(x), ln(x))


def test_block_shapes_causality_and_gradient_flow():
    block = make_block(1)
    x = torch.randn(2, 9, 24, dtype=torch.float64, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    changed = x.detach().clone()
    changed[:, 6:] = torch.randn(2, 3, 24, dtype=torch.float64)
    torch.testing.assert_close(block(changed)[:, :6], y[:, :6])
    y[:, 3].sum().backward()  # position 3's output: gradient reaches positions 0..3, never 4..8
    assert torch.all(x.grad[:, 4:] == 0) and torch.all(x.grad[:, :4].abs().sum(-1) > 0)
    assert all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize("fused", [True, False])
def test_block_kv_cache_matches_full_sequence(fused):
    block = make_block(2, fused=fused)
    x = torch.randn(2, 8, 24, dtype=torch.float64)
    y_first, past = block(x[:, :5], use_cache=True)
    y_rest, past = block(x[:, 5:], past_kv=past, use_cache=True)
    torch.testing.assert_close(torch.cat([y_first, y_rest], 1), block(x))
    assert past[0].shape == (2, 4, 8, 6)


def test_residual_path_carries_the_gradient_when_sublayers_are_zero():
    block = make_block(3)
    with torch.no_grad():
        block.attn.c_proj.weight.zero_()
        block.attn.c_proj.bias.zero_()
        block.mlp.c_proj.weight.zero_()
        block.mlp.c_proj.bias.zero_()
    x = torch.randn(1, 4, 24, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(block(x), x)  # the block is the identity: only the residual path is left
    block(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


# --- positional encodings ---------------------------------------------------------------------------------


def test_sinusoidal_values_follow_the_formula():
    T, d = 50, 16
    pe = sinusoidal_encoding(T, d)
    assert pe.shape == (T, d) and pe.dtype == torch.float32
    expected = np.zeros((T, d))
    for p in range(T):
        for i in range(d // 2):
            expected[p, 2 * i] = math.sin(p / 10000 ** (2 * i / d))
            expected[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / d))
    np.testing.assert_allclose(pe.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(pe[0].numpy(), np.tile([0.0, 1.0], d // 2))  # position 0: sin 0, cos 0
    assert pe[1, 0].item() == pytest.approx(math.sin(1.0))  # the fastest pair turns one radian a step


def test_sinusoidal_shift_is_a_rotation_that_depends_only_on_the_offset():
    T, d, k = 40, 8, 5
    pe = sinusoidal_encoding(T, d).double()
    w = frequencies(d)
    for i in range(d // 2):  # pair i of PE[p + k] is pair i of PE[p] turned by k w_i, for every p
        c, s = math.cos(k * w[i]), math.sin(k * w[i])
        rot = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)  # acting on (sin, cos)
        pairs = pe[: T - k, 2 * i : 2 * i + 2]
        torch.testing.assert_close(pairs @ rot.T, pe[k:, 2 * i : 2 * i + 2], atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_rope_dot_product_depends_only_on_the_offset(seed):
    g = torch.Generator().manual_seed(seed)
    d = 2 * int(torch.randint(1, 17, (1,), generator=g))
    q, k = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)

    def score(m, n):  # q placed at position m, k at position n
        return (apply_rope(q[None], offset=m)[0] @ apply_rope(k[None], offset=n)[0]).item()

    for m, n in [(0, 0), (3, 1), (10, 4), (7, 7)]:
        for shift in (1, 5, 100):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), rel=1e-9, abs=1e-9)
    assert score(0, 0) == pytest.approx((q @ k).item())  # position 0: no rotation
    assert abs(score(5, 0) - score(0, 5)) > 1e-6 or d == 2  # but the order of the offset matters


def test_rope_preserves_norms_and_handles_offsets_and_batches():
    x = torch.randn(2, 3, 10, 8, dtype=torch.float64)  # (B, nh, T, hs)
    y = apply_rope(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[..., 0, :], x[..., 0, :])
    torch.testing.assert_close(apply_rope(x[..., 6:, :], offset=6), y[..., 6:, :])  # a cache continues it
    angles = rope_angles(10, 8)
    assert angles.shape == (10, 4) and angles[1, 0] == 1.0 and angles[3, 1] == pytest.approx(3 * 10000**-0.25)


def test_rope_matches_transformers_llama_up_to_the_channel_order():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    B, nh, T, hs = 2, 3, 11, 16
    config = LlamaConfig(
        hidden_size=nh * hs,
        num_attention_heads=nh,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    q, k = torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs)
    offset = 4
    cos, sin = LlamaRotaryEmbedding(config)(q, torch.arange(offset, offset + T)[None].expand(B, T))
    # LLaMA pairs channel i with i + hs/2; this book pairs 2i with 2i + 1. Reorder, rotate, reorder back.
    halves = torch.cat([torch.arange(0, hs, 2), torch.arange(1, hs, 2)])
    q_hf, k_hf = apply_rotary_pos_emb(q[..., halves], k[..., halves], cos, sin)
    back = torch.argsort(halves)
    torch.testing.assert_close(apply_rope(q, offset=offset), q_hf[..., back], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(apply_rope(k, offset=offset), k_hf[..., back], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sinusoidal_encoding(4, 7), "even"),
        (lambda: sinusoidal_encoding(0, 8), "at least one position"),
        (lambda: apply_rope(torch.randn(5, 3)), "even"),
        (lambda: apply_rope(torch.randn(4)), r"\(\.\.\., T, d\)"),
        (lambda: MLP(0), "positive"),
    ],
)
def test_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- chapter 17's RoPE slider, moved headless -------------------------------------------------------------


def test_rope_offset_slider_moves_the_picture_but_not_the_score():
    torch.manual_seed(0)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)

    def rotated(position):
        return apply_rope(q[None], offset=position)[0]

    def draw(position, offset):
        qr, kr = rotated(position), apply_rope(k[None], offset=position - offset)[0]
        plt.plot(qr.numpy()[0::2], qr.numpy()[1::2], "o")
        plt.plot(kr.numpy()[0::2], kr.numpy()[1::2], "s")
        plt.xlim(-3, 3)
        plt.ylim(-3, 3)

    view = slider_view(draw, position=(0, 50, 1, 10), offset=(0, 10, 1, 3))
    before = view.image
    view.set(position=20)  # move both tokens along: the picture turns ...
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    score_10 = rotated(10) @ apply_rope(k[None], offset=7)[0]
    score_20 = rotated(20) @ apply_rope(k[None], offset=17)[0]
    assert score_10.item() == pytest.approx(score_20.item())  # ... but the score stays


# --- the modern block: SwiGLU, RMSNorm, RoPE inside attention ---------------------------------------------


def test_swiglu_is_silu_gate_times_up_then_down():
    from transformers.activations import SiLUActivation

    torch.manual_seed(0)
    mlp = SwiGLU(16, hidden=40)
    x = torch.randn(2, 5, 16)
    gate, up = x @ mlp.gate_proj.weight.T, x @ mlp.up_proj.weight.T  # (B, T, 40)
    expected = (gate * torch.sigmoid(gate) * up) @ mlp.down_proj.weight.T  # (B, T, 16)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(mlp(x), mlp.down_proj(SiLUActivation()(mlp.gate_proj(x)) * mlp.up_proj(x)))
    assert mlp.gate_proj.bias is None  # Llama's MLP has no biases
    assert swiglu_hidden(48) == 128 and swiglu_hidden(64) % 8 == 0
    gelu_weights = 2 * 48 * 4 * 48
    assert abs(3 * 48 * swiglu_hidden(48) - gelu_weights) / gelu_weights < 0.05  # about as many weights


def test_modern_block_choices_build_the_right_parts():
    block = Block(
        32, 4, bias=False, norm="rmsnorm", mlp="swiglu", mlp_hidden=48, n_kv_head=2, rotary=rope(500.0)
    )
    assert isinstance(block.ln_1, RMSNorm) and isinstance(block.mlp, SwiGLU)
    assert block.mlp.up_proj.weight.shape == (48, 32) and block.attn.n_kv_head == 2
    x = torch.randn(1, 6, 32)
    with torch.no_grad():
        y, (k, v) = block(x, use_cache=True)
    assert y.shape == x.shape and k.shape == (1, 2, 6, 8)


def test_rope_hook_is_apply_rope_with_its_base():
    x = torch.randn(2, 3, 7, 8)
    torch.testing.assert_close(rope(500.0)(x, 4), apply_rope(x, offset=4, base=500.0))


def test_rope_in_attention_makes_scores_depend_only_on_relative_position():
    """Shift every position by the same amount (a KV cache offset): a RoPE model's outputs do not change."""
    torch.manual_seed(0)
    attn = SelfAttention(32, 4, rotary=rope()).eval()
    x = torch.randn(1, 6, 32)
    shifted = SelfAttention(32, 4, rotary=lambda t, offset: apply_rope(t, offset + 37)).eval()
    shifted.load_state_dict(attn.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(attn(x), shifted(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Block(16, 4, norm="batchnorm"), "norm must be one of"),
        (lambda: Block(16, 4, mlp="relu"), "mlp must be one of"),
        (lambda: SwiGLU(16, hidden=0), "must be positive"),
        (lambda: rope(1.0), "rope_theta"),
    ],
)
def test_modern_block_bad_choices_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
