"""Floating-point formats seen from the inside: fp32, bf16 and fp16 (chapter 10).

A float is sign x 1.mantissa x 2^exponent. The exponent bits set the *range* (how large and how small a
number can be); the mantissa bits set the *precision* (how far apart neighbouring numbers are). This
module reads those facts off torch (`format_table`), steps to the next representable number by adding
one to the bit pattern (`next_up`, checked against `torch.nextafter`), and lists the representable
numbers in a window (`representable_between`) for the number-line slider.
"""

from __future__ import annotations

import numpy as np
import torch

FORMATS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Same-width integer types, to reinterpret a float's bits as an integer (and back).
_BITS_AS_INT = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.bfloat16: torch.int16,
    torch.float16: torch.int16,
}
#: Mantissa (fraction) bits stored for each format; the rest, less the sign bit, are exponent bits.
MANTISSA_BITS = {torch.float64: 52, torch.float32: 23, torch.bfloat16: 7, torch.float16: 10}


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in _BITS_AS_INT:
        raise ValueError(f"dtype must be one of {list(_BITS_AS_INT)}, got {dtype}")


def format_table() -> list[dict[str, float]]:
    """One row per format: bits, exponent and mantissa bits, largest finite value, smallest normal value,
    machine epsilon (the gap between 1 and the next number) and about how many decimal digits that is."""
    rows = []
    for name, dtype in FORMATS.items():
        info = torch.finfo(dtype)
        mantissa = MANTISSA_BITS[dtype]
        rows.append(
            {
                "format": name,
                "bits": info.bits,
                "exponent_bits": info.bits - 1 - mantissa,
                "mantissa_bits": mantissa,
                "max": info.max,
                "smallest_normal": info.tiny,
                "eps": info.eps,
                "decimal_digits": float(np.log10(2.0) * (mantissa + 1)),
            }
        )
    return rows


def next_up(x: torch.Tensor) -> torch.Tensor:
    """The next representable number above each entry of x, in x's own dtype, by adding 1 to its bits.

    For positive floats the bit patterns, read as integers, are in the same order as the numbers, so
    "bits + 1" is the neighbour; for negative ones it is "bits - 1"; from zero it is the tiniest number.
    """
    _check_dtype(x.dtype)
    if not torch.isfinite(x).all():
        raise ValueError("next_up needs finite numbers (there is nothing above inf, and nan has no order)")
    bits = x.view(_BITS_AS_INT[x.dtype])  # the same memory read as integers
    step = torch.where(x < 0, -1, 1).to(bits.dtype)
    bits = torch.where(x == 0, torch.ones_like(bits), bits + step)
    return bits.view(x.dtype)


def spacing(x: float, dtype: torch.dtype) -> float:
    """The gap from x (rounded to `dtype`) to the next representable number above it."""
    _check_dtype(dtype)
    here = torch.tensor(x, dtype=torch.float64).to(dtype)
    return next_up(here.reshape(1)).double().item() - here.double().item()


def round_to(x: float, dtype: torch.dtype) -> float:
    """x stored in `dtype` (round to nearest, ties to even; inf when beyond the range), as a Python float."""
    _check_dtype(dtype)
    return torch.tensor(x, dtype=torch.float64).to(dtype).double().item()


def representable_between(lo: float, hi: float, dtype: torch.dtype, limit: int = 400) -> np.ndarray | None:
    """Every finite number `dtype` can hold in [lo, hi] (0 < lo < hi), in order; None if more than `limit`."""
    _check_dtype(dtype)
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo}, hi={hi}")
    top = min(hi, torch.finfo(dtype).max)
    if lo > top:
        return np.array([])  # the whole window is beyond the format's range
    int_type = _BITS_AS_INT[dtype]
    first = torch.tensor([lo], dtype=torch.float64).to(dtype)
    if first.double().item() < lo:
        first = next_up(first)
    last = torch.tensor([top], dtype=torch.float64).to(dtype)
    if last.double().item() > top:
        last = last.view(int_type) - 1
        last = last.view(dtype)
    a, b = int(first.view(int_type).item()), int(last.view(int_type).item())
    if b - a + 1 > limit:
        return None
    return torch.arange(a, b + 1, dtype=int_type).view(dtype).double().numpy()


def draw_number_line(ax, x: float, window: float = 0.01, limit: int = 400):
    """Ticks at every number fp32, bf16 and fp16 can hold within x * (1 +- window), one row per format.

    A round marker shows where x itself is stored in each format; rows too dense to draw are shaded.
    Returns {format: stored value of x}.
    """
    lo, hi = x * (1 - window), x * (1 + window)
    stored = {}
    for row, (name, dtype) in enumerate(FORMATS.items()):
        values = representable_between(lo, hi, dtype, limit)
        stored[name] = round_to(x, dtype)
        if values is None:
            ax.axhspan(row - 0.2, row + 0.2, color=f"C{row}", alpha=0.3)
        else:
            ax.vlines(values, row - 0.2, row + 0.2, color=f"C{row}", lw=1)
        if np.isfinite(stored[name]):
            ax.plot([stored[name]], [row], "o", color=f"C{row}", ms=7, mec="k")
        else:
            ax.text(x, row, "overflow: stored as inf", ha="center", va="center", color="C3", fontsize=10)
    ax.axvline(x, color="k", lw=1, ls="--")
    ax.set(
        xlim=(lo, hi), ylim=(-0.6, len(FORMATS) - 0.4), yticks=range(len(FORMATS)), yticklabels=list(FORMATS)
    )
    ax.grid(False)
    return stored
