"""Exercises for chapter 20: fine-tuning."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.instructions import IGNORE, response_targets
from helpers.lora import lora_parameters

# 20.1 ---------------------------------------------------------------------------------------------------
# GPT-2 small's attention input layer c_attn maps 768 -> 2304; LoRA of rank 8 on it.
register(
    Exercise(
        key="20.1",
        title="LoRA's parameter count",
        checker=matches_value(lora_parameters(768, 2304, 8), what="the number of trainable parameters"),
        hint="A is r x in and B is out x r. Count both; the frozen W (out x in) does not train.",
        solution=8 * (768 + 2304),
        wrong=8 * 768 * 2304 // 768,  # only B: out x r
        explanation="A has r x in = 8 x 768 = 6,144 numbers and B has out x r = 2304 x 8 = 18,432: 24,576 "
        "in all, 1.4% of the 1,769,472 numbers in W. The saving grows with the layer: the update costs "
        "r (in + out), the matrix in x out.",
    )
)


# 20.2 ---------------------------------------------------------------------------------------------------
def _example(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    n = int(rng.integers(3, 12))
    return rng.integers(0, 50, size=n), int(rng.integers(1, n))


def _reference_targets(ids, prompt_len):
    return np.array(response_targets(list(ids), int(prompt_len)))


def _masks_one_too_many(ids, prompt_len):
    return np.array([IGNORE] * int(prompt_len) + list(ids[int(prompt_len) + 1 :]))  # forgets the first answer


def _solution_targets(ids, prompt_len):
    targets = list(ids[1:])  # position t predicts ids[t + 1]
    for t in range(prompt_len - 1):  # those targets are prompt tokens: not the model's job
        targets[t] = -100
    return targets


register(
    Exercise(
        key="20.2",
        title="mask the prompt",
        checker=matches_function(_reference_targets, _example),
        hint="the targets are the ids shifted left by one: position t predicts ids[t + 1]. Which positions "
        "predict a token of the prompt? The last prompt position predicts the first response token.",
        solution=_solution_targets,
        wrong=_masks_one_too_many,
        explanation="With a prompt of P tokens, positions 0 .. P - 2 predict prompt tokens 1 .. P - 1, "
        "so they get -100. Position P - 1 (the last prompt token) predicts the first response token: "
        "that one must be kept, or the model never learns how to start its answer.",
    )
)


# 20.3 ---------------------------------------------------------------------------------------------------
def _lora_inputs(rng: np.random.Generator) -> tuple:
    d_out, d_in = (int(v) for v in rng.integers(2, 8, size=2))
    r = int(rng.integers(1, min(d_out, d_in) + 1))
    alpha = float(rng.integers(1, 17))
    return rng.normal(size=(d_out, d_in)), rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r)), alpha


def _merge(W, A, B, alpha):
    return W + (alpha / A.shape[0]) * B @ A


def _merge_without_scale(W, A, B, alpha):
    return W + B @ A


register(
    Exercise(
        key="20.3",
        title="merge a LoRA update",
        checker=matches_function(_merge, _lora_inputs),
        hint="the layer computes x W^T + (alpha / r) x A^T B^T. Factor x out: x (W + ...)^T. What is r, "
        "given A's shape?",
        solution=_merge,
        wrong=_merge_without_scale,
        explanation="x A^T B^T = x (B A)^T, so the layer is x (W + (alpha / r) B A)^T: one matrix of W's "
        "shape. r is the number of rows of A. After merging, inference costs exactly what the base model "
        "costs.",
    )
)

# 20.4 ---------------------------------------------------------------------------------------------------
# AdamW keeps two moments per trainable parameter; count floats for weights + gradients + moments.
_P = 124_439_808  # GPT-2 small
_p = 12 * sum(
    lora_parameters(i, o, 8) for i, o in [(768, 2304), (768, 768), (768, 3072), (3072, 768)]
)  # r = 8
register(
    Exercise(
        key="20.4",
        title="what the optimiser has to keep",
        checker=matches_value((4 * _P) / (_P + 4 * _p), atol=1e-3, what="the ratio"),
        hint="full fine-tuning stores, per parameter: the weight, its gradient, and AdamW's two moments. "
        "With LoRA the frozen weights still have to be there, but only the p LoRA numbers have gradients and "
        "moments (and weights).",
        solution=(4 * _P) / (_P + 4 * _p),
        wrong=_P / _p,  # the ratio of trainable counts, not of memory
        explanation="Full fine-tuning: 4P floats (weights, gradients, two moments). LoRA: P frozen weights "
        "plus 4p for the adapter, so the ratio is 4P / (P + 4p), about 3.9x - not P / p (105x). The frozen "
        "weights dominate; activations for the backward pass come on top in both cases.",
    )
)
