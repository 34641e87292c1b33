"""helpers.vit against oracles: patchify vs loops and F.unfold, PatchEmbedding vs F.conv2d, the ViT's shapes,
pooling and errors, the cost counts vs FlopCounterMode, and the patch-size slider moved headless."""

import warnings

import ipywidgets as widgets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from helpers.cnn import DigitCNN, place_on_canvas
from helpers.train import trainable_parameters
from helpers.transformer import Block, sinusoidal_encoding
from helpers.vit import (
    PatchEmbedding,
    ViT,
    ViTConfig,
    attention_cost,
    cnn_macs,
    patch_size_view,
    patchify,
    random_shift,
    sincos_2d,
    train_vision,
    vit_macs,
)

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SHAPES = [(1, 1, 8, 8, 2), (2, 3, 12, 8, 4), (3, 2, 6, 9, 3), (2, 4, 5, 5, 1), (1, 3, 16, 16, 16)]


def patchify_loops(images, p):
    B, C, H, W = images.shape
    out = torch.empty(B, (H // p) * (W // p), C * p * p, dtype=images.dtype)
    for b in range(B):
        for i in range(H // p):
            for j in range(W // p):
                out[b, i * (W // p) + j] = images[b, :, i * p : (i + 1) * p, j * p : (j + 1) * p].flatten()
    return out


@pytest.mark.parametrize(("B", "C", "H", "W", "p"), SHAPES)
def test_patchify_matches_loops_and_unfold(B, C, H, W, p):
    x = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(H * W + p))
    got = patchify(x, p)
    assert got.shape == (B, (H // p) * (W // p), C * p * p)
    assert torch.equal(got, patchify_loops(x, p))
    assert torch.equal(got, F.unfold(x, p, stride=p).transpose(1, 2))


@pytest.mark.parametrize(("B", "C", "H", "W", "p"), SHAPES)
def test_patch_embedding_is_a_strided_convolution(B, C, H, W, p):
    torch.manual_seed(0)
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    embed = PatchEmbedding(C, 7, p).double()
    conv = F.conv2d(x, embed.conv_weight(), embed.proj.bias, stride=p)  # (B, 7, H/p, W/p)
    torch.testing.assert_close(embed(x), conv.flatten(2).transpose(1, 2), rtol=1e-12, atol=1e-12)
    layer = torch.nn.Conv2d(C, 7, p, stride=p).double()
    with torch.no_grad():
        layer.weight.copy_(embed.conv_weight())
        layer.bias.copy_(embed.proj.bias)
    torch.testing.assert_close(embed(x), layer(x).flatten(2).transpose(1, 2), rtol=1e-12, atol=1e-12)


def test_patch_embedding_gradients_match_the_convolution():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    embed = PatchEmbedding(3, 5, 4).double()
    (embed(x) ** 2).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    w = embed.conv_weight().detach()
    (F.conv2d(x, w, embed.proj.bias.detach(), stride=4) ** 2).sum().backward()
    torch.testing.assert_close(ours, x.grad)


@pytest.mark.parametrize(
    ("images", "patch", "message"),
    [
        (torch.zeros(1, 8, 8), 2, r"\(B, C, H, W\)"),
        (torch.zeros(1, 1, 8, 6), 4, "multiples of patch=4"),
        (torch.zeros(1, 1, 8, 8), 0, "positive int"),
        (np.zeros((1, 1, 8, 8)), 2, "ndarray"),
    ],
)
def test_patchify_bad_input(images, patch, message):
    with pytest.raises(ValueError, match=message):
        patchify(images, patch)


def test_patch_embedding_bad_input():
    with pytest.raises(ValueError, match="expected 3 channels"):
        PatchEmbedding(3, 8, 2)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="multiples"):
        PatchEmbedding(1, 8, 3)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="positive"):
        PatchEmbedding(1, 0, 2)


def test_sincos_2d_is_the_1d_encoding_per_axis():
    pe = sincos_2d(3, 5, 8)  # (15, 8)
    assert pe.shape == (15, 8)
    rows, cols = sinusoidal_encoding(3, 4), sinusoidal_encoding(5, 4)
    for i in range(3):
        for j in range(5):
            torch.testing.assert_close(pe[i * 5 + j], torch.cat([rows[i], cols[j]]))
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d(2, 2, 6)


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("pos", ["learned", "sincos", "none"])
def test_vit_shapes_and_pooling(pool, pos):
    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch=2, n_embd=16, n_head=2, n_layer=2, pool=pool, pos=pos)
    model = ViT(config)
    x = torch.rand(3, 1, 8, 8)
    assert model.tokens(x).shape == (3, config.n_tokens, 16)
    assert config.n_tokens == 16 + (pool == "cls")
    logits = model(x)
    assert logits.shape == (3, 10)
    assert (model.cls_token is not None) == (pool == "cls")
    # the pooled vector is what the pooling mode says
    h = model.tokens(x)
    for block in model.blocks:
        h = block(h)
    h = model.ln_f(h)
    pooled = h[:, 0] if pool == "cls" else h.mean(1)
    torch.testing.assert_close(logits, model.head(pooled))


def test_the_sincos_table_is_a_buffer_not_a_parameter():
    learned = ViT(ViTConfig(image_size=16, patch=4, n_embd=16, n_head=2, n_layer=2))
    fixed = ViT(ViTConfig(image_size=16, patch=4, n_embd=16, n_head=2, n_layer=2, pos="sincos"))
    assert "pos_embed" not in dict(fixed.named_parameters()) and "pos_embed" in dict(fixed.named_buffers())
    assert trainable_parameters(learned)[0] - trainable_parameters(fixed)[0] == 16 * 16


def test_vit_without_positions_is_blind_to_patch_order():
    torch.manual_seed(0)
    model = ViT(ViTConfig(image_size=8, patch=4, n_embd=16, n_head=2, pool="mean", pos="none")).eval()
    x = torch.rand(2, 1, 8, 8)
    swapped = torch.cat([x[:, :, :, 4:], x[:, :, :, :4]], dim=3)  # swap the left and right patch columns
    torch.testing.assert_close(model(x), model(swapped), rtol=1e-5, atol=1e-5)
    with_pos = ViT(ViTConfig(image_size=8, patch=4, n_embd=16, n_head=2, pool="mean")).eval()
    with torch.no_grad():
        with_pos.pos_embed.normal_()
    assert not torch.allclose(with_pos(x), with_pos(swapped), atol=1e-4)


def test_vit_blocks_are_not_causal():
    model = ViT(ViTConfig(n_layer=1))
    assert all(isinstance(b, Block) and not b.attn.causal for b in model.blocks)


def test_attention_maps_are_the_blocks_attention():
    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch=2, n_embd=16, n_head=4, n_layer=2)
    model = ViT(config).eval()
    x = torch.rand(2, 1, 8, 8)
    maps = model.attention_maps(x)
    assert len(maps) == 2 and all(m.shape == (2, 4, 17, 17) for m in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 17))
    # the weights times the values, through c_proj, is what the block's attention adds
    h = model.tokens(x)
    block = model.blocks[0]
    _, _, v = block.attn.c_attn(block.ln_1(h)).split(16, dim=2)
    mixed = (maps[0] @ block.attn.split_heads(v)).transpose(1, 2).reshape(2, 17, 16)
    torch.testing.assert_close(block.attn.c_proj(mixed), block.attn(block.ln_1(h)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 8, "patch": 3}, "multiple of patch"),
        ({"pool": "max"}, "pool must be"),
        ({"pos": "rope"}, "pos must be"),
        ({"n_layer": -1}, "n_layer"),
    ],
)
def test_vit_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ViTConfig(**kwargs)


