"""Exercises for chapter 17: the transformer block."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.transformer import apply_rope, sinusoidal_encoding


# 17.1 ---------------------------------------------------------------------------------------------------
def gelu_tanh(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _gelu_exact(x):  # the erf form: close, but not what GPT-2 computes
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _gelu_inputs(rng: np.random.Generator) -> tuple:
    return (rng.normal(scale=3.0, size=int(rng.integers(1, 20))),)


register(
    Exercise(
        key="17.1",
        title="GPT-2's GELU",
        checker=matches_function(gelu_tanh, _gelu_inputs),
        hint="translate the formula symbol by symbol with np.tanh and np.sqrt; x**3 is the cube.",
        solution=gelu_tanh,
        wrong=_gelu_exact,
        explanation="GPT-2 uses the tanh approximation of GELU (Hugging Face calls it 'gelu_new'). It "
        "differs from the exact erf form by up to about 0.0005 - small, but enough that logits drift away "
        "from the reference if you load GPT-2's weights with the wrong one.",
    )
)

# 17.2 ---------------------------------------------------------------------------------------------------
C = 768
register(
    Exercise(
        key="17.2",
        title="parameters of one block",
        checker=matches_value(12 * C * C + 13 * C, what="the parameter count"),
        hint="add up: ln_1 and ln_2 (weight and bias, C each), attention (c_attn C -> 3C and c_proj C -> C, "
        "with biases), the MLP (c_fc C -> 4C and c_proj 4C -> C, with biases).",
        solution=12 * C * C + 13 * C,
        wrong=12 * C * C,  # forgets the biases and the LayerNorms
        explanation="Attention: 4C^2 + 4C. MLP: 4C^2 + 4C + 4C^2 + C = 8C^2 + 5C. Two LayerNorms: 4C. Total "
        "12C^2 + 13C = 7,087,872 for C = 768; GPT-2 small has 12 of them (85M of its 124M parameters). "
        "The 12C^2 term is almost all of it, and two thirds of that is the MLP.",
    )
)


# 17.3 ---------------------------------------------------------------------------------------------------
def sinusoidal(T, d):
    """(T, d) table: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    p = np.arange(T)[:, None]  # (T, 1)
    w = 10000.0 ** (-np.arange(0, d, 2) / d)  # (d/2,): 2i / d for i = 0, 1, ...
    pe = np.zeros((T, d))
    pe[:, 0::2] = np.sin(p * w)
    pe[:, 1::2] = np.cos(p * w)
    return pe


def _frequencies_off_by_two(T, d):
    p = np.arange(T)[:, None]
    w = 10000.0 ** (-np.arange(d // 2) / d)  # i / d instead of 2i / d
    pe = np.zeros((T, d))
    pe[:, 0::2] = np.sin(p * w)
    pe[:, 1::2] = np.cos(p * w)
    return pe


def _check_table(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for T, d in [(1, 2), (5, 4), (12, 8), (30, 16)]:
        got = answer(T, d)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=float)
        want = sinusoidal_encoding(T, d).double().numpy()
        assert got.shape == want.shape, f"for T={T}, d={d} you return shape {got.shape}, not {want.shape}"
        bad = np.argwhere(~np.isclose(got, want, atol=1e-5))
        assert len(bad) == 0, (
            f"for T={T}, d={d}, entry PE[{bad[0][0]}, {bad[0][1]}] is {got[tuple(bad[0])]:.5f}, "
            f"but should be {want[tuple(bad[0])]:.5f}"
        )


register(
    Exercise(
        key="17.3",
        title="the sinusoidal table",
        checker=_check_table,
        hint="channel pair i (channels 2i and 2i+1) uses the frequency w_i = 10000^(-2i/d); the even channel "
        "holds sin(p w_i), the odd one cos(p w_i). np.arange(0, d, 2) gives the 2i values directly.",
        solution=sinusoidal,
        wrong=_frequencies_off_by_two,
        explanation="With w_i = 10000^(-2i/d) the d/2 frequencies run from 1 (a full turn every 6.3 "
        "positions) down to nearly 1/10000, evenly spaced on a log scale: fast hands for nearby positions, "
        "slow hands for far ones. Writing i / d instead halves the spread of the slow end.",
    )
)


# 17.4 ---------------------------------------------------------------------------------------------------
def rope(x, offset):
    """Rotate each channel pair (2i, 2i+1) of row p of x (T, d) by the angle (offset + p) * 10000^(-2i/d)."""
    T, d = x.shape
    angles = (offset + np.arange(T))[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)  # (T, d/2)
    x1, x2 = x[:, 0::2], x[:, 1::2]  # (T, d/2) each
    out = np.empty_like(x)
    out[:, 0::2] = x1 * np.cos(angles) - x2 * np.sin(angles)
    out[:, 1::2] = x1 * np.sin(angles) + x2 * np.cos(angles)
    return out


def _rope_forgets_the_offset(x, offset):
    return rope(x, 0)  # every chunk starts again at position 0: wrong as soon as a KV cache is used


def _rope_reference(x, offset):
    return apply_rope(torch.from_numpy(x), offset=int(offset)).numpy()


def _rope_inputs(rng: np.random.Generator) -> tuple:
    T, half = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    return rng.normal(size=(T, 2 * half)), np.array(int(rng.integers(0, 50)))


register(
    Exercise(
        key="17.4",
        title="RoPE with an offset",
        checker=matches_function(_rope_reference, _rope_inputs, atol=1e-9),
        hint="row p of x sits at position offset + p. For each pair i the angle is that position times "
        "10000^(-2i/d); rotate (x[2i], x[2i+1]) by it: (a cos - b sin, a sin + b cos).",
        solution=rope,
        wrong=_rope_forgets_the_offset,
        explanation="When a KV cache holds the first `offset` positions, the new rows are not at positions "
        "0, 1, ... but at offset, offset + 1, ... Forgetting the offset gives every new token the angle of "
        "the start of the text, and the relative positions the model sees are wrong.",
    )
)

# 17.5 ---------------------------------------------------------------------------------------------------
# A Llama-3-8B-shaped model: 32 layers, 32 query heads and 8 key/value heads of 128 channels, bf16.
KV_LAYERS, KV_HEADS, HEAD_DIM, KV_TOKENS, KV_BYTES = 32, 8, 128, 4096, 2
register(
    Exercise(
        key="17.5",
        title="the KV cache with grouped-query attention",
        checker=matches_value(
            2 * KV_LAYERS * KV_HEADS * HEAD_DIM * KV_TOKENS * KV_BYTES, what="the byte count"
        ),
        hint="per token and layer the cache holds one key and one value vector for each key/value head (not "
        "each query head): 2 x n_kv_head x head_dim numbers, 2 bytes each in bf16. Then times layers and "
        "tokens.",
        solution=2 * KV_LAYERS * KV_HEADS * HEAD_DIM * KV_TOKENS * KV_BYTES,
        wrong=2 * KV_LAYERS * 32 * HEAD_DIM * KV_TOKENS * KV_BYTES,  # counts the 32 query heads
        explanation="2 x 32 x 8 x 128 x 4096 x 2 bytes = 536,870,912 bytes = 0.5 GiB for one 4096-token "
        "sequence. With a key/value head per query head (32) it would be 2 GiB: grouped-query attention "
        "divides the cache, and so the memory a server needs per concurrent user, by n_head / n_kv_head = 4.",
    )
)
