"""Low-rank adaptation, LoRA (chapter 20): fine-tune a few numbers beside frozen weights.

What this module adds over helpers.gpt (the model it adapts) and helpers.decompositions (the energy of a
spectrum, chapter 3):

    LoRALinear, inject_lora, merge_lora        W x + (alpha / r) B A x with W frozen, added to chosen
                                               Linear layers, then folded back into one plain Linear
    lora_parameters(in, out, r)                the trainable numbers r (in + out) of one adapter
    lora_picture, load_sweep, rank_view        the numbers and the figure of the chapter's rank slider
                                               (the sweep is data/lora_rank_sweep.json)

Part V reuses it: an adapter is the cheapest way to specialise a model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from helpers.decompositions import energy_kept
from helpers.finetune import freeze
from helpers.widgets import slider_view

LORA_TARGETS = (  # every Linear inside the blocks: attention, and GPT-2's MLP or a SwiGLU MLP (chapter 17)
    "attn.c_attn",
    "attn.c_proj",
    "mlp.c_fc",
    "mlp.c_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = x W^T + b + (alpha / r) x A^T B^T.

    A is (r, in) and B is (out, r), so B A is an (out, in) matrix of rank at most r - the change to W -
    stored in r (in + out) numbers instead of in x out. B starts at zero, so at step 0 the layer is exactly
    the pretrained one; A starts random (as nn.Linear initialises its weight), so B's first gradient is not
    zero. The scale alpha / r keeps the size of the update roughly independent of the rank chosen
    (alpha defaults to r: scale 1). A is drawn on the CPU from `generator` (default: torch's global one)
    and then moved to W's device, so a seeded generator gives the same A on every device.
    """

    def __init__(
        self, base: nn.Linear, r: int, alpha: float | None = None, generator: torch.Generator | None = None
    ):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if (
            not isinstance(r, int)
            or isinstance(r, bool)
            or not 1 <= r <= min(base.in_features, base.out_features)
        ):
            raise ValueError(
                f"r must be an int from 1 to {min(base.in_features, base.out_features)}, got {r!r}"
            )
        if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        self.base = freeze(base)
        self.r = r
        self.alpha = float(r if alpha is None else alpha)
        self.scale = self.alpha / r
        w = base.weight
        A = torch.empty(r, base.in_features, dtype=w.dtype)  # (r, in), on the CPU
        nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)  # nn.Linear's own initialisation
        self.A = nn.Parameter(A.to(w.device))  # (r, in)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))  # (out, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = (x @ self.A.T) @ self.B.T  # (..., r) then (..., out): r (in + out) multiply-adds per row
        return self.base(x) + self.scale * update  # (..., out)

    def delta_weight(self) -> torch.Tensor:
        """The change LoRA makes to W: scale * B A, (out, in)."""
        return self.scale * (self.B @ self.A)  # (out, r) (r, in) -> (out, in)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear with weight W + scale * B A: the same function, no extra cost at inference."""
        base, w = self.base, self.base.weight
        shape = (base.in_features, base.out_features)
        # skip_init: no random initialisation to overwrite, so torch's global generator is left alone
        out = nn.utils.skip_init(
            nn.Linear, *shape, bias=base.bias is not None, device=w.device, dtype=w.dtype
        )
        with torch.no_grad():
            out.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def _modules_named(model: nn.Module, cls: type, suffixes: Sequence[str]) -> list[tuple[nn.Module, str, str]]:
    found = []
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, cls) and full.endswith(tuple(suffixes)):
                found.append((module, child_name, full))
    return found


def inject_lora(
    model: nn.Module,
    r: int,
    alpha: float | None = None,
    targets: Sequence[str] = LORA_TARGETS,
    seed: int | None = None,
) -> list[str]:
    """Freeze all of `model`, then wrap each nn.Linear whose name ends with one of `targets` in a LoRALinear.

    Afterwards only the A and B matrices train. The A matrices are drawn in the order of the layers from
    one CPU generator seeded with `seed` (None: torch's global generator), so a seed fixes them on any
    device. Returns the names of the wrapped layers; the model is changed in place.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("the model already has LoRA layers; merge_lora first to add new ones")
    found = _modules_named(model, nn.Linear, targets)
    if not found:
        raise ValueError(f"no nn.Linear layer's name ends with any of {tuple(targets)}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    freeze(model)
    for parent, child_name, _ in found:
        setattr(parent, child_name, LoRALinear(getattr(parent, child_name), r, alpha, generator))
    return [full for _, _, full in found]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `model` by its merged nn.Linear (in place; returns the model)."""
    found = _modules_named(model, LoRALinear, ("",))
    if not found:
        raise ValueError("the model has no LoRA layers to merge")
    for parent, child_name, _ in found:
        setattr(parent, child_name, getattr(parent, child_name).merged())
    return model


