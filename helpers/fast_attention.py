"""Faster attention (chapter 28): the same softmax attention without the T x T matrix, and cheaper stand-ins.

What this module adds over helpers.attention (the formula softmax(q k^T / sqrt(d) + mask) v, which builds
the whole (T_q, T_k) score matrix):

    score_bytes(T_q, T_k, n_head, batch, dtype)   the size of that score matrix, worked out by hand
    peak_memory(fn, device)                       the peak memory a call allocates, measured with torch's own
                                                  tools: CUDA's allocator statistics, or on the CPU the
                                                  profiler's allocation events replayed in time order
    online_softmax_stats(chunks)                  one pass over an iterable of chunks: running max m and
                                                  running sum l of exp(x - m), rescaled whenever m grows
    online_softmax(x, block_size)                 softmax over the last dim from those two numbers
    tiled_attention(q, k, v, block_size, ...)     FlashAttention's forward idea: blocks of queries against
                                                  blocks of keys and values, a running max, a running
                                                  denominator and a rescaled accumulator; memory linear in T.
                                                  `window` makes it sliding-window attention (only the blocks
                                                  inside the band are visited)
    sliding_window_mask(T_q, T_k, window)         the banded causal mask: query i sees keys i - window + 1..i
    elu_feature_map(x)                            elu(x) + 1, a positive feature map for linear attention
    linear_attention(q, k, v, causal)             phi(q) phi(k)^T used in place of exp(q k^T): parallel form
    linear_attention_recurrent(q, k, v)           the causal form as a recurrence with a state that does not
                                                  grow with T (LinearAttentionState / linear_attention_step)
    tile_profile(T, d, block_size)                peak memory and time of one tiled call (the slider's data)

The causal mask is aligned to the end of the keys, as in helpers.attention.causal_mask.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from helpers.attention import causal_mask, scaled_dot_product_attention


def score_bytes(
    T_q: int, T_k: int, n_head: int = 1, batch: int = 1, dtype: torch.dtype = torch.float32
) -> int:
    """Bytes of one (batch, n_head, T_q, T_k) score matrix in `dtype`: what naive attention materialises."""
    if min(T_q, T_k, n_head, batch) < 1:
        raise ValueError(f"sizes must be positive, got T_q={T_q}, T_k={T_k}, n_head={n_head}, batch={batch}")
    return batch * n_head * T_q * T_k * torch.finfo(dtype).bits // 8


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to the null device for a while: the profiler's C++ side logs every start
    and stop there, which would litter a notebook's output."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _cpu_peak(fn: Callable[[], object]) -> int:
    """Replay the profiler's allocation events in time order and return the highest running total."""
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    deltas = []
    for e in prof.events():
        if e.name == "[memory]":
            deltas.append((e.time_range.start, e.cpu_memory_usage))  # a free (or an allocation) outside ops
        elif e.self_cpu_memory_usage:
            deltas.append((e.time_range.end, e.self_cpu_memory_usage))  # what the op itself kept
    deltas.sort(key=lambda td: td[0])
    running = peak = 0
    for _, delta in deltas:
        running += delta
        peak = max(peak, running)
    return peak


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> int:
    """Peak bytes allocated by torch while `fn()` runs, above what was allocated before it started.

    CUDA: torch.cuda.max_memory_allocated after resetting the peak. CPU: torch.profiler with
    profile_memory=True records every allocation and free of torch's CPU allocator; replaying them in
    time order gives the peak (Python's tracemalloc does not see these allocations). Anything else
    (MPS has no peak counter): ValueError - measure on the CPU instead, the algorithm's memory is the same.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    if device.type == "cpu":
        return _cpu_peak(fn)
    raise ValueError(f"peak_memory measures 'cpu' or 'cuda', not {device.type!r}")


# --- the online softmax -------------------------------------------------------------------------------------


def online_softmax_stats(chunks: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over chunks of a row (each (..., n_i), split along the last dim): returns (m, l), (...,) each.

    m is the largest entry seen and l = sum exp(x - m). A new chunk with a larger maximum rescales the sum
    so far by exp(m_old - m_new), so nothing is ever stored but these two numbers per row.
    """
    m = l = None
    for x in chunks:
        if x.dim() < 1 or x.shape[-1] == 0:
            raise ValueError(f"every chunk needs at least one entry on its last dim, got {tuple(x.shape)}")
        m_new = x.amax(dim=-1) if m is None else torch.maximum(m, x.amax(dim=-1))  # (...,)
        l_old = 0.0 if l is None else l * torch.exp(m - m_new)  # (...,): the old sum, rescaled
        l = l_old + torch.exp(x - m_new[..., None]).sum(dim=-1)  # (...,)
        m = m_new
    if m is None:
        raise ValueError("online_softmax_stats needs at least one chunk")
    return m, l


