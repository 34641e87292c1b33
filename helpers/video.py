"""Video (chapter 24): a clip is a stack of images with a time axis, (B, C, T, H, W).

What this module adds over helpers.cnn (2-D convolution, the digit CNN) and helpers.vit (patch tokens):

    moving_digits(n, T, size, speed, part, seed)
        clips of one of the book's digits sliding up, down, left or right across a blank canvas; train
        clips use train digits and test clips test digits (helpers.digits' fixed split). Seeded, no download.
    animate_clips(videos, titles)
        a matplotlib animation of a few clips side by side (to_jshtml() plays it in a notebook, offline).
    conv3d_by_frames, conv3d_output_shape
        a 3-D convolution written as a sum of 2-D convolutions, one per temporal tap of the kernel
        (chapter 12's im2col convolution does each), and its output shape.
    compose_2plus1d, mid_channels, Conv2Plus1d
        the (2+1)-D factorisation: a spatial (1, k, k) convolution, then a temporal (kT, 1, 1) one.
    FrameAverage, Conv3dNet, Conv2Plus1dNet
        a per-frame CNN whose logits are averaged over time (blind to the order of the frames), and two
        convolutional video classifiers that mix time.
    space_sequences, time_sequences (and their inverses), DividedSpaceTimeBlock, JointSpaceTimeBlock,
    SpaceTimeTransformer
        the reshapes of divided space-time attention (attention within each frame, then along time at each
        patch position), chapter 17's Block doing the attending, chapter 22's PatchEmbedding per frame.
    attention_cost, time_attention, cost_view
        attention scores of joint (T N)^2 and divided T N^2 + N T^2 attention, counted and measured,
        with a slider.

Shapes follow PyTorch's Conv3d: clips are (B, C, T, H, W), 3-D kernels (C_out, C_in, kT, kH, kW).
Token tensors in the transformer are (B, T, N, C): T frames, N patches per frame, C channels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from helpers.attention import SelfAttention
from helpers.cnn import DigitCNN, conv2d_im2col, conv_output_size
from helpers.digits import SIDE, load_digits_split
from helpers.normalization import LayerNorm
from helpers.transformer import Block
from helpers.vit import PatchEmbedding

DIRECTIONS = ("up", "down", "left", "right")
STEPS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])  # (4, 2): (rows, columns) moved per frame, per label


# --- the data: moving digits ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clips:
    """Moving-digit clips: `videos` (n, 1, T, size, size) in [0, 1], `labels` (n,) indices into DIRECTIONS,
    `digits` (n,) the digit shown, `positions` (n, T, 2) the (row, column) of its top-left corner, per frame.
    """

    videos: torch.Tensor
    labels: torch.Tensor
    digits: torch.Tensor
    positions: torch.Tensor


def _positive_int(value, name: str, least: int = 1) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def moving_digits(
    n: int, T: int = 6, size: int = 16, speed: int = 1, part: str = "train", seed: int = 0
) -> Clips:
    """n clips of T frames: an 8x8 digit moving `speed` pixels per frame in one of four directions.

    The label is the direction (0 up, 1 down, 2 left, 3 right). The start is uniform over the places that
    keep the whole digit on the canvas for all T frames, and mirror-symmetric between opposite directions,
    so the *set* of frames of a clip moving right looks like that of a clip moving left: only their order
    tells them apart. `part` picks train or test digits of the book's split.
    """
    n, T, size, speed = (
        _positive_int(v, k) for v, k in ((n, "n"), (T, "T"), (size, "size"), (speed, "speed"))
    )
    if T < 2:
        raise ValueError(f"a clip needs at least T=2 frames to show motion, got T={T}")
    travel = speed * (T - 1)  # pixels the digit moves from the first frame to the last
    if size < SIDE + travel:
        raise ValueError(
            f"a {SIDE}x{SIDE} digit moving {speed} px/frame for T={T} frames travels {travel} px: it needs a "
            f"canvas of at least {SIDE + travel}, got size={size}"
        )
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    split = load_digits_split()
    images = split.images(part)  # (M, 8, 8)
    targets = split.y_train if part == "train" else split.y_test  # (M,)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(images), size=n)  # (n,) which digit image each clip shows
    labels = rng.integers(0, len(DIRECTIONS), size=n)  # (n,)
    room = size - SIDE  # the largest top-left coordinate that keeps the digit inside
    start = rng.integers(0, room + 1, size=(n, 2))  # (n, 2): free along the axis that does not move
    along = rng.integers(0, room - travel + 1, size=n)  # (n,): where the trip starts, in forward order
    step = STEPS[labels]  # (n, 2)
    for axis in (0, 1):
        moving = step[:, axis] != 0
        # forward (+1) trips start at `along`; backward (-1) ones at its mirror image, so they end there
        start[moving, axis] = np.where(step[moving, axis] > 0, along[moving], along[moving] + travel)
    positions = start[:, None, :] + speed * np.arange(T)[None, :, None] * step[:, None, :]  # (n, T, 2)
    videos = np.zeros((n, T, size, size), dtype=np.float32)  # (n, T, H, W)
    for i in range(n):
        for t in range(T):
            r, c = positions[i, t]
            videos[i, t, r : r + SIDE, c : c + SIDE] = images[which[i]]
    return Clips(
        videos=torch.from_numpy(videos).unsqueeze(1),  # (n, 1, T, H, W)
        labels=torch.from_numpy(labels).long(),  # (n,)
        digits=torch.from_numpy(targets[which]).long(),  # (n,)
        positions=torch.from_numpy(positions).long(),  # (n, T, 2)
    )


def check_clips(videos: torch.Tensor, name: str = "videos") -> None:
    """A batch of clips must be a 5-D tensor (B, C, T, H, W) with at least two frames."""
    if not isinstance(videos, torch.Tensor) or videos.dim() != 5:
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"{name} must be a (B, C, T, H, W) tensor, got {shape}")
    if videos.shape[2] < 2:
        raise ValueError(f"{name} has T={videos.shape[2]} frames; a clip needs at least 2 to show motion")


def animate_clips(videos, titles: Sequence[str] | None = None, interval: int = 350, inches: float = 1.3):
    """A FuncAnimation of up to 8 clips (B, 1, T, H, W) side by side, one frame per step.

    In a notebook: `HTML(animate_clips(...).to_jshtml())` plays it with no server and no download.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    check_clips(videos)
    B, _, T = videos.shape[:3]
    if B > 8:
        raise ValueError(f"show at most 8 clips at once, got {B}")
    if titles is not None and len(titles) != B:
        raise ValueError(f"got {len(titles)} titles for {B} clips")
    fig, axes = plt.subplots(1, B, figsize=(inches * B, inches * 1.15), squeeze=False)
    pictures = []
    for b, ax in enumerate(axes[0]):
        pictures.append(ax.imshow(videos[b, 0, 0].cpu().numpy(), cmap="gray_r", vmin=0, vmax=1))
        ax.set(xticks=[], yticks=[], title=titles[b] if titles is not None else "")
        ax.grid(False)
    counter = fig.text(0.01, 0.02, "", fontsize=8)

    def show(t: int):
        for b, picture in enumerate(pictures):
            picture.set_data(videos[b, 0, t].cpu().numpy())
        counter.set_text(f"frame {t}")
        return [*pictures, counter]

    anim = animation.FuncAnimation(fig, show, frames=T, interval=interval, blit=False)
    plt.close(fig)  # the animation draws its own frames; no stray static figure
    return anim


