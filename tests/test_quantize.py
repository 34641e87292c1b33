"""helpers.quantize against exact bounds, torch's own rounding and torch.ao's dynamic int8 Linear."""

import warnings

import pytest
import torch
from torch import nn

from helpers.gpt import GPT, GPTConfig
from helpers.quantize import (
    DynamicInt8Linear,
    QuantLinear,
    fake_quantize,
    int_range,
    outlier_picture,
    pack_int4,
    quantize_absmax,
    quantize_linears,
    quantize_zero_point,
    saved_bytes,
    scale_groups,
    unpack_int4,
)

GRANULARITIES = ["tensor", "channel", 8, 32]


def per_entry(qt, values):
    """A per-group tensor (rows, groups, 1) spread over the original entries."""
    return values.expand(qt.q.shape).reshape(qt.shape)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_absmax_round_trip_is_within_half_a_step(bits, granularity):
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(16, 64, generator=g) * torch.rand(16, 1, generator=g) * 3  # rows of different sizes
    qt = quantize_absmax(w, bits, granularity)
    qmax = 2 ** (bits - 1) - 1
    assert qt.q.dtype == torch.int8 and qt.q.abs().max() <= qmax
    assert qt.q.abs().max() == qmax  # the largest |w| of a group lands on the top level
    error = (qt.dequantize() - w).abs()
    assert (error <= per_entry(qt, qt.scale) / 2 * (1 + 1e-6)).all()
    assert torch.equal(
        quantize_absmax(torch.zeros(4, 64), bits, granularity).dequantize(), torch.zeros(4, 64)
    )


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_zero_point_round_trip_and_exact_zero(bits, granularity):
    g = torch.Generator().manual_seed(bits)
    w = torch.rand(8, 64, generator=g) * 6 - 1  # lopsided: mostly positive
    w[0, 0] = 0.0
    qt = quantize_zero_point(w, bits, granularity)
    assert qt.q.dtype == torch.uint8 and int(qt.q.max()) <= 2**bits - 1
    error = (qt.dequantize() - w).abs()
    assert (error <= per_entry(qt, qt.scale) / 2 * (1 + 1e-5)).all()
    assert qt.dequantize()[0, 0] == 0.0  # zero is one of the levels


def test_zero_point_beats_absmax_on_a_one_sided_range():
    w = torch.rand(32, 64, generator=torch.Generator().manual_seed(0))  # all in [0, 1]
    err = {
        f.__name__: (f(w, 4).dequantize() - w).abs().mean() for f in (quantize_absmax, quantize_zero_point)
    }
    assert err["quantize_zero_point"] < 0.6 * err["quantize_absmax"]  # absmax wastes the negative half


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantize_matches_torch_quantize_per_channel_and_per_tensor(dtype):
    """Same integers as PyTorch's quantized tensors, also for weights with bf16 values (where x / s often
    lands exactly on a half-step, and only the same order of float operations gives the same rounding)."""
    g = torch.Generator().manual_seed(1)
    w = (torch.randn(48, 96, generator=g) * 0.05).to(dtype).float()
    ours = quantize_zero_point(w, 8, "channel")
    scale, zp = ours.scale.flatten().double(), ours.zero_point.flatten().long()
    sym = quantize_absmax(w, 8, "tensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.quantize_per_channel(w, scale, zp, 0, torch.quint8)
        theirs_sym = torch.quantize_per_tensor(w, sym.scale.item(), 0, torch.qint8)
    assert torch.equal(theirs.int_repr(), ours.q.reshape(w.shape))
    torch.testing.assert_close(theirs.dequantize(), ours.dequantize())
    assert torch.equal(theirs_sym.int_repr(), sym.q.reshape(w.shape))


def test_finer_scales_and_more_bits_lose_less():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 128, generator=g)
    w[3, 5] = 40.0  # one outlier
    errors = {gr: (fake_quantize(w, 4, gr) - w).pow(2).mean() for gr in ("tensor", "channel", 32)}
    assert errors[32] < errors["channel"] < errors["tensor"]
    by_bits = [(fake_quantize(w, b, 32) - w).pow(2).mean() for b in (3, 4, 6, 8)]
    assert all(a > b for a, b in zip(by_bits, by_bits[1:], strict=False))


