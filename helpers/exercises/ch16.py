"""Exercises for chapter 16: attention."""

import numpy as np

from helpers.attention import causal_mask
from helpers.exercises.core import Exercise, matches_function, matches_value, register


# 16.1 ---------------------------------------------------------------------------------------------------
def soft_lookup(q, K, V, temperature):
    """Weighted average of the rows of V, weighted by softmax(K q / temperature)."""
    scores = K @ q / temperature  # (n,): one score per key
    weights = np.exp(scores - scores.max())  # subtracting the max changes nothing but avoids overflow
    weights = weights / weights.sum()  # (n,): a probability distribution over the keys
    return weights @ V  # (d_v,)


def _lookup_inputs(rng: np.random.Generator) -> tuple:
    n, d, d_v = (int(x) for x in rng.integers(1, 7, size=3))
    temperature = np.array(rng.choice([0.25, 0.5, 1.0, 2.0, 4.0]))
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.normal(size=(n, d_v)), temperature


def _temperature_upside_down(q, K, V, temperature):
    scores = K @ q * temperature  # multiplies where it should divide
    weights = np.exp(scores - scores.max())
    return weights / weights.sum() @ V


register(
    Exercise(
        key="16.1",
        title="a soft lookup",
        checker=matches_function(soft_lookup, _lookup_inputs),
        hint="three steps: a score per key (K @ q), divided by the temperature; softmax of the scores "
        "(exponentiate, then divide by the sum); the weighted average of the rows of V (weights @ V).",
        solution=soft_lookup,
        wrong=_temperature_upside_down,
        explanation="Dividing by the temperature spreads the scores out when it is small (a hard, "
        "dict-like lookup) and squeezes them together when it is large (an even average). Multiplying "
        "does the reverse.",
    )
)

# 16.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="16.2",
        title="how big is a dot product?",
        checker=matches_value(16.0, atol=1e-6, what="the standard deviation"),
        hint="q . k is a sum of 256 products q_i k_i. Each product has mean 0 and variance 1, and they are "
        "independent, so their variances add. The standard deviation is the square root of the variance.",
        solution=16.0,
        wrong=256.0,  # the variance, not the standard deviation
        explanation="Each q_i k_i has variance E[q_i^2] E[k_i^2] = 1, and the 256 terms are independent, so "
        "the variance of the sum is 256 and its standard deviation is sqrt(256) = 16. Dividing the scores "
        "by sqrt(d) = 16 brings them back to standard deviation 1, whatever the head size.",
    )
)


# 16.3 ---------------------------------------------------------------------------------------------------
def causal_mask_with_cache(T_q, T_k):
    """(T_q, T_k) booleans: the T_q queries are the LAST T_q of the T_k positions."""
    return np.tril(np.ones((T_q, T_k), dtype=bool), k=T_k - T_q)


def _mask_aligned_to_the_start(T_q, T_k):
    return np.tril(np.ones((T_q, T_k), dtype=bool))  # query 0 sees key 0 only: wrong with a cache


def _check_mask(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for T_q, T_k in [(1, 1), (4, 4), (1, 6), (3, 7), (5, 8)]:
        got = answer(T_q, T_k)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got)
        want = causal_mask(T_q, T_k).numpy()
        assert got.shape == want.shape, (
            f"for T_q={T_q}, T_k={T_k} you return shape {got.shape}, not {want.shape}"
        )
        assert np.array_equal(got.astype(bool), want), (
            f"for T_q={T_q}, T_k={T_k} you return\n{got.astype(int)}\nbut the mask is\n{want.astype(int)}"
        )


register(
    Exercise(
        key="16.3",
        title="a causal mask for a KV cache",
        checker=_check_mask,
        hint="the queries are positions T_k - T_q, ..., T_k - 1. Query row i is position i + (T_k - T_q), "
        "and it may see every key up to and including that position. np.tril takes an offset k for the "
        "diagonal.",
        solution=causal_mask_with_cache,
        wrong=_mask_aligned_to_the_start,
        explanation="With a KV cache the keys hold T_k - T_q earlier positions before the new ones, so the "
        "diagonal moves right by T_k - T_q. np.tril(..., k=0), PyTorch's is_causal convention, would let the "
        "first new token see only the very first token of the whole text.",
    )
)

# 16.4 ---------------------------------------------------------------------------------------------------
C = 768
register(
    Exercise(
        key="16.4",
        title="parameters of a multi-head attention layer",
        checker=matches_value(4 * C * C + 4 * C, what="the parameter count"),
        hint="count c_attn (a Linear from C to 3C, with a bias) and c_proj (C to C, with a bias). Does the "
        "number of heads appear anywhere in those shapes?",
        solution=4 * C * C + 4 * C,
        wrong=4 * C * C,  # forgets the biases
        explanation="c_attn has a 3C x C weight and 3C biases, c_proj a C x C weight and C biases: "
        "4 C^2 + 4 C = 2,362,368 for C = 768. The 12 heads only decide how those channels are split up, "
        "so the count is the same for 1 head or 64.",
    )
)