# --- 3-D convolution and its (2+1)-D factorisation --------------------------------------------------------
def triple(value, name: str) -> tuple[int, int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value, value
    if isinstance(value, Sequence) and len(value) == 3 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1]), int(value[2])
    raise ValueError(f"{name} must be an int or three ints (time, height, width), got {value!r}")


def conv3d_output_shape(shape: Sequence[int], kernel, stride=1, padding=0) -> tuple[int, int, int]:
    """(T_out, H_out, W_out) of a 3-D convolution of a (T, H, W) clip: the 2-D rule on each axis."""
    if len(shape) != 3:
        raise ValueError(f"shape must be (T, H, W), got {tuple(shape)}")
    kernel, stride, padding = (
        triple(kernel, "kernel"),
        triple(stride, "stride"),
        triple(padding, "padding"),
    )
    return tuple(conv_output_size(*args) for args in zip(shape, kernel, stride, padding, strict=True))


def check_conv3d_inputs(x, weight, bias) -> None:
    check_clips(x, "x")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 5:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a (C_out, C_in, kT, kH, kW) tensor, got {shape}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the weight expects {weight.shape[1]} (its dim 1)")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


def conv3d_by_frames(x: torch.Tensor, weight: torch.Tensor, bias=None, padding=0) -> torch.Tensor:
    """3-D convolution (stride 1) as 2-D ones: y[:, :, t] = b + sum_k conv2d(x_pad[:, :, t+k], w[:, :, k]).

    x: (B, C_in, T, H, W), weight: (C_out, C_in, kT, kH, kW). Each output frame mixes kT neighbouring input
    frames, each through its own 2-D kernel. Same numbers as torch.nn.functional.conv3d.
    """
    check_conv3d_inputs(x, weight, bias)
    pT, pH, pW = triple(padding, "padding")
    kT = weight.shape[2]
    T_out, H_out, W_out = conv3d_output_shape(x.shape[2:], weight.shape[2:], 1, (pT, pH, pW))
    x_pad = nn.functional.pad(x, (0, 0, 0, 0, pT, pT))  # (B, C_in, T + 2pT, H, W): blank frames at both ends
    frames = []
    for t in range(T_out):
        y_t = sum(conv2d_im2col(x_pad[:, :, t + k], weight[:, :, k], padding=(pH, pW)) for k in range(kT))
        frames.append(y_t)  # (B, C_out, H_out, W_out)
    y = torch.stack(frames, dim=2)  # (B, C_out, T_out, H_out, W_out)
    return y if bias is None else y + bias[:, None, None, None]