def test_int4_packing_round_trips_exactly_and_halves_the_bytes():
    q = torch.arange(-8, 8, dtype=torch.int8).repeat(3, 2)  # (3, 32): every 4-bit value
    packed = pack_int4(q)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 16)
    assert torch.equal(unpack_int4(packed), q)
    assert packed[0, 0] == (0x8 | (0x9 << 4))  # -8 -> 1000, -7 -> 1001: low nibble first
    r = torch.randint(-8, 8, (5, 7, 10), dtype=torch.int8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(unpack_int4(pack_int4(r)), r)


def test_quant_linear_is_linear_with_the_fake_quantized_weight():
    torch.manual_seed(0)
    lin = nn.Linear(64, 24)
    x = torch.randn(5, 64)
    for bits, gr in ((8, "channel"), (4, 16), (3, "tensor")):
        layer = QuantLinear(lin, bits, gr)
        expected = nn.functional.linear(x, fake_quantize(lin.weight.detach(), bits, gr), lin.bias)
        torch.testing.assert_close(layer(x), expected)
    assert QuantLinear(lin, 4, 16).q.numel() == 64 * 24 // 2  # packed
    big = nn.Linear(512, 256)
    assert saved_bytes(QuantLinear(big, 4, 32)) < saved_bytes(big) / 6  # 4 + 32 / 32 bits per weight, not 32


def test_our_dynamic_int8_linear_matches_torch_ao_quantize_dynamic():
    quantize_dynamic = pytest.importorskip("torch.ao.quantization").quantize_dynamic
    g = torch.Generator().manual_seed(4)
    for trial in range(10):
        n_in, n_out = (
            int(torch.randint(4, 300, (1,), generator=g)),
            int(torch.randint(1, 100, (1,), generator=g)),
        )
        lin = nn.Linear(n_in, n_out, bias=bool(trial % 2))
        with torch.no_grad():
            lin.weight.copy_(torch.randn(n_out, n_in, generator=g) * 0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
            theirs = quantize_dynamic(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8)[0]
        x = torch.randn(int(torch.randint(1, 9, (1,), generator=g)), n_in, generator=g) * 2 + trial % 3
        ours = DynamicInt8Linear(lin)
        assert torch.equal(ours.q, theirs.weight().int_repr())  # the same int8 weights
        out, ref = ours(x), theirs(x)
        assert (out - ref).abs().max() <= 1e-5 * ref.abs().max() + 1e-6


def test_quantize_linears_replaces_every_linear_but_the_tied_head():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()
    q8 = quantize_linears(model, 8, 16)
    kinds = {type(m).__name__ for m in q8.modules()}
    assert "QuantLinear" in kinds
    assert type(q8.lm_head) is nn.Linear and q8.lm_head.weight is q8.transformer.wte.weight
    assert not any(isinstance(m, QuantLinear) for m in model.modules())  # the original is untouched
    x = torch.randint(50, (2, 16))
    assert (q8(x)[0] - model(x)[0]).abs().max() < 0.02
    assert saved_bytes(quantize_linears(model, 4, 16)) < saved_bytes(q8) < saved_bytes(model)


def test_saved_bytes_counts_a_tied_matrix_once_and_sees_torch_ao_packed_weights():
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=64))
    assert 4 * model.num_parameters() < saved_bytes(model) < 4.3 * model.num_parameters()
    quantize_dynamic = pytest.importorskip("torch.ao.quantization").quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        int8 = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)) - 50 * 64  # no head
    saved = saved_bytes(model) - saved_bytes(int8)
    assert 0.9 * 3 * linear < saved < 3 * linear  # 4 bytes -> 1 byte per Linear weight