def online_softmax(x: torch.Tensor, block_size: int = 128) -> torch.Tensor:
    """softmax(x) over the last dim, from the one-pass statistics of blocks of block_size entries."""
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    m, l = online_softmax_stats(x.split(block_size, dim=-1))  # (...,), (...,)
    return torch.exp(x - m[..., None]) / l[..., None]  # (..., n)


# --- tiled attention (the FlashAttention forward) -----------------------------------------------------------


def sliding_window_mask(T_q: int, T_k: int | None = None, window: int = 1, device=None) -> torch.Tensor:
    """(T_q, T_k) booleans: query i sees key j when it is causal and at most window - 1 positions back."""
    T_k = T_q if T_k is None else T_k
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    mask = causal_mask(T_q, T_k, device=device)  # (T_q, T_k), aligned to the end of the keys
    return mask & ~torch.ones_like(mask).tril(diagonal=T_k - T_q - window)  # drop keys window or more back


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k, v need at least 2 dims (T, d); got {tuple(q.shape)}, {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dim, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of positions, got {k.shape[-2]} and {v.shape[-2]}")


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int = 64,
    is_causal: bool = False,
    window: int | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v without ever holding more than a (block_size, block_size) score tile.

    q: (..., T_q, d), k: (..., T_k, d), v: (..., T_k, d_v). For each block of queries, walk over the blocks
    of keys, keeping per query a running max m, a running denominator l and an unnormalised output acc;
    when m grows, l and acc are rescaled by exp(m_old - m_new). Divide by l at the end. is_causal hides
    the future; window (implies causal) also hides keys window or more positions back, and key blocks
    wholly outside the band are skipped, so the work is O(T * window) instead of O(T^2).
    """
    _check_qkv(q, k, v)
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    if window is not None and window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    causal = is_causal or window is not None
    T_q, T_k = q.shape[-2], k.shape[-2]
    if causal and T_k < T_q:
        raise ValueError(f"a causal mask needs T_q <= T_k, got T_q={T_q}, T_k={T_k}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    shift = T_k - T_q  # query i sits at key position i + shift
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., T_q, d_v)
    for i0 in range(0, T_q, block_size):
        qi = q[..., i0 : i0 + block_size, :] * scale  # (..., Bq, d)
        rows = torch.arange(i0, i0 + qi.shape[-2], device=q.device) + shift  # (Bq,) key positions
        m = torch.full(qi.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)  # (..., Bq)
        l = torch.zeros_like(m)  # (..., Bq)
        acc = torch.zeros(*qi.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., Bq, d_v)
        lo = 0 if window is None else max(0, int(rows[0]) - window + 1)
        hi = T_k if not causal else int(rows[-1]) + 1  # keys after the last query's position are hidden
        for j0 in range((lo // block_size) * block_size, hi, block_size):
            kj = k[..., j0 : min(j0 + block_size, hi), :]  # (..., Bk, d)
            vj = v[..., j0 : min(j0 + block_size, hi), :]  # (..., Bk, d_v)
            s = qi @ kj.transpose(-2, -1)  # (..., Bq, Bk): one tile of scores
            if causal:
                cols = torch.arange(j0, j0 + kj.shape[-2], device=q.device)  # (Bk,)
                keep = cols[None, :] <= rows[:, None]  # (Bq, Bk)
                if window is not None:
                    keep = keep & (cols[None, :] > rows[:, None] - window)
                s = s.masked_fill(~keep, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))  # (..., Bq)
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # rows with no key yet
            p = torch.exp(s - m_safe[..., None])  # (..., Bq, Bk)
            alpha = torch.exp(m - m_safe)  # (..., Bq): how much the old max overstated the new one
            l = l * alpha + p.sum(dim=-1)  # (..., Bq)
            acc = acc * alpha[..., None] + p @ vj  # (..., Bq, d_v)
            m = m_new
        out[..., i0 : i0 + qi.shape[-2], :] = acc / l[..., None]  # (..., Bq, d_v)
    return out


@dataclass(frozen=True)
class TileProfile:
    """Peak memory and time of one tiled_attention call, next to the naive formula's."""

    block_size: int
    peak_bytes: int
    seconds: float
    naive_peak_bytes: int
    tile_bytes: int  # one (block_size, block_size) score tile per head, by hand


def tile_profile(
    T: int, d: int = 32, block_size: int = 64, n_head: int = 1, seed: int = 0, repeats: int = 1
) -> TileProfile:
    """Measure tiled_attention (causal, one sequence, n_head heads of size d) at one block size on the CPU.

    seconds is the fastest of `repeats` calls (the least disturbed by other work on the machine).
    """
    if T < 1 or d < 1 or block_size < 1 or repeats < 1:
        raise ValueError(
            f"T, d, block_size and repeats must be positive, got {T}, {d}, {block_size}, {repeats}"
        )
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(3, 1, n_head, T, d, generator=g)  # 3 x (1, nh, T, d)
    seconds = math.inf
    for _ in range(repeats):
        began = time.perf_counter()
        tiled_attention(q, k, v, block_size, is_causal=True)
        seconds = min(seconds, time.perf_counter() - began)
    peak = peak_memory(lambda: tiled_attention(q, k, v, block_size, is_causal=True))
    naive = peak_memory(lambda: scaled_dot_product_attention(q, k, v, is_causal=True))
    b = min(block_size, T)
    return TileProfile(block_size, peak, seconds, naive, score_bytes(b, b, n_head))


# --- linear attention ------------------------------------------------------------------------------------


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1: positive everywhere, so phi(q) . phi(k) can stand in for exp(q . k)."""
    return F.elu(x) + 1.0


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
    eps: float = 1e-6,
) -> torch.Tensor:
    """The parallel form: out_i = sum_j w_ij v_j with w_ij = phi(q_i).phi(k_j) / sum_j' phi(q_i).phi(k_j').

    q, k: (..., T, d), v: (..., T, d_v). It builds the (T, T) matrix like softmax attention does (handy
    for training on a GPU); the recurrent form computes the same numbers in O(1) memory per step.
    """
    _check_qkv(q, k, v)
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"causal linear attention needs T_q == T_k, got {q.shape[-2]} and {k.shape[-2]}")
    phi_q, phi_k = feature_map(q), feature_map(k)  # (..., T, d)
    A = phi_q @ phi_k.transpose(-2, -1)  # (..., T_q, T_k): unnormalised weights, all >= 0
    if causal:
        A = A * causal_mask(q.shape[-2], device=q.device)
    return (A @ v) / (A.sum(dim=-1, keepdim=True) + eps)  # (..., T, d_v)


@dataclass
class LinearAttentionState:
    """The running state of causal linear attention: S = sum phi(k_j) v_j^T and z = sum phi(k_j)."""

    S: torch.Tensor  # (..., d, d_v)
    z: torch.Tensor  # (..., d)

    @classmethod
    def zeros(cls, batch_shape: tuple[int, ...], d: int, d_v: int, dtype=torch.float32, device=None):
        return cls(
            torch.zeros(*batch_shape, d, d_v, dtype=dtype, device=device),
            torch.zeros(*batch_shape, d, dtype=dtype, device=device),
        )

    def numel(self) -> int:
        return self.S.numel() + self.z.numel()


def linear_attention_step(
    state: LinearAttentionState,
    q_t: torch.Tensor,
    k_t: torch.Tensor,
    v_t: torch.Tensor,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, LinearAttentionState]:
    """One new position: q_t, k_t (..., d), v_t (..., d_v). Returns (out_t (..., d_v), the new state)."""
    phi_q, phi_k = feature_map(q_t), feature_map(k_t)  # (..., d)
    S = state.S + phi_k[..., :, None] * v_t[..., None, :]  # (..., d, d_v): add one outer product
    z = state.z + phi_k  # (..., d)
    num = (phi_q[..., None, :] @ S)[..., 0, :]  # (..., d_v)
    den = (phi_q * z).sum(dim=-1, keepdim=True) + eps  # (..., 1)
    return num / den, LinearAttentionState(S, z)


def linear_attention_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    feature_map: Callable[[torch.Tensor], torch.Tensor] = elu_feature_map,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Causal linear attention one position at a time (`linear_attention_step`); equals the parallel form."""
    _check_qkv(q, k, v)
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"the recurrent form needs T_q == T_k, got {q.shape[-2]} and {k.shape[-2]}")
    state = LinearAttentionState.zeros(q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype, q.device)
    outs = []
    for t in range(q.shape[-2]):
        y, state = linear_attention_step(state, q[..., t, :], k[..., t, :], v[..., t, :], feature_map, eps)
        outs.append(y)
    return torch.stack(outs, dim=-2)  # (..., T, d_v)
