"""Exercises for chapter 19: generating text."""

import numpy as np
import torch

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.generate import full_passes, top_p_filter

# 19.1 ---------------------------------------------------------------------------------------------------
PROBS = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
register(
    Exercise(
        key="19.1",
        title="top-k by hand",
        checker=matches_value([5 / 7, 2 / 7, 0.0, 0.0, 0.0], atol=1e-6, what="your distribution"),
        hint="keep the two largest probabilities, set the others to zero, and remember that what is left "
        "must add up to 1 again.",
        solution=np.array([5 / 7, 2 / 7, 0.0, 0.0, 0.0]),
        wrong=np.array([0.5, 0.2, 0.0, 0.0, 0.0]),  # forgot to renormalise
        explanation="Top-k with k = 2 keeps 0.5 and 0.2. Setting the other logits to -inf and taking the "
        "softmax again divides the survivors by their total, 0.7: 0.5 / 0.7 = 5/7 and 0.2 / 0.7 = 2/7.",
    )
)


# 19.2 ---------------------------------------------------------------------------------------------------
def _distribution(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    v = int(rng.integers(2, 12))
    probs = rng.dirichlet(np.full(v, rng.choice([0.2, 1.0, 3.0])))
    return probs, float(rng.choice([0.1, 0.5, 0.75, 0.9, 0.95]))


def _nucleus_reference(probs, p):
    logits = torch.log(torch.as_tensor(np.asarray(probs, dtype=np.float64)))
    return torch.softmax(top_p_filter(logits, float(p)), dim=-1).numpy()


def _stops_too_early(probs, p):
    order = np.argsort(-probs)
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[np.cumsum(probs[order]) < p]] = True  # misses the token that carries the total over p
    keep[order[0]] = True
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum()


def _nucleus(probs, p):
    order = np.argsort(-probs)  # most likely first
    mass_before = np.cumsum(probs[order]) - probs[order]  # probability of the tokens ahead of each one
    keep = np.zeros(len(probs), dtype=bool)
    keep[order[mass_before < p]] = True  # keep a token while the set so far is still short of p
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum()


register(
    Exercise(
        key="19.2",
        title="the nucleus",
        checker=matches_function(_nucleus_reference, _distribution, trials=40, atol=1e-9),
        hint="sort the probabilities from largest to smallest and walk down the list. A token is kept if "
        "the tokens before it add up to less than p - so the token that carries the total over p is kept. "
        "Then renormalise.",
        solution=_nucleus,
        wrong=_stops_too_early,
        explanation="Top-p keeps the smallest set of most likely tokens whose probability reaches p. Walking "
        "down the sorted list, the set is still short of p exactly when the mass *before* the current token "
        "is below p, so that is the test. Stopping when the running total itself reaches p drops the token "
        "that gets you there, and the kept set then holds less than p.",
    )
)


# 19.3 ---------------------------------------------------------------------------------------------------
def _generation_shape(rng: np.random.Generator) -> tuple[int, int, int]:
    block = int(rng.integers(4, 40))
    return int(rng.integers(1, 2 * block)), int(rng.integers(1, 3 * block)), block


def _forgets_the_first_pass(prompt_len, new_tokens, block_size):
    return max(0, prompt_len + new_tokens - 1 - block_size)


def _passes(prompt_len, new_tokens, block_size):
    # step 0 always runs the whole (cropped) prompt to fill the cache
    # step j >= 1 sees prompt_len + j tokens; it can use the cache only while they fit in block_size
    count = 1
    for j in range(1, new_tokens):
        if prompt_len + j > block_size:
            count += 1
    return count


register(
    Exercise(
        key="19.3",
        title="when the cache stops helping",
        checker=matches_function(full_passes, _generation_shape, trials=60),
        hint="step 0 always runs the whole prompt. At step j (j = 1, 2, ...) the sequence is prompt_len + j "
        "tokens long; the cache can take one more token only while that still fits in block_size.",
        solution=_passes,
        wrong=_forgets_the_first_pass,
        explanation="The first step fills the cache from the whole prompt (a full pass). Later steps feed "
        "one token while prompt_len + j <= block_size; after that, the model cannot take another position, "
        "so every step is a full pass over the cropped window. So the count is "
        "1 + max(0, min(new_tokens - 1, prompt_len + new_tokens - 1 - block_size)).",
    )
)

# 19.4 ---------------------------------------------------------------------------------------------------
GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "context": 1024, "bytes_per_number": 2}
register(
    Exercise(
        key="19.4",
        title="the size of a KV cache",
        checker=matches_value(2 * 12 * 1024 * 768 * 2, what="the number of bytes"),
        hint="each layer caches a key vector AND a value vector for every position, each n_embd numbers "
        "wide (all heads together).",
        solution=2 * 12 * 1024 * 768 * 2,
        wrong=12 * 1024 * 768 * 2,  # forgot that both k and v are cached
        explanation="2 (k and v) x 12 layers x 1024 positions x 768 numbers x 2 bytes = 37,748,736 bytes, "
        "36 MiB for one sequence - and a server keeps one such cache per concurrent request.",
    )
)
