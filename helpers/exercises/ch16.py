"""Exercises for chapter 16: attention."""

import numpy as np
import torch
import torch.nn.functional as F

from helpers.attention import causal_mask
from helpers.exercises.core import Exercise, by_hand, matches_value, register

# 16.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="16.1",
        title="predict: unscaled scores in a wide head",
        checker=matches_value(0.96, atol=0.11, what="your predicted largest weight"),
        hint="at d = 1024 the raw scores have standard deviation sqrt(1024) = 32. The best of 16 normal "
        "draws typically beats the second best by about half a standard deviation: some 15 points of "
        "score. What is exp(-15) next to 1?",
        solution=0.96,
        wrong=1 / 16,  # "random keys, so no key is preferred": true of the keys, not of the scores
        explanation="Random keys favour no key on average, but each query's 16 scores are spread with "
        "standard deviation 32, so its best key usually beats the runner-up by more than ten, and exp(10) is "
        "22,000: the softmax is nearly one-hot (0.96 on average, measured below) before any learning. Each "
        "query then passes almost no gradient to the keys it ignores. Dividing by sqrt(d) puts the spread "
        "back at 1, and the largest weight stays near 0.25 at every width.",
    )
)

# 16.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="16.2",
        title="predict: a query that looks for nothing",
        checker=matches_value(1 / 8, atol=0.005, what="your predicted weight"),
        hint="a zero query scores 0 against every key. What does a softmax do with eight equal scores? "
        "(Position 7 may see keys 0 to 7.)",
        solution=1 / 8,
        wrong=0.0,  # "it looks for nothing, so it attends to nothing"
        explanation="Every visible key scores q . k = 0, and the softmax of eight equal scores is 1/8 each: "
        "'because' spreads its weight evenly over itself and the seven words before it, 'cat' included. "
        "The weights always sum to 1, so attention cannot answer 'nothing found'; trained models often park "
        "such weight on the first token instead (an 'attention sink').",
    )
)


# 16.3 ---------------------------------------------------------------------------------------------------
def causal_attention(Q, K, V):
    """softmax(Q K^T / sqrt(d) + mask) V in numpy; the T_q queries are the LAST T_q of the T_k positions."""
    T_q, T_k = Q.shape[0], K.shape[0]
    scores = Q @ K.T / np.sqrt(Q.shape[1])  # (T_q, T_k)
    query_position = np.arange(T_q)[:, None] + (T_k - T_q)  # (T_q, 1): where each query sits
    allowed = np.arange(T_k)[None, :] <= query_position  # (T_q, T_k): no key after the query
    scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))  # (T_q, T_k); exp(-inf) = 0
    weights = weights / weights.sum(axis=1, keepdims=True)  # each row sums to 1
    return weights @ V  # (T_q, d_v)


def _mask_aligned_to_the_start(Q, K, V):
    scores = Q @ K.T / np.sqrt(Q.shape[1])
    scores = np.where(np.tril(np.ones(scores.shape, dtype=bool)), scores, -np.inf)  # query 0 sees key 0 only
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True) @ V


def _unscaled(Q, K, V):
    return causal_attention(Q * np.sqrt(Q.shape[1]), K, V)  # the scores are never divided by sqrt(d)


