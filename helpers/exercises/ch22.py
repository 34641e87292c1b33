"""Exercises for chapter 22: vision transformers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from helpers.exercises.core import Exercise, by_hand, matches_value, register, without_mirrors
from helpers.vit import patchify as _library_patchify


# 22.1 ---------------------------------------------------------------------------------------------------
def _patchify(images, patch):
    B, C, H, W = images.shape
    p = patch
    x = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, rows, p, cols, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p)
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (B, N, C*p*p)


def _reshape_only(images, patch):
    B, C, H, W = images.shape
    return images.reshape(B, (H // patch) * (W // patch), C * patch * patch)  # right shape, wrong pixels


def _loops(images, patch):
    B, C, H, W = images.shape
    p = patch
    rows = [images[:, :, i : i + p, j : j + p].reshape(B, -1) for i in range(0, H, p) for j in range(0, W, p)]
    return torch.stack(rows, dim=1)  # right answer, one Python step per patch


class _CountTorchCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _no_shortcut(*args, **kwargs):
    raise AssertionError(
        "this exercise is about the reshape: write it with reshape and permute, not unfold or helpers.vit"
    )


SHAPES = [(1, 1, 4, 4, 2), (2, 3, 8, 12, 4), (3, 2, 6, 9, 3), (1, 3, 5, 5, 1), (2, 3, 32, 32, 2)]
MAX_TORCH_CALLS = 40  # a reshape-and-permute answer needs a handful, whatever the number of patches


def _check_patchify(answer) -> None:
    assert callable(answer), f"expected a function patchify(images, patch), got {type(answer).__name__}"
    gen = torch.Generator().manual_seed(0)
    cases = [(torch.randn(B, C, H, W, generator=gen), p) for B, C, H, W, p in SHAPES]
    wants = [_patchify(images, p) for images, p in cases]
    saved = F.unfold, torch.nn.Unfold.forward, torch.Tensor.unfold, _library_patchify.__code__
    F.unfold = torch.nn.Unfold.forward = torch.Tensor.unfold = _no_shortcut
    _library_patchify.__code__ = _no_shortcut.__code__  # also catches helpers.vit.patchify under any name
    try:
        for (images, p), want in zip(cases, wants, strict=True):
            with _CountTorchCalls() as counter:
                got = answer(images.clone(), p)
            shape = tuple(images.shape)
            assert got is not None, "your function returned None: did you forget `return`?"
            assert isinstance(got, torch.Tensor), f"return a torch tensor, got {type(got).__name__}"
            assert tuple(got.shape) == tuple(want.shape), (
                f"for images {shape} and patch {p} you return shape {tuple(got.shape)}, "
                f"expected {tuple(want.shape)}"
            )
            assert torch.equal(got, want), (
                f"for images {shape} and patch {p} the shape is right but the pixels are not: "
                "row n of your answer must hold exactly the pixels of patch n, channel by channel"
            )
            assert counter.calls <= MAX_TORCH_CALLS, (
                f"right answer, but for {want.shape[1]} patches your function made {counter.calls} torch "
                "calls: it visits the patches one by one. Find the reshape that moves them all at once."
            )
    finally:
        F.unfold, torch.nn.Unfold.forward, torch.Tensor.unfold, _library_patchify.__code__ = saved


register(
    Exercise(
        key="22.1",
        title="write patchify",
        checker=_check_patchify,
        hint="split each image axis in two: reshape (B, C, H, W) to (B, C, H/p, p, W/p, p). Then move the "
        "two grid axes (H/p and W/p) in front of the channel axis with permute, and flatten. A single "
        "reshape cannot do it: the pixels of one patch are not next to each other in memory.",
        solution=_patchify,
        wrong=_reshape_only,
        explanation="In memory a row of the image runs across every patch in that row, so a plain reshape "
        "mixes pixels from different patches. Splitting H into (rows, p) and W into (cols, p) names every "
        "pixel by (patch row, row inside the patch, patch column, column inside the patch); permute puts "
        "the patch's address first and its contents (C, p, p) last, and the final reshape flattens both.",
    )
)

# 22.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="22.2",
        title="predict: halve the patch, what happens to the patch embedding's cost?",
        checker=matches_value(1.0, atol=1e-9, what="your factor"),
        hint="count both things that change: how many patches there are (N = H W / p^2) and how many "
        "numbers each patch has (C p^2). The embedding costs N * C p^2 * n_embd multiply-adds.",
        solution=1.0,
        wrong=4.0,  # counts the four times as many tokens, forgets that each is four times smaller
        explanation="Halving p makes four times as many patches, each with a quarter of the pixels, so "
        "N * C p^2 = C H W stays the same: the embedding touches every pixel once per output channel, "
        "whatever the patch size. What grows is everything after it: the blocks' linear layers by 4 "
        "(they run once per token) and attention's scores by 16 (T^2).",
    )
)

# 22.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="22.3",
        title="the patch embedding of ViT-B/16",
        checker=matches_value(3 * 16 * 16 * 768 + 768, what="the parameter count"),
        hint="PatchEmbedding(in_channels=3, n_embd=768, patch=16) is one Linear. How many inputs does it "
        "have, how many outputs, and does it have a bias?",
        solution=3 * 16 * 16 * 768 + 768,
        wrong=3 * 16 * 16 * 768,  # forgets the bias
        explanation="Each patch has 3 * 16 * 16 = 768 numbers; the Linear maps them to 768 channels: "
        "768 * 768 = 589,824 weights plus 768 biases = 590,592. The same count as a Conv2d(3, 768, "
        "kernel_size=16, stride=16), which is how ViT-B/16 is usually written. It is about 0.7% of the "
        "model's 86 million parameters: the blocks hold the rest.",
    )
)

# 22.4 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="22.4",
        title="predict: no positions, mean pooling, shift by one whole patch",
        checker=matches_value(True, what="your prediction (True or False)"),
        hint="on a blank canvas, a shift by exactly one patch turns the list of patch tokens into a "
        "reordering of the same list. What do attention without positions, and a mean, do with a "
        "reordered list?",
        solution=True,
        wrong=False,
        explanation="The blank patches are all the same token, so shifting the digit by one whole patch "
        "only reorders the tokens. Without position embeddings every block treats the tokens as a set "
        "(reorder the inputs and the outputs reorder the same way), and the mean does not care about "
        "order, so the logits are the same up to rounding. Shift by 1 to 3 pixels instead and the patches' "
        "contents change: the model has to have learned that case.",
    )
)


# 22.5 ---------------------------------------------------------------------------------------------------
def _conv_as_patches(images, weight, bias):
    """F.conv2d(images, weight, bias, stride=p) for a (d, C, p, p) kernel, as patchify and one matmul."""
    d, C, p, _ = weight.shape
    B, _, H, W = images.shape
    z = _library_patchify(images, p) @ weight.reshape(d, C * p * p).T + bias  # (B, N, d): one row per patch
    return z.transpose(1, 2).reshape(B, d, H // p, W // p)  # (B, d, H/p, W/p): channels first, as conv2d


def _conv_as_patches_no_transpose(images, weight, bias):
    d, C, p, _ = weight.shape
    B, _, H, W = images.shape
    z = _library_patchify(images, p) @ weight.reshape(d, C * p * p).T + bias  # (B, N, d)
    return z.reshape(B, d, H // p, W // p)  # the right shape, but the patch axis and the channel axis mixed


CONV_SHAPES = [
    (1, 1, 4, 4, 2, 3),
    (2, 3, 8, 12, 4, 5),
    (3, 2, 6, 9, 3, 4),
    (2, 3, 16, 16, 8, 7),
    (1, 1, 5, 5, 1, 2),
]


def _check_conv_as_patches(answer) -> None:
    assert callable(answer), f"expected a function(images, weight, bias), got {type(answer).__name__}"
    gen = torch.Generator().manual_seed(5)
    for B, C, H, W, p, d in CONV_SHAPES:
        images = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)  # (B, C, H, W)
        weight = torch.randn(d, C, p, p, generator=gen, dtype=torch.float64)  # (d, C, p, p): a conv2d kernel
        bias = torch.randn(d, generator=gen, dtype=torch.float64)  # (d,)
        want = _conv_as_patches(images, weight, bias)  # (B, d, H/p, W/p)
        got = answer(images.clone(), weight.clone(), bias.clone())
        assert got is not None, "your function returned None: did you forget `return`?"
        assert isinstance(got, torch.Tensor), f"return a torch tensor, got {type(got).__name__}"
        shapes = f"images {(B, C, H, W)} and a ({d}, {C}, {p}, {p}) kernel"
        assert tuple(got.shape) == tuple(want.shape), (
            f"for {shapes} you return shape {tuple(got.shape)}; "
            f"conv2d with stride {p} gives {tuple(want.shape)}"
        )
        if not torch.allclose(got, want, rtol=1e-9, atol=1e-9):
            hint = ""
            if torch.allclose(got, _conv_as_patches_no_transpose(images, weight, bias), rtol=1e-9, atol=1e-9):
                hint = (
                    ": the products are right but land in the wrong places. (B, N, d) has the patch "
                    "axis before the channel axis; conv2d's output has the channels first, so swap them "
                    "before the last reshape"
                )
            raise AssertionError(f"for {shapes} the shape is right but the numbers are not{hint}")


_NO_CONVOLUTION = "Cut the patches (patchify is allowed) and use one matrix product."
register(
    Exercise(
        key="22.5",
        title="a strided convolution, as patches and one matrix product",
        checker=without_mirrors(
            by_hand(
                _check_conv_as_patches,
                {
                    "torch.nn.functional.conv2d": _NO_CONVOLUTION,
                    "torch.conv2d": _NO_CONVOLUTION,
                    "torch.nn.Conv2d.forward": _NO_CONVOLUTION,
                    "helpers.vit.PatchEmbedding.forward": "Write the matrix product yourself.",
                },
            ),
            {"PatchEmbedding": "write the matrix product yourself, with patchify."},
        ),
        hint="patchify(images, p) gives (B, N, C*p*p), each patch flattened (c, u, v). The kernel flattened "
        "the same way, weight.reshape(d, -1), has one row per output channel, so patches @ that.T + bias is "
        "(B, N, d). conv2d returns (B, d, H/p, W/p): move the channel axis in front of the patch axis "
        "(transpose), then reshape N into the grid (H/p, W/p).",
        solution=_conv_as_patches,
        wrong=_conv_as_patches_no_transpose,
        explanation="With kernel = stride = p the windows are exactly the patches, and each output value is "
        "the dot product of one flattened kernel with one flattened patch: a (B, N, C p^2) by (C p^2, d) "
        "matrix product. This is how you load a checkpoint that stores its patch embedding as a Conv2d "
        "(timm, CLIP) into the book's Linear: weight.reshape(d, -1) is the Linear's weight, and the bias "
        "is the same vector.",
    )
)
