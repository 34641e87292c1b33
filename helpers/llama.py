"""Llama-family checkpoints (chapter 21): a Hugging Face Llama or Qwen2 folder run by the book's GPT.

What this module adds over helpers.gpt: the mapping from a Llama config.json to a GPTConfig with chapter 17's
modern choices switched on (RMSNorm, SwiGLU, RoPE, grouped-query attention, untied head, no biases), the
mapping of tensor names, and a loader that a real model survives (no fp32 copy, no second copy at all):

    config_from_llama(source, **overrides)   config.json (path, dict or transformers config) -> GPTConfig;
                                             a field the book's GPT cannot compute raises ValueError naming it
    llama_to_gpt_state_dict(tensors, config) {Hugging Face name: tensor} -> {our name: tensor}
    mmap_safetensors(path)                   {name: tensor} viewing a memory-mapped .safetensors file
    load_llama_folder(path, dtype=None, device="cpu")
                                             config.json + model.safetensors (or a sharded
                                             model.safetensors.index.json) -> GPT in eval mode

Names: model.embed_tokens -> transformer.wte; layer i's input_layernorm / post_attention_layernorm ->
ln_1 / ln_2; q_proj, k_proj, v_proj stacked into attn.c_attn (q rows, then k, then v); o_proj -> attn.c_proj;
mlp.gate_proj / up_proj / down_proj keep their names; model.norm -> ln_f; lm_head stays lm_head.

RoPE: one convention, two layouts. Hugging Face's Llama pairs channel i of a head with channel i + hs/2
(`rotate_half`); helpers.transformer.apply_rope pairs channels 2i and 2i+1. Both turn pair i by the same
angle. Instead of a second RoPE in the model, the loader reorders the rows of q_proj and k_proj inside each
head so that HF channel i lands at 2i and channel i + hs/2 at 2i + 1 (`half_to_interleaved`). Queries and
keys are permuted the same way, so every dot product q . k - and so the attention - is unchanged, and the
model keeps the single RoPE chapter 17 teaches. tests/test_llama.py checks the logits against
transformers' LlamaForCausalLM.

Memory: the model is built on the meta device (no weights allocated), the tensors come memory-mapped from
the safetensors files in their own dtype, and `load_state_dict(assign=True)` puts them in place; only q, k, v
are copied (into c_attn). A bf16 checkpoint stays bf16 unless `dtype` says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from helpers.gpt import GPT, GPTConfig
from helpers.weights import SAFETENSORS_DTYPES, read_safetensors_header

MODEL_TYPES = ("llama", "qwen2")


def _read_config(source) -> tuple[dict, str]:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            return json.loads(path.read_text(encoding="utf-8")), path.name
        except json.JSONDecodeError as error:
            raise ValueError(f"{path.name} is not valid JSON: {error}") from error
    if isinstance(source, Mapping):
        return dict(source), "the config"
    if hasattr(source, "to_dict"):
        return source.to_dict(), "the config"
    raise TypeError(f"expected a path, a dict or a transformers config, got {type(source).__name__}")


def config_from_llama(source, **overrides) -> GPTConfig:
    """A GPTConfig from a Hugging Face Llama (or Qwen2) config: a config.json path, its dict, or a config.

    Honoured: sizes, num_key_value_heads (GQA/MQA), rms_norm_eps, rope_theta (top level, or in
    rope_parameters), tie_word_embeddings, max_position_embeddings, Qwen2's q/k/v biases. Rejected with a
    ValueError naming the field: another model_type or hidden_act, any RoPE scaling, attention_bias /
    mlp_bias, a head_dim other than hidden_size / num_attention_heads, pretraining_tp > 1 (as some
    transformers versions slice the matmuls), a sliding window, attention dropout. `overrides` set other
    GPTConfig fields (e.g. fused_attention).
    """
    raw, name = _read_config(source)
    model_type = raw.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{name} has model_type {model_type!r}; this loader reads {MODEL_TYPES}")
    missing = [
        k
        for k in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        )
        if k not in raw
    ]
    if missing:
        raise ValueError(f"{name} has no {', '.join(missing)}: is it a Llama config?")

    def reject(field: str, value, needed: str) -> None:
        raise ValueError(f"{name} has {field}={value!r}; the book's GPT needs {needed}")

    if raw.get("hidden_act", "silu") != "silu":
        reject("hidden_act", raw["hidden_act"], "'silu' (SwiGLU)")
    rope_params = dict(raw.get("rope_parameters") or {})
    theta = rope_params.get("rope_theta", raw.get("rope_theta", 10000.0))
    rope_type = rope_params.get("rope_type", rope_params.get("type", "default"))
    if rope_type != "default":
        reject("rope_parameters.rope_type", rope_type, "'default' (no RoPE scaling)")
    scaling = raw.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type", "default")) != "default":
        reject("rope_scaling", scaling, "None (no RoPE scaling)")
    for field in ("attention_bias", "mlp_bias"):
        if raw.get(field, False):
            reject(field, raw[field], "False")
    if (raw.get("pretraining_tp") or 1) != 1:
        reject("pretraining_tp", raw["pretraining_tp"], "1")
    if raw.get("attention_dropout", 0.0):
        reject("attention_dropout", raw["attention_dropout"], "0.0")
    C, n_head = raw["hidden_size"], raw["num_attention_heads"]
    head_dim = raw.get("head_dim")
    if head_dim is not None and head_dim * n_head != C:
        reject("head_dim", head_dim, f"hidden_size / num_attention_heads = {C / n_head:g}")
    if raw.get("use_sliding_window", False):
        reject("use_sliding_window", raw["use_sliding_window"], "False")
    if model_type == "llama" and raw.get("sliding_window") is not None:
        reject("sliding_window", raw["sliding_window"], "None")
    if raw.get("layer_types") and any(t != "full_attention" for t in raw["layer_types"]):
        reject("layer_types", raw["layer_types"], "full attention in every layer")
    fields = {
        "vocab_size": raw["vocab_size"],
        "block_size": raw.get("max_position_embeddings", 2048),
        "n_layer": raw["num_hidden_layers"],
        "n_head": n_head,
        "n_embd": C,
        "n_kv_head": raw.get("num_key_value_heads") or n_head,
        "layer_norm_eps": raw.get("rms_norm_eps", 1e-6),
        "norm": "rmsnorm",
        "mlp": "swiglu",
        "mlp_hidden": raw["intermediate_size"],
        "position": "rope",
        "rope_theta": float(theta),
        "tie_embeddings": bool(raw.get("tie_word_embeddings", False)),
        "bias": False,
        "qkv_bias": model_type == "qwen2",
    }
    return GPTConfig(**{**fields, **overrides})


def half_to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the rows of a q or k projection (weight (n_heads * hs, C) or bias (n_heads * hs,)) per head:
    HF's rotate_half pairs (i, i + hs/2) become apply_rope's pairs (2i, 2i + 1). Returns a new tensor."""
    hs = w.shape[0] // n_heads
    if hs * n_heads != w.shape[0] or hs % 2:
        raise ValueError(f"{w.shape[0]} rows do not split into {n_heads} heads of an even size")
    rest = w.shape[1:]
    w = w.reshape(n_heads, 2, hs // 2, *rest)  # (heads, half, i, ...): row i of the first or second half
    return w.transpose(1, 2).reshape(n_heads * hs, *rest)  # (heads * hs, ...): halves interleaved


def llama_to_gpt_state_dict(
    tensors: Mapping[str, torch.Tensor], config: GPTConfig
) -> dict[str, torch.Tensor]:
    """Rename a Llama state dict (keys "model.layers.0...", "lm_head.weight") to the book's GPT names.

    q, k, v (and Qwen2's biases) are permuted for RoPE (see the module docstring) and stacked into c_attn;
    every other tensor is passed through as is (no copy). Raises ValueError naming a missing, unexpected or
    mis-shaped tensor.
    """
    src = {k.removeprefix("model."): v for k, v in tensors.items() if not k.endswith("rotary_emb.inv_freq")}
    n_kv = config.n_kv_head or config.n_head
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise ValueError(f"the checkpoint has no tensor {key!r}")
        return src.pop(key)

    out["transformer.wte.weight"] = take("embed_tokens.weight")
    out["transformer.ln_f.weight"] = take("norm.weight")
    for i in range(config.n_layer):
        p, ours = f"layers.{i}.", f"transformer.h.{i}."
        out[ours + "ln_1.weight"] = take(p + "input_layernorm.weight")
        out[ours + "ln_2.weight"] = take(p + "post_attention_layernorm.weight")
        kinds = ["weight", "bias"] if (p + "self_attn.q_proj.bias") in src else ["weight"]
        for kind in kinds:
            q = half_to_interleaved(take(p + f"self_attn.q_proj.{kind}"), config.n_head)
            k = half_to_interleaved(take(p + f"self_attn.k_proj.{kind}"), n_kv)
            v = take(p + f"self_attn.v_proj.{kind}")
            out[ours + f"attn.c_attn.{kind}"] = torch.cat([q, k, v], dim=0)  # (C + 2 kv, ...) : q, k, v rows
        out[ours + "attn.c_proj.weight"] = take(p + "self_attn.o_proj.weight")
        for proj in ("gate_proj", "up_proj", "down_proj"):
            out[ours + f"mlp.{proj}.weight"] = take(p + f"mlp.{proj}.weight")
    head = src.pop("lm_head.weight", None)
    if config.tie_embeddings:
        if head is not None and head.data_ptr() != out["transformer.wte.weight"].data_ptr():
            if not torch.equal(head, out["transformer.wte.weight"]):
                raise ValueError("tie_word_embeddings is true but lm_head.weight differs from embed_tokens")
        out["lm_head.weight"] = out["transformer.wte.weight"]
    else:
        if head is None:
            raise ValueError("the checkpoint has no tensor 'lm_head.weight' (tie_word_embeddings is false)")
        out["lm_head.weight"] = head
    if src:
        raise ValueError(f"unexpected tensors in the checkpoint: {sorted(src)[:5]}")
    return out


def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = [folder / f for f in sorted(set(weight_map.values()))]
    elif (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    else:
        raise FileNotFoundError(
            f"{folder.name!r} has neither model.safetensors nor model.safetensors.index.json"
        )
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise FileNotFoundError(f"{folder.name!r} is missing the shards {absent}")
    return files


def mmap_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a .safetensors file as a view into the memory-mapped file: nothing is read yet.

    The header comes from helpers.weights.read_safetensors_header; torch.from_file maps the whole file
    (private, copy-on-write), and each tensor is a slice of it reinterpreted as its dtype and shape. Pages
    are read from disk when first touched, and they belong to the OS page cache, not to a copy.
    """
    header = read_safetensors_header(path)
    size = Path(path).stat().st_size
    data = torch.from_file(str(path), shared=False, size=size, dtype=torch.uint8)  # (size,) bytes, mapped
    out = {}
    for name, entry in header["tensors"].items():
        dtype, itemsize = SAFETENSORS_DTYPES[entry["dtype"]]
        begin, end = (header["data_start"] + o for o in entry["data_offsets"])
        raw = data[begin:end]
        if begin % itemsize:  # a misaligned tensor cannot be viewed in place: copy its bytes
            raw = raw.clone()
        out[name] = raw.view(dtype).reshape(entry["shape"])
    return out


def load_llama_folder(
    path: str | Path,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    **overrides,
) -> GPT:
    """Load a Hugging Face Llama/Qwen2 folder into the book's GPT (eval mode).

    dtype: None keeps the file's dtype (bf16 stays bf16); otherwise tensors are converted once, one by one.
    The model is created on the meta device and the memory-mapped tensors are assigned into it, so peak
    memory is about one copy of the weights.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {str(folder)!r}")
    config = config_from_llama(folder / "config.json", **overrides)
    tensors: dict[str, torch.Tensor] = {}
    for file in _safetensors_files(folder):
        tensors |= mmap_safetensors(file)  # memory-mapped views, in the file's dtype
    state = llama_to_gpt_state_dict(tensors, config)
    del tensors
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    with torch.device("meta"):
        model = GPT(config)
    model.load_state_dict(state, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight  # assign=True replaced the shared Parameter
    return model.to(device).eval()