def _attention_cases() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(Q, K, V, PyTorch's answer) on random shapes, worked out once, before any check refuses torch."""
    rng, cases = np.random.default_rng(16), []
    for T_q, T_k in [(1, 1), (4, 4), (6, 6), (1, 5), (2, 7), (3, 4)] * 3:
        d, d_v = (int(n) for n in rng.integers(1, 7, size=2))
        Q, K, V = (rng.normal(size=(n, m)) * 2 for n, m in [(T_q, d), (T_k, d), (T_k, d_v)])
        want = F.scaled_dot_product_attention(
            *(torch.from_numpy(a) for a in (Q, K, V)), attn_mask=causal_mask(T_q, T_k)
        )
        cases.append((Q, K, V, want.numpy()))
    return cases


_ATTENTION_CASES = _attention_cases()


def _check_attention(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for Q, K, V, want in _ATTENTION_CASES:
        got = answer(Q.copy(), K.copy(), V.copy())
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=float)
        shapes = f"Q {Q.shape}, K {K.shape}, V {V.shape}"
        assert got.shape == want.shape, f"for {shapes} you return shape {got.shape}, not {want.shape}"
        if np.allclose(got, want, atol=1e-9):
            continue
        if np.allclose(got, _mask_aligned_to_the_start(Q, K, V), atol=1e-9):
            raise AssertionError(
                f"for {shapes} your first query sees only the first key: with fewer queries than keys "
                "the queries are the LAST positions (the keys before them are a KV cache)"
            )
        if np.allclose(got, _unscaled(Q, K, V), atol=1e-9):
            raise AssertionError(f"for {shapes} your scores are not divided by sqrt(d)")
        raise AssertionError(
            f"for {shapes} you return\n{np.array2string(got, precision=4)}\nbut attention gives\n"
            f"{np.array2string(want, precision=4)}"
        )


_BY_HAND = "Write the scores, the mask and the softmax yourself, in numpy."
_OWN = "That is the chapter's own answer; write yours."
_MASK = "Build the mask from position indices (or np.tril) yourself."
_SOFTMAX = "Write the softmax with np.exp (subtract each row's largest score first)."
register(
    Exercise(
        key="16.3",
        title="causal attention, by hand",
        checker=by_hand(
            _check_attention,
            {
                "torch.nn.functional.scaled_dot_product_attention": _BY_HAND,
                "torch.nn.functional.multi_head_attention_forward": _BY_HAND,
                "torch.nn.MultiheadAttention": _BY_HAND,
                "helpers.attention.scaled_dot_product_attention": _OWN,
                "helpers.attention.SelfAttention": _BY_HAND,
                "helpers.attention.causal_mask": _MASK,
                "torch.softmax": _SOFTMAX,
                "torch.nn.functional.softmax": _SOFTMAX,
                "torch.Tensor.softmax": _SOFTMAX,
                "scipy.special.softmax": _SOFTMAX,
            },
        ),
        hint="four steps: scores = Q @ K.T / sqrt(d); query i sits at position i + (T_k - T_q), so key j is "
        "allowed when j <= i + (T_k - T_q) - set the other scores to -inf; a softmax along each row "
        "(np.exp of the scores minus the row's max, divided by the row's sum); weights @ V.",
        solution=causal_attention,
        wrong=_mask_aligned_to_the_start,
        explanation="Scaling keeps the scores' spread near 1 whatever d is; -inf before the softmax gives "
        "the future keys weight exactly 0 while the rest still sum to 1. With a KV cache the keys hold "
        "T_k - T_q earlier positions, so the triangle moves right by that much and the last query sees "
        "every key. np.tril with no offset (PyTorch's is_causal convention) would let the first new token "
        "see only the first token of the whole text.",
    )
)

# 16.4 ---------------------------------------------------------------------------------------------------
LAYERS, HEADS, CONTEXT, BATCH, FLOAT32 = 12, 12, 1024, 8, 4
_KEPT_GIB = LAYERS * HEADS * BATCH * CONTEXT**2 * FLOAT32 / 2**30
register(
    Exercise(
        key="16.4",
        title="the attention weights a training step keeps",
        checker=matches_value(_KEPT_GIB, atol=0.05, what="the GiB"),
        hint="one layer's weights are a T x T matrix per head and per sequence of the batch; autograd keeps "
        "them until the backward pass (the softmax's backward needs its output). Multiply by the layers, "
        "then by 4 bytes, and divide by 2^30.",
        solution=_KEPT_GIB,
        wrong=_KEPT_GIB / LAYERS,  # one layer only: but the backward pass starts after the LAST layer
        explanation="12 layers x 12 heads x 8 sequences x 1024^2 entries x 4 bytes = 4.5 GiB, for the "
        "weights alone, before any activation of the MLPs. They must all be kept, because the backward pass "
        "only starts once the last layer has run. A fused kernel (FlashAttention) keeps none of them: it "
        "stores one number per query row and recomputes the weights, tile by tile, during the backward "
        "pass.",
    )
)
