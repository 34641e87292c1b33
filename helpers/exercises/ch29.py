"""Exercises for chapter 29: scaling out."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from helpers.distributed import mlp_shard_forward
from helpers.exercises.core import Exercise, by_hand, matches_value, register


# 29.1 ---------------------------------------------------------------------------------------------------
def simulate_reduce_scatter(schedule, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ring reduce-scatter of n ranks, played in one process. Every rank starts with n random chunks;
    at step s (0 .. n - 2) every rank r sends its chunk schedule(r, s, n) to rank (r + 1) mod n, which adds
    it into its own chunk of the same index (all the sends of a step happen at once).
    Returns (held, total): held[rank, chunk] at the end, and total[chunk], the sum over ranks."""
    start = np.random.default_rng(seed).normal(size=(n, n, 3))  # (rank, chunk, values)
    held = start.copy()
    for s in range(n - 1):
        sent = []
        for r in range(n):
            i = schedule(r, s, n)
            if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
                raise AssertionError(
                    f"schedule({r}, {s}, {n}) should be a chunk index in 0..{n - 1}, got {i!r}"
                )
            sent.append((int(i), held[r, int(i)].copy()))
        for r, (i, values) in enumerate(sent):
            held[(r + 1) % n, i] += values
    return held, start.sum(axis=0)


def _check_own_chunk(schedule) -> None:
    assert callable(schedule), f"expected a function schedule(rank, step, n), got {type(schedule).__name__}"
    for n in range(2, 9):
        held, total = simulate_reduce_scatter(schedule, n, seed=n)
        for r in range(n):
            assert np.allclose(held[r, r], total[r]), (
                f"with n = {n} ranks, rank {r} does not end with the full sum of chunk {r}"
            )


def _own_chunk_schedule(rank: int, step: int, n: int) -> int:
    # rank r must finish holding chunk r, so its last send (step n - 2) is the chunk its right neighbour
    # finishes: chunk r + 1 ... one step earlier the chunk two to the right, and so on. Going backwards
    # from there, at step s rank r sends chunk (r - s - 1) mod n: the book's schedule shifted by one.
    return (rank - step - 1) % n


def _book_schedule(rank: int, step: int, n: int) -> int:
    return (rank - step) % n  # the chapter's ring: rank r ends with chunk r + 1, not chunk r


register(
    Exercise(
        key="29.1",
        title="a reduce-scatter that ends on your own chunk",
        checker=_check_own_chunk,
        hint="a chunk is finished by the rank that receives it last. Rank r receives its last chunk from "
        "rank r - 1 at step n - 2; so rank r - 1 must send chunk r at step n - 2. Work back one step at a "
        "time: each earlier step, the chunk a rank sends moves one place.",
        solution=_own_chunk_schedule,
        wrong=_book_schedule,
        explanation="The chapter's schedule (r - s) mod n leaves rank r with chunk r + 1. Shifting every "
        "index by one, (r - s - 1) mod n, renames the chunks so that rank r finishes chunk r. Chunk i "
        "starts at rank i + 1, travels n - 1 hops round the ring, picking up every rank's part, and ends "
        "at rank i.",
    )
)

# 29.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="29.2",
        title="bytes on the wire: ring vs one root",
        checker=matches_value([175.0, 700.0], atol=0.5, what="(ring MB, naive MB)"),
        hint="in the ring every rank sends 2 (n - 1) chunks of size N / n. In the naive scheme the root "
        "sends the whole sum back to each of the other n - 1 ranks.",
        solution=(175.0, 700.0),
        wrong=(87.5, 700.0),  # the reduce-scatter only: it forgets the all-gather
        explanation="Ring: 2 (n - 1) / n x 100 MB = 2 x 7 / 8 x 100 = 175 MB per rank, the same for every "
        "rank. Naive: the root receives 7 x 100 MB and sends 7 x 100 = 700 MB back, four times the ring's "
        "busiest rank; with more ranks the ring stays under 200 MB while the root's load grows with n.",
    )
)


# 29.3 ---------------------------------------------------------------------------------------------------
def ring_all_reduce_lists(xs, exchange):
    n = len(xs)
    chunks = [list(x.clone().tensor_split(n)) for x in xs]  # chunks[r][i]: rank r's copy of chunk i
    for s in range(n - 1):  # reduce-scatter: rank r sends chunk (r - s) % n, adds what arrives from r - 1
        received = exchange([chunks[r][(r - s) % n] for r in range(n)])
        for r in range(n):
            i = (r - 1 - s) % n  # the chunk its left neighbour sent
            chunks[r][i] = chunks[r][i] + received[r]
    for s in range(n - 1):  # all-gather: pass the finished chunks on, copied
        received = exchange([chunks[r][(r + 1 - s) % n] for r in range(n)])
        for r in range(n):
            chunks[r][(r - s) % n] = received[r]
    return [torch.cat(c) for c in chunks]


