"""Exercises for chapter 20: fine-tuning."""

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.instructions import IGNORE, response_targets
from helpers.lora import LoRALinear, lora_parameters

# 20.1 ---------------------------------------------------------------------------------------------------
GRADIENT_CHOICES = {
    "a": "both A and B get a gradient",
    "b": "only B gets a gradient; A's is exactly zero",
    "c": "only A gets a gradient; B's is exactly zero",
    "d": "neither: with B = 0 the update B A x is zero, so nothing can move",
}


def _check_gradient_choice(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in GRADIENT_CHOICES, (
        f"answer with one of the letters {sorted(GRADIENT_CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "b", f"not ({picked}): {GRADIENT_CHOICES[picked]}. Run the next cell and look."


register(
    Exercise(
        key="20.1",
        title="the first gradient (predict, then run)",
        checker=_check_gradient_choice,
        hint="write the update as u = (alpha / r) B (A x). The gradient of a factor is the upstream gradient "
        "times whatever multiplies that factor. What multiplies A, and what is it at step 0?",
        solution="b",
        wrong="d",  # the output is unchanged at step 0, so it seems nothing can change
        explanation="With u = (alpha / r) B (A x) and g the gradient arriving at u, dL/dB = (alpha / r) g "
        "(A x)^T, which is not zero because A is random; dL/dA = (alpha / r) B^T g x^T, which is exactly "
        "zero because B is. So the first step moves only B; from then on B is not zero and both train. "
        "The output of the layer is unchanged at step 0, but its gradient is not: that is why one factor "
        "starts at zero and the other random. Both at zero would leave both gradients zero for ever.",
    )
)


# 20.2 ---------------------------------------------------------------------------------------------------
def _conversation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    turns = int(rng.integers(1, 4))
    lengths = rng.integers(1, 6, size=2 * turns)  # prompt, response, prompt, response, ...
    return rng.integers(0, 50, size=int(lengths.sum())), lengths


def _is_response(lengths) -> np.ndarray:
    return np.concatenate([np.full(int(n), i % 2 == 1) for i, n in enumerate(lengths)])  # (len(ids),)


def _reference_targets(ids, lengths):
    keep = _is_response(lengths)[1:]  # position t predicts token t + 1: keep it if that one is a response
    return np.where(keep, np.asarray(ids)[1:], IGNORE)


def _masks_only_the_first_prompt(ids, lengths):
    return np.array(response_targets(list(ids), int(lengths[0])))  # trains on the later prompts too


def _conversation_targets(ids, lengths):
    targets = []
    starts = np.cumsum(lengths) - lengths  # where each prompt and each response begins
    for t in range(len(ids) - 1):  # position t predicts ids[t + 1]
        part = np.searchsorted(starts, t + 1, side="right") - 1  # the part token t + 1 belongs to
        targets.append(int(ids[t + 1]) if part % 2 == 1 else -100)  # odd parts are responses
    return targets


register(
    Exercise(
        key="20.2",
        title="mask every prompt of a conversation",
        checker=matches_function(_reference_targets, _conversation),
        hint="first mark each token as prompt or response (lengths alternate: prompt, response, prompt, "
        "...). Position t predicts token t + 1, so its target is ids[t + 1] if token t + 1 is a response "
        "token, and -100 if it is a prompt token.",
        solution=_conversation_targets,
        wrong=_masks_only_the_first_prompt,
        explanation="The target of position t is token t + 1, so the mask is the response marks shifted left "
        "by one: the last token of every prompt predicts the first token of its response (kept), and the "
        "last token of a response predicts the first token of the next prompt (dropped). With one turn this "
        "is response_targets. Masking only the first prompt would train the model to write the user's next "
        "question as well as its own answers.",
    )
)


# 20.3 ---------------------------------------------------------------------------------------------------
def _lora_inputs(rng: np.random.Generator) -> tuple:
    d_out, d_in = (int(v) for v in rng.integers(2, 8, size=2))
    r = int(rng.integers(1, min(d_out, d_in) + 1))
    x = rng.normal(size=(int(rng.integers(1, 5)), d_in))
    W, b = rng.normal(size=(d_out, d_in)), rng.normal(size=d_out)
    A, B = rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r))  # B as after training, not zero
    return x, W, b, A, B, float(rng.integers(1, 17))


def _helper_forward(x, W, b, A, B, alpha):
    """helpers.lora.LoRALinear with these weights, in float64: the oracle the exercise mirrors."""
    base = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[1], W.shape[0], dtype=torch.float64)
    # its own generator: checking an answer leaves torch's global random state alone
    layer = LoRALinear(base, r=A.shape[0], alpha=float(alpha), generator=torch.Generator())
    with torch.no_grad():
        for parameter, value in [(layer.base.weight, W), (layer.base.bias, b), (layer.A, A), (layer.B, B)]:
            parameter.copy_(torch.as_tensor(value))
        return layer(torch.as_tensor(x)).numpy()  # (N, out)


def _lora_forward(x, W, b, A, B, alpha):
    r = A.shape[0]  # the rank: A is (r, in)
    return x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T  # (N, out): down to r numbers, then up to out


def _scales_by_alpha(x, W, b, A, B, alpha):
    return x @ W.T + b + alpha * (x @ A.T) @ B.T  # alpha, not alpha / r


register(
    Exercise(
        key="20.3",
        title="a LoRA forward",
        checker=by_hand(
            matches_function(_helper_forward, _lora_inputs),
            {"helpers.lora.LoRALinear": "write x W^T + b + (alpha / r) x A^T B^T with numpy."},
        ),
        hint="x is (N, in), W (out, in), A (r, in), B (out, r). The frozen layer is x @ W.T + b; the update "
        "goes down to r numbers with A and back up to out with B, times alpha / r. What is r, given A?",
        solution=_lora_forward,
        wrong=_scales_by_alpha,
        explanation="y = x W^T + b + (alpha / r) (x A^T) B^T, with r the number of rows of A. Multiplying by "
        "A^T first keeps the update at r (in + out) multiply-adds per row and never forms B A. The same "
        "algebra gives the merge: x A^T B^T = x (B A)^T, so the layer equals one matrix W + (alpha / r) B A.",
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