def test_outlier_slider_per_group_scales_contain_the_damage():
    """The slider moved headless: a bigger outlier hurts one scale per tensor most, per group least."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - only this test draws

    from helpers.widgets import slider_view  # noqa: PLC0415 - only this test draws

    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)) * 0.02

    def draw(outlier, bits):
        picture = outlier_picture(w, bits, outlier, 16)
        plt.bar(range(3), list(picture["rms"].values()))

    view = slider_view(draw, outlier=(1.0, 50.0, 1.0, 1.0), bits=(2, 8, 1, 4))
    before = view.image
    view.set(outlier=40.0)
    assert (view.image != before).any()
    calm, wild = outlier_picture(w, 4, 1.0, 16)["rms"], outlier_picture(w, 4, 40.0, 16)["rms"]
    assert wild["tensor"] > 5 * calm["tensor"]  # the one scale stretched forty-fold: most weights round to 0
    assert wild[16] < 1.5 * calm[16]  # only the outlier's own group of 16 is coarser
    assert wild[16] < wild["channel"] < wild["tensor"]
    assert outlier_picture(w, 8, 40.0, 16)["rms"]["tensor"] < wild["tensor"]  # more bits, finer steps
    picture = outlier_picture(w, 4, 40.0, 16)
    steps = {g: (lv[1] - lv[0]).item() for g, lv in picture["levels"].items()}
    assert steps[16] < steps["channel"] == steps["tensor"]  # row 0 shares the outlier's row, not its group
    assert torch.equal(picture["neighbours"], w[0, 16:32])
    with pytest.raises(ValueError, match="outlier"):
        outlier_picture(w, 4, 0.5, 16)
    with pytest.raises(ValueError, match="2 groups"):
        outlier_picture(w, 4, 2.0, 64)


def test_scale_groups_puts_each_scales_entries_on_the_last_axis():
    w = torch.arange(24.0).reshape(4, 6)  # (out, in)
    assert torch.equal(scale_groups(w, "tensor"), w.reshape(1, 1, 24))
    assert torch.equal(scale_groups(w, "channel")[:, 0], w)  # (4, 1, 6): row r is group (r, 0)
    by_three = scale_groups(w, 3)  # (4, 2, 3)
    assert by_three.shape == (4, 2, 3)
    assert torch.equal(by_three[2, 1], w[2, 3:6])  # the second run of three inputs of row 2
    assert torch.equal(scale_groups(torch.arange(5.0), "tensor").flatten(), torch.arange(5.0))  # any shape
    # absmax's scale is the largest |x| of each group, per granularity
    for gr in ("tensor", "channel", 3):
        want = scale_groups(w, gr).abs().amax(-1, keepdim=True) / 127
        assert torch.allclose(quantize_absmax(w, 8, gr).scale, want)


def test_bad_input_is_a_clear_error():
    w = torch.randn(4, 10)
    with pytest.raises(ValueError, match="bits"):
        int_range(9, True)
    with pytest.raises(ValueError, match="group_size 4 must divide"):
        quantize_absmax(w, 4, 4)
    with pytest.raises(ValueError, match="granularity"):
        quantize_absmax(w, 4, "row")
    with pytest.raises(ValueError, match="2-D"):
        quantize_absmax(torch.randn(2, 3, 4), 4, "channel")
    with pytest.raises(ValueError, match="floating-point"):
        quantize_zero_point(torch.ones(3, dtype=torch.long), 8)
    with pytest.raises(ValueError, match="non-empty"):
        scale_groups(torch.zeros(0), "tensor")
    with pytest.raises(ValueError, match="granularity"):
        scale_groups(w, 0)
    with pytest.raises(ValueError, match="must divide"):
        scale_groups(w, 3)
    with pytest.raises(ValueError, match="scheme"):
        fake_quantize(w, 4, scheme="log")
    with pytest.raises(ValueError, match="-8..7"):
        pack_int4(torch.tensor([9, 0], dtype=torch.int8))
    with pytest.raises(ValueError, match="even"):
        pack_int4(torch.zeros(3, dtype=torch.int8))
    with pytest.raises(ValueError, match="uint8"):
        unpack_int4(torch.zeros(3, dtype=torch.int8))
    with pytest.raises(TypeError, match="nn.Linear"):
        QuantLinear(nn.Conv1d(2, 2, 1))
