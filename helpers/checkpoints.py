"""Checkpoints (chapter 18): a training run saved to one safetensors file, and resumed exactly.

What this module adds over helpers.pretrain (the loop and its state):

    save_checkpoint / load_checkpoint     everything needed to resume - weights, AdamW's moments, the step,
                                          the random-number generators, the configs and the log - in one
                                          safetensors file (tensors + JSON metadata; no pickle)
    raw_safetensors_header(path)          the file's JSON header exactly as stored, read by hand (chapter 21's
                                          helpers.weights.read_safetensors_header also checks it against the
                                          file)
    load_shipped_gpt(device, name)        a GPT trained by scripts/train_gpt.py and shipped in data/: the
                                          book's BPE model (default) or the first, character-level one

Interrupting a run, saving, loading into a fresh model and optimiser, and carrying on gives bit-for-bit the
same weights and losses as a run that never stopped (tests/test_pretrain.py checks it on the CPU).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from helpers.corpus import CharVocab
from helpers.data import data_path
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, TrainingLog, TrainState
from helpers.tokenizers import Tokenizer

CHECKPOINT_FORMAT = "helpers.pretrain/1"


SHIPPED = "gpt_bpe_python_docs"  # the book's model: data/<SHIPPED>.safetensors, .json, _tokenizer.json
SHIPPED_CHAR = "gpt_char_python_docs"  # the first shipped model, character-level (chapter 18 compares)


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor stored once (the tied lm_head is wte: safetensors wants one)."""
    tensors, seen = {}, set()
    for name, t in model.state_dict(keep_vars=False).items():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        tensors[name] = t.detach().contiguous().cpu()
    return tensors


def save_checkpoint(
    path: str | Path,
    model: GPT,
    optimizer: torch.optim.Optimizer | None = None,
    state: TrainState | None = None,
    tc: TrainConfig | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a safetensors file with the model's weights and, if given, all that a resumed run needs.

    Tensors: "model.<name>" (each tied tensor once), "optim.<i>.<key>" (AdamW's step, exp_avg, exp_avg_sq
    for parameter i), "rng.torch" / "rng.cuda" / "rng.mps" (the global generators, for dropout) and
    "rng.batches" (the batch generator). Metadata (JSON strings): the GPTConfig, the TrainConfig, the step,
    the history, the optimiser's hyper-parameters, and `extra` (anything JSON-able, e.g. a vocabulary).
    """
    tensors = {f"model.{k}": v for k, v in _model_tensors(model).items()}
    meta = {"format": CHECKPOINT_FORMAT, "gpt_config": json.dumps(asdict(model.config))}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, per_param in sd["state"].items():
            for key, value in per_param.items():
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
        meta["param_groups"] = json.dumps(sd["param_groups"])
    if state is not None:
        tensors["rng.batches"] = state.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        if torch.backends.mps.is_available():
            tensors["rng.mps"] = torch.mps.get_rng_state()
        meta["step"] = str(state.step)
        meta["seconds"] = repr(state.seconds)
        meta["history"] = json.dumps(asdict(state.history))
    if tc is not None:
        meta["train_config"] = json.dumps(asdict(tc))
    if extra is not None:
        meta["extra"] = json.dumps(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def raw_safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file, read by hand: 8 bytes (little-endian length n), then n bytes
    of JSON giving each tensor's dtype, shape and byte range, and "__metadata__" (strings). The raw
    tensor bytes follow. Nothing in the file is code, which is why loading one is safe."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


@dataclass
class Checkpoint:
    """What load_checkpoint found: the model, and whatever else the file held (else None)."""

    model: GPT
    optimizer: torch.optim.Optimizer | None
    state: TrainState | None
    train_config: TrainConfig | None
    extra: dict | None


def load_checkpoint(
    path: str | Path,
    model: GPT | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
    restore_rng: bool = True,
) -> Checkpoint:
    """Read a file written by save_checkpoint.

    model: a GPT to load the weights into (its config must match), or None to build one from the stored
    config on `device`. optimizer: an optimiser over that model's parameters, to receive AdamW's state.
    restore_rng: also set torch's global generator(s) to their saved state, so dropout continues exactly.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path.name} is not a {CHECKPOINT_FORMAT} checkpoint (format {meta.get('format')!r})"
        )
    config = GPTConfig(**json.loads(meta["gpt_config"]))
    if model is None:
        model = GPT(config).to(device)
    elif model.config != config:
        raise ValueError(f"the checkpoint's config {config} differs from the model's {model.config}")
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    if "lm_head.weight" not in weights:  # tied: stored once, as the token embedding
        weights["lm_head.weight"] = weights["transformer.wte.weight"]
    model.load_state_dict(weights)

    if optimizer is not None:
        if "param_groups" not in meta:
            raise ValueError(f"{path.name} holds no optimizer state")
        groups = json.loads(meta["param_groups"])
        for g in groups:
            g["betas"] = tuple(g["betas"])
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                per_param.setdefault(int(i), {})[name] = value
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})

    state = None
    if "step" in meta:
        state = TrainState(step=int(meta["step"]), seconds=float(meta["seconds"]))
        state.generator.set_state(tensors["rng.batches"])
        state.history = TrainingLog(**json.loads(meta["history"]))
        if restore_rng:
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and torch.cuda.is_available():
                torch.cuda.set_rng_state(tensors["rng.cuda"])
            if "rng.mps" in tensors and torch.backends.mps.is_available():
                torch.mps.set_rng_state(tensors["rng.mps"])
    tc = None
    if "train_config" in meta:
        known = {f.name for f in fields(TrainConfig)}
        tc = TrainConfig(**{k: v for k, v in json.loads(meta["train_config"]).items() if k in known})
    extra = json.loads(meta["extra"]) if "extra" in meta else None
    return Checkpoint(model=model, optimizer=optimizer, state=state, train_config=tc, extra=extra)


