"""Exercises for chapter 29: scaling out."""

from __future__ import annotations

import numpy as np

from helpers.exercises.core import Exercise, matches_value, register


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
register(
    Exercise(
        key="29.3",
        title="Adam's memory with ZeRO-1",
        checker=matches_value([80e6, 20e6], atol=1.0, what="(plain Adam bytes, ZeRO-1 bytes) per rank"),
        hint="Adam keeps two float32 numbers per parameter (the two moments). ZeRO-1 gives each of the n "
        "ranks the moments of 1 / n of the parameters.",
        solution=(80_000_000, 20_000_000),
        wrong=(40_000_000, 10_000_000),  # one moment per parameter, not two
        explanation="10M parameters x 2 moments x 4 bytes = 80 MB of optimizer state on every rank with "
        "plain Adam (the weights and gradients are extra). ZeRO-1 splits it four ways: 20 MB per rank.",
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
