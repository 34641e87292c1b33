"""Exercises for chapter 19: generating text."""

import numpy as np
import torch
import torch.nn.functional as F

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
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
        checker=by_hand(
            matches_function(_nucleus_reference, _distribution, trials=40, atol=1e-9),
            {
                "helpers.generate.top_p_filter": "sort the probabilities with numpy and walk down them.",
                "helpers.generate.next_token_probs": "sort the probabilities with numpy and walk down them.",
                "transformers.generation.logits_process.TopPLogitsWarper": "sort the probabilities with "
                "numpy and walk down them.",
            },
        ),
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
        checker=by_hand(
            matches_function(full_passes, _generation_shape, trials=60),
            {"helpers.generate.full_passes": "count the steps from prompt_len, new_tokens and block_size."},
        ),
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
# One decode step of single-head attention with a KV cache: append this token's key and value, then attend.
def _sequences(seed: int = 0, n: int = 12) -> list[tuple[np.ndarray, ...]]:
    """Random (Q, K, V) sequences, and the causal attention of each computed once by torch's
    F.scaled_dot_product_attention over the whole sequence: the uncached forward the steps must match."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        T, d = int(rng.integers(1, 9)), int(rng.choice([1, 2, 4, 8]))
        Q, K, V = (rng.normal(size=(T, d)) * rng.choice([0.5, 2.0]) for _ in range(3))
        full = F.scaled_dot_product_attention(*(torch.as_tensor(a) for a in (Q, K, V)), is_causal=True)
        out.append((Q, K, V, full.numpy()))  # (T, d) each
    return out


_SEQUENCES = _sequences()


def _check_kv_step(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for Q, K, V, full in _SEQUENCES:
        T, d = Q.shape
        cache_k, cache_v = np.zeros((0, d)), np.zeros((0, d))  # (0, d): an empty cache
        for t in range(T):
            got = answer(cache_k.copy(), cache_v.copy(), Q[t].copy(), K[t].copy(), V[t].copy())
            if got is None:
                raise AssertionError("your function returned None: did you forget `return out, K, V`?")
            assert isinstance(got, tuple) and len(got) == 3, "return three things: (out, K, V)"
            out, cache_k, cache_v = (np.asarray(a, dtype=float) for a in got)
            assert cache_k.shape == (t + 1, d) and cache_v.shape == (t + 1, d), (
                f"after step {t} the caches should hold {t + 1} rows of {d}, got {cache_k.shape} and "
                f"{cache_v.shape}"
            )
            assert np.allclose(cache_k, K[: t + 1]) and np.allclose(cache_v, V[: t + 1]), (
                f"after step {t} the caches should be the keys and values of tokens 0..{t}, in order "
                "(the new one last)"
            )
            assert out.shape == (d,), f"out should be one vector of {d} numbers, got shape {out.shape}"
            assert np.allclose(out, full[t], atol=1e-8), (
                f"step {t} of a {T}-token sequence: your out {np.array2string(out, precision=4)} is not "
                f"row {t} of the causal attention over the whole sequence, "
                f"{np.array2string(full[t], precision=4)}"
            )


def _kv_step(cache_k, cache_v, q, k, v):
    cache_k = np.vstack([cache_k, k[None]])  # (t + 1, d): this token's key appended
    cache_v = np.vstack([cache_v, v[None]])  # (t + 1, d)
    scores = cache_k @ q / np.sqrt(len(q))  # (t + 1,): the new query against every cached key
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()  # (t + 1,) softmax
    return weights @ cache_v, cache_k, cache_v  # (d,), (t + 1, d), (t + 1, d)


def _attends_before_appending(cache_k, cache_v, q, k, v):
    scores = cache_k @ q / np.sqrt(len(q))  # the new token cannot see itself
    weights = np.exp(scores - scores.max(initial=0.0))
    out = weights @ cache_v / max(weights.sum(), 1e-300)
    return out, np.vstack([cache_k, k[None]]), np.vstack([cache_v, v[None]])


_NO_ATTENTION = "write the softmax of q K^T / sqrt(d) and the weighted sum of the values yourself."
register(
    Exercise(
        key="19.4",
        title="a KV-cache step",
        checker=by_hand(
            _check_kv_step,
            {
                "torch.nn.functional.scaled_dot_product_attention": _NO_ATTENTION,
                "helpers.attention.scaled_dot_product_attention": _NO_ATTENTION,
            },
        ),
        hint="first append: the new key as the last row of cache_k and the new value as the last row of "
        "cache_v (np.vstack). Then the new query attends over ALL the rows, itself included: scores = "
        "cache_k @ q / sqrt(d), a softmax, and the weighted sum of the rows of cache_v.",
        solution=_kv_step,
        wrong=_attends_before_appending,
        explanation="The causal mask lets token t see tokens 0..t, itself included, so its key and value "
        "must be in the cache before it attends; attending first and appending after leaves every token "
        "blind to itself (and the first token with nothing to attend to). Each step costs one row of scores, "
        "t + 1 dot products, instead of the whole (t + 1) x (t + 1) triangle the uncached forward "
        "recomputes - and gives the same row, which the checker compares with torch's causal attention over "
        "the whole sequence.",
    )
)

# 19.5 ---------------------------------------------------------------------------------------------------
CACHE_CHOICES = {
    "a": "about 64 times: the cached loop feeds the model 64 times fewer tokens",
    "b": "a few times: far less than the 64 times fewer tokens it feeds",
    "c": "no faster: attention over the growing cache costs as much as what the cache saves",
}


def _check_cache_choice(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in CACHE_CHOICES, (
        f"answer with one of the letters {sorted(CACHE_CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "b", f"not ({picked}): {CACHE_CHOICES[picked]}. Run the next cell and compare."


register(
    Exercise(
        key="19.5",
        title="the cache's speed-up (predict, then run)",
        checker=_check_cache_choice,
        hint="a step's time is not only arithmetic. How many separate PyTorch operations does one forward "
        "pass of 6 blocks run, and does their number depend on how many tokens they are given?",
        solution="b",
        wrong="a",  # time proportional to tokens fed
        explanation="Without the cache, 128 steps from a one-token prompt feed 1 + 2 + ... + 128 = 8,256 "
        "tokens; with it, 128: 64.5 times fewer. But a step of this 12-million-parameter model is a few "
        "hundred small operations, each with a fixed cost of microseconds whatever its size, and a "
        "matrix product over 100 rows costs far less than 100 products over one row. So the uncached step "
        "grows with t much more slowly than t, and the measured ratio is a few times. The ratio grows with "
        "the length and with the model: for a large model, where the arithmetic and the reading of the "
        "weights dominate, the saving approaches the count of tokens.",
    )
)
