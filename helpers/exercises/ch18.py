"""Exercises for chapter 18: GPT from scratch, pretraining."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register

# 18.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="18.1",
        title="predict: the loss of a model that knows nothing",
        checker=matches_value(math.log(103), atol=0.1, what="your predicted loss"),
        hint="with every logit nearly equal, the softmax spreads its bet evenly over the 103 characters. The "
        "loss is -ln(the probability given to the right character), in nats.",
        solution=math.log(103),
        wrong=math.log2(103),  # bits, not nats
        explanation="A uniform guess gives each of the 103 characters probability 1/103, so the loss is "
        "-ln(1/103) = ln 103 = 4.63 nats, whatever the text. PyTorch's cross_entropy uses the natural "
        "log; in bits it would be log2(103) = 6.69. A first loss far above ln V means the initialisation "
        "is too confident, and the first steps are spent undoing it.",
    )
)


# 18.2 ---------------------------------------------------------------------------------------------------
def gpt_parameters(V, T, L, C):
    """Parameters of a GPT with no biases and a tied head: embeddings, L blocks, the final LayerNorm."""
    embeddings = V * C + T * C  # wte (shared with lm_head) and wpe
    block = 12 * C * C + 2 * C  # c_attn 3C^2, attn.c_proj C^2, c_fc 4C^2, mlp.c_proj 4C^2, ln_1 and ln_2
    return embeddings + L * block + C  # ln_f


def _untied(V, T, L, C):
    return gpt_parameters(V, T, L, C) + V * C  # counts lm_head as a second V x C matrix


def _sizes(rng: np.random.Generator) -> tuple:
    return tuple(
        np.array(int(v))
        for v in (rng.integers(2, 300), rng.integers(1, 512), rng.integers(1, 13), 16 * rng.integers(1, 17))
    )


register(
    Exercise(
        key="18.2",
        title="counting a GPT's parameters",
        checker=by_hand(
            matches_function(gpt_parameters, _sizes, trials=20, atol=0.5),
            {"helpers.gpt.GPT": "Count from the shapes; build a GPT only to check your count afterwards."},
        ),
        hint="add up wte (V x C), wpe (T x C), per block c_attn (C x 3C), attn.c_proj (C x C), "
        "c_fc (C x 4C), mlp.c_proj (4C x C) and two LayerNorm weights (C each), then ln_f (C). The head is "
        "tied to wte.",
        solution=gpt_parameters,
        wrong=_untied,
        explanation="Per block 3C^2 + C^2 + 4C^2 + 4C^2 = 12C^2 in matrices plus 2C in LayerNorm scales. "
        "The head costs nothing extra because it *is* wte. For the notebook's model (V=103, T=64, L=4, "
        "C=128) that is 13,184 + 8,192 + 4 x 196,864 + 128 = 808,960.",
    )
)


# 18.3 ---------------------------------------------------------------------------------------------------
def clip_by_norm(grads, max_norm):
    """Scale all the gradients by one factor, so that together, as one vector, their norm is <= max_norm."""
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))  # the length of all the gradients as one vector
    scale = min(1.0, float(max_norm) / (norm + 1e-6))  # 1 for a short gradient: left alone
    return [g * scale for g in grads]


def _clip_each_alone(grads, max_norm):  # a norm per tensor: changes the direction of the whole step
    return [clip_by_norm([g], max_norm)[0] for g in grads]


def _always_rescale(grads, max_norm):  # also stretches short gradients up to max_norm
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    return [g * float(max_norm) / (norm + 1e-6) for g in grads]


def _clip_cases() -> list[tuple[list[np.ndarray], float, list[np.ndarray]]]:
    """(gradients, max_norm, what clip_grad_norm_ leaves), made before any check refuses torch."""
    rng, cases = np.random.default_rng(18), []
    for scale in [0.01, 1.0, 10.0] * 8:
        shapes = [tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(1, 3))) for _ in range(3)]
        grads = [rng.normal(size=shape) * scale for shape in shapes[: int(rng.integers(1, 4))]]
        max_norm = float(rng.uniform(0.1, 2.0))
        params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.from_numpy(g.copy())
        torch.nn.utils.clip_grad_norm_(params, max_norm)  # clips in place
        cases.append((grads, max_norm, [p.grad.numpy() for p in params]))
    return cases


_CLIP_CASES = _clip_cases()


def _check_clip(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for grads, max_norm, want in _CLIP_CASES:
        got = answer([g.copy() for g in grads], max_norm)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = [np.asarray(g, dtype=float) for g in got]
        shapes = [g.shape for g in grads]
        assert [g.shape for g in got] == shapes, f"for gradients of shapes {shapes} return the same shapes"
        if all(np.allclose(a, b, atol=1e-9) for a, b in zip(got, want, strict=True)):
            continue
        for wrong, why in [
            (_clip_each_alone, "you clip each array by its own norm; the norm is of all of them together"),
            (_always_rescale, "you stretch a short gradient up to max_norm; it should be left alone"),
        ]:
            if all(np.allclose(a, b, atol=1e-9) for a, b in zip(got, wrong(grads, max_norm), strict=True)):
                raise AssertionError(why)
        raise AssertionError(
            f"for gradients of shapes {shapes} and max_norm {max_norm:.3f} your arrays differ from "
            "torch.nn.utils.clip_grad_norm_'s"
        )


_BY_HAND = "Take the norm of all the arrays together and scale them yourself, in numpy."
register(
    Exercise(
        key="18.3",
        title="gradient clipping, by hand",
        checker=by_hand(
            _check_clip,
            {
                "torch.nn.utils.clip_grad_norm_": _BY_HAND,
                "torch.nn.utils.clip_grad_norm": _BY_HAND,
                "torch.nn.utils.clip_grads_with_norm_": _BY_HAND,
                "torch.nn.utils.get_total_norm": _BY_HAND,
                "torch.sqrt": _BY_HAND,
            },
        ),
        hint="the length of all the gradients together is sqrt(sum over arrays of sum(g^2)). Multiply every "
        "array by the same factor min(1, max_norm / (norm + 1e-6)) (torch adds the 1e-6 so that a zero "
        "gradient does not divide by zero).",
        solution=clip_by_norm,
        wrong=_clip_each_alone,
        explanation="Clipping keeps the direction of the whole update and caps its length. One factor for "
        "all the parameters matters: clipping each tensor by its own norm would shrink some parameters' "
        "steps more than others' and turn the step away from the gradient. Clipping only acts on the rare "
        "steps where the gradient is unusually large (a bad batch, a loss spike), so that one step cannot "
        "throw the weights far away.",
    )
)

# 18.4 ---------------------------------------------------------------------------------------------------
_DECAYED = 4 * 12 * 128 * 128  # the four Linear matrices of each of the 4 blocks
register(
    Exercise(
        key="18.4",
        title="what weight decay acts on",
        checker=matches_value(_DECAYED, what="the number of decayed parameters"),
        hint="param_groups decays only the weight matrices of Linear layers: c_attn, attn.c_proj, c_fc and "
        "mlp.c_proj in every block. Not wte (even though lm_head shares it), not wpe, not the LayerNorms.",
        solution=_DECAYED,
        wrong=_DECAYED + 103 * 128 + 64 * 128,  # every 2-D tensor, embeddings included
        explanation="Each block has 12 C^2 = 196,608 parameters in its four matrices, so 4 blocks give "
        "786,432 - 97% of the model. The embeddings are 2-D too, but decaying them shrinks the rows of rare "
        "characters towards zero just because they are rarely seen; LayerNorm scales are meant to sit near "
        "1, not 0.",
    )
)
