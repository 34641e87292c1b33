"""Exercises for chapter 21: running open weights."""

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.gpt import GPTConfig
from helpers.llama import half_to_interleaved
from helpers.weights import gpt2_parameter_count


# 21.1 ---------------------------------------------------------------------------------------------------
def _projection(rng: np.random.Generator) -> tuple:
    n_heads, half = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    rows = n_heads * 2 * half  # every head an even number of channels
    return rng.normal(size=(rows, int(rng.integers(1, 6)))), n_heads


def _helper_permutation(w, n_heads):
    return half_to_interleaved(torch.as_tensor(w), int(n_heads)).numpy()


def _half_to_interleaved(w, n_heads):
    n_heads = int(n_heads)
    hs = w.shape[0] // n_heads  # rows (channels) per head
    out = np.empty_like(w)
    for h in range(n_heads):
        head = w[h * hs : (h + 1) * hs]  # (hs, C): this head's rows in Hugging Face's order
        out[h * hs : (h + 1) * hs : 2] = head[: hs // 2]  # first half -> even rows 0, 2, 4, ...
        out[h * hs + 1 : (h + 1) * hs : 2] = head[hs // 2 :]  # second half -> odd rows 1, 3, 5, ...
    return out


def _interleaves_the_whole_matrix(w, n_heads):
    return _half_to_interleaved(w, 1)  # as if the projection were one big head


register(
    Exercise(
        key="21.1",
        title="RoPE's two layouts",
        checker=by_hand(
            matches_function(_helper_permutation, _projection),
            {
                "helpers.llama.half_to_interleaved": "move the rows yourself, head by head.",
                "helpers.llama.llama_to_gpt_state_dict": "move the rows yourself, head by head.",
            },
        ),
        hint="work on one head at a time: rows h * hs to (h + 1) * hs. Inside a head, row i of the first "
        "half goes to row 2i and row i of the second half (row i + hs/2) to row 2i + 1. A slice with step 2, "
        "out[start : stop : 2], addresses every other row.",
        solution=_half_to_interleaved,
        wrong=_interleaves_the_whole_matrix,
        explanation="q = W x, so reordering W's rows reorders q's channels the same way. Inside each head, "
        "Hugging Face rotates channel i together with channel i + hs/2, and apply_rope rotates 2i with "
        "2i + 1, so HF row i goes to 2i and row i + hs/2 to 2i + 1; the heads stay where they are. Doing it "
        "for the whole matrix at once mixes rows of different heads. Keys get the same permutation, so "
        "every q . k is unchanged: only the layout differs, not the model.",
    )
)

# 21.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="21.2",
        title="a bf16 round trip (predict, then run)",
        checker=matches_value(2**-8, atol=2**-10, what="your largest relative change"),
        hint="bf16 keeps 8 significant bits (7 stored, 1 implied). Between 1 and 2 its numbers are spaced "
        "2^-7 apart, and rounding to the nearest moves a number by at most half a space.",
        solution=2**-8,
        wrong=2**-7,  # the spacing itself: rounding by truncation
        explanation="With 8 significant bits, the bf16 numbers between 2^e and 2^(e+1) are 2^(e-7) apart. "
        "Rounding to the nearest moves a weight by at most half of that, 2^(e-8), and relative to a weight "
        "of at least 2^e that is at most 2^-8 = 0.0039 - reached by weights just above a power of two. "
        "It is not 2^-16 because the 16 dropped bits are the least significant of the 24: what is kept is "
        "about 2.4 decimal digits, whatever the size of the weight.",
    )
)


# 21.3 ---------------------------------------------------------------------------------------------------
GPT2_XL = GPTConfig(n_layer=48, n_head=25, n_embd=1600)
register(
    Exercise(
        key="21.3",
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


# 21.4 ---------------------------------------------------------------------------------------------------
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
        key="21.4",
        title="parameters of a Llama",
        checker=by_hand(
            matches_function(_llama_params, _llama_sizes, atol=0.5),
            {
                "helpers.gpt.GPT": "add up the shapes yourself; building the model counts them for you.",
                "transformers.LlamaForCausalLM": "add up the shapes yourself; building the model counts them "
                "for you.",
            },
        ),
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