def compose_2plus1d(w_space: torch.Tensor, w_time: torch.Tensor) -> torch.Tensor:
    """The one 3-D kernel that a spatial conv (M, C_in, 1, kH, kW) then a temporal one (C_out, M, kT, 1, 1)
    add up to when nothing sits between them: K[o, i, t, h, w] = sum_m w_time[o, m, t] w_space[m, i, h, w]."""
    if w_space.dim() != 5 or w_space.shape[2] != 1:
        raise ValueError(f"w_space must be (M, C_in, 1, kH, kW), got {tuple(w_space.shape)}")
    if w_time.dim() != 5 or w_time.shape[3:] != (1, 1):
        raise ValueError(f"w_time must be (C_out, M, kT, 1, 1), got {tuple(w_time.shape)}")
    if w_time.shape[1] != w_space.shape[0]:
        raise ValueError(f"w_space makes {w_space.shape[0]} channels but w_time reads {w_time.shape[1]}")
    return torch.einsum(
        "omt,mihw->oithw", w_time[:, :, :, 0, 0], w_space[:, :, 0]
    )  # (C_out, C_in, kT, kH, kW)


def mid_channels(c_in: int, c_out: int, kT: int = 3, k: int = 3) -> int:
    """Channels between the spatial and temporal halves so that (2+1)-D has about a full 3-D conv's weights:
    M = floor(kT k^2 c_in c_out / (k^2 c_in + kT c_out))."""
    for value, name in ((c_in, "c_in"), (c_out, "c_out"), (kT, "kT"), (k, "k")):
        _positive_int(value, name)
    return max(1, (kT * k * k * c_in * c_out) // (k * k * c_in + kT * c_out))


class Conv2Plus1d(nn.Module):
    """A (2+1)-D convolution: Conv3d with kernel (1, k, k) over space, ReLU, Conv3d with (kT, 1, 1) over time.

    Same output shape as Conv3d(c_in, c_out, (kT, k, k)) with 'same' padding; `mid` defaults to
    mid_channels(...), which gives about the same number of weights, with an extra ReLU in the middle.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3, kT: int = 3, mid: int | None = None):
        super().__init__()
        mid = mid_channels(c_in, c_out, kT, k) if mid is None else _positive_int(mid, "mid")
        self.spatial = nn.Conv3d(c_in, mid, (1, k, k), padding=(0, k // 2, k // 2))
        self.temporal = nn.Conv3d(mid, c_out, (kT, 1, 1), padding=(kT // 2, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(torch.relu(self.spatial(x)))  # (B, c_out, T, H, W)


# --- three convolutional classifiers ------------------------------------------------------------------------
class FrameAverage(nn.Module):
    """Chapter 12's DigitCNN run on every frame by itself, its logits averaged over the frames.

    It cannot see the order of the frames: shuffling them changes nothing. Each frame gets a blank border
    (2L - 1 pixels for L layers of 3x3) wide enough that no feature of the digit ever meets the zero padding,
    so the global max pool sees the same values wherever the digit is: the per-frame logits depend on what
    the digit is, not on where.
    """

    def __init__(self, channels: Sequence[int] = (8, 16), classes: int = len(DIRECTIONS)):
        super().__init__()
        self.frame_model = DigitCNN(channels, classes=classes)
        self.border = 2 * len(channels) - 1

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        check_clips(videos)
        B, C, T, H, W = videos.shape
        frames = videos.transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W): each frame on its own
        frames = nn.functional.pad(frames, (self.border,) * 4)  # (B*T, C, H + 2b, W + 2b)
        logits = self.frame_model(frames).view(B, T, -1)  # (B, T, classes)
        return logits.mean(dim=1)  # (B, classes)


class _VideoConvNet(nn.Module):
    def __init__(self, layers: list[nn.Module], width: int, classes: int):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(width, classes)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        check_clips(videos)
        x = videos
        for layer in self.layers:
            x = torch.relu(layer(x))  # (B, C_layer, T, H, W)
        return self.head(x.amax(dim=(2, 3, 4)))  # (B, classes): the strongest response anywhere, any time


class Conv3dNet(_VideoConvNet):
    """3x3x3 convolutions ('same' padding) with ReLU, a global max pool over time and space, a linear head."""

    def __init__(
        self, channels: Sequence[int] = (8, 16), classes: int = len(DIRECTIONS), in_channels: int = 1
    ):
        widths = [in_channels, *channels]
        layers = [nn.Conv3d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        super().__init__(layers, widths[-1], classes)


class Conv2Plus1dNet(_VideoConvNet):
    """The same network with every 3x3x3 convolution replaced by a (2+1)-D one of about the same size."""

    def __init__(
        self, channels: Sequence[int] = (8, 16), classes: int = len(DIRECTIONS), in_channels: int = 1
    ):
        widths = [in_channels, *channels]
        layers = [Conv2Plus1d(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        super().__init__(layers, widths[-1], classes)


# --- divided space-time attention ---------------------------------------------------------------------------
def _check_tokens(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"tokens must be a (B, T, N, C) tensor, got {shape}")


def space_sequences(x: torch.Tensor) -> torch.Tensor:
    """(B, T, N, C) -> (B*T, N, C): one sequence per frame, its N patches."""
    _check_tokens(x)
    B, T, N, C = x.shape
    return x.reshape(B * T, N, C)  # (B*T, N, C)


def from_space_sequences(y: torch.Tensor, B: int) -> torch.Tensor:
    """(B*T, N, C) -> (B, T, N, C), undoing space_sequences."""
    return y.reshape(B, -1, *y.shape[1:])  # (B, T, N, C)


def time_sequences(x: torch.Tensor) -> torch.Tensor:
    """(B, T, N, C) -> (B*N, T, C): one sequence per patch position, its T frames."""
    _check_tokens(x)
    B, T, N, C = x.shape
    return x.transpose(1, 2).reshape(B * N, T, C)  # (B*N, T, C)


def from_time_sequences(y: torch.Tensor, B: int) -> torch.Tensor:
    """(B*N, T, C) -> (B, T, N, C), undoing time_sequences."""
    BN, T, C = y.shape
    return y.reshape(B, BN // B, T, C).transpose(1, 2)  # (B, T, N, C)


class DividedSpaceTimeBlock(nn.Module):
    """Attention within each frame (over its N patches), then along time (over T frames) at each position."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.space = Block(n_embd, n_head, dropout=dropout, causal=False)
        self.time = Block(n_embd, n_head, dropout=dropout, causal=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = from_space_sequences(self.space(space_sequences(x)), B)  # (B, T, N, C): patches of a frame talk
        x = from_time_sequences(self.time(time_sequences(x)), B)  # (B, T, N, C): a position across frames
        return x


class JointSpaceTimeBlock(nn.Module):
    """Full space-time attention: all T*N tokens of the clip in one sequence (cost grows as (T N)^2)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.block = Block(n_embd, n_head, dropout=dropout, causal=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tokens(x)
        B, T, N, C = x.shape
        return self.block(x.reshape(B, T * N, C)).view(B, T, N, C)  # (B, T, N, C)


class SpaceTimeTransformer(nn.Module):
    """A video transformer: patch tokens per frame, learned space and time position embeddings, blocks of
    divided (or joint) space-time attention, mean over all tokens, a linear head."""

    def __init__(
        self,
        frames: int,
        size: int,
        patch: int = 4,
        in_channels: int = 1,
        n_embd: int = 32,
        n_head: int = 2,
        n_layer: int = 2,
        classes: int = len(DIRECTIONS),
        attention: str = "divided",
    ):
        super().__init__()
        if attention not in ("divided", "joint"):
            raise ValueError(f"attention must be 'divided' or 'joint', got {attention!r}")
        if size % patch:
            raise ValueError(f"the frame size {size} must be a multiple of the patch size {patch}")
        self.frames, self.n_patches = frames, (size // patch) ** 2
        self.embed = PatchEmbedding(in_channels, n_embd, patch)
        self.pos_space = nn.Parameter(0.02 * torch.randn(self.n_patches, n_embd))  # (N, C)
        self.pos_time = nn.Parameter(0.02 * torch.randn(frames, n_embd))  # (T, C)
        kind = DividedSpaceTimeBlock if attention == "divided" else JointSpaceTimeBlock
        self.blocks = nn.ModuleList(kind(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, classes)

    def tokens(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, T, N, n_embd): each frame cut into patches, plus where and when it is."""
        check_clips(videos)
        B, C, T, H, W = videos.shape
        if T != self.frames:
            raise ValueError(f"this model was built for T={self.frames} frames, got {T}")
        frames = videos.transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W)
        x = self.embed(frames).view(B, T, self.n_patches, -1)  # (B, T, N, C)
        return x + self.pos_space + self.pos_time[:, None, :]  # (B, T, N, C)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        x = self.tokens(videos)  # (B, T, N, C)
        for block in self.blocks:
            x = block(x)  # (B, T, N, C)
        return self.head(self.ln_f(x).mean(dim=(1, 2)))  # (B, classes)


# --- what attention costs -----------------------------------------------------------------------------------
def attention_cost(T: int, N: int) -> dict[str, int | float]:
    """Attention scores (query-key pairs) per head and layer for a clip of T frames of N patches.

    joint: every one of the T*N tokens scores every other, (T N)^2.
    divided: each frame's N tokens score each other (T N^2), then each position's T tokens (N T^2).
    Each score costs one dot product of the head size, and as many multiply-adds again to mix the values.
    """
    T, N = _positive_int(T, "T"), _positive_int(N, "N")
    joint, divided = (T * N) ** 2, T * N * N + N * T * T
    return {"T": T, "N": N, "tokens": T * N, "joint": joint, "divided": divided, "ratio": joint / divided}


def time_attention(T: int, N: int, n_embd: int = 32, n_head: int = 2, repeats: int = 5) -> dict[str, float]:
    """Seconds for one forward pass of an attention layer (helpers.attention.SelfAttention, causal=False)
    over a (1, T, N, n_embd) clip: joint (one sequence of T*N) and divided (frames, then positions).

    The best of `repeats` runs of each, on the CPU; returned next to the counts of `attention_cost`.
    """
    repeats = _positive_int(repeats, "repeats")
    attn = SelfAttention(n_embd, n_head, causal=False).eval()
    x = torch.randn(1, T, N, n_embd, generator=torch.Generator().manual_seed(0))  # (1, T, N, C)

    def joint():
        return attn(x.reshape(1, T * N, n_embd))  # (1, T*N, C)

    def divided():
        y = from_space_sequences(attn(space_sequences(x)), 1)  # (1, T, N, C)
        return from_time_sequences(attn(time_sequences(y)), 1)  # (1, T, N, C)

    seconds = {}
    with torch.no_grad():
        for name, run in (("joint", joint), ("divided", divided)):
            run()  # warm-up
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            seconds[f"{name}_s"] = best
    return {**attention_cost(T, N), **seconds}


def cost_view(T: int = 8, side: int = 14):
    """Sliders: clip length T and patches per side (N = side^2) -> attention scores, joint vs divided."""
    import matplotlib.pyplot as plt

    from helpers.widgets import slider_view  # ipywidgets and pyplot load only when a slider is asked for

    def draw(T: int, side: int):
        cost = attention_cost(T, side * side)
        Ts = np.arange(2, 65)
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
        left.loglog(Ts, [attention_cost(int(t), side * side)["joint"] for t in Ts], label="joint $(TN)^2$")
        left.loglog(
            Ts, [attention_cost(int(t), side * side)["divided"] for t in Ts], label="divided $TN^2+NT^2$"
        )
        left.plot([T, T], [cost["divided"], cost["joint"]], "ko", ms=4)
        left.set(xlabel="frames T", ylabel="scores per head per layer", title=f"N = {side}x{side} patches")
        left.legend()
        right.bar(["joint", "divided"], [cost["joint"], cost["divided"]], color=["C0", "C1"])
        right.set(yscale="log", title=f"T={T}, N={cost['N']}: joint costs {cost['ratio']:.1f}x divided")

    return slider_view(draw, T=(2, 64, 1, T), side=(2, 16, 1, side))