def test_vit_rejects_wrong_image_shapes():
    model = ViT(ViTConfig(image_size=8, patch=2))
    for bad in [torch.zeros(2, 1, 16, 16), torch.zeros(2, 3, 8, 8), torch.zeros(1, 8, 8)]:
        with pytest.raises(ValueError, match=r"expected images \(B, 1, 8, 8\)"):
            model(bad)


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize(("size", "patch", "layers"), [(16, 4, 2), (8, 2, 1), (12, 3, 3)])
def test_vit_macs_match_flop_counter(pool, size, patch, layers):
    config = ViTConfig(image_size=size, patch=patch, n_embd=16, n_head=2, n_layer=layers, pool=pool)
    model = ViT(config)
    for block in model.blocks:
        block.attn.fused = False  # the counter sees the from-scratch matmuls, not PyTorch's fused CPU kernel
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, size, size))
    assert counter.get_total_flops() == 2 * vit_macs(config)["total"]  # one multiply-add = two FLOPs


@pytest.mark.parametrize(("channels", "size"), [((16, 16, 32), 16), ((4, 8), 8)])
def test_cnn_macs_match_flop_counter(channels, size):
    model = DigitCNN(channels)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, size, size))
    assert counter.get_total_flops() == 2 * cnn_macs(model, size, size)["total"]


