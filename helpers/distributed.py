"""Several processes, one model: torch.distributed on CPU processes (gloo), the same code as on GPUs (NCCL).

What this adds over the one-process training of helpers.pretrain:

- `launch(fn, world_size, ...)`: start `world_size` processes on 127.0.0.1, join them in one process group,
  run `fn(rank, world_size, ...)` in each and return their results, killing every child even when one
  fails. A notebook's own functions cannot be pickled into spawned processes, so every function that runs
  in a child lives here; `free_port` and `check_port` pick a port and say clearly when one is taken.
- `ring_all_reduce`: the sum over ranks with send/recv only (reduce-scatter, then all-gather), and
  `ring_cost`, its cost model against a naive all-to-one reduce.
- data parallelism from scratch (`average_gradients`) next to DistributedDataParallel, one process with the
  whole batch and gradient accumulation (`train_one_process`, `data_parallel_experiment`);
- sharding: optimizer state (ZeRO-1), parameters (FSDP), and one MLP split across ranks (tensor parallelism,
  `split_mlp` / `mlp_shard_forward`), in `sharding_experiment`;
- `BatchShard` and `init_from_torchrun`: what scripts/train_gpt.py needs to run under `torchrun`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import socket
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from helpers.gpt import GPT, GPTConfig
from helpers.mlp import MLP
from helpers.pretrain import TrainConfig, make_adamw, train
from helpers.transformer import MLP as TransformerMLP

HOST = "127.0.0.1"  # every process group of the book stays on this machine's loopback


# --- ports and processes ------------------------------------------------------------------------------


class PortInUseError(RuntimeError):
    """The port asked for is already taken by another program."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_port(port: int) -> int:
    """Return `port` if it can be bound on 127.0.0.1, else raise PortInUseError saying so."""
    if not isinstance(port, int) or not 1024 <= port <= 65535:
        raise ValueError(f"port must be an int in [1024, 65535], got {port!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as error:
            raise PortInUseError(
                f"port {port} on {HOST} is already in use by another program; pass port=None to let "
                f"free_port() pick a free one, or choose another port"
            ) from error
    return port


@contextmanager
def process_group(rank: int, world_size: int, port: int, backend: str = "gloo", timeout_s: float = 60.0):
    """Join the group of `world_size` processes rendezvousing at 127.0.0.1:port; leave it on exit."""
    dist.init_process_group(
        backend,
        init_method=f"tcp://{HOST}:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def _child(fn, rank, world_size, port, args, results, threads) -> None:
    """What each spawned process runs: join the group, call fn, send back (rank, ok, pickled result)."""
    torch.set_num_threads(threads)
    try:
        with process_group(rank, world_size, port):
            value = fn(rank, world_size, *pickle.loads(args))
        results.put((rank, True, pickle.dumps(value)))  # plain pickle: tensors travel by value
    except BaseException:
        results.put((rank, False, traceback.format_exc()))
        raise SystemExit(1) from None


def launch(
    fn: Callable[..., Any],
    world_size: int,
    *args: Any,
    port: int | None = None,
    timeout_s: float = 120.0,
    threads: int = 1,
) -> list[Any]:
    """Run `fn(rank, world_size, *args)` in `world_size` new processes joined in one gloo group.

    Returns the results by rank. The children are always joined, or killed if still running, when this
    returns or raises (a failing rank, a timeout, a KeyboardInterrupt). `fn` must be importable (a
    module-level function of a module, not a notebook's own function): spawned processes import it.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if getattr(fn, "__module__", "__main__") == "__main__" or "<locals>" in getattr(fn, "__qualname__", ""):
        raise ValueError(
            f"{getattr(fn, '__name__', fn)!r} cannot be sent to a spawned process: define it at the top "
            f"of an importable module (such as helpers.distributed), not in a notebook or inside a function"
        )
    port = free_port() if port is None else check_port(port)
    payload = pickle.dumps(args)  # plain pickle: tensors travel by value, not through shared memory
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(fn, rank, world_size, port, payload, results, threads), daemon=True)
        for rank in range(world_size)
    ]
    out: dict[int, Any] = {}
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout_s
        while len(out) < world_size:
            try:
                rank, ok, payload = results.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the {world_size} processes did not finish in {timeout_s} s"
                    ) from None
                dead = [(r, p.exitcode) for r, p in enumerate(procs) if p.exitcode not in (None, 0)]
                if dead and results.empty():
                    raise RuntimeError(f"rank {dead[0][0]} died with exit code {dead[0][1]}") from None
                continue
            if not ok:  # the others often fail too, as their peer vanished: gather those reports briefly
                failed = {rank: payload}
                grace = time.monotonic() + 2.0
                while time.monotonic() < grace and len(failed) + len(out) < world_size:
                    try:
                        r, ok_r, payload_r = results.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if not ok_r:
                        failed[r] = payload_r
                ranks = sorted(failed)
                details = "\n".join(f"rank {r} of {world_size} failed:\n{failed[r]}" for r in ranks)
                raise RuntimeError(
                    f"ranks {ranks} of {world_size} failed (the first to fail is the cause; "
                    f"the others may only have lost a peer)\n{details}"
                )
            out[rank] = pickle.loads(payload)
    finally:
        for p in procs:
            if p.pid is not None:
                p.join(timeout=10.0 if len(out) == world_size else 0.5)
                if p.is_alive():
                    p.kill()
                    p.join()
        results.close()
    return [out[rank] for rank in range(world_size)]


def children_alive() -> list[int]:
    """Process ids of this process's children still running (tests check that none are left)."""
    return [p.pid for p in mp.active_children()]


# --- ring all-reduce ------------------------------------------------------------------------------------


def _exchange(send: torch.Tensor, recv: torch.Tensor, right: int, left: int) -> None:
    """Send `send` to rank `right` while receiving rank `left`'s chunk into `recv`."""
    request = dist.isend(send, right)  # non-blocking: everyone sends and receives at once, no deadlock
    dist.recv(recv, left)
    request.wait()


def ring_all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Sum `x` over all ranks, in place, with the ring algorithm; returns x.

    The tensor is cut into n chunks. Reduce-scatter: at step s rank r sends chunk (r - s) mod n to its
    right neighbour and adds the chunk arriving from its left; after n - 1 steps rank r holds the full
    sum of chunk (r + 1) mod n. All-gather: n - 1 more steps pass the finished chunks round the ring.
    Each rank sends 2 (n - 1) chunks of |x| / n elements: 2 (n - 1) / n |x| in all, whatever n.
    """
    if not x.is_contiguous():
        raise ValueError("ring_all_reduce needs a contiguous tensor (call .contiguous() first)")
    n, r = dist.get_world_size(), dist.get_rank()
    chunks = x.view(-1).tensor_split(n)  # n views of x (the first len % n are one element longer)
    right, left = (r + 1) % n, (r - 1) % n
    for s in range(n - 1):  # reduce-scatter
        send_i, recv_i = (r - s) % n, (r - s - 1) % n
        incoming = torch.empty_like(chunks[recv_i])
        _exchange(chunks[send_i], incoming, right, left)
        chunks[recv_i].add_(incoming)  # a view: adds into x itself
    for s in range(n - 1):  # all-gather: pass the finished chunks on, overwriting
        send_i, recv_i = (r + 1 - s) % n, (r - s) % n
        _exchange(chunks[send_i], chunks[recv_i], right, left)
    return x


def ring_cost(n: int, nbytes: float, bandwidth: float, latency: float) -> dict[str, float]:
    """The cost model of an all-reduce of `nbytes` over `n` ranks (bandwidth in bytes/s, latency in s).

    Ring: 2 (n - 1) steps, each a latency plus nbytes / n over a link:
        t_ring = 2 (n - 1) latency + 2 (n - 1) / n * nbytes / bandwidth.
    Naive: everyone sends its tensor to rank 0, which adds them and sends the sum back to each; rank 0's
    link carries (n - 1) nbytes in and (n - 1) nbytes out:
        t_naive = 2 latency + 2 (n - 1) nbytes / bandwidth.
    Bytes are what the busiest rank sends.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (ranks) must be a positive int, got {n!r}")
    if nbytes < 0 or bandwidth <= 0 or latency < 0:
        raise ValueError(
            f"need nbytes >= 0, bandwidth > 0, latency >= 0; got {nbytes}, {bandwidth}, {latency}"
        )
    ring_bytes = 2 * (n - 1) / n * nbytes
    naive_bytes = (n - 1) * nbytes
    steps = 2 * (n - 1)
    return {
        "ring_bytes": ring_bytes,
        "naive_bytes": naive_bytes,
        "ring_seconds": steps * latency + ring_bytes / bandwidth,
        "naive_seconds": (2 * latency if n > 1 else 0.0) + 2 * naive_bytes / bandwidth,
    }


def _best_seconds(op: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` timed calls of `op`, all ranks starting together, after warm-up calls.

    The fastest, not the mean: on a busy machine a rank that is waiting for a core delays everyone, and
    the fastest call is the one least disturbed."""
    for _ in range(2):
        op()  # warm-up: the first calls of a size set up buffers and connections
    times = []
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        op()
        times.append(time.perf_counter() - start)
    return min(times)


def all_reduce_experiment(
    rank: int, world_size: int, sizes: list[int], repeats: int = 5, seed: int = 0, check_lengths=(1003,)
) -> dict:
    """(In each rank.) Check ring_all_reduce against dist.all_reduce on random tensors of `check_lengths`
    elements, then time both on float32 tensors of `sizes` elements. Returns the largest difference (and
    the largest |sum|, for scale) and the fastest time of `repeats` per size."""
    g = torch.Generator().manual_seed(seed + rank)  # a different tensor on every rank
    max_diff, scale = 0.0, 0.0
    for length in check_lengths:
        x = torch.randn(length, generator=g)  # (length,)
        mine, theirs = ring_all_reduce(x.clone()), x.clone()
        dist.all_reduce(theirs)
        max_diff = max(max_diff, (mine - theirs).abs().max().item())
        scale = max(scale, theirs.abs().max().item())
    t_lib, t_ring = [], []
    for size in sizes:
        y = torch.randn(size, generator=g)  # (size,)
        t_lib.append(_best_seconds(lambda y=y: dist.all_reduce(y), repeats))
        t_ring.append(_best_seconds(lambda y=y: ring_all_reduce(y), repeats))
    return {"max_diff": max_diff, "scale": scale, "sizes": list(sizes), "t_lib": t_lib, "t_ring": t_ring}


def fit_cost_model(n: int, nbytes: list[float], seconds: list[float]) -> tuple[float, float]:
    """(bandwidth, latency) of the ring model from timings of several message sizes.

    Latency: from the fastest message (every message pays at least the 2 (n - 1) latencies, and small ones
    little else; the fastest is the least disturbed by a busy machine). Bandwidth: from the largest
    message, whose time is nearly all bytes. The sizes in between are left for the model to predict."""
    if n < 2 or len(nbytes) != len(seconds) or len(nbytes) < 2:
        raise ValueError("need n >= 2 and at least two (nbytes, seconds) pairs of equal length")
    latency = min(seconds) / (2 * (n - 1))
    i_large = max(range(len(nbytes)), key=nbytes.__getitem__)
    moved = 2 * (n - 1) / n * nbytes[i_large]
    bandwidth = moved / max(seconds[i_large] - 2 * (n - 1) * latency, 1e-12)
    return bandwidth, latency


# --- data parallelism -----------------------------------------------------------------------------------


def digit_batches(steps: int, batch_size: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`steps` global batches of `batch_size` training digits (float32 X (B, 64), labels (B,)), drawn
    from a generator seeded with `seed`: every process that calls this gets the same batches."""
    from helpers.digits import load_digits_split  # noqa: PLC0415 - scikit-learn takes seconds to import,
    # and the spawned workers, which receive these batches ready-made, never need it

    split = load_digits_split()
    X = torch.as_tensor(split.X_train, dtype=torch.float32)  # (N, 64)
    y = torch.as_tensor(split.y_train, dtype=torch.long)  # (N,)
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(steps):
        idx = torch.randint(len(X), (batch_size,), generator=g)  # (B,)
        batches.append((X[idx], y[idx]))
    return batches


def make_model(seed: int = 0) -> nn.Module:
    """The small digits network every data-parallel run starts from (the same weights for a seed)."""
    torch.manual_seed(seed)
    return MLP([64, 64, 10])


def shard(t: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s contiguous slice of a batch (the first dimension), all slices the same size."""
    if t.shape[0] % world_size:
        raise ValueError(
            f"a batch of {t.shape[0]} cannot be cut into {world_size} equal shards; with unequal shards "
            f"the mean of the shard means is not the batch mean"
        )
    return t.tensor_split(world_size)[rank]


def average_gradients(model: nn.Module) -> None:
    """Data parallelism by hand: replace every gradient by its mean over the ranks (sum, then divide)."""
    n = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)  # sum over ranks, in place
            p.grad /= n


def _sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train_one_process(batches: list, lr: float, micro_batches: int = 1, seed: int = 0) -> dict:
    """The baseline: one process, one SGD step per whole batch of `batches`. With micro_batches > 1 each
    batch is cut into that many pieces whose gradients accumulate (each loss divided by micro_batches)
    before the step. Returns the final state dict."""
    model = make_model(seed)
    opt = _sgd(model, lr)
    for X, y in batches:
        opt.zero_grad()
        for i in range(micro_batches):
            loss = F.cross_entropy(model(shard(X, i, micro_batches)), shard(y, i, micro_batches))
            (loss / micro_batches).backward()  # gradients add up across micro-batches
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def data_parallel_experiment(
    rank: int, world_size: int, batches: list, lr: float, seed: int = 0, gpt_steps: int = 0
) -> dict:
    """(In each rank.) Train with data parallelism twice, by hand and with DDP, each rank on its shard of
    every global batch; then, if gpt_steps, a tiny GPT through helpers.pretrain.train wrapped in BatchShard.
    Returns {"scratch": state dict, "ddp": state dict, "gpt": state dict, "shard": local batch size}."""
    out = {"shard": len(batches[0][0]) // world_size}
    if gpt_steps:
        out["gpt"] = tiny_gpt_run(rank, world_size, gpt_steps, seed)
    for how in ("scratch", "ddp"):
        model = make_model(seed)
        net = DDP(model) if how == "ddp" else model
        opt = _sgd(model, lr)
        for X, y in batches:
            loss = F.cross_entropy(net(shard(X, rank, world_size)), shard(y, rank, world_size))
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients here, bucket by bucket, during backward
            if how == "scratch":
                average_gradients(model)
            opt.step()
        out[how] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return out


# --- sharding: ZeRO-1, FSDP, tensor parallelism ---------------------------------------------------------


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the tensors an optimizer keeps between steps (Adam: exp_avg and exp_avg_sq per parameter)."""
    return sum(
        t.numel() * t.element_size()
        for per_param in optimizer.state.values()
        for t in per_param.values()
        if torch.is_tensor(t) and t.dim() > 0  # the step counters are scalars: a few bytes, left out
    )


def split_mlp(W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, n: int) -> list[tuple]:
    """Tensor parallelism of an MLP y = W2 gelu(W1 x + b1) + b2: rank r gets rows r of W1 and b1 (a block
    of hidden units, "column parallel" in x @ W1.T terms) and the matching columns of W2 ("row parallel").
    W1 (H, C), b1 (H,), W2 (C, H); returns n tuples (W1_r, b1_r, W2_r)."""
    H = W1.shape[0]
    if W1.dim() != 2 or W2.dim() != 2 or W2.shape[1] != H or b1.shape != (H,):
        raise ValueError(
            f"need W1 (H, C), b1 (H,), W2 (C, H); got {tuple(W1.shape)}, {tuple(b1.shape)}, {tuple(W2.shape)}"
        )
    if not 1 <= n <= H:
        raise ValueError(f"cannot split {H} hidden units over {n} ranks")
    return list(zip(W1.tensor_split(n, 0), b1.tensor_split(n), W2.tensor_split(n, 1), strict=True))


def mlp_shard_forward(
    x: torch.Tensor, W1_r: torch.Tensor, b1_r: torch.Tensor, W2_r: torch.Tensor
) -> torch.Tensor:
    """One rank's part of the output: its hidden units only. Summing the parts over ranks (one all-reduce)
    and adding b2 gives the whole MLP's output. x (..., C) -> (..., C)."""
    h_r = F.gelu(x @ W1_r.T + b1_r, approximate="tanh")  # (..., H / n): no communication needed
    return h_r @ W2_r.T  # (..., C): a partial sum


def _adam(params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def sharding_experiment(rank: int, world_size: int, batches: list, width: int = 256, seed: int = 0) -> dict:
    """(In each rank.) Measure three ways of sharding:

    - ZeRO-1: ZeroRedundancyOptimizer wrapping Adam vs plain Adam on every rank: optimizer-state bytes
      here, and the largest weight difference after a data-parallel step per batch of `batches`;
    - FSDP (torch.distributed.fsdp.fully_shard): parameter bytes held here, optimizer-state bytes here and
      the largest difference from one process training on the whole batch;
    - tensor parallelism of helpers.transformer.MLP(width // 4): this rank's partial output, all-reduced,
      against the unsplit layer.
    """
    from torch.distributed.fsdp import fully_shard  # noqa: PLC0415 - only the children need FSDP loaded
    from torch.distributed.optim import ZeroRedundancyOptimizer  # noqa: PLC0415 - same

    out: dict[str, Any] = {}
    sizes = [64, width, width, width, 10]  # two equal big layers: ZeRO can split them evenly

    def fresh():
        torch.manual_seed(seed)
        return MLP(sizes)

    def run(model, opt, net=None, sharded=True):
        net = model if net is None else net
        for X, y in batches:
            Xs, ys = (shard(X, rank, world_size), shard(y, rank, world_size)) if sharded else (X, y)
            opt.zero_grad()
            F.cross_entropy(net(Xs), ys).backward()
            opt.step()
        return model

    # one process, whole batch: the reference everything must equal
    m = fresh()
    run(m, _adam(m.parameters(), 1e-3), sharded=False)
    ref = {k: v.detach() for k, v in m.state_dict().items()}
    out["param_bytes"] = sum(p.numel() * p.element_size() for p in m.parameters())

    plain = fresh()
    plain_opt = _adam(plain.parameters(), 1e-3)
    run(plain, plain_opt, DDP(plain))
    out["adam_bytes"] = state_bytes(plain_opt)

    zmodel = fresh()
    zero = ZeroRedundancyOptimizer(zmodel.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3)
    run(zmodel, zero, DDP(zmodel))
    out["zero_bytes"] = state_bytes(zero.optim)  # only this rank's share of the parameters
    out["zero_diff"] = max((v - ref[k]).abs().max().item() for k, v in zmodel.state_dict().items())

    fmodel = fresh()
    for layer in fmodel.linears():
        fully_shard(layer)
    fully_shard(fmodel)
    fopt = _adam(fmodel.parameters(), 1e-3)
    out["fsdp_param_bytes"] = sum(p.to_local().numel() * p.element_size() for p in fmodel.parameters())
    run(fmodel, fopt)
    out["fsdp_state_bytes"] = sum(
        t.to_local().numel() * t.element_size()
        for st in fopt.state.values()
        for t in st.values()
        if torch.is_tensor(t) and t.dim() > 0
    )
    full = {k: v.full_tensor() for k, v in fmodel.state_dict().items()}  # gathers the shards (a collective)
    out["fsdp_diff"] = max((v - ref[k]).abs().max().item() for k, v in full.items())

    torch.manual_seed(seed)
    layer = TransformerMLP(width // 4)
    x = torch.randn(4, 8, width // 4)  # (B, T, C): the same on every rank (same seed)
    W1_r, b1_r, W2_r = split_mlp(layer.c_fc.weight, layer.c_fc.bias, layer.c_proj.weight, world_size)[rank]
    with torch.no_grad():
        y = mlp_shard_forward(x, W1_r, b1_r, W2_r)  # (B, T, C): this rank's partial sum
        dist.all_reduce(y)  # the one communication of the layer
        y += layer.c_proj.bias
        out["tp_diff"] = (y - layer(x)).abs().max().item()
        out["tp_hidden"] = W1_r.shape[0]
    return out


# --- running a training script under torchrun -----------------------------------------------------------


def init_from_torchrun(device: str) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    NCCL on CUDA (each process takes GPU LOCAL_RANK), gloo on CPU. Returns (rank, world_size, device)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if on_cuda else "gloo")
    chosen = torch.device("cuda", local_rank) if on_cuda else torch.device(device)
    return dist.get_rank(), dist.get_world_size(), chosen


class BatchShard(nn.Module):
    """A model that trains data-parallel under torchrun without changing the training loop.

    In training (grad enabled), forward(x, y) keeps only this rank's slice of the global batch and runs it
    through DistributedDataParallel, which averages the gradients during backward: every rank then takes
    the same optimizer step that one process would take on the whole batch. In evaluation it runs the
    plain model on the whole batch. `config` is the wrapped model's, so helpers.pretrain.train accepts it.
    """

    def __init__(self, model: nn.Module, device_ids: list[int] | None = None):
        super().__init__()
        self.model = model
        self.ddp = DDP(model, device_ids=device_ids)
        self.config = model.config

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        if not (self.training and torch.is_grad_enabled()):
            return self.model(x, y)
        r, n = dist.get_rank(), dist.get_world_size()
        return self.ddp(shard(x, r, n), None if y is None else shard(y, r, n))  # (B / n, T) each


def tiny_gpt_run(rank: int = 0, world_size: int = 1, steps: int = 3, seed: int = 0) -> dict:
    """Train a tiny GPT on random ids with helpers.pretrain.train, for `steps` steps of a global batch of 4
    windows: in one process, or (world_size > 1, inside a process group) through BatchShard as
    scripts/train_gpt.py does under torchrun. Returns the final state dict."""
    torch.manual_seed(seed)
    model = GPT(
        GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0, bias=False)
    )
    tc = TrainConfig(
        max_steps=steps, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=0, eval_interval=steps, eval_iters=1
    )
    data = torch.randint(16, (2048,), generator=torch.Generator().manual_seed(seed))  # (N,)
    trained = BatchShard(model) if world_size > 1 else model
    train(trained, make_adamw(model, tc), data, data, tc, progress=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def bytes_per_rank_table(n_params: int, n: int, bytes_per_value: int = 4) -> dict[str, float]:
    """Bytes per rank of weights, gradients and Adam's two moments, replicated vs sharded over n ranks."""
    if n < 1 or n_params < 0:
        raise ValueError(f"need n >= 1 and n_params >= 0, got {n} and {n_params}")
    P = n_params * bytes_per_value
    return {
        "DDP": 4 * P,
        "ZeRO-1 (optimizer state)": 2 * P + 2 * P / n,
        "ZeRO-2 (+ gradients)": P + 3 * P / n,
        "FSDP / ZeRO-3 (+ weights)": 4 * P / n,
    }