def _everyone_sends_everything(xs, exchange):
    total = xs[0].clone()
    for x in xs[1:]:
        total = total + x  # the sum, but no rank ever talked to another
    return [total.clone() for _ in xs]


class _Ring:
    """The network of the checker: exchange(outgoing) delivers rank r's message to rank r + 1, and logs it."""

    def __init__(self, n: int, chunk: int):
        self.n, self.chunk, self.calls = n, chunk, 0

    def exchange(self, outgoing):
        outgoing = list(outgoing)
        assert len(outgoing) == self.n, f"exchange takes one message per rank ({self.n}), got {len(outgoing)}"
        for r, message in enumerate(outgoing):
            size = torch.as_tensor(message).numel()
            assert size <= self.chunk, (
                f"rank {r} sent {size} numbers in one message; the ring sends one chunk (at most "
                f"{self.chunk}) per step"
            )
        self.calls += 1
        return [torch.as_tensor(outgoing[(r - 1) % self.n]).clone() for r in range(self.n)]


def _check_ring(answer) -> None:
    assert callable(answer), f"expected a function ring_all_reduce(xs, exchange), got {type(answer).__name__}"
    g = torch.Generator().manual_seed(293)
    for n, N in ((1, 5), (2, 6), (3, 10), (4, 4), (5, 23), (8, 50)):
        xs = [torch.randn(N, generator=g, dtype=torch.float64) for _ in range(n)]
        ring = _Ring(n, -(-N // n))
        got = answer([x.clone() for x in xs], ring.exchange)
        assert got is not None, "your function returned None: did you forget `return`?"
        got = list(got)
        assert len(got) == n, f"return one tensor per rank ({n}), got {len(got)}"
        assert ring.calls == 2 * (n - 1), (
            f"with n = {n} ranks the ring takes 2 (n - 1) = {2 * (n - 1)} steps of exchange, you made "
            f"{ring.calls}: every number must travel through exchange, one chunk per rank per step"
        )
        total = sum(xs)
        for r, t in enumerate(got):
            t = torch.as_tensor(t)
            assert t.shape == (N,), f"rank {r}'s result has shape {tuple(t.shape)}, not ({N},)"
            assert torch.allclose(t, total), f"with n = {n}, rank {r} does not end with the sum over ranks"


register(
    Exercise(
        key="29.3",
        title="build it: ring all-reduce on lists",
        checker=_check_ring,
        hint="cut every rank's tensor into n chunks (tensor_split). Reduce-scatter: n - 1 calls of exchange; "
        "in call s rank r sends its chunk (r - s) mod n, and adds what it receives (chunk (r - 1 - s) mod n) "
        "into its own copy. All-gather: n - 1 more calls, sending the finished chunk (r + 1 - s) mod n and "
        "overwriting with what arrives. torch.cat the chunks at the end.",
        solution=ring_all_reduce_lists,
        wrong=_everyone_sends_everything,  # the right numbers, with no communication at all
        explanation="The same schedule as helpers.distributed.ring_all_reduce, with exchange standing in "
        "for dist.isend and dist.recv: every call moves one chunk of N / n numbers per rank, 2 (n - 1) calls "
        "in all, so each rank sends 2 (n - 1) / n N numbers whatever n is. The chunks need not be equal: "
        "tensor_split gives the first N mod n chunks one extra element.",
    )
)

# 29.4 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="29.4",
        title="forgetting to divide",
        checker=matches_value(4.0, atol=1e-9, what="the factor"),
        hint="each rank's loss is already the mean over its own shard. What does summing n such gradients "
        "give, compared with their mean?",
        solution=4.0,
        wrong=1.0,  # 'the loss is a mean, so it is already right'
        explanation="Each rank's gradient is the gradient of its shard's mean loss. The mean over the "
        "ranks is the gradient of the global batch mean; the sum is n = 4 times that. With plain SGD that is "
        "the same as a learning rate 4 times too large. (Adam would mostly hide it: it divides by the "
        "gradient's own scale.)",
    )
)


