"""Quantization from scratch (chapter 27): weights as small integers and a scale, and the GPT at b bits.

A b-bit quantizer maps a float x to an integer q = round(x / s) + z in a fixed range, and back to
(q - z) * s. This module adds, over plain torch:

    int_range(bits, signed)                   the integers b bits can hold: -2^(b-1)..2^(b-1)-1 or 0..2^b-1
    scale_groups(x, granularity)              x as (rows, groups, group_len): the entries each scale covers
    quantize_absmax(x, bits, granularity)     symmetric: s = max|x| / (2^(b-1) - 1), z = 0, q in +-(2^(b-1)-1)
    quantize_zero_point(x, bits, granularity) asymmetric: s = (max - min) / (2^b - 1), z = round(-min / s),
                                              q in 0..2^b-1, so a range like [0, 6] wastes no levels
    Quantized                                 the integers, scales (and zero points) of one tensor;
                                              .dequantize() gives the floats back
    fake_quantize(x, ...)                     quantize then dequantize: the values a quantized model computes
                                              with, in float
    pack_int4 / unpack_int4                   two 4-bit integers in one byte (low nibble first), and back
    QuantLinear                               weight-only: b-bit integers (packed when b <= 4) and scales,
                                              dequantized on the fly in forward
    DynamicInt8Linear                         W8A8 as PyTorch's dynamic quantization does it: int8 weights,
                                              the input quantized per call, an integer matmul, one rescale
    quantize_linears(model, bits, ...)        a copy of a model with every nn.Linear replaced by a QuantLinear
    saved_bytes(model)                        the size of its state dict on disk (torch.save)
    outlier_picture(w, bits, outlier, g)      one large weight against three granularities (the slider's data)

Rounding: q is computed as round(x * (1 / s) + z) in float32, the order of operations PyTorch uses. The
weights of a model trained or stored in bf16 have few mantissa bits, so x / s often lands exactly on a
half-step, and there the order of the float operations decides which way it rounds.

Granularity: one scale for the whole tensor ("tensor"), one per output row ("channel"), or one per group of
`group_size` consecutive inputs of a row (an int). Finer scales cost more memory (a float per group) and
follow the data more closely: one large weight then only coarsens its own group.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Granularity = str | int  # "tensor", "channel" or a group size


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) for b-bit integers: signed two's complement or unsigned."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int from 2 to 8, got {bits!r}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def scale_groups(x: torch.Tensor, granularity: Granularity) -> torch.Tensor:
    """x reshaped to (rows, groups, group_len): each quantization scale covers one group (the last axis).

    "tensor": (1, 1, N), one group of everything; "channel": (out, 1, in) for a 2-D weight, one group per
    output row; an int g: (out, in / g, g), runs of g consecutive inputs of a row (g must divide in).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
        raise ValueError(f"x must be a non-empty floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if granularity == "tensor":
        return x.reshape(1, 1, -1)  # (1, 1, N)
    if x.dim() != 2:
        raise ValueError(
            f"per-channel and per-group scales need a 2-D weight (out, in), got {tuple(x.shape)}"
        )
    rows, cols = x.shape
    if granularity == "channel":
        return x.reshape(rows, 1, cols)  # (out, 1, in)
    if isinstance(granularity, int) and not isinstance(granularity, bool) and granularity >= 1:
        if cols % granularity:
            raise ValueError(f"group_size {granularity} must divide the number of inputs {cols}")
        return x.reshape(rows, cols // granularity, granularity)  # (out, in / g, g)
    raise ValueError(f"granularity must be 'tensor', 'channel' or a positive int, got {granularity!r}")


@dataclass
class Quantized:
    """A quantized tensor: x ~ (q - zero_point) * scale, group by group.

    q: (rows, groups, group_len) integers (int8 for absmax, uint8 for zero-point); scale and zero_point:
    (rows, groups, 1), zero_point None when it is 0 (symmetric). shape: the original tensor's shape.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None
    shape: torch.Size
    bits: int

    def dequantize(self) -> torch.Tensor:
        q = self.q.float()  # (rows, groups, g)
        if self.zero_point is not None:
            q = q - self.zero_point.float()
        return (q * self.scale).reshape(self.shape)

    def storage_bits(self) -> int:
        """Bits to store it: b per value, 32 per scale, 8 per zero point (unpacked q counted at b bits)."""
        zp = 0 if self.zero_point is None else 8 * self.zero_point.numel()
        return self.bits * self.q.numel() + 32 * self.scale.numel() + zp


def quantize_absmax(x: torch.Tensor, bits: int = 8, granularity: Granularity = "tensor") -> Quantized:
    """Symmetric quantization: s = max|x| / qmax with qmax = 2^(b-1) - 1, q = round(x / s) in [-qmax, qmax].

    Zero stays exactly zero, and |x - q s| <= s / 2 for every entry (nothing is clipped: max|x| maps to qmax).
    """
    _, qmax = int_range(bits, signed=True)
    g = scale_groups(x, granularity)  # (rows, groups, gl)
    scale = g.abs().amax(dim=-1, keepdim=True).float() / qmax  # (rows, groups, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group: any scale works
    q = torch.round(g * (1 / scale)).clamp(-qmax, qmax).to(torch.int8)  # (rows, groups, gl)
    return Quantized(q, scale, None, x.shape, bits)


def quantize_zero_point(x: torch.Tensor, bits: int = 8, granularity: Granularity = "tensor") -> Quantized:
    """Asymmetric quantization: [min, max] onto 0..2^b-1, s = (max - min) / (2^b - 1), z = round(-min / s).

    The range always includes 0 (min <= 0 <= max), so zero is a level (z) and padding stays exact.
    """
    qmin, qmax = int_range(bits, signed=False)
    g = scale_groups(x, granularity)  # (rows, groups, gl)
    lo = g.amin(dim=-1, keepdim=True).float().clamp(max=0)  # (rows, groups, 1)
    hi = g.amax(dim=-1, keepdim=True).float().clamp(min=0)  # (rows, groups, 1)
    scale = (hi - lo) / (qmax - qmin)  # (rows, groups, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.round(-lo / scale).clamp(qmin, qmax)  # (rows, groups, 1)
    q = torch.round(g * (1 / scale) + zero_point).clamp(qmin, qmax)  # (rows, groups, gl)
    return Quantized(q.to(torch.uint8), scale, zero_point.to(torch.uint8), x.shape, bits)


SCHEMES = {"absmax": quantize_absmax, "zero_point": quantize_zero_point}


def fake_quantize(
    x: torch.Tensor, bits: int = 8, granularity: Granularity = "tensor", scheme: str = "absmax"
) -> torch.Tensor:
    """x after a round trip through b-bit integers, in x's dtype: what a quantized model computes with."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {scheme!r}")
    return SCHEMES[scheme](x, bits, granularity).dequantize().to(x.dtype)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Signed 4-bit integers (values -8..7, int8, last dim even) -> uint8, two per byte.

    Byte j holds q[..., 2j] in its low four bits and q[..., 2j + 1] in its high four bits (two's complement
    nibbles), so the result has half as many entries along the last dim.
    """
    if q.dtype != torch.int8:
        raise ValueError(f"pack_int4 takes int8 values, got {q.dtype}")
    if q.dim() < 1 or q.shape[-1] % 2:
        raise ValueError(f"the last dim must be even to pair values, got shape {tuple(q.shape)}")
    if q.numel() and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"4-bit values must be in -8..7, got {int(q.min())}..{int(q.max())}")
    nibbles = (q.to(torch.int16) & 0xF).to(torch.uint8)  # (..., n): two's complement, 4 bits each
    return nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)  # (..., n / 2)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of pack_int4: uint8 (..., n / 2) -> int8 (..., n) in -8..7."""
    if packed.dtype != torch.uint8:
        raise ValueError(f"unpack_int4 takes uint8 bytes, got {packed.dtype}")
    low = (packed & 0xF).to(torch.int8)  # (..., n / 2) in 0..15
    high = (packed >> 4).to(torch.int8)
    pairs = torch.stack([low, high], dim=-1).flatten(-2)  # (..., n) interleaved back
    return torch.where(pairs > 7, pairs - 16, pairs)  # sign-extend the nibble


class QuantLinear(nn.Module):
    """A Linear layer whose weight is stored as b-bit absmax integers and scales (weight-only).

    forward dequantizes the weight and runs an ordinary float matmul, so it computes exactly what
    F.linear(x, fake_quantize(W)) computes; the saving is memory (and memory traffic), not arithmetic.
    Weights of 4 bits or fewer are packed two per byte.
    """

    def __init__(self, linear: nn.Linear, bits: int = 8, granularity: Granularity = "channel"):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.granularity = bits, granularity
        qw = quantize_absmax(linear.weight.detach().float(), bits, granularity)
        self.group_shape = tuple(qw.q.shape)
        q = qw.q.flatten()
        self.packed = bits <= 4 and q.numel() % 2 == 0
        self.register_buffer("q", pack_int4(q) if self.packed else q)
        self.register_buffer("scale", qw.scale)  # (rows, groups, 1)
        bias = None if linear.bias is None else linear.bias.detach().clone()
        self.register_buffer("bias", bias)

    def weight(self) -> torch.Tensor:
        """The dequantized weight (out, in), in float32."""
        q = unpack_int4(self.q) if self.packed else self.q
        return (q.reshape(self.group_shape).float() * self.scale).reshape(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight().to(x.dtype), self.bias)  # (..., out)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bits={self.bits}, granularity={self.granularity!r}"


class DynamicInt8Linear(nn.Module):
    """W8A8, the way torch.ao's dynamic quantization does it on the CPU, from scratch.

    Weights: int8, one scale for the tensor, PyTorch's convention s_w = max|W| / 127.5 (levels -128..127).
    Input, at every call: its own zero-point quantization to 0..127 (7 bits: PyTorch's x86 kernels keep a
    bit spare so that int8 products cannot overflow their 16-bit pair sums). Then an integer matmul,
    sum_k (x_q - z_x) W_q in int32, and one multiplication by s_x s_w back to floats, plus the bias.
    The integer matmul runs on the CPU (as PyTorch's does).
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach().float().cpu()
        scale = w.abs().max().clamp_min(1e-12) / 127.5  # the 256 levels spread over [-max|W|, max|W|]
        q = torch.round(w * (1 / scale)).clamp(-128, 127)  # (out, in); times 1/s, as PyTorch rounds it
        self.register_buffer("q", q.to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().cpu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = x.min().clamp(max=0).float(), x.max().clamp(min=0).float()
        s_x = ((hi - lo) / 127).clamp_min(1e-12)  # the input's scale, computed for this call
        z_x = torch.round(-lo / s_x).clamp(0, 127)  # its zero point
        x_q = torch.round(x.float() * (1 / s_x) + z_x).clamp(
            0, 127
        )  # (..., in) in 0..127, rounded as torch does
        centred = (x_q - z_x).to(torch.int32).cpu()  # (..., in) exact small integers
        acc = centred @ self.q.to(torch.int32).T  # (..., out) int32: the integer matmul
        out = acc.float() * (s_x.cpu() * self.scale)  # (..., out) back to floats
        if self.bias is not None:
            out = out + self.bias
        return out.to(x.device)


def quantize_linears(
    model: nn.Module, bits: int, granularity: Granularity = "channel", skip: tuple[str, ...] = ("lm_head",)
) -> nn.Module:
    """A deep copy of `model` with every nn.Linear (except those named in `skip`) a QuantLinear.

    The book's GPT ties lm_head to the token embedding, so by default the head stays in float: quantizing it
    would untie (and duplicate) the matrix. Embeddings and norms are not Linear layers and stay as they are.
    """
    quantized = copy.deepcopy(model)
    for module in list(quantized.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and name not in skip:
                setattr(module, name, QuantLinear(child, bits, granularity))
    return quantized


def saved_bytes(model: nn.Module) -> int:
    """The size of the model's state dict saved with torch.save: what it costs on disk and to load.

    Counts every weight in whatever form the model keeps it (float, int8, packed int4, or the packed
    parameters of torch.ao's quantized layers, which are not ordinary buffers); a tied matrix is stored once.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def outlier_picture(w: torch.Tensor, bits: int, outlier: float, group_size: int) -> dict:
    """The numbers behind chapter 27's outlier slider, for a 2-D weight w (out, in) with at least two groups.

    w[0, 0] is set to `outlier` times the largest |w| (a weight that a few outlier features make large),
    then w is fake-quantized at `bits` with one scale per tensor, per row and per group of `group_size`.
    Returns {"w": the weight with its outlier, "rms": {granularity: RMS error over all the other entries},
    "neighbours": row 0's second group, w[0, g:2g], which shares a row but not a group with the outlier,
    "levels": {granularity: the values those neighbours can take}}.
    """
    if not outlier >= 1:
        raise ValueError(f"outlier must be >= 1 (a multiple of the largest weight), got {outlier}")
    if w.dim() != 2 or w.shape[1] < 2 * group_size:
        raise ValueError(
            f"w must be 2-D with at least 2 groups of {group_size} per row, got {tuple(w.shape)}"
        )
    w = w.detach().float().clone()
    w[0, 0] = outlier * w.abs().max()
    others = torch.ones_like(w, dtype=torch.bool)
    others[0, 0] = False  # the error on everything but the outlier itself
    rms, levels = {}, {}
    _, qmax = int_range(bits, signed=True)
    for granularity in ("tensor", "channel", group_size):
        qt = quantize_absmax(w, bits, granularity)
        rms[granularity] = (qt.dequantize() - w)[others].pow(2).mean().sqrt().item()
        scale = qt.scale[0, min(1, qt.scale.shape[1] - 1), 0].item()  # the scale of row 0's second group
        levels[granularity] = torch.arange(-qmax, qmax + 1) * scale
    return {"w": w, "rms": rms, "neighbours": w[0, group_size : 2 * group_size], "levels": levels}
