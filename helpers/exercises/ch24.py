"""Exercises for chapter 24: video."""

import numpy as np
import torch

from helpers import video
from helpers.exercises.core import Exercise, by_hand, matches_value, register, without_mirrors

# 24.1 ---------------------------------------------------------------------------------------------------
SHORTCUTS = ("time_sequences", "rearrange", "einops")  # the chapter's own helper, or a library that does it


def time_sequences(x):
    """(B, T, N, C) -> (B*N, T, C): for every clip b and patch position n, the T tokens of that position."""
    B, T, N, C = x.shape
    per_position = x.permute(0, 2, 1, 3)  # (B, N, T, C): position before time
    return per_position.reshape(B * N, T, C)  # (B*N, T, C): row b*N + n is position n of clip b


def _reshape_only(x):
    B, T, N, C = x.shape
    return x.reshape(B * N, T, C)  # the right shape, but each row mixes positions of several frames


def _refuse(x):
    raise AssertionError(
        "write the reshape yourself with permute/transpose and reshape, without calling the chapter's "
        "time_sequences or einops"
    )


def _check_time_sequences(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    code = getattr(answer, "__code__", None)
    used = set(code.co_names) | set(code.co_varnames) if code is not None else set()
    if answer is video.time_sequences or used & set(SHORTCUTS):
        _refuse(None)
    helper_code = video.time_sequences.__code__
    video.time_sequences.__code__ = _refuse.__code__  # the helper refuses, under whatever name it is called
    try:
        _compare_time_sequences(answer)
    finally:
        video.time_sequences.__code__ = helper_code


def _compare_time_sequences(answer) -> None:
    generator = torch.Generator().manual_seed(0)
    for B, T, N, C in [(1, 2, 3, 1), (2, 3, 4, 5), (3, 6, 16, 8), (2, 5, 5, 2)]:
        x = torch.randn(B, T, N, C, generator=generator)  # (B, T, N, C)
        got = answer(x.clone())
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        assert tuple(got.shape) == (B * N, T, C), (
            f"for x of shape {(B, T, N, C)} you return shape {tuple(got.shape)}, not {(B * N, T, C)}"
        )
        want = time_sequences(x)
        if not torch.equal(got, want):
            rows = [i for i in range(B * N) if not torch.equal(got[i], want[i])]
            b, n = divmod(rows[0], N)
            raise AssertionError(
                f"for x of shape {(B, T, N, C)}, row {rows[0]} should be x[{b}, :, {n}] (position {n} of "
                f"clip {b} through all {T} frames), but it holds other tokens"
            )


register(
    Exercise(
        key="24.1",
        title="tokens of one position through time",
        checker=_check_time_sequences,
        hint="a reshape only regroups entries in the order they sit in memory, and in (B, T, N, C) the "
        "frames of one position are N tokens apart. Move the N axis in front of the T axis first "
        "(x.permute or x.transpose), then reshape.",
        solution=time_sequences,
        wrong=_reshape_only,
        explanation="reshape(B*N, T, C) on (B, T, N, C) reads the tokens in memory order, so its first row "
        "is frame 0's first T patches: a sequence over space, not time. Swapping T and N first puts the T "
        "tokens of each position next to each other; the reshape then cuts them into rows. Attention over "
        "those rows is attention over time at each position.",
    )
)

# 24.2 ---------------------------------------------------------------------------------------------------
CHOICES = {
    "a": "both models keep the accuracy they had",
    "b": "both drop to chance, about 25%",
    "c": "the per-frame model keeps its accuracy; the 3-D convolution drops close to 0%",
    "d": "the per-frame model keeps its accuracy; the 3-D convolution drops to chance, about 25%",
}


def _check_choice(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in CHOICES, (
        f"answer with one of the letters {sorted(CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "c", f"not ({picked}): {CHOICES[picked]}. Run the next cell and look at both numbers."


register(
    Exercise(
        key="24.2",
        title="play it backwards (predict, then run)",
        checker=_check_choice,
        hint="the per-frame model averages its frames, so what does a new order change for it? The 3-D "
        "model learned the direction well: what direction does a clip played backwards move in, and how "
        "does that compare with the label it keeps?",
        solution="c",
        wrong="d",
        explanation="Averaging over frames ignores their order, so the per-frame model gives the same "
        "logits for a clip and its reverse: same (chance) accuracy. The 3-D model is not confused: it "
        "sees a digit moving right clearly, and says so, but the label still says left. A confident, "
        "correct reading of the motion is wrong on every clip, so its accuracy falls from nearly 100% "
        "to nearly 0%, far below chance.",
    )
)

# 24.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="24.3",
        title="the shape after a 3-D convolution",
        checker=matches_value((64, 16, 56, 56), what="the shape (C, T, H, W)"),
        hint="apply the 2-D rule (size + 2 padding - kernel) // stride + 1 to each of T, H and W on its "
        "own, with that axis's kernel, stride and padding.",
        solution=(64, 16, 56, 56),
        wrong=(64, 14, 56, 56),  # forgets the padding in time
        explanation="Time: (16 + 2 - 3) // 1 + 1 = 16. Height and width: (112 + 6 - 7) // 2 + 1 = 56. "
        "The channels are the layer's 64 output channels. The stem of a video network often keeps every "
        "frame (stride 1 in time) while it halves the frame size, as here.",
    )
)

# 24.4 ---------------------------------------------------------------------------------------------------
T, N = 16, (224 // 16) ** 2
RATIO = (T * N) ** 2 / (T * N * N + N * T * T)
register(
    Exercise(
        key="24.4",
        title="how much cheaper is divided attention?",
        checker=matches_value(RATIO, atol=0.05, what="the ratio"),
        hint="count the query-key pairs. Joint: all T*N tokens of the clip against each other. Divided: "
        "the N tokens of each of the T frames against each other, plus the T tokens of each of the N "
        "positions against each other.",
        solution=float(np.round(RATIO, 2)),
        wrong=float(T),  # forgets the attention over time
        explanation="N = (224 / 16)^2 = 196 patches per frame, T N = 3,136 tokens. Joint attention scores "
        "3,136^2 = 9,834,496 pairs; divided scores 16 x 196^2 + 196 x 16^2 = 614,656 + 50,176 = 664,832, "
        "about 14.8 times fewer. Leaving out the time step gives exactly T = 16; the time step is small "
        "because T is much smaller than N.",
    )
)


# 24.5 ---------------------------------------------------------------------------------------------------
def _tubelets(videos, weight, bias):
    """Tubelet embedding: (B, C, T, H, W) clips, a (d, C, t, p, p) kernel -> (B, T/t, N, d) tokens."""
    d, C, t, p, _ = weight.shape
    B, _, T, H, W = videos.shape
    x = videos.reshape(B, C, T // t, t, H // p, p, W // p, p)  # (B, C, T', t, rows, p, cols, p)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T', rows, cols, C, t, p, p): the tubelet's address first
    x = x.reshape(B, T // t, (H // p) * (W // p), C * t * p * p)  # (B, T', N, C*t*p*p): one row per tubelet
    return x @ weight.reshape(d, -1).T + bias  # (B, T', N, d)


def _tubelets_no_permute(videos, weight, bias):
    d, C, t, p, _ = weight.shape
    B, _, T, H, W = videos.shape
    x = videos.reshape(B, T // t, (H // p) * (W // p), C * t * p * p)  # right shape, pixels of many tubelets
    return x @ weight.reshape(d, -1).T + bias


TUBELET_SHAPES = [(1, 1, 2, 4, 4, 2, 2, 3), (2, 3, 4, 8, 8, 2, 4, 5), (2, 1, 6, 16, 16, 3, 4, 8)]
TUBELET_SHAPES += [(1, 2, 3, 6, 9, 1, 3, 4), (1, 1, 4, 4, 4, 4, 1, 2)]


def _check_tubelets(answer) -> None:
    assert callable(answer), f"expected a function(videos, weight, bias), got {type(answer).__name__}"
    gen = torch.Generator().manual_seed(24)
    for B, C, T, H, W, t, p, d in TUBELET_SHAPES:
        videos = torch.randn(B, C, T, H, W, generator=gen, dtype=torch.float64)  # (B, C, T, H, W)
        weight = torch.randn(d, C, t, p, p, generator=gen, dtype=torch.float64)  # (d, C, t, p, p)
        bias = torch.randn(d, generator=gen, dtype=torch.float64)  # (d,)
        want = _tubelets(videos, weight, bias)  # (B, T/t, N, d)
        got = answer(videos.clone(), weight.clone(), bias.clone())
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        assert isinstance(got, torch.Tensor), f"return a torch tensor, got {type(got).__name__}"
        case = f"clips {(B, C, T, H, W)} and a {(d, C, t, p, p)} kernel"
        assert tuple(got.shape) == tuple(want.shape), (
            f"for {case} you return shape {tuple(got.shape)}, not (B, T/t, N, d) = {tuple(want.shape)}"
        )
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-9), (
            f"for {case} the shape is right but the numbers are not: token [b, i, n] must be the "
            f"kernel applied to frames i*{t}..i*{t}+{t - 1} of clip b at patch n, flattened (c, t, u, v) "
            "like the kernel"
        )


_CUT_TUBELETS = "Cut the tubelets with reshape and permute, then use one matrix product."
register(
    Exercise(
        key="24.5",
        title="tubelet embedding, without a convolution",
        checker=without_mirrors(
            by_hand(
                _check_tubelets,
                {
                    "torch.nn.functional.conv3d": _CUT_TUBELETS,
                    "torch.conv3d": _CUT_TUBELETS,
                    "torch.nn.Conv3d.forward": _CUT_TUBELETS,
                    "torch.nn.functional.conv2d": _CUT_TUBELETS,
                    "torch.conv2d": _CUT_TUBELETS,
                    "helpers.video.conv3d_by_frames": _CUT_TUBELETS,
                },
            ),
            {"conv3d_by_frames": _CUT_TUBELETS},
        ),
        hint="split every axis the kernel covers in two: reshape (B, C, T, H, W) to "
        "(B, C, T/t, t, H/p, p, W/p, p). permute so that the tubelet's address (T/t, H/p, W/p) comes right "
        "after B and its contents (C, t, p, p) come last, in the kernel's own order; reshape to "
        "(B, T/t, N, C t p p) and multiply by weight.reshape(d, -1).T, then add the bias.",
        solution=_tubelets,
        wrong=_tubelets_no_permute,
        explanation="A tubelet is chapter 22's patch with a depth in time: t frames of a p x p square. With "
        "kernel = stride = (t, p, p) the windows of F.conv3d are exactly the tubelets and never overlap, so "
        "the convolution is one matrix product of the flattened tubelets with the flattened kernel - the "
        "argument of 22.2 with one more axis. ViViT embeds clips this way: t = 2 halves the tokens of the "
        "chapter's per-frame patches (t = 1), and each token already mixes two frames.",
    )
)