# 29.5 ---------------------------------------------------------------------------------------------------
def _yes_or_no(answer) -> None:
    assert isinstance(answer, bool), f"answer True or False, got {type(answer).__name__}"
    assert answer is False, (
        "not bit for bit: the same numbers are added in a different order (32 terms in one product against "
        "16 + 16 and a sum over ranks)"
    )


register(
    Exercise(
        key="29.5",
        title="predict: data parallel, bit for bit?",
        checker=_yes_or_no,
        hint="the gradient is a sum over the examples. One process adds 32 terms in one matrix product; two "
        "ranks add 16 each and then add the halves. Is float32 addition associative?",
        solution=False,
        wrong=True,  # "the maths is identical, so the numbers are"
        explanation="The maths is identical, the rounding is not: floating-point addition is not "
        "associative, so a different order of the same additions can change the last bits of a gradient. "
        "The differences are around 1e-8, far below anything that matters for training, but they are not "
        "zero; the two DDP ranks, which apply the very same averaged gradient, do stay bit-identical to "
        "each other.",
    )
)


# 29.6 ---------------------------------------------------------------------------------------------------
def split_for_tensor_parallel(W1, b1, W2, n):
    H = W1.shape[0]
    size = H // n  # hidden units per rank (n divides H here)
    parts = []
    for r in range(n):
        rows = slice(r * size, (r + 1) * size)  # rank r's block of hidden units
        parts.append((W1[rows], b1[rows], W2[:, rows]))  # (H/n, C), (H/n,), (C, H/n)
    return parts


def _split_w2_like_w1(W1, b1, W2, n):
    size = W1.shape[0] // n
    return [
        (W1[r * size : (r + 1) * size], b1[r * size : (r + 1) * size], W2[r * size : (r + 1) * size])
        for r in range(n)
    ]


def _check_split(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(29)
    for n, C, per_rank in ((1, 3, 4), (2, 4, 2), (4, 8, 8), (3, 6, 5), (8, 5, 1)):
        H = n * per_rank
        W1, b1 = torch.randn(H, C, generator=g), torch.randn(H, generator=g)
        W2, x = torch.randn(C, H, generator=g), torch.randn(2, 3, C, generator=g)
        parts = answer(W1.clone(), b1.clone(), W2.clone(), n)
        assert parts is not None, "your function returned None: did you forget `return`?"
        parts = list(parts)
        assert len(parts) == n, f"with n = {n} ranks return {n} triples (W1_r, b1_r, W2_r), got {len(parts)}"
        for r, part in enumerate(parts):
            assert len(part) == 3, f"rank {r}: return a triple (W1_r, b1_r, W2_r)"
            shapes = tuple(tuple(torch.as_tensor(t).shape) for t in part)
            want = ((per_rank, C), (per_rank,), (C, per_rank))
            assert shapes == want, f"n = {n}, H = {H}, C = {C}: rank {r}'s shapes are {shapes}, not {want}"
        full = F.gelu(x @ W1.T + b1, approximate="tanh") @ W2.T  # (2, 3, C), the whole MLP without b2
        summed = sum(mlp_shard_forward(x, *(torch.as_tensor(t) for t in part)) for part in parts)
        assert torch.allclose(summed, full, atol=1e-5), (
            f"n = {n}: the ranks' partial outputs do not add up to the MLP's output; do W2_r's columns "
            "belong to the same hidden units as W1_r's rows?"
        )


register(
    Exercise(
        key="29.6",
        title="build it: split an MLP across ranks",
        checker=by_hand(
            _check_split,
            {"helpers.distributed.split_mlp": "slice the rows of W1 and b1 and the columns of W2 yourself."},
        ),
        hint="W1 is (H, C): its rows are the hidden units, so rank r takes a block of H / n rows, and the "
        "same entries of b1. W2 is (C, H): the hidden units are its COLUMNS, so rank r takes the same "
        "block of columns.",
        solution=split_for_tensor_parallel,
        wrong=_split_w2_like_w1,  # W2 cut along its rows, like W1
        explanation="A hidden unit j is row j of W1, entry j of b1 and column j of W2; tensor parallelism "
        "gives each rank whole hidden units, so all three are cut at the same indices. Rank r's output "
        "W2_r gelu(W1_r x + b1_r) is then the part of the sum over hidden units that belongs to its units, "
        "and one all-reduce adds the parts. This is Megatron-LM's MLP: W1 'column parallel', W2 'row "
        "parallel' in x @ W.T terms.",
    )
)
