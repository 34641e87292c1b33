"""Exercises for chapter 21: running open weights."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.gpt import GPTConfig
from helpers.weights import gpt2_parameter_count


# 21.1 ---------------------------------------------------------------------------------------------------
def _n_params(vocab_size, block_size, n_layer, n_embd):
    C = n_embd
    return vocab_size * C + block_size * C + n_layer * (12 * C * C + 13 * C) + 2 * C


def _sizes(rng: np.random.Generator) -> tuple:
    return (
        int(rng.integers(10, 60_000)),
        int(rng.integers(8, 4096)),
        int(rng.integers(1, 50)),
        int(rng.integers(1, 40)) * 64,
    )


def _counts_the_head_twice(vocab_size, block_size, n_layer, n_embd):
    return _n_params(vocab_size, block_size, n_layer, n_embd) + vocab_size * n_embd  # lm_head is wte


assert _n_params(50257, 1024, 12, 768) == gpt2_parameter_count(GPTConfig())  # the formula is the helper's

register(
    Exercise(
        key="21.1",
        title="parameters from the config",
        checker=matches_function(_n_params, _sizes, atol=0.5),
        hint="add up the shapes: the token table (V, C), the position table (P, C), per layer two LayerNorms "
        "(2C each), c_attn (C, 3C) + 3C, c_proj (C, C) + C, c_fc (C, 4C) + 4C, mlp.c_proj (4C, C) + C, and "
        "the final LayerNorm. The output head reuses the token table.",
        solution=_n_params,
        wrong=_counts_the_head_twice,
        explanation="Per layer the four matrices hold 3C^2 + C^2 + 4C^2 + 4C^2 = 12C^2 numbers and the "
        "biases and LayerNorms 3C + C + 4C + C + 4C = 13C. GPT-2 ties lm_head to wte, so the "
        "head adds nothing.",
    )
)


# 21.2 ---------------------------------------------------------------------------------------------------
def _file_span(header_bytes, begin, end):
    return np.array([8 + header_bytes + begin, 8 + header_bytes + end])


def _offsets(rng: np.random.Generator) -> tuple:
    begin = int(rng.integers(0, 10**6))
    return int(rng.integers(2, 50_000)), begin, begin + 4 * int(rng.integers(1, 10**5))


def _forgets_the_length_prefix(header_bytes, begin, end):
    return np.array([header_bytes + begin, header_bytes + end])


register(
    Exercise(
        key="21.2",
        title="where a tensor lives in the file",
        checker=matches_function(_file_span, _offsets, atol=0.5),
        hint="data_offsets count from the first byte after the header. What comes before the header?",
        solution=_file_span,
        wrong=_forgets_the_length_prefix,
        explanation="A safetensors file starts with 8 bytes holding N, then N bytes of JSON, then the data. "
        "A tensor with data_offsets [begin, end] occupies file bytes 8 + N + begin up to 8 + N + end.",
    )
)


# 21.3 ---------------------------------------------------------------------------------------------------
def _linear_weight(conv1d_weight):
    return np.asarray(conv1d_weight).T


def _conv_weight(rng: np.random.Generator) -> tuple:
    return (rng.normal(size=(int(rng.integers(1, 6)), int(rng.integers(1, 6)))),)


def _reshaped(conv1d_weight):
    w = np.asarray(conv1d_weight)
    return w.reshape(w.shape[1], w.shape[0])  # right shape, wrong numbers


register(
    Exercise(
        key="21.3",
        title="Conv1D to Linear",
        checker=matches_function(_linear_weight, _conv_weight),
        hint="Conv1D computes x @ W with W of shape (in, out); nn.Linear computes x @ weight.T with "
        "weight of shape (out, in). Which weight makes the two equal?",
        solution=_linear_weight,
        wrong=_reshaped,
        explanation="x @ W = x @ (W.T).T, so the Linear weight is W.T. A reshape gives the right shape but "
        "scrambles the entries: reshaping reads the numbers in memory order, transposing swaps the axes.",
    )
)


# 21.4 ---------------------------------------------------------------------------------------------------
GPT2_XL = GPTConfig(n_layer=48, n_head=25, n_embd=1600)
register(
    Exercise(
        key="21.4",
        title="will it fit?",
        checker=matches_value(gpt2_parameter_count(GPT2_XL) * 2 / 2**30, atol=0.01, what="your GiB"),
        hint="count the parameters of GPT2_XL (48 layers, n_embd 1600, the usual vocabulary and 1024 "
        "positions) with the formula, times bytes per parameter in bf16, divided by 2**30.",
        solution=gpt2_parameter_count(GPT2_XL) * 2 / 2**30,
        wrong=gpt2_parameter_count(GPT2_XL) * 4 / 2**30,  # fp32
        explanation="About 1.56 billion parameters at 2 bytes each: roughly 2.9 GiB for the weights in bf16 "
        "(5.8 GiB in fp32), before activations and the KV cache.",
    )
)


# 21.5 ---------------------------------------------------------------------------------------------------
def _llama_params(vocab_size, n_layer, n_embd, n_head, n_kv_head, mlp_hidden):
    C, H = n_embd, mlp_hidden
    kv = C // n_head * n_kv_head  # width of k (and of v): n_kv_head heads of C / n_head channels
    per_layer = 2 * C + C * C + 2 * C * kv + C * C + 3 * C * H  # 2 RMSNorms, q, k and v, o, SwiGLU's three
    return vocab_size * C + n_layer * per_layer + C  # + the final RMSNorm; the head is tied to the table


def _llama_sizes(rng: np.random.Generator) -> tuple:
    n_kv_head = int(rng.integers(1, 5))
    n_head = n_kv_head * int(rng.integers(1, 5))
    n_embd = n_head * 2 * int(rng.integers(1, 33))  # an even head size, as RoPE needs
    return (
        int(rng.integers(100, 60_000)),
        int(rng.integers(1, 40)),
        n_embd,
        n_head,
        n_kv_head,
        int(rng.integers(1, 100)) * 16,
    )


def _forgets_grouped_query_attention(vocab_size, n_layer, n_embd, n_head, n_kv_head, mlp_hidden):
    return _llama_params(vocab_size, n_layer, n_embd, n_head, n_head, mlp_hidden)  # k, v as wide as q


assert _llama_params(49152, 32, 960, 15, 5, 2560) == 361_821_120  # SmolLM2-360M, the chapter's figure

register(
    Exercise(
        key="21.5",
        title="parameters of a Llama",
        checker=matches_function(_llama_params, _llama_sizes, atol=0.5),
        hint="no biases and no position table. Per layer: two RMSNorms (a weight of C each), q and o (C x C "
        "each), k and v (C x kv each, where kv = n_kv_head heads of C / n_head channels), and SwiGLU's gate, "
        "up and down (C x mlp_hidden each). Then the token table and a final RMSNorm; the head is tied.",
        solution=_llama_params,
        wrong=_forgets_grouped_query_attention,
        explanation="With grouped-query attention k and v are only n_kv_head / n_head as wide as q: "
        "SmolLM2-360M (C 960, 15 heads sharing 5 key-value heads) has k and v of width 320, not 960. "
        "Per layer that is 2C + 2C^2 + 2C kv + 3C H; with V = 49152, 32 layers and H = 2560 the total "
        "is 361,821,120.",
    )
)
