"""Chapter 10's floating-point helpers against torch.finfo, torch.nextafter and torch's own rounding."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers import slider_view
from helpers.precision import (
    FORMATS,
    draw_number_line,
    format_table,
    next_up,
    representable_between,
    round_to,
    spacing,
)

warnings.filterwarnings("ignore", message=".*non-interactive.*")
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_next_up_matches_torch_nextafter(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, generator=g, dtype=torch.float64) * 10 ** torch.randint(-3, 4, (500,), generator=g)
    x = torch.cat([x, torch.tensor([0.0, -0.0, 1.0, -1.0])]).to(dtype)
    x = x[torch.isfinite(x)]
    torch.testing.assert_close(next_up(x), torch.nextafter(x, torch.full_like(x, math.inf)), rtol=0, atol=0)


def test_format_table_matches_finfo_and_the_bit_layout():
    rows = {r["format"]: r for r in format_table()}
    for name, dtype in FORMATS.items():
        info = torch.finfo(dtype)
        row = rows[name]
        assert row["max"] == info.max and row["eps"] == info.eps and row["smallest_normal"] == info.tiny
        assert row["eps"] == 2.0 ** -row["mantissa_bits"]  # the gap after 1 is one unit in the last bit
        assert 1 + row["exponent_bits"] + row["mantissa_bits"] == row["bits"]
        assert spacing(1.0, dtype) == info.eps
    assert rows["bfloat16"]["exponent_bits"] == rows["float32"]["exponent_bits"] == 8  # same range
    assert rows["float16"]["max"] == 65504.0


@pytest.mark.parametrize("dtype", list(FORMATS.values()), ids=str)
def test_spacing_doubles_with_each_power_of_two(dtype):
    eps = torch.finfo(dtype).eps
    for e in range(-5, 12):
        for x in [2.0**e, 1.5 * 2.0**e]:
            assert spacing(x, dtype) == pytest.approx(eps * 2.0**e)


def test_round_to_matches_torch_and_shows_overflow():
    rng = np.random.default_rng(0)
    for x in rng.normal(size=50) * 1000:
        for dtype in FORMATS.values():
            assert round_to(x, dtype) == torch.tensor(x).to(dtype).item()
    assert round_to(65519.0, torch.float16) == 65504.0 and round_to(65520.0, torch.float16) == math.inf
    assert round_to(70000.0, torch.bfloat16) == 70144.0
    assert round_to(1 + 1e-3, torch.bfloat16) == 1.0 and round_to(257.0, torch.bfloat16) == 256.0


def test_representable_between_lists_exactly_the_neighbours():
    values = representable_between(1.0, 2.0, torch.bfloat16)
    np.testing.assert_array_equal(values, 1 + np.arange(129) / 128)  # 7 mantissa bits: 128 steps per octave
    assert representable_between(1.0, 2.0, torch.float32) is None  # 2**23 of them: too many to list
    assert representable_between(70000.0, 80000.0, torch.float16).size == 0  # beyond fp16's range
    near = representable_between(999.0, 1001.0, torch.float16)
    assert np.all(np.diff(near) == 0.5) and near[0] >= 999.0 and near[-1] <= 1001.0
    with pytest.raises(ValueError, match="0 < lo < hi"):
        representable_between(2.0, 1.0, torch.float16)


def test_number_line_slider_headless():
    def draw(log10_x):
        _, ax = plt.subplots()
        draw_number_line(ax, 10**log10_x)

    view = slider_view(draw, log10_x=(0.0, 5.0, 0.25, 2.0))
    before = view.image
    view.set(log10_x=5.0)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    _, ax = plt.subplots()
    stored = draw_number_line(ax, 1e5)
    assert stored["float16"] == math.inf and stored["bfloat16"] == 99840.0 and stored["float32"] == 1e5
    plt.close("all")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: next_up(torch.tensor([1, 2])), "dtype must be one of"),
        (lambda: next_up(torch.tensor([math.inf])), "finite"),
        (lambda: spacing(1.0, torch.int32), "dtype must be one of"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
