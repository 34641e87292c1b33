"""The book's GPT: GPT-2's architecture in one file, on top of helpers.transformer's Block.

    token ids (B, T) -> wte + wpe -> n_layer x Block -> ln_f -> lm_head -> logits (B, T, vocab_size)

Parameter names are exactly those of Hugging Face's GPT2LMHeadModel (`transformer.wte.weight`,
`transformer.h.0.attn.c_attn.weight`, ..., `lm_head.weight`), and lm_head shares its weight with wte.
One difference: Hugging Face's GPT-2 uses Conv1D layers, which store each weight as (in, out), the
transpose of nn.Linear's (out, in). `load_hf_gpt2_state_dict` transposes those four weights per block
(c_attn, attn.c_proj, c_fc, mlp.c_proj) while copying, so GPT-2's published weights run in this model
with the same logits (chapter 21; checked in tests/test_gpt.py).

The modern choices of chapter 17 are GPTConfig fields, each off by default (GPT-2): norm="rmsnorm",
mlp="swiglu" (mlp_hidden units), position="rope" (rope_theta; no wpe table then), n_kv_head < n_head
(grouped-query attention), tie_embeddings=False (a separate lm_head), bias=False. All of them together
make a Llama-family model; helpers.llama loads those checkpoints.

forward(idx, targets=None) -> (logits, loss). For the KV cache of chapter 19, forward also takes
past_kv (one (k, v) per layer, from an earlier call) and use_cache=True, and then returns
(logits, loss, present_kv); positions continue from the cached length.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from helpers.normalization import LayerNorm, RMSNorm
from helpers.transformer import MLPS, NORMS, Block, rope

KV = tuple[torch.Tensor, torch.Tensor]  # one layer's cached keys and values, each (B, n_kv_head, T, hs)
POSITIONS = ("learned", "rope")


@dataclass
class GPTConfig:
    """Sizes of a GPT. The defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257
    block_size: int = 1024  # the longest context the model can see (rows of wpe)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms (GPT-2 has them)
    fused_attention: bool = True  # F.scaled_dot_product_attention; False: the book's from-scratch formula
    layer_norm_eps: float = 1e-5  # the eps of every norm (LayerNorm or RMSNorm)
    # chapter 17's modern block; the defaults are GPT-2's
    norm: str = "layernorm"  # or "rmsnorm"
    mlp: str = "gelu"  # or "swiglu"
    mlp_hidden: int | None = None  # MLP width; None: 4 * n_embd (gelu) or swiglu_hidden(n_embd)
    position: str = "learned"  # or "rope": rotate q and k, no position table
    rope_theta: float = 10000.0  # RoPE's base (used when position == "rope")
    n_kv_head: int | None = None  # key/value heads; None: n_head (plain multi-head attention)
    tie_embeddings: bool = True  # lm_head shares wte's matrix
    qkv_bias: bool | None = None  # biases on q, k, v (c_attn); None: same as `bias` (Qwen2: True, bias False)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")
        for name, allowed in (("norm", NORMS), ("mlp", MLPS), ("position", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.mlp_hidden is not None and (not isinstance(self.mlp_hidden, int) or self.mlp_hidden < 1):
            raise ValueError(f"mlp_hidden must be a positive int or None, got {self.mlp_hidden!r}")
        if self.n_kv_head is not None:
            if not isinstance(self.n_kv_head, int) or self.n_kv_head < 1 or self.n_head % self.n_kv_head:
                raise ValueError(
                    f"n_kv_head ({self.n_kv_head!r}) must be a positive int dividing n_head ({self.n_head})"
                )
        if self.position == "rope":
            if (self.n_embd // self.n_head) % 2:
                raise ValueError(
                    f"position='rope' rotates channel pairs: the head size n_embd // n_head "
                    f"({self.n_embd // self.n_head}) must be even"
                )
            if not self.rope_theta > 1:
                raise ValueError(f"rope_theta must be > 1, got {self.rope_theta}")


class GPT(nn.Module):
    """A GPT-2-style decoder-only transformer; see the module docstring for names and shapes."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        c = config
        rotary = rope(c.rope_theta) if c.position == "rope" else None
        layers = {"wte": nn.Embedding(c.vocab_size, c.n_embd)}  # token embeddings
        if c.position == "learned":
            layers["wpe"] = nn.Embedding(c.block_size, c.n_embd)  # learned position embeddings
        layers["drop"] = nn.Dropout(c.dropout)
        layers["h"] = nn.ModuleList(
            Block(
                c.n_embd,
                c.n_head,
                c.dropout,
                c.bias,
                c.fused_attention,
                eps=c.layer_norm_eps,
                norm=c.norm,
                mlp=c.mlp,
                mlp_hidden=c.mlp_hidden,
                n_kv_head=c.n_kv_head,
                rotary=rotary,
                qkv_bias=c.qkv_bias,
            )
            for _ in range(c.n_layer)
        )
        if c.norm == "layernorm":
            layers["ln_f"] = LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        else:
            layers["ln_f"] = RMSNorm(c.n_embd, eps=c.layer_norm_eps)
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # weight tying: one matrix, used twice
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith(
                ("c_proj.weight", "down_proj.weight")
            ):  # the layers that write into the residual
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases (LayerNorms start at 1 and 0)."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters (a tied wte/lm_head matrix counted once); optionally without wte (and wpe)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= sum(self.transformer[k].weight.numel() for k in ("wte", "wpe") if k in self.transformer)
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        past_kv: list[KV] | None = None,
        use_cache: bool = False,
    ):
        """idx: (B, T) token ids; targets: (B, T) ids to predict (-100 = ignore), or None.

        Returns (logits (B, T, vocab_size), loss or None), plus present_kv (a list of n_layer (k, v))
        when use_cache is True.
        """
        if idx.dim() != 2:
            raise ValueError(f"idx must be (B, T) token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        past = 0 if past_kv is None else past_kv[0][0].shape[2]  # positions already in the cache
        if past + T > self.config.block_size:
            raise ValueError(f"{past} cached + {T} new positions exceed block_size {self.config.block_size}")
        if past_kv is not None and len(past_kv) != self.config.n_layer:
            raise ValueError(f"past_kv has {len(past_kv)} layers, the model has {self.config.n_layer}")
        x = self.transformer.wte(idx)  # (B, T, C)
        if "wpe" in self.transformer:  # with RoPE, positions enter inside attention instead
            pos = torch.arange(past, past + T, device=idx.device)  # (T,)
            x = x + self.transformer.wpe(pos)  # (B, T, C)
        x = self.transformer.drop(x)
        present: list[KV] = []
        for i, block in enumerate(self.transformer.h):
            layer_past = None if past_kv is None else past_kv[i]
            if use_cache:
                x, kv = block(x, past_kv=layer_past, use_cache=True)  # (B, T, C)
                present.append(kv)
            else:
                x = block(x, past_kv=layer_past)  # (B, T, C)
        x = self.transformer.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets {tuple(targets.shape)} must have idx's shape {tuple(idx.shape)}")
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return (logits, loss, present) if use_cache else (logits, loss)


# --- Hugging Face GPT-2 weights -----------------------------------------------------------------------------

CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def config_from_hf(source, **overrides) -> GPTConfig:
    """A GPTConfig from a Hugging Face GPT-2 config: a config.json path, its dict, or a GPT2Config.

    Only the sizes map across (vocab_size, n_positions, n_layer, n_head, n_embd, n_inner,
    layer_norm_epsilon); a config that asks for a different computation - another model type or
    activation, unscaled or layer-scaled attention scores, reordered/upcast attention, cross-attention,
    an untied head - is rejected with a ValueError that names the field, rather than loaded into a model
    that computes something else. `overrides` set GPTConfig fields the file does not hold (e.g.
    fused_attention).
    """
    name = "the config"
    if isinstance(source, str | Path):
        path = Path(source)
        name = path.name
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{name} is not valid JSON: {error}") from error
    elif isinstance(source, Mapping):
        raw = dict(source)
    elif hasattr(source, "to_dict"):
        raw = source.to_dict()
    else:
        raise TypeError(f"expected a path, a dict or a transformers config, got {type(source).__name__}")
    if raw.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"{name} describes a {raw['model_type']!r} model, not GPT-2")
    if raw.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(
            f"{name} has activation_function {raw['activation_function']!r}; "
            "the book's GPT has GELU (tanh form)"
        )
    # fields that change what GPT-2 computes: the value the book's GPT computes, or None if it cannot
    for field, ours in (
        ("scale_attn_weights", True),  # False: scores not divided by sqrt(head size)
        ("scale_attn_by_inverse_layer_idx", False),  # True: scores also divided by layer index + 1
        ("reorder_and_upcast_attn", False),  # True: a different order and precision of the score maths
        ("add_cross_attention", False),  # True: an encoder-decoder model with cross-attention layers
        ("tie_word_embeddings", True),  # False: a separate lm_head (load_hf_gpt2_state_dict ties them)
    ):
        if field in raw and bool(raw[field]) != ours:
            raise ValueError(f"{name} has {field}={raw[field]!r}; the book's GPT-2 loader needs {ours}")
    missing = [k for k in ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd") if k not in raw]
    if missing:
        raise ValueError(f"{name} has no {', '.join(missing)}: is it a GPT-2 config?")
    sizes = {
        "vocab_size": raw["vocab_size"],
        "block_size": raw["n_positions"],
        "n_layer": raw["n_layer"],
        "n_head": raw["n_head"],
        "n_embd": raw["n_embd"],
        "layer_norm_eps": raw.get("layer_norm_epsilon", 1e-5),
        "mlp_hidden": raw.get("n_inner"),  # None: 4 * n_embd, as in GPT-2
    }
    return GPTConfig(**{**sizes, **overrides})


@torch.no_grad()
def load_hf_gpt2_state_dict(model: GPT, hf_state_dict: Mapping[str, torch.Tensor]) -> GPT:
    """Copy Hugging Face GPT-2 weights into `model` in place (and return it).

    Accepts the state dict of GPT2LMHeadModel (keys "transformer.h.0...", "lm_head.weight") or of GPT2Model
    / the published model.safetensors (keys "h.0...", no lm_head). Conv1D weights are transposed; the
    causal-mask buffers some versions store ("attn.bias", "attn.masked_bias") are skipped. Raises
    ValueError naming any missing, unexpected or mis-shaped tensor.
    """
    ours = model.state_dict()
    theirs: dict[str, torch.Tensor] = {}
    for key, value in hf_state_dict.items():
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # buffers (the causal mask), not weights
        name = key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key
        theirs[name] = value.t() if name.endswith(CONV1D_WEIGHTS) else value
    wte = theirs.get("transformer.wte.weight")
    head = theirs.setdefault("lm_head.weight", wte)  # the published file leaves out the tied head
    if wte is not None and head is not wte and not torch.equal(head, wte):
        raise ValueError("lm_head.weight differs from wte.weight, but this model has them tied (one matrix)")
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    if missing or unexpected:
        raise ValueError(f"state dicts do not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, value in theirs.items():
        if value.shape != ours[name].shape:
            raise ValueError(
                f"{name}: the checkpoint has shape {tuple(value.shape)}, the model {tuple(ours[name].shape)}"
            )
        ours[name].copy_(value)
    return model