def load_shipped_gpt(
    device: torch.device | str = "cpu", name: str = SHIPPED
) -> tuple[GPT, Tokenizer | CharVocab, dict]:
    """A GPT that scripts/train_gpt.py trained and the book ships in data/.

    name: SHIPPED (the default), the book's 12M-parameter model with a 4,096-token BPE vocabulary and
    chapter 17's modern block, trained on Python's documentation (data/python_docs_311_train.txt) and
    stored in bfloat16; or SHIPPED_CHAR, the first shipped model: 1.2M parameters, characters, GPT-2's
    block, trained on data/python_docs.txt.

    Returns (model in eval mode on `device`, computing in float32 with exactly the stored values; its
    tokenizer - a helpers.tokenizers Tokenizer, or a CharVocab for the character model - both with
    encode and decode; info): info is data/<name>.json (config, validation loss, bits per byte, steps,
    seconds, the training curve, the command that made it). Every file is checked against
    data/MANIFEST.sha256 first.
    """
    if name not in (SHIPPED, SHIPPED_CHAR):
        raise ValueError(f"the shipped models are {SHIPPED!r} and {SHIPPED_CHAR!r}, not {name!r}")
    info = json.loads(data_path(f"{name}.json").read_text(encoding="utf-8"))
    checkpoint = load_checkpoint(data_path(f"{name}.safetensors"), device=device, restore_rng=False)
    if "vocab" in info:
        tokenizer: Tokenizer | CharVocab = CharVocab(tuple(info["vocab"]))
        size = tokenizer.size
    else:
        tokenizer = Tokenizer.load(data_path(info["tokenizer"]))
        size = tokenizer.vocab_size
    if size != checkpoint.model.config.vocab_size:
        raise ValueError(f"the tokenizer has {size} tokens, the model {checkpoint.model.config.vocab_size}")
    return checkpoint.model.float().eval(), tokenizer, info
