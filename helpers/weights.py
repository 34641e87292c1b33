"""Open weights (chapter 21): loading a GPT-2-format release from a local folder into the book's GPT.

What this module adds over helpers.gpt (the model and the name mapping) and helpers.tokenizers (vocab.json +
merges.txt):

    read_safetensors_header(path)       the JSON header of a .safetensors file, parsed from the raw bytes:
                                        {name: {"dtype", "shape", "data_offsets"}} plus the header's size
    read_tensor_by_hand(path, name)     one tensor's raw bytes turned into a torch tensor, no library
    gpt2_parameter_count(config)        the parameter count from the sizes alone (GPT-2 small: 124,439,808)
    model_bytes(config, dtype)          bytes to hold those parameters in a dtype (fp32: 4 each, bf16: 2)
    weight_memory(n_layer, n_embd)      GiB of weights in fp32 / bf16 / int8 for a GPT-2-shaped model
    draw_weight_memory(n_layer, n_embd) the same as bars (the chapter's slider)
    check_gpt2_folder(path)             the files a release needs; FileNotFoundError naming what is missing
    load_gpt2_folder(path, device)      -> (model, tokenizer): config, safetensors, name mapping, tokenizer

A Hugging Face GPT-2 folder holds config.json (the sizes), model.safetensors (the tensors) and, for the
tokenizer, vocab.json + merges.txt. The book never downloads them by itself; HOW_TO_GET_GPT2 (from
helpers.hub) says how to fetch them, at a pinned commit, on a machine with a network.
tests/test_weights.py saves a small random transformers.GPT2LMHeadModel in this layout and checks that the
loaded model gives the same logits, tokens and greedy continuations.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

from helpers.gpt import GPT, GPTConfig, config_from_hf, load_hf_gpt2_state_dict
from helpers.hub import how_to_fetch
from helpers.tokenizers import RegexTokenizer, load_gpt2

# safetensors dtype names -> (torch dtype, bytes per element)
SAFETENSORS_DTYPES: dict[str, tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}

MODEL_FILES = ("config.json", "model.safetensors")
TOKENIZER_FILES = ("vocab.json", "merges.txt")

HOW_TO_GET_GPT2 = (
    "To run the real GPT-2, fetch its files once, at the book's pinned commit (helpers.hub):\n"
    + how_to_fetch("gpt2")
    + "\nThen helpers.hub.fetch_model('gpt2') gives the folder to pass to load_gpt2_folder. It needs"
    " config.json, model.safetensors, vocab.json and merges.txt."
)


# --- the safetensors file format, by hand -------------------------------------------------------------------


def read_safetensors_header(path: str | Path) -> dict:
    """Parse a .safetensors header from the raw bytes.

    The file is: 8 bytes (little-endian unsigned 64-bit) = N, then N bytes of UTF-8 JSON, then the tensor
    data. The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
    counted from the start of the data (byte 8 + N); an optional "__metadata__" holds strings.
    Returns {"header_bytes": N, "data_start": 8 + N, "metadata": {...}, "tensors": {name: entry}} with the
    tensors in file order. ValueError if the header is inconsistent with the file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name} is {size} bytes: too short for a safetensors file")
        (n,) = struct.unpack("<Q", prefix)  # little-endian unsigned 64-bit integer
        if n > size - 8:
            raise ValueError(
                f"{path.name}: the header claims {n} bytes but the file has only {size - 8} after 8"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name}: the header is not valid JSON ({error})") from error
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}: the header should be a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    data_bytes = size - 8 - n
    for name, entry in header.items():
        if entry.get("dtype") not in SAFETENSORS_DTYPES:
            raise ValueError(f"{path.name}: {name} has unknown dtype {entry.get('dtype')!r}")
        begin, end = entry["data_offsets"]
        expected = math.prod(entry["shape"]) * SAFETENSORS_DTYPES[entry["dtype"]][1]
        if end - begin != expected:
            raise ValueError(
                f"{path.name}: {name} spans {end - begin} bytes but its dtype and shape need {expected}"
            )
        if not 0 <= begin <= end <= data_bytes:
            raise ValueError(f"{path.name}: {name} ends at byte {end}, past the {data_bytes} data bytes")
    tensors = dict(sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]))
    return {"header_bytes": n, "data_start": 8 + n, "metadata": metadata, "tensors": tensors}


def read_tensor_by_hand(path: str | Path, name: str) -> torch.Tensor:
    """One tensor of a .safetensors file from its raw bytes: seek to 8 + N + begin, read, reinterpret."""
    header = read_safetensors_header(path)
    if name not in header["tensors"]:
        raise ValueError(f"{Path(path).name} has no tensor {name!r}")
    entry = header["tensors"][name]
    begin, end = entry["data_offsets"]
    with open(path, "rb") as f:
        f.seek(header["data_start"] + begin)
        raw = bytearray(f.read(end - begin))
    dtype = SAFETENSORS_DTYPES[entry["dtype"]][0]
    if not raw:
        return torch.empty(entry["shape"], dtype=dtype)
    flat = torch.frombuffer(raw, dtype=dtype)  # (numel,) little-endian, as the format specifies
    return flat.reshape(entry["shape"])


