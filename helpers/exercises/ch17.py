"""Exercises for chapter 17: the transformer block."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.transformer import Block, apply_rope, sinusoidal_encoding

# 17.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="17.1",
        title="predict: 24 blocks without residuals",
        checker=matches_value(1.0, atol=0.1, what="your predicted similarity"),
        hint="every attention layer replaces each token's vector by an average of the vectors before it. "
        "What happens to a set of vectors that you average with each other, again and again, 24 times?",
        solution=1.0,
        wrong=0.0,  # "random weights keep random tokens unrelated"
        explanation="Each attention layer mixes every token with the ones before it, and each LayerNorm "
        "removes the common size, so the tokens are pulled together layer after layer. Without the skip "
        "nothing carries a token's own vector past the averaging, and within a few blocks every token holds "
        "nearly the same vector (similarity about 1). With residuals the original vector rides along in the "
        "sum and the tokens stay distinct.",
    )
)


# 17.2 ---------------------------------------------------------------------------------------------------
def gelu_tanh(x):
    """GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _gelu_exact(x):  # the erf form: close, but not what GPT-2 computes
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _gelu_inputs(rng: np.random.Generator) -> tuple:
    return (rng.normal(scale=3.0, size=int(rng.integers(1, 20))),)


_NUMPY_GELU = "Translate the formula with np.tanh and np.sqrt."
register(
    Exercise(
        key="17.2",
        title="GPT-2's GELU",
        checker=by_hand(
            matches_function(gelu_tanh, _gelu_inputs),
            {
                "torch.nn.functional.gelu": _NUMPY_GELU,
                "torch.nn.GELU": _NUMPY_GELU,
                "torch.tanh": _NUMPY_GELU,
                "helpers.transformer.gelu": "That is the chapter's own answer; write yours.",
            },
        ),
        hint="translate the formula symbol by symbol with np.tanh and np.sqrt; x**3 is the cube.",
        solution=gelu_tanh,
        wrong=_gelu_exact,
        explanation="GPT-2 uses the tanh approximation of GELU (Hugging Face calls it 'gelu_new'). It "
        "differs from the exact erf form by up to about 0.0005 - small, but enough that logits drift away "
        "from the reference if you load GPT-2's weights with the wrong one.",
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


_TABLES = {(T, d): sinusoidal_encoding(T, d).double().numpy() for T, d in [(1, 2), (5, 4), (12, 8), (30, 16)]}


def _check_table(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for (T, d), want in _TABLES.items():  # the helper's tables, made before any check refuses the helper
        got = answer(T, d)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=float)
        assert got.shape == want.shape, f"for T={T}, d={d} you return shape {got.shape}, not {want.shape}"
        bad = np.argwhere(~np.isclose(got, want, atol=1e-5))
        assert len(bad) == 0, (
            f"for T={T}, d={d}, entry PE[{bad[0][0]}, {bad[0][1]}] is {got[tuple(bad[0])]:.5f}, "
            f"but should be {want[tuple(bad[0])]:.5f}"
        )


_OWN = "That is the chapter's own answer; write yours."
register(
    Exercise(
        key="17.3",
        title="the sinusoidal table",
        checker=by_hand(
            _check_table,
            {
                "helpers.transformer.sinusoidal_encoding": _OWN,
                "helpers.transformer.frequencies": "Work out the frequencies 10000^(-2i/d) yourself.",
            },
        ),
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


def _rope_cases() -> list[tuple[np.ndarray, int, np.ndarray]]:
    """(x, offset, apply_rope's answer) on random inputs, made before any check refuses the helper."""
    rng, cases = np.random.default_rng(17), []
    for _ in range(25):
        T, half = int(rng.integers(1, 7)), int(rng.integers(1, 5))
        x, offset = rng.normal(size=(T, 2 * half)), int(rng.integers(0, 50))
        cases.append((x, offset, apply_rope(torch.from_numpy(x), offset=offset).numpy()))
    return cases


_ROPE_CASES = _rope_cases()


def _check_rope(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for x, offset, want in _ROPE_CASES:
        got = answer(x.copy(), offset)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=float)
        assert got.shape == want.shape, f"for x of shape {x.shape} you return shape {got.shape}"
        if not np.allclose(got, want, atol=1e-9):
            if offset and np.allclose(got, rope(x, 0), atol=1e-9):
                raise AssertionError(f"with offset={offset} your rows are rotated as if they started at 0")
            raise AssertionError(
                f"for x of shape {x.shape} and offset {offset} you differ from apply_rope by up to "
                f"{np.abs(got - want).max():.3g}"
            )


_NUMPY_ROPE = "Rotate the pairs with np.cos and np.sin."
register(
    Exercise(
        key="17.4",
        title="RoPE with an offset",
        checker=by_hand(
            _check_rope,
            {
                "helpers.transformer.apply_rope": _OWN,
                "helpers.transformer.rope_angles": "Work out the angles (offset + p) w_i yourself.",
                "helpers.transformer.frequencies": "Work out the frequencies 10000^(-2i/d) yourself.",
                "torch.cos": _NUMPY_ROPE,
                "torch.sin": _NUMPY_ROPE,
            },
        ),
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
def _layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)  # (T, 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # (T, 1): the biased variance
    return (x - mean) / np.sqrt(var + eps) * weight + bias  # (T, C)


def _attention(x, p):
    C = x.shape[1]
    q, k, v = np.split(x @ p["attn.c_attn.weight"].T + p["attn.c_attn.bias"], [C, 2 * C], axis=1)  # (T, C)
    scores = q @ k.T / np.sqrt(C)  # (T, T): one head of width C
    scores = np.where(np.tril(np.ones_like(scores, dtype=bool)), scores, -np.inf)  # no peeking ahead
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights = weights / weights.sum(axis=1, keepdims=True)  # (T, T): rows sum to 1
    return weights @ v @ p["attn.c_proj.weight"].T + p["attn.c_proj.bias"]  # (T, C)


def _mlp(x, p):
    h = gelu_tanh(x @ p["mlp.c_fc.weight"].T + p["mlp.c_fc.bias"])  # (T, 4C)
    return h @ p["mlp.c_proj.weight"].T + p["mlp.c_proj.bias"]  # (T, C)


def pre_norm_block(x, p):
    """GPT-2's block with one head, in numpy: x + attn(ln_1(x)), then + mlp(ln_2(.))."""
    x = x + _attention(_layer_norm(x, p["ln_1.weight"], p["ln_1.bias"]), p)  # (T, C)
    return x + _mlp(_layer_norm(x, p["ln_2.weight"], p["ln_2.bias"]), p)  # (T, C)


def _post_norm_block(x, p):  # the 2017 layout: normalise after each addition
    x = _layer_norm(x + _attention(x, p), p["ln_1.weight"], p["ln_1.bias"])
    return _layer_norm(x + _mlp(x, p), p["ln_2.weight"], p["ln_2.bias"])


def _block_cases() -> list[tuple[np.ndarray, dict, np.ndarray]]:
    """(x, parameters, Block's output) for random one-head blocks, made before any check refuses torch."""
    state = torch.random.get_rng_state()  # restored below, so that importing this changes no other result
    torch.manual_seed(1700)
    cases = []
    try:
        for T, C in [(1, 4), (3, 4), (5, 8), (6, 6), (4, 12)]:
            block = Block(C, 1).double().eval()
            with torch.no_grad():
                for q in block.parameters():
                    q.normal_(std=0.5).add_(1.0 if q.dim() == 1 and q.shape[0] == C else 0.0)
                x = torch.randn(T, C, dtype=torch.float64) * 2  # (T, C)
                want = block(x[None])[0]  # (T, C)
            params = {name: t.numpy().copy() for name, t in block.state_dict().items()}
            cases.append((x.numpy(), params, want.numpy()))
    finally:
        torch.random.set_rng_state(state)
    return cases


_BLOCK_CASES = _block_cases()


def _check_block(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for x, params, want in _BLOCK_CASES:
        got = answer(x.copy(), {name: a.copy() for name, a in params.items()})
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=float)
        assert got.shape == want.shape, f"for x of shape {x.shape} you return shape {got.shape}"
        if np.allclose(got, want, atol=1e-8):
            continue
        if np.allclose(got, _post_norm_block(x, params), atol=1e-8):
            raise AssertionError(
                "that is the post-LN block: GPT-2 normalises each branch's input, not the sum"
            )
        raise AssertionError(
            f"for x of shape {x.shape} you differ from helpers.transformer.Block by up to "
            f"{np.abs(got - want).max():.3g}"
        )


_NUMPY = "Write it in numpy: that is the exercise."
_BLOCK_SHORTCUTS = {
    name: _NUMPY
    for name in [
        "torch.nn.functional.layer_norm",
        "torch.nn.functional.gelu",
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.nn.functional.softmax",
        "torch.softmax",
        "torch.tanh",
        "torch.nn.TransformerEncoderLayer",
        "torch.nn.MultiheadAttention",
    ]
} | {
    name: _OWN
    for name in [
        "helpers.transformer.Block",
        "helpers.transformer.MLP",
        "helpers.transformer.gelu",
        "helpers.attention.SelfAttention",
        "helpers.attention.scaled_dot_product_attention",
        "helpers.normalization.layer_norm",
        "helpers.normalization.LayerNorm",
    ]
}
register(
    Exercise(
        key="17.5",
        title="a transformer block, by hand",
        checker=by_hand(_check_block, _BLOCK_SHORTCUTS),
        hint="three pieces, each a few lines: LayerNorm (mean and biased variance over the last axis, eps "
        "1e-5, then * weight + bias); one causal head (c_attn gives q, k, v side by side; scores q k^T / "
        "sqrt(C), -inf above the diagonal, softmax, weights @ v, then c_proj); the GELU MLP (c_fc, 17.2's "
        "GELU, c_proj). A Linear is x @ W.T + b. Then x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).",
        solution=pre_norm_block,
        wrong=_post_norm_block,
        explanation="Pre-LN: each branch reads a normalised copy of the stream and adds its result back; the "
        "stream itself is never normalised inside the block, which keeps an identity path from the top of "
        "the model to the bottom. The post-LN layout of 2017 normalises the sum instead and needs warm-up "
        "tricks to train deep. With more heads, split q, k and v into n_head groups of channels, run this "
        "head on each, and put the outputs side by side before c_proj (chapter 16).",
    )
)