def lora_parameters(in_features: int, out_features: int, r: int) -> int:
    """Trainable numbers of one LoRA update: A (r x in) plus B (out x r)."""
    if min(in_features, out_features, r) < 1:
        raise ValueError("sizes and rank must be positive")
    return r * (in_features + out_features)


def lora_picture(singular_values: np.ndarray, r: int, shape: tuple[int, int]) -> dict[str, float]:
    """The rank slider's numbers for one weight update dW of `shape` (out, in) with these singular values:
    the fraction of its energy a rank-r matrix can hold (chapter 3's energy kept), and the fraction of the
    numbers a rank-r LoRA update stores (r (in + out) out of in x out)."""
    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or len(s) != min(shape):
        raise ValueError(f"expected {min(shape)} singular values for shape {shape}, got {s.shape}")
    if not 1 <= r <= len(s):
        raise ValueError(f"r must be between 1 and {len(s)}, got {r}")
    return {
        "energy_kept": float(energy_kept(s)[r - 1]),
        "numbers_ratio": lora_parameters(shape[1], shape[0], r) / (shape[0] * shape[1]),
    }


def load_sweep(path) -> dict:
    """The LoRA rank sweep that data/make_lora_sweep.py writes (JSON), checked for the fields it must have."""
    sweep = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = {"total_params", "lora_params_per_rank", "runs", "full"} - set(sweep)
    if missing:
        raise ValueError(f"{path}: not a LoRA sweep, missing {sorted(missing)}")
    return sweep


def rank_view(
    singular_values: np.ndarray, shape: tuple[int, int], sweep: dict, layer: str = "", max_rank: int = 32
):
    """A slider over the LoRA rank r: left, the singular values of a full fine-tuning update dW with the
    first r highlighted and the energy they hold; right, LoRA's trainable share of the model against r, and
    the exact match each swept rank reached (sweep from load_sweep), the current r marked."""
    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or len(s) != min(shape):
        raise ValueError(f"expected {min(shape)} singular values for shape {shape}, got {s.shape}")
    if not 1 <= max_rank <= len(s):
        raise ValueError(f"max_rank must be between 1 and {len(s)}, got {max_rank}")
    ranks = np.arange(1, max_rank + 1)
    share = 100 * sweep["lora_params_per_rank"] * ranks / sweep["total_params"]  # (max_rank,)
    runs = sorted(sweep["runs"], key=lambda run: run["r"])

    def draw(r):
        picture = lora_picture(s, r, shape)
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
        shown = min(len(s), 2 * max_rank)
        left.bar(
            np.arange(1, shown + 1), s[:shown], color=["C1" if i < r else "lightgray" for i in range(shown)]
        )
        left.set(yscale="log", xlabel="singular value index", ylabel="singular value")
        left.set_title(
            f"full fine-tuning's update to {layer}\nrank {r} holds {picture['energy_kept']:.0%} of its energy"
        )
        right.plot(ranks, share, color="C0")
        right.set(xscale="log", xlabel="LoRA rank r", ylabel="trainable parameters (% of model)")
        right.axvline(r, color="gray", ls=":")
        right.tick_params(axis="y", colors="C0")
        twin = right.twinx()
        twin.plot([run["r"] for run in runs], [100 * run["exact_match"] for run in runs], "o-", color="C2")
        twin.axhline(100 * sweep["full"]["exact_match"], color="C1", ls="--", label="full fine-tuning")
        twin.set(ylabel="exact match, unseen words (%)", ylim=(0, 105))
        twin.tick_params(axis="y", colors="C2")
        twin.legend(loc="lower right")
        trained = sweep["lora_params_per_rank"] * r
        right.set_title(
            f"r = {r}: {trained:,} trainable ({100 * trained / sweep['total_params']:.1f}% of the model)"
        )
        fig.tight_layout()

    return slider_view(draw, r=(1, max_rank, 1, 1))
