"""Exercises for chapter 26: counting the cost."""

import math

import torch

from helpers.cost import forward_flops
from helpers.exercises.core import Exercise, by_hand, matches_value, register
from helpers.gpt import GPTConfig

_COUNTERS = {  # what a FLOP-counting exercise may not hand over to the library or the chapter's helper
    "torch.utils.flop_counter.FlopCounterMode": "count the products yourself: 2 m n k for each.",
    "helpers.cost.forward_flops": "that is the chapter's own count; write yours from the table of 26.1.",
    "helpers.cost.training_flops": "that is the chapter's own count; write yours.",
    "helpers.cost.flops_per_token": "that is the 2N rule, not a count of the products.",
}


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
        checker=by_hand(_check_count, _COUNTERS),
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
def mlp_training_flops(batch, widths):
    forward = sum(
        2 * batch * d_in * d_out for d_in, d_out in zip(widths[:-1], widths[1:], strict=True)
    )  # x W^T, each layer
    weight_grads = forward  # dL/dW = (dL/dy)^T x: one product of the forward one's size per layer
    input_grads = forward - 2 * batch * widths[0] * widths[1]  # dL/dx = (dL/dy) W, but not for the data
    return forward + weight_grads + input_grads


def _three_times_forward(batch, widths):
    return 3 * sum(2 * batch * d_in * d_out for d_in, d_out in zip(widths[:-1], widths[1:], strict=True))


def _check_mlp_flops(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(262)
    for _ in range(12):
        depth = int(torch.randint(1, 5, (1,), generator=g))
        widths = [int(w) for w in torch.randint(1, 300, (depth + 1,), generator=g)]
        batch = int(torch.randint(1, 65, (1,), generator=g))
        got = answer(batch, list(widths))
        assert got is not None, "your function returned None: did you forget `return`?"
        want = mlp_training_flops(batch, widths)
        if got == _three_times_forward(batch, widths) and got != want:
            raise AssertionError(
                "3 x forward counts a gradient for the input batch too; the data does not require grad"
            )
        assert got == want, (
            f"for batch {batch} and widths {widths}: you counted {got:,}, the answer is {want:,}"
        )


register(
    Exercise(
        key="26.2",
        title="build it: an MLP's training FLOPs",
        checker=by_hand(_check_mlp_flops, _COUNTERS),
        hint="a Linear layer on a batch of B rows, d_in -> d_out, costs 2 B d_in d_out forward. Backward it "
        "needs dL/dW (always) and dL/dx (only where x needs a gradient): each is one product of the same "
        "size. The input batch is data: nothing asks for its gradient.",
        solution=mlp_training_flops,
        wrong=_three_times_forward,  # "backward is twice the forward", for every layer
        explanation="Backward is twice the forward only for layers whose input needs a gradient. The first "
        "layer's input is the data, so autograd skips dL/dx there: a two-layer MLP 784 -> 256 -> 10 costs "
        "about 2 x its forward, not 3 x, because the first layer is most of it. In the GPT the first "
        "matmul's input is the embedding, a parameter's output, so there every layer pays both products and "
        "training is exactly 3 x forward.",
    )
)

# 26.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="26.3",
        title="the memory of training a 7B model in mixed precision",
        checker=matches_value(7e9 * 16 / 1e9, atol=0.5, what="your GB"),
        hint="count bytes per parameter: a bf16 copy of the weight and a bf16 gradient for the arithmetic, "
        "and in float32 the master weight and AdamW's two moments.",
        solution=112.0,
        wrong=56.0,  # "16-bit training halves the memory"
        explanation="2 + 2 bytes in bf16, plus 4 + 4 + 4 in float32 = 16 bytes per parameter, exactly what "
        "plain float32 training costs (4 + 4 + 8): 7e9 x 16 = 112 GB before a single activation. Mixed "
        "precision saves time and activation memory, not this (the accounting of the ZeRO paper, "
        "Rajbhandari et al. 2020). What fits a 7B model on a 24 GB card is LoRA (chapter 20) or sharding "
        "the state over many cards (chapter 29).",
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

# 26.6 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="26.6",
        title="predict: activations against weights",
        checker=matches_value(2.5, atol=1.0, what="your ratio of activation bytes to parameter bytes"),
        hint="the parameters do not depend on the batch. The activations are, per token, several tensors of "
        "width C to 4C in every layer, plus the logits (V numbers per token): multiply by 4 x 128 tokens.",
        solution=2.5,
        wrong=0.5,  # "the weights are the big thing in memory"
        explanation="The shipped model keeps about 60,000 floats per token for backward (six layers of q, k, "
        "v, the attention weights, the MLP's 4C-wide tensors, the norms, and the 4096-wide logits), so 512 "
        "tokens keep about 117 MiB against 46.5 MiB of parameters: 2.5 times as much, and it doubles with "
        "the batch or the context. For a small model trained on long batches the activations, not the "
        "weights, fill the memory.",
    )
)
