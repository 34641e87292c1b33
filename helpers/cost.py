"""What a model costs (chapter 26): FLOPs and bytes counted by hand, peak FLOP/s and energy measured.

What this module adds over helpers.gpt (the model it counts):

    parameter_counts(config)                      the parameters of each part of a GPT, from its config
    forward_flops(config, batch, T)               the FLOPs of each matrix product of one forward pass
                                                  (2 m n k for an (m, k) @ (k, n) product), by part
    training_flops(config, batch, T)              forward + backward = 3 x the forward matmul FLOPs
    flops_shares(config, T)                       the fraction of those FLOPs in each part
    memory_bytes(config, batch, T)                parameters, gradients, AdamW state and the activations a
                                                  training step keeps for backward, in bytes
    retained_bytes(fn)                            measured: bytes torch allocated during fn() and still
                                                  holds at its end (torch.profiler, profile_memory=True)
    state_bytes(model, optimizer)                 measured: bytes of parameters, gradients, optimizer state
    peak_matmul_flops(n, device)                  measured: the best FLOP/s of an n x n matmul
    joules, kwh, grams_co2, run_costs             energy = power x time, and its carbon at a grid intensity
    shipped_training_seconds()                    the recorded training time of every run the book ships
    read_energy_counter()                         the CPU package's energy counter (Linux RAPL), when the
                                                  operating system exposes it, else None and a reason
    PUBLISHED                                     training figures of large models, with their sources

Two rules of thumb come out of the counts: a forward pass costs about 2 FLOPs per parameter per token
(each weight is one multiply and one add), and training about 6 (the backward pass computes two products
per weight: the gradient for the input and for the weight).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from helpers.data import data_path, read_manifest
from helpers.gpt import GPTConfig
from helpers.transformer import swiglu_hidden

FLOAT32 = 4  # bytes


def _check_config(config: GPTConfig) -> None:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"expected a helpers.gpt.GPTConfig, got {type(config).__name__}")


def _check_sizes(config: GPTConfig, batch: int, T: int) -> None:
    _check_config(config)
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if not isinstance(T, int) or not 1 <= T <= config.block_size:
        raise ValueError(f"T must be an int between 1 and block_size ({config.block_size}), got {T!r}")


def mlp_width(config: GPTConfig) -> int:
    """The hidden width of the MLP: mlp_hidden, or GPT-2's 4 x n_embd, or SwiGLU's default."""
    if config.mlp_hidden is not None:
        return config.mlp_hidden
    return 4 * config.n_embd if config.mlp == "gelu" else swiglu_hidden(config.n_embd)


def kv_width(config: GPTConfig) -> int:
    """Channels of the keys (and of the values): n_kv_head heads of n_embd // n_head."""
    return (config.n_kv_head or config.n_head) * (config.n_embd // config.n_head)


# --- parameters and FLOPs ---------------------------------------------------------------------------------


def parameter_counts(config: GPTConfig) -> dict[str, int]:
    """The parameters of a GPT by part; their sum is GPT(config).num_parameters().

    "blocks" is everything inside the n_layer blocks; "embeddings" is wte (and wpe with learned
    positions); "lm_head" is 0 when the head is tied to wte. Non-embedding parameters (Kaplan et al.'s N)
    are blocks + final_norm + lm_head.
    """
    _check_config(config)
    C, V, h, kv = config.n_embd, config.vocab_size, mlp_width(config), kv_width(config)
    qkv_bias = config.bias if config.qkv_bias is None else config.qkv_bias
    norm = C * (2 if config.norm == "layernorm" and config.bias else 1)  # weight (and bias)
    attn = C * (C + 2 * kv) + (C + 2 * kv) * qkv_bias + C * C + C * config.bias  # c_attn, c_proj
    if config.mlp == "gelu":
        mlp = 2 * C * h + (h + C) * config.bias  # c_fc, c_proj
    else:
        mlp = 3 * C * h + (2 * h + C) * config.bias  # gate_proj, up_proj, down_proj
    embeddings = V * C + (config.block_size * C if config.position == "learned" else 0)
    return {
        "embeddings": embeddings,
        "blocks": config.n_layer * (2 * norm + attn + mlp),
        "final_norm": norm,
        "lm_head": 0 if config.tie_embeddings else V * C,
    }


def non_embedding_parameters(config: GPTConfig) -> int:
    """N of the scaling laws: every parameter but the token and position tables (a tied head is wte)."""
    counts = parameter_counts(config)
    return counts["blocks"] + counts["final_norm"] + counts["lm_head"]


def forward_flops(config: GPTConfig, batch: int, T: int) -> dict[str, int]:
    """FLOPs of the matrix products of one forward pass over `batch` sequences of T tokens, by part.

    An (m, k) @ (k, n) product is m n k multiply-adds = 2 m n k FLOPs (torch's FlopCounterMode counts the
    same). Per layer: the q, k, v projection, the scores Q K^T and the weighted sum of V (counted over
    the full T x T, as FlopCounterMode does, although a causal mask makes half of it unneeded), the
    output projection and the MLP; then the lm_head. Norms, GELU, softmax and additions are left out:
    they are O(T C) each, small next to the O(T C^2) products.
    """
    _check_sizes(config, batch, T)
    C, V, h, kv = config.n_embd, config.vocab_size, mlp_width(config), kv_width(config)
    tokens = batch * T
    L = config.n_layer
    return {
        "qkv": L * 2 * tokens * C * (C + 2 * kv),
        "scores": L * 2 * batch * T * T * C,  # every head: (T, hs) @ (hs, T); heads together C = nh * hs
        "values": L * 2 * batch * T * T * C,  # every head: (T, T) @ (T, hs)
        "proj": L * 2 * tokens * C * C,
        "mlp": L * 2 * tokens * C * h * (2 if config.mlp == "gelu" else 3),
        "lm_head": 2 * tokens * C * V,
    }


def training_flops(config: GPTConfig, batch: int, T: int) -> int:
    """FLOPs of one training step's matmuls: forward, plus a backward of twice the forward.

    For y = x W the backward computes dx = dy W^T and dW = x^T dy: two products the size of the forward
    one. (The backward of attention is two products per forward product in the same way.)
    """
    return 3 * sum(forward_flops(config, batch, T).values())


def flops_shares(config: GPTConfig, T: int) -> dict[str, float]:
    """The fraction of a forward pass's matmul FLOPs in each part at context T (sums to 1)."""
    parts = forward_flops(config, 1, T)
    total = sum(parts.values())
    return {name: flops / total for name, flops in parts.items()}


def flops_per_token(n_parameters: int, training: bool = False) -> int:
    """The rule of thumb: 2 N FLOPs per token for a forward pass, 6 N for a training step."""
    if n_parameters < 0:
        raise ValueError(f"n_parameters must be >= 0, got {n_parameters}")
    return (6 if training else 2) * n_parameters


# --- memory ------------------------------------------------------------------------------------------------


def activation_floats_per_token(config: GPTConfig, fused_layernorm: bool = False) -> int:
    """How many numbers per token a training forward pass keeps for the backward pass (autograd's saved
    tensors), counted tensor by tensor for the book's GPT.

    Per block: each norm keeps its input and its statistics (the book's from-scratch LayerNorm also keeps
    x - mean and x_hat: 3C + 1; PyTorch's fused LayerNorm C + 2; the book's RMSNorm 2C + 1); attention
    keeps its input (C), q, k, v (c_attn's whole output, C + 2 kv, of which they are views; with grouped
    query heads also the repeated k and v, 2C; with RoPE the rotated copies and one more tensor of C that
    the CPU attention kernel keeps - found by counting saved tensors), the attention output that enters
    c_proj (C) and one log-sum-exp per head; the MLP keeps its input (C) and, per hidden
    unit, GELU's input and output (2h) or SwiGLU's gate, silu(gate), up and their product (4h). After
    the blocks: the final norm, the lm_head's input (C), the logits' log-softmax (V) and the int64
    targets (2 float-sized words).
    """
    _check_config(config)
    C, V, h = config.n_embd, config.vocab_size, mlp_width(config)
    if config.norm == "rmsnorm":
        norm = 2 * C + 1
    else:
        norm = C + 2 if fused_layernorm else 3 * C + 1
    kv, gqa = kv_width(config), (config.n_kv_head or config.n_head) != config.n_head
    qkv = 2 * C if gqa else C + 2 * kv  # grouped-query: k, v repeated to every head (new tensors)
    if config.position == "rope":
        qkv += 2 * C if gqa else C + 2 * kv  # the rotated q (and k), new tensors, and one more, measured
    else:
        qkv += C + 2 * kv if gqa else 0  # q is a view of c_attn's output: its whole storage is kept
    attention = C + qkv + C + config.n_head
    mlp = C + (2 * h if config.mlp == "gelu" else 4 * h)
    return config.n_layer * (2 * norm + attention + mlp) + norm + C + V + 2


def memory_bytes(
    config: GPTConfig, batch: int, T: int, bytes_per_number: int = FLOAT32, fused_layernorm: bool = False
) -> dict[str, int]:
    """The memory of one training step with AdamW, by hand: parameters, their gradients, AdamW's two
    moments per parameter (exp_avg and exp_avg_sq), and the activations kept for backward."""
    _check_sizes(config, batch, T)
    P = sum(parameter_counts(config).values())
    return {
        "parameters": P * bytes_per_number,
        "gradients": P * bytes_per_number,
        "adamw": 2 * P * bytes_per_number,
        "activations": batch * T * activation_floats_per_token(config, fused_layernorm) * bytes_per_number,
    }


@contextlib.contextmanager
def _stderr_to_null() -> Iterator[None]:
    """The profiler's C++ side writes a line to file descriptor 2 at every start and stop; hide them."""
    sys.stderr.flush()
    kept, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(kept, 2)
        os.close(kept)
        os.close(null)


def retained_bytes(fn: Callable[[], object]) -> tuple[int, object]:
    """Run fn() under torch.profiler (CPU, profile_memory=True) and return (bytes, fn's result).

    bytes = every allocation torch's CPU allocator made during fn() minus every free: what fn() leaves
    alive while its result is kept. For a forward pass that returns the loss, that is the graph's saved
    tensors (the activations) plus the loss itself. CPU only: on CUDA use torch.cuda.memory_allocated.
    """
    with _stderr_to_null(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()  # kept alive until we return it, so its graph is not freed inside the profile
    total = 0
    for event in prof.events():
        if event.name == "[memory]":
            total += event.cpu_memory_usage  # an allocation (+) or a free (-) outside any operator
        else:
            total += event.self_cpu_memory_usage  # what the operator itself left allocated
    return total, result


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """Measured: bytes of the parameters, of their .grad tensors and of the optimizer's state tensors."""
    params = list(model.parameters())
    state = 0
    if optimizer is not None:
        for per_param in optimizer.state.values():
            state += sum(t.nbytes for t in per_param.values() if isinstance(t, torch.Tensor))
    return {
        "parameters": sum(p.nbytes for p in params),
        "gradients": sum(p.grad.nbytes for p in params if p.grad is not None),
        "optimizer": state,
    }


# --- speed ------------------------------------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def peak_matmul_flops(
    n: int = 1024, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, repeats: int = 5
) -> float:
    """The best FLOP/s of an (n, n) @ (n, n) product on `device` (2 n^3 FLOPs each), over `repeats` timed
    calls after one warm-up. The fastest call is the one least disturbed by other work on the machine."""
    if n < 1 or repeats < 1:
        raise ValueError(f"n and repeats must be positive, got {n} and {repeats}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)  # (n, n)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)  # (n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        began = time.perf_counter()
        a @ b
        _synchronize(device)
        best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best


# --- energy and carbon --------------------------------------------------------------------------------------


def joules(watts: float, seconds: float) -> float:
    """Energy = power x time (1 W for 1 s is 1 J)."""
    if watts < 0 or seconds < 0:
        raise ValueError(f"watts and seconds must be >= 0, got {watts} and {seconds}")
    return watts * seconds


def kwh(energy_joules: float) -> float:
    """Joules to kilowatt-hours (1 kWh = 1000 W x 3600 s = 3.6 MJ), the unit of an electricity bill."""
    return energy_joules / 3.6e6


def grams_co2(energy_joules: float, grid_g_per_kwh: float) -> float:
    """Grams of CO2-equivalent for this energy at a grid intensity in gCO2e per kWh."""
    if grid_g_per_kwh < 0:
        raise ValueError(f"grid intensity must be >= 0 gCO2e/kWh, got {grid_g_per_kwh}")
    return kwh(energy_joules) * grid_g_per_kwh


def run_costs(
    seconds: Mapping[str, float], watts: float, grid_g_per_kwh: float
) -> dict[str, dict[str, float]]:
    """For each named run of `seconds`: its joules at `watts`, and its grams of CO2e at the grid intensity."""
    costs = {}
    for name, s in seconds.items():
        energy = joules(watts, s)
        costs[name] = {"seconds": s, "joules": energy, "grams_co2": grams_co2(energy, grid_g_per_kwh)}
    return costs


def shipped_training_seconds() -> dict[str, float]:
    """The training seconds recorded in the book's shipped result files (data/), one entry per run.

    The shipped GPT (data/gpt_*.json, "seconds"), chapter 17's block ablation (every variant and seed),
    chapter 28's SSM-vs-GPT comparison ("train_seconds") and chapter 26's scaling sweep (every run).
    A file the manifest does not list is left out; chapter 20's LoRA sweep records no times.
    """

    def read(name: str) -> dict:
        return json.loads(data_path(name).read_text(encoding="utf-8"))  # hash-checked

    seconds: dict[str, float] = {}
    shipped = read_manifest()  # only files the manifest lists (and so hash-checks) count as shipped
    for name in sorted(n for n in shipped if n.startswith("gpt_") and n.endswith(".json")):
        info = read(name)
        if "seconds" in info:
            seconds[f"shipped GPT ({name.removesuffix('.json')})"] = float(info["seconds"])
    loaders = {
        "block_ablation.json": lambda d: {
            f"ch17 ablation {name} seed {run['seed']}": run["seconds"]
            for name, variant in d["variants"].items()
            for run in variant["runs"]
        },
        "ssm_vs_gpt.json": lambda d: {
            f"ch28 {name} vs {'ssm' if name == 'gpt' else 'gpt'}": m["train_seconds"]
            for name, m in d["models"].items()
        },
        "scaling_sweep.json": lambda d: {
            f"ch26 sweep L={r['n_layer']} C={r['n_embd']} D={r['D']:,}": r["seconds"] for r in d["runs"]
        },
    }
    for name, load in loaders.items():
        if name in shipped:
            seconds.update({run: float(s) for run, s in load(read(name)).items()})
    return seconds


@dataclass(frozen=True)
class EnergyReading:
    """One read of the energy counter: microjoules since an arbitrary start, and where it came from."""

    microjoules: int
    source: str
    max_microjoules: int  # the counter wraps to 0 after this


POWERCAP = Path("/sys/class/powercap")


def read_energy_counter(root: Path | str = POWERCAP) -> tuple[EnergyReading | None, str]:
    """The first RAPL package counter under `root` (Linux: intel-rapl:0, also on AMD CPUs), or None.

    Returns (reading, "") or (None, the reason): no powercap folder (not Linux, or a container or VM
    that hides it), no RAPL zone, or a counter only root may read (Linux made energy_uj root-only in
    2020). Two readings around some work give its energy: see `energy_between`.
    """
    root = Path(root)
    if not root.is_dir():
        return None, f"{root} does not exist: this system exposes no RAPL energy counter"
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)  # packages, not subzones
    if not zones:
        return None, f"{root} has no RAPL package zone (intel-rapl:N)"
    zone = zones[0]
    try:
        value = int((zone / "energy_uj").read_text().strip())
        wrap = int((zone / "max_energy_range_uj").read_text().strip())
    except PermissionError:
        return None, f"{zone / 'energy_uj'} is readable by root only on this system"
    except (OSError, ValueError) as error:
        return None, f"could not read {zone / 'energy_uj'}: {error}"
    return EnergyReading(value, str(zone), wrap), ""


def energy_between(before: EnergyReading, after: EnergyReading) -> float:
    """Joules between two readings of the same counter, allowing for one wrap-around."""
    if before.source != after.source:
        raise ValueError(f"readings come from different counters: {before.source} and {after.source}")
    delta = after.microjoules - before.microjoules
    if delta < 0:
        delta += before.max_microjoules
    return delta / 1e6


# Published figures for large training runs, as the sources state them (not recomputed here).
PUBLISHED = [
    {
        "model": "GPT-3 175B",
        "parameters": 175e9,
        "tokens": 300e9,
        "training_flops": 3.14e23,
        "energy_mwh": 1287,
        "tco2e": 552,
        "grid_g_per_kwh": 429,
        "source": "Brown et al. 2020, Language Models are Few-Shot Learners (arXiv:2005.14165), Table D.1: "
        "175B parameters, 300B tokens, 3.14e23 FLOPs; Patterson et al. 2021, Carbon Emissions and Large "
        "Neural Network Training (arXiv:2104.10350), Table 4: 1,287 MWh, 552 tCO2e at 429 gCO2e/kWh",
    },
    {
        "model": "Chinchilla 70B",
        "parameters": 70e9,
        "tokens": 1.4e12,
        "source": "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556): "
        "70B parameters trained on 1.4T tokens, with the same compute as Gopher (280B, 300B tokens)",
    },
    {
        "model": "Llama 2 (7B, 13B, 34B, 70B together)",
        "gpu_hours": 3.3e6,
        "tco2e": 539,
        "source": "Touvron et al. 2023, Llama 2 (arXiv:2307.09288), section 2.2.1: 3.3M GPU hours on "
        "A100-80GB, estimated emissions 539 tCO2eq, all offset by Meta",
    },
    {
        "model": "BLOOM 176B",
        "parameters": 176e9,
        "energy_mwh": 433,
        "tco2e": 24.7,
        "grid_g_per_kwh": 57,
        "source": "Luccioni et al. 2022, Estimating the Carbon Footprint of BLOOM (arXiv:2211.02001): "
        "433 MWh for the final training run, 24.7 tCO2eq from its dynamic power on France's "
        "low-carbon grid (57 gCO2eq/kWh)",
    },
]