def test_random_shift_moves_each_image_like_place_on_canvas():
    digits = torch.rand(20, 1, 8, 8)
    canvas = place_on_canvas(digits, 16)
    moved = random_shift(canvas, 3, torch.Generator().manual_seed(5))
    offsets = torch.randint(-3, 4, (20, 2), generator=torch.Generator().manual_seed(5))
    for i in range(20):
        expected = place_on_canvas(digits[i : i + 1], 16, tuple(offsets[i].tolist()))
        assert torch.equal(moved[i : i + 1], expected)
    assert torch.equal(random_shift(canvas, 0), canvas)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(canvas, 16)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_shift(canvas[0], 1)


def test_train_vision_steps_and_checks_lengths():
    torch.manual_seed(0)
    X = torch.rand(64, 1, 8, 8)
    y = (X.mean((1, 2, 3)) > X.mean()).long()
    model = ViT(ViTConfig(image_size=8, patch=4, n_embd=8, n_head=2, n_layer=1, classes=2))
    history = train_vision(model, X, y, X, y, epochs=2, batch_size=32, max_shift=1, progress=False)
    assert len(history.epoch_metrics) == 2 and len(history.step_loss) == 4
    with pytest.raises(ValueError, match="as many rows"):
        train_vision(model, X, y[:-1], X, y, epochs=1, progress=False)


def test_attention_cost_numbers():
    rows = attention_cost(image_size=16, patches=(1, 2, 4), n_embd=8, n_head=2, repeats=1)
    assert [r["tokens"] for r in rows] == [256, 64, 16]
    assert [r["score_entries"] for r in rows] == [2 * 256**2, 2 * 64**2, 2 * 16**2]
    assert rows[0]["attention_macs"] == 2 * 256**2 * 8 and rows[0]["qkv_macs"] == 3 * 256 * 64
    assert all(r["attention_seconds"] > 0 and r["qkv_seconds"] > 0 for r in rows)
    with pytest.raises(ValueError, match="divide image_size"):
        attention_cost(image_size=16, patches=(3,))
    with pytest.raises(ValueError, match="multiple of n_head"):
        attention_cost(n_embd=10, n_head=4)


def test_patch_size_slider_headless():
    costs = attention_cost(image_size=16, patches=(1, 2, 4, 8), n_embd=8, repeats=1)
    view = patch_size_view(costs, torch.rand(16, 16))
    assert view.values == {"patch": 4} and isinstance(view.controls["patch"], widgets.SelectionSlider)
    before = view.image
    view.set(patch=2)
    assert view.values == {"patch": 2} and view.redraws == 2
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    rows = {r["patch"]: r for r in costs}
    assert rows[2]["tokens"] == 4 * rows[4]["tokens"]  # halve the patch: four times the tokens
    assert rows[2]["score_entries"] == 16 * rows[4]["score_entries"]  # and sixteen times the scores
    view.set(patch=4)
    np.testing.assert_array_equal(view.image, before)
    with pytest.raises(ValueError, match=r"image must be \(16, 16\)"):
        patch_size_view(costs, torch.rand(8, 8))
    with pytest.raises(ValueError, match="empty"):
        patch_size_view([])
