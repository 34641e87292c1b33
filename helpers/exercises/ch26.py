"""Exercises for chapter 26: counting the cost."""

import math

import torch

from helpers.cost import forward_flops
from helpers.exercises.core import Exercise, matches_value, register
from helpers.gpt import GPTConfig


# 26.1 ---------------------------------------------------------------------------------------------------
def count_forward_flops(config, batch, T):
    C, V, L = config.n_embd, config.vocab_size, config.n_layer
    tokens = batch * T
    per_layer = (
        2 * tokens * C * 3 * C  # q, k, v
        + 2 * 2 * batch * T * T * C  # Q K^T and P V, all heads together
        + 2 * tokens * C * C  # c_proj
        + 2 * 2 * tokens * C * 4 * C  # c_fc and the MLP's c_proj
    )
    return L * per_layer + 2 * tokens * C * V  # and the lm_head


def _counts_multiply_adds(config, batch, T):
    return count_forward_flops(config, batch, T) // 2  # one per multiply-add: half the FLOPs


def _check_count(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(26)
    for _ in range(8):
        n_head = int(torch.randint(1, 5, (1,), generator=g))
        config = GPTConfig(
            vocab_size=int(torch.randint(10, 500, (1,), generator=g)),
            block_size=64,
            n_layer=int(torch.randint(1, 7, (1,), generator=g)),
            n_head=n_head,
            n_embd=n_head * int(torch.randint(1, 17, (1,), generator=g)),
        )
        batch, T = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 65, (1,), generator=g))
        want = sum(forward_flops(config, batch, T).values())
        got = answer(config, batch, T)
        assert got is not None, "your function returned None: did you forget `return`?"
        if got == want // 2:
            raise AssertionError("you counted multiply-adds: a FLOP count has 2 per multiply-add (2 m n k)")
        assert got == want, (
            f"for n_layer={config.n_layer}, n_embd={config.n_embd}, vocab={config.vocab_size}, "
            f"batch={batch}, T={T}: you counted {got:,}, FlopCounterMode counts {want:,}"
        )


register(
    Exercise(
        key="26.1",
        title="count a GPT's forward FLOPs",
        checker=_check_count,
        hint="per layer there are six products: x W_qkv (C -> 3C), Q K^T and P V (each T x T x C over all "
        "heads, per sequence), the output projection (C -> C) and the MLP's two (C -> 4C -> C); then the "
        "lm_head (C -> V) once. An (m, k) @ (k, n) product costs 2 m n k FLOPs.",
        solution=count_forward_flops,
        wrong=_counts_multiply_adds,
        explanation="Everything but attention's two products is a token times a weight matrix: 2 FLOPs per "
        "weight per token, which is where '2N per token' comes from. Attention's products grow with T: "
        "they are 4 T C per token per layer, small next to 24 C^2 while T is below about 6 C.",
    )
)

# 26.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="26.2",
        title="GPT-3's training compute",
        checker=matches_value(6 * 175e9 * 300e9 / 1e23, atol=0.02, what="your number of 1e23 FLOPs"),
        hint="training costs about 6 FLOPs per parameter per token: 2 forward, 4 backward.",
        solution=3.15,
        wrong=1.05,  # 2 N D: the forward pass only
        explanation="6 x 175e9 x 300e9 = 3.15e23 FLOPs; the GPT-3 paper's Table D.1 gives 3.14e23. At 40 % "
        "of an A100's 312 TFLOP/s bf16 peak, that is about 29,000 GPU-days.",
    )
)

# 26.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="26.3",
        title="the memory of training a 7B model",
        checker=matches_value(7e9 * 16 / 1e9, atol=0.5, what="your GB"),
        hint="in float32 every parameter has its value, its gradient, and AdamW's two moments.",
        solution=112.0,
        wrong=28.0,  # the weights only
        explanation="4 numbers of 4 bytes = 16 bytes per parameter: 7e9 x 16 = 112 GB before a single "
        "activation. Mixed precision keeps fp32 master weights and moments, so it saves little of this; "
        "what fits a 7B model on a 24 GB card is LoRA (chapter 20) or sharding the state (chapter 29).",
    )
)

# 26.4 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="26.4",
        title="a night of training",
        checker=matches_value(300 * 10 * 3600 / 3.6e6 * 400 / 1000, atol=0.01, what="your kg of CO2e"),
        hint="watts x hours / 1000 = kWh; kWh x gCO2e/kWh = grams.",
        solution=1.2,
        wrong=1200.0,  # grams, not kilograms
        explanation="300 W x 10 h = 3 kWh; at 400 g/kWh that is 1,200 g = 1.2 kg of CO2e. The same night "
        "on a grid of 50 g/kWh (much hydro or nuclear) emits 150 g: where you train matters as much as how.",
    )
)


# 26.5 ---------------------------------------------------------------------------------------------------
def _twenty_tokens_per_parameter(C):
    return math.sqrt(C / (6 * 20))


register(
    Exercise(
        key="26.5",
        title="the compute-optimal size for a budget",
        checker=matches_value(_twenty_tokens_per_parameter(1e21) / 1e9, atol=0.01, what="your billions"),
        hint="put D = 20 N into C = 6 N D and solve for N.",
        solution=_twenty_tokens_per_parameter(1e21) / 1e9,
        wrong=math.sqrt(1e21 / 20) / 1e9,  # forgot the 6
        explanation="C = 6 N (20 N) = 120 N^2, so N = sqrt(1e21 / 120) = 2.9e9 parameters, trained on 58e9 "
        "tokens. Both grow as the square root of the budget: ten times the compute buys about 3.2 times "
        "the model and 3.2 times the data.",
    )
)
