"""Vision transformers (chapter 22): cut an image into patches, and chapter 17's block does the rest.

What this module adds over helpers.transformer (the block) and helpers.cnn (the CNN it is compared with):

    patchify(images, patch)            (B, C, H, W) -> (B, N, C*p*p): non-overlapping p x p patches in
                                       row-major order, each flattened channel-major (C, p, p);
    PatchEmbedding(in_channels, n_embd, patch)
                                       a Linear on those patches, which is the same map as a convolution
                                       with kernel = stride = p (`conv_weight()` gives that kernel);
    sincos_2d(rows, cols, d)           a 2-D sinusoidal position table: half the channels encode the row,
                                       half the column, each with helpers.transformer.sinusoidal_encoding;
    ViTConfig, ViT                     the encoder: patch tokens (+ a class token), position embeddings,
                                       non-causal Blocks, then a class token or mean pooling and a head;
                                       `attention_maps` returns every layer's attention weights;
    random_shift(images, max_shift)    the augmentation: each image moved by its own random offset;
    train_vision(model, X, y, ...)     one training recipe (Adam, one-cycle rate, optional shifts) for the
                                       ViT and the CNN alike, on helpers.train.fit;
    vit_macs, cnn_macs                 multiply-adds per image, counted by hand from the shapes;
    attention_cost(...)                tokens, score entries, multiply-adds and measured time of one
                                       self-attention layer for a range of patch sizes (the slider's data);
    patch_size_view(costs, image)      the slider that draws them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from helpers.attention import scaled_dot_product_attention
from helpers.cnn import DigitCNN
from helpers.normalization import LayerNorm
from helpers.train import History, accuracy, fit
from helpers.transformer import Block, sinusoidal_encoding
from helpers.widgets import slider_view


def _check_images(images: torch.Tensor, patch: int) -> None:
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
        raise ValueError(f"patch must be a positive int, got {patch!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, C, H, W) tensor, got {shape}")
    H, W = images.shape[-2:]
    if H % patch or W % patch:
        raise ValueError(f"height and width must be multiples of patch={patch}, got H={H}, W={W}")


# --- patches as tokens ------------------------------------------------------------------------------------
def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C*p*p), N = (H/p)(W/p): patches in row-major order, each flattened (C, p, p)."""
    _check_images(images, patch)
    B, C, H, W = images.shape
    p = patch
    x = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, rows, p, cols, p): split each axis in two
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, C, p, p): the patch grid first
    return x.reshape(B, (H // p) * (W // p), C * p * p)  # (B, N, C*p*p)


class PatchEmbedding(nn.Module):
    """Linear map of each flattened p x p patch to n_embd channels: (B, C, H, W) -> (B, N, n_embd).

    Its weight reshaped to (n_embd, C, p, p) is a conv2d kernel with stride p that gives the same numbers.
    """

    def __init__(self, in_channels: int, n_embd: int, patch: int):
        super().__init__()
        if min(in_channels, n_embd, patch) < 1:
            raise ValueError(
                f"in_channels, n_embd and patch must be positive, got {in_channels}, {n_embd}, {patch}"
            )
        self.in_channels, self.n_embd, self.patch = in_channels, n_embd, patch
        self.proj = nn.Linear(in_channels * patch * patch, n_embd)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.patch)
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected {self.in_channels} channels, got images of shape {tuple(images.shape)}"
            )
        return self.proj(patchify(images, self.patch))  # (B, N, n_embd)

    def conv_weight(self) -> torch.Tensor:
        """The Linear's weight as a conv2d kernel (n_embd, C, p, p): row o of the weight, unflattened."""
        return self.proj.weight.reshape(self.n_embd, self.in_channels, self.patch, self.patch)