# --- config and sizes -----------------------------------------------------------------------------------


def gpt2_parameter_count(config: GPTConfig) -> int:
    """Parameters of a GPT-2-shaped model from its sizes: V C + P C + L (12 C^2 + 13 C) + 2 C (head tied)."""
    V, P, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    per_layer = (
        (2 * C)  # ln_1 weight and bias
        + (C * 3 * C + 3 * C)  # attn.c_attn: q, k, v
        + (C * C + C)  # attn.c_proj
        + (2 * C)  # ln_2
        + (C * 4 * C + 4 * C)  # mlp.c_fc
        + (4 * C * C + C)  # mlp.c_proj
    )  # = 12 C^2 + 13 C
    return V * C + P * C + L * per_layer + 2 * C  # + ln_f; lm_head shares wte's matrix


def model_bytes(config: GPTConfig, dtype: torch.dtype = torch.float32) -> int:
    """Bytes for the parameters alone (no activations, no KV cache) stored in `dtype`."""
    return gpt2_parameter_count(config) * torch.empty(0, dtype=dtype).element_size()


MEMORY_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}


def weight_memory(
    n_layer: int, n_embd: int, vocab_size: int = 50257, block_size: int = 1024
) -> dict[str, float]:
    """GiB (2**30 bytes) for the weights of a GPT-2-shaped model in fp32, bf16 and int8 (1 byte each)."""
    if n_layer < 1 or n_embd < 1:
        raise ValueError(f"n_layer and n_embd must be >= 1, got {n_layer} and {n_embd}")
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=1, n_embd=n_embd)
    return {name: model_bytes(config, dtype) / 2**30 for name, dtype in MEMORY_DTYPES.items()}


def draw_weight_memory(n_layer: int, n_embd: int, device_gib: float = 8.0) -> None:
    """Bars: the weights' memory in each dtype, against a device with `device_gib` GiB (the dashed line)."""
    import matplotlib.pyplot as plt

    gib = weight_memory(n_layer, n_embd)
    n = gpt2_parameter_count(GPTConfig(n_layer=n_layer, n_head=1, n_embd=n_embd))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    colours = ["C3" if v > device_gib else "C0" for v in gib.values()]
    bars = ax.bar(list(gib), list(gib.values()), color=colours)
    ax.bar_label(bars, labels=[f"{v:.2f} GiB" for v in gib.values()])
    ax.axhline(device_gib, color="k", ls="--", lw=1)
    ax.text(2.45, device_gib, f"{device_gib:g} GiB device", ha="right", va="bottom")
    top = max(max(gib.values()), device_gib) * 1.2
    ax.set(
        ylim=(0, top),
        ylabel="GiB for the weights",
        title=f"{n_layer} layers, n_embd {n_embd}: {n / 1e6:,.0f}M parameters",
    )
    fig.tight_layout()


# --- a whole folder -------------------------------------------------------------------------------------


def check_gpt2_folder(path: str | Path, tokenizer: bool = True) -> Path:
    """The folder as a Path, or FileNotFoundError naming the missing folder or files (and how to get them)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder.name!r} (looked for {str(path)!r})\n{HOW_TO_GET_GPT2}")
    needed = MODEL_FILES + (TOKENIZER_FILES if tokenizer else ())
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder.name!r} has no {', '.join(missing)}\n{HOW_TO_GET_GPT2}")
    return folder


def load_gpt2_folder(
    path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    tokenizer: bool = True,
) -> tuple[GPT, RegexTokenizer | None]:
    """Load a Hugging Face GPT-2 folder into the book's GPT; returns (model in eval mode, tokenizer or None).

    Steps: check the files, config.json -> GPTConfig, model.safetensors -> tensors (safetensors.torch),
    map names and transpose Conv1D weights (helpers.gpt.load_hf_gpt2_state_dict), vocab.json + merges.txt ->
    the chapter 15 tokenizer. A checkpoint whose shapes disagree with config.json raises ValueError.
    """
    from safetensors.torch import load_file

    folder = check_gpt2_folder(path, tokenizer=tokenizer)
    config = config_from_hf(folder / "config.json")
    state = load_file(str(folder / "model.safetensors"))  # {name: tensor} on the CPU, in the file's dtype
    model = GPT(config)
    load_hf_gpt2_state_dict(model, {name: t.float() for name, t in state.items()})
    model = model.to(device=device, dtype=dtype).eval()
    tok = load_gpt2(folder / "vocab.json", folder / "merges.txt") if tokenizer else None
    return model, tok