def sincos_2d(rows: int, cols: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """(rows*cols, d) table for a row-major grid: channels [0, d/2) encode the row, [d/2, d) the column."""
    if d % 4:
        raise ValueError(f"d must be a multiple of 4 (two axes, each in sine-cosine pairs), got {d}")
    pe_row = sinusoidal_encoding(rows, d // 2, base)  # (rows, d/2)
    pe_col = sinusoidal_encoding(cols, d // 2, base)  # (cols, d/2)
    grid_row = pe_row[:, None, :].expand(rows, cols, d // 2)  # (rows, cols, d/2)
    grid_col = pe_col[None, :, :].expand(rows, cols, d // 2)  # (rows, cols, d/2)
    return torch.cat([grid_row, grid_col], dim=-1).reshape(rows * cols, d)  # (N, d)


# --- the model --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ViTConfig:
    """A small vision transformer. pool: "cls" (read a class token) or "mean" (average the patch tokens).
    pos: "learned" (a trained (N, C) table), "sincos" (sincos_2d, fixed) or "none"."""

    image_size: int = 8
    patch: int = 2
    in_channels: int = 1
    n_embd: int = 32
    n_head: int = 4
    n_layer: int = 2
    classes: int = 10
    pool: str = "cls"
    pos: str = "learned"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.image_size < 1 or self.patch < 1 or self.image_size % self.patch:
            raise ValueError(
                f"image_size ({self.image_size}) must be a positive multiple of patch ({self.patch})"
            )
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {self.pool!r}")
        if self.pos not in ("learned", "sincos", "none"):
            raise ValueError(f"pos must be 'learned', 'sincos' or 'none', got {self.pos!r}")
        if self.n_layer < 0 or self.classes < 1:
            raise ValueError(f"need n_layer >= 0 and classes >= 1, got {self.n_layer} and {self.classes}")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch

    @property
    def n_patches(self) -> int:
        return self.grid**2

    @property
    def n_tokens(self) -> int:
        """Tokens the blocks see: the patches, plus one class token with pool="cls"."""
        return self.n_patches + (self.pool == "cls")


class ViT(nn.Module):
    """Patch embedding + positions (+ class token) -> non-causal Blocks -> LayerNorm -> pool -> Linear.

    forward: (B, C, S, S) images -> (B, classes) logits. The class token, when used, is token 0 and has
    no position embedding: it is one learned vector, the same for every image.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = c = config
        self.patch_embed = PatchEmbedding(c.in_channels, c.n_embd, c.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.n_embd)) if c.pool == "cls" else None
        if c.pos == "learned":
            self.pos_embed = nn.Parameter(0.02 * torch.randn(1, c.n_patches, c.n_embd))  # (1, N, C)
        elif c.pos == "sincos":
            self.register_buffer("pos_embed", sincos_2d(c.grid, c.grid, c.n_embd)[None], persistent=False)
        else:
            self.pos_embed = None
        self.blocks = nn.ModuleList(
            Block(c.n_embd, c.n_head, dropout=c.dropout, causal=False) for _ in range(c.n_layer)
        )
        self.ln_f = LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.classes)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """The sequence the first block reads: (B, T, C), T = n_tokens."""
        c = self.config
        if images.dim() != 4 or tuple(images.shape[1:]) != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(
                f"expected images (B, {c.in_channels}, {c.image_size}, {c.image_size}), "
                f"got {tuple(images.shape)}"
            )
        x = self.patch_embed(images)  # (B, N, C)
        if self.pos_embed is not None:
            x = x + self.pos_embed  # (B, N, C): each patch learns where it is
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)  # (B, 1 + N, C)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.tokens(images)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C): every token attends to every token
        x = self.ln_f(x)  # (B, T, C)
        pooled = x[:, 0] if self.config.pool == "cls" else x.mean(dim=1)  # (B, C)
        return self.head(pooled)  # (B, classes)

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's attention weights, (B, n_head, T, T) per layer: row i says what token i reads.

        They are recomputed from each block's own weights with the from-scratch formula
        (helpers.attention.scaled_dot_product_attention, return_weights=True).
        """
        maps = []
        x = self.tokens(images)  # (B, T, C)
        for block in self.blocks:
            h = block.ln_1(x)  # (B, T, C)
            q, k, v = block.attn.c_attn(h).split(self.config.n_embd, dim=2)  # 3 x (B, T, C)
            q, k, v = block.attn.split_heads(q), block.attn.split_heads(k), block.attn.split_heads(v)
            _, weights = scaled_dot_product_attention(q, k, v, return_weights=True)  # (B, nh, T, T)
            maps.append(weights)
            x = block(x)  # (B, T, C)
        return maps


# --- augmentation -----------------------------------------------------------------------------------------
def random_shift(
    images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Move each image by its own random (down, right) offset in [-max_shift, max_shift], zeros fill in.

    Pixels pushed over the edge are lost, so use it on digits with a blank border (place_on_canvas).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    B, C, H, W = images.shape
    if max_shift < 0 or max_shift >= min(H, W):
        raise ValueError(f"max_shift must be in [0, {min(H, W) - 1}] for {H}x{W} images, got {max_shift}")
    s = max_shift
    padded = nn.functional.pad(images, (s, s, s, s))  # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(-s, s + 1, (B, 2), generator=generator).to(images.device)  # (B, 2)
    rows = torch.arange(H, device=images.device) + s - offsets[:, :1]  # (B, H): source row of each row
    cols = torch.arange(W, device=images.device) + s - offsets[:, 1:]  # (B, W)
    b = torch.arange(B, device=images.device)[:, None, None, None]  # (B, 1, 1, 1)
    ch = torch.arange(C, device=images.device)[None, :, None, None]  # (1, C, 1, 1)
    return padded[b, ch, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def train_vision(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    epochs: int = 25,
    lr: float = 3e-3,
    batch_size: int = 64,
    max_shift: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Adam with a one-cycle learning rate (warm up, then anneal) on shuffled mini-batches, each moved by
    `random_shift(batch, max_shift)` when max_shift > 0; validation accuracy after every epoch.

    The same recipe trains the ViT and the CNN, so any difference between them is the model's.
    """
    if len(X) != len(y) or len(X_val) != len(y_val):
        raise ValueError("each X must have as many rows as its y")
    device = next(model.parameters()).device
    X, y = X.to(device), y.to(device)
    order = torch.Generator().manual_seed(seed)

    def batches():
        perm = torch.randperm(len(X), generator=order).to(device)  # (N,)
        for xb, yb in zip(X[perm].split(batch_size), y[perm].split(batch_size), strict=True):
            yield (random_shift(xb, max_shift, order) if max_shift else xb), yb

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(X) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.1)
    evaluate = lambda m: {"val_accuracy": accuracy(m, X_val, y_val)}  # noqa: E731
    return fit(
        model, batches, nn.functional.cross_entropy, optimizer, epochs, evaluate, scheduler, device, progress
    )


# --- counting the cost ------------------------------------------------------------------------------------
def vit_macs(config: ViTConfig) -> dict[str, int]:
    """Multiply-adds per image of each part of a ViT forward pass, from the shapes (LayerNorms, softmax,
    GELU and additions are left out: they are O(T C), not products). Keys: patch_embed, qkv, scores
    (q k^T), mix (weights @ v), proj, mlp, head, total."""
    c = config
    T, C, N = c.n_tokens, c.n_embd, c.n_patches
    L = c.n_layer
    macs = {
        "patch_embed": N * c.in_channels * c.patch**2 * C,
        "qkv": L * T * C * 3 * C,
        "scores": L * T * T * C,  # every head: T x T dot products of C / n_head numbers
        "mix": L * T * T * C,
        "proj": L * T * C * C,
        "mlp": L * 2 * T * C * 4 * C,
        "head": C * c.classes,
    }
    macs["total"] = sum(macs.values())
    return macs


def cnn_macs(model: DigitCNN, height: int, width: int) -> dict[str, int]:
    """Multiply-adds per image of a DigitCNN on (height x width) inputs: each 3x3 conv costs
    C_in * C_out * 9 per output pixel (padding 1 keeps every map height x width); then the head."""
    macs = {}
    for i, conv in enumerate(model.convs):
        c_out, c_in, kh, kw = conv.weight.shape
        macs[f"conv{i + 1}"] = c_in * c_out * kh * kw * height * width
    macs["head"] = model.head.in_features * model.head.out_features
    macs["total"] = sum(macs.values())
    return macs


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def attention_cost(
    image_size: int = 32,
    patches: Sequence[int] = (1, 2, 4, 8, 16),
    n_embd: int = 32,
    n_head: int = 4,
    batch: int = 1,
    repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, float]]:
    """For each patch size p: tokens T = (S/p)^2, attention-score entries n_head T^2, multiply-adds per
    image of the scores and the mix (2 T^2 C) and of the q, k, v projection (3 T C^2), and the
    best-of-`repeats` time in seconds of each: one from-scratch attention (helpers.attention, which builds
    the (B, nh, T, T) weights) and one Linear C -> 3C over the tokens, on random numbers."""
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
    bad = [p for p in patches if p < 1 or image_size % p]
    if bad:
        raise ValueError(f"every patch size must divide image_size={image_size}, got {bad}")
    gen = torch.Generator().manual_seed(seed)
    qkv = nn.Linear(n_embd, 3 * n_embd)
    rows = []
    for p in patches:
        T = (image_size // p) ** 2
        x = torch.randn(batch, T, n_embd, generator=gen)  # (B, T, C)
        q, k, v = (torch.randn(batch, n_head, T, n_embd // n_head, generator=gen) for _ in range(3))
        rows.append(
            {
                "patch": p,
                "tokens": T,
                "score_entries": n_head * T * T,
                "attention_macs": 2 * T * T * n_embd,
                "qkv_macs": 3 * T * n_embd * n_embd,
                "attention_seconds": _best_time(
                    lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v), repeats
                ),
                "qkv_seconds": _best_time(lambda x=x: qkv(x), repeats),
            }
        )
    return rows


def patch_size_view(costs: list[dict[str, float]], image: torch.Tensor | None = None):
    """A slider over the patch sizes in `costs` (attention_cost's rows): the image cut into that grid, the
    multiply-adds of attention (T^2) and of the q, k, v projection (T) against the token count, and the
    measured times. Test it headless with `view.set(patch=2)`; `view.values` says what is drawn."""
    rows = {int(r["patch"]): r for r in costs}
    if not rows:
        raise ValueError("costs is empty: pass the rows that attention_cost returns")
    size = int(round(max(r["tokens"] ** 0.5 * r["patch"] for r in costs)))
    picture = np.zeros((size, size)) if image is None else np.asarray(image, dtype=float)  # (S, S)
    if picture.shape != (size, size):
        raise ValueError(f"image must be ({size}, {size}) to match the costs, got {tuple(picture.shape)}")
    tokens = [r["tokens"] for r in costs]

    def draw(patch):
        r = rows[patch]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
        axes[0].imshow(picture, cmap="gray_r")
        for k in range(0, size + 1, patch):
            axes[0].axhline(k - 0.5, color="C3", lw=0.8)
            axes[0].axvline(k - 0.5, color="C3", lw=0.8)
        axes[0].set(
            title=f"patch {patch}: {size // patch}x{size // patch} = {r['tokens']} tokens",
            xticks=[],
            yticks=[],
        )
        axes[0].grid(False)
        for key, label, colour in [
            ("attention_macs", "attention, 2 T² C", "C3"),
            ("qkv_macs", "q, k, v, 3 T C²", "C0"),
        ]:
            axes[1].loglog(tokens, [c[key] for c in costs], marker="o", color=colour, label=label)
            axes[1].plot(r["tokens"], r[key], "o", ms=14, mfc="none", color=colour)
            seconds = key.replace("macs", "seconds")
            axes[2].loglog(tokens, [c[seconds] * 1e3 for c in costs], marker="o", color=colour, label=label)
            axes[2].plot(r["tokens"], r[seconds] * 1e3, "o", ms=14, mfc="none", color=colour)
        axes[1].set(xlabel="tokens T", ylabel="multiply-adds per image", title="counted")
        axes[2].set(
            xlabel="tokens T", ylabel="milliseconds (best of a few)", title="measured on this machine"
        )
        for ax in axes[1:]:
            ax.legend(fontsize=8)
        ratio = r["attention_macs"] / r["qkv_macs"]
        fig.suptitle(f"T = {r['tokens']}: attention costs {ratio:.3g}x the q, k, v projection")

    return slider_view(
        draw,
        patch=widgets.SelectionSlider(
            options=sorted(rows), value=sorted(rows)[len(rows) // 2], description="patch"
        ),
    )
