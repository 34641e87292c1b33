"""Exercises for chapter 11: training deep networks well."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_value, register
from helpers.schedules import warmup_cosine

# 11.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="11.1",
        title="the Kaiming standard deviation",
        checker=matches_value(math.sqrt(2 / 512), atol=1e-6, what="your standard deviation"),
        hint="keep fan_in * s^2 * (what ReLU keeps of the variance) equal to 1. ReLU zeroes half of its "
        "inputs, so it keeps half of the second moment.",
        solution=math.sqrt(2 / 512),
        wrong=math.sqrt(1 / 512),  # LeCun's rule, which forgets that ReLU halves the signal
        explanation="Each output sums 512 products, so its variance is 512 * s^2 * E[x^2]; ReLU passes half "
        "of a symmetric input's second moment, so to keep the signal's size we need 512 * s^2 / 2 = 1, i.e. "
        "s = sqrt(2 / 512) = 0.0625. Without the factor 2 the signal halves in variance at every layer.",
    )
)


# 11.2 ---------------------------------------------------------------------------------------------------
def _dropout(x, p, training):
    if not training or p == 0:
        return x
    keep = torch.empty_like(x).bernoulli_(1 - p)  # 1 with probability 1 - p
    return x * (keep / (1 - p))


def _dropout_unscaled(x, p, training):
    if not training:
        return x
    return x * torch.empty_like(x).bernoulli_(1 - p)  # forgets the 1 / (1 - p)


def _check_dropout(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    torch.manual_seed(0)
    x = torch.rand(20_000) + 0.5  # (N,), all positive so dropped entries are easy to see
    for p in (0.2, 0.5):
        assert torch.equal(answer(x, p, False), x), f"with training=False (p={p}) return x unchanged"
        y = answer(x, p, True)
        assert isinstance(y, torch.Tensor) and y.shape == x.shape, "return a tensor shaped like x"
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.02, f"with p={p} you zero {dropped:.1%} of the entries, not about {p:.0%}"
        kept = y != 0
        assert torch.allclose(y[kept], x[kept] / (1 - p), rtol=1e-5), (
            f"with p={p} the kept entries should be x / (1 - p) = x * {1 / (1 - p):.3g}, so the expected "
            "value of each entry stays x"
        )
    assert torch.equal(answer(x, 0.0, True), x), "with p=0 nothing is dropped: return x"


register(
    Exercise(
        key="11.2",
        title="inverted dropout",
        checker=_check_dropout,
        hint="in training, keep each entry with probability 1 - p (torch.rand_like(x) >= p, or "
        "torch.empty_like(x).bernoulli_(1 - p)), zero the rest, and divide the kept ones by 1 - p.",
        solution=_dropout,
        wrong=_dropout_unscaled,
        explanation="Dividing the survivors by 1 - p keeps E[output] = x in training, so evaluation (where "
        "dropout does nothing) sees activations of the same size. Without it, every layer after a dropout "
        "would see inputs (1 - p) times smaller in training than at test time.",
    )
)

# 11.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="11.3",
        title="BatchNorm at test time",
        checker=matches_value(7.0, atol=1e-6, what="the output"),
        hint="in eval mode BatchNorm uses its running statistics, not the batch: y = (x - running_mean) / "
        "sqrt(running_var + eps) * weight + bias.",
        solution=7.0,
        wrong=1.0,  # normalising the single input by its own (batch) statistics gives 0, then 0 * 3 + 1
        explanation="(6 - 2) / sqrt(4) = 2, then 2 * 3 + 1 = 7. Had you used the statistics of the batch "
        "(one example), the normalised value would be 0 and the output just the bias, 1 - which is why "
        "BatchNorm must be switched to eval mode before serving single requests.",
    )
)

# 11.4 ---------------------------------------------------------------------------------------------------
_SCHEDULE = dict(peak_lr=1e-3, warmup_steps=100, total_steps=1000, min_lr=1e-5)
register(
    Exercise(
        key="11.4",
        title="a learning rate by hand",
        checker=matches_value(warmup_cosine(550, **_SCHEDULE), atol=1e-8, what="the learning rate"),
        hint="the cosine starts after the warm-up, so measure progress from step 100 over the remaining 900 "
        "steps: progress = (550 - 100) / 900. Then lr = min + (peak - min) * (1 + cos(pi * progress)) / 2.",
        solution=warmup_cosine(550, **_SCHEDULE),
        wrong=1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * 550 / 1000)) / 2,  # forgets the warm-up offset
        explanation="progress = 450 / 900 = 0.5, cos(pi / 2) = 0, so lr = 1e-5 + (1e-3 - 1e-5) / 2 = "
        "5.05e-4: half-way through the decay, half-way between the peak and the floor.",
    )
)

# 11.5 ---------------------------------------------------------------------------------------------------
LABELS = ("underfitting", "overfitting", "good fit", "learning rate too high")
_steps = np.arange(1, 201)
#: Four (train loss, validation loss) curves to diagnose; the notebook plots them.
CURVES = {
    "A": (1.3 + 1.0 * np.exp(-_steps / 30), 1.38 + 1.0 * np.exp(-_steps / 30)),
    "B": (
        2.0 + 0.9 * np.abs(np.sin(_steps / 4.0)) + _steps / 100,
        2.1 + 0.9 * np.abs(np.sin(_steps / 4.0 + 0.5)) + _steps / 95,
    ),
    "C": (2.2 * np.exp(-_steps / 15) + 0.001, 0.45 + 1.8 * np.exp(-_steps / 15) + 0.004 * _steps),
    "D": (2.2 * np.exp(-_steps / 25) + 0.05, 2.2 * np.exp(-_steps / 25) + 0.12),
}
_ANSWER = {"A": "underfitting", "B": "learning rate too high", "C": "overfitting", "D": "good fit"}


def _check_diagnosis(answer) -> None:
    assert isinstance(answer, dict), (
        f"answer with a dict like {{'A': 'overfitting', ...}}, got {type(answer).__name__}"
    )
    assert set(answer) == set(CURVES), (
        f"give a diagnosis for each of {sorted(CURVES)}, got keys {sorted(answer)}"
    )
    for key, label in answer.items():
        assert label in LABELS, f"{key}: {label!r} is not one of {LABELS}"
    wrong = sorted(k for k in CURVES if answer[k] != _ANSWER[k])
    assert not wrong, f"not right yet for curve(s) {', '.join(wrong)}"


register(
    Exercise(
        key="11.5",
        title="read the loss curves",
        checker=_check_diagnosis,
        hint="look at three things: how low the training loss gets, the gap between training and "
        "validation, and whether validation turns upward while training keeps falling. Loss that grows and "
        "swings from the start is the optimiser, not the model.",
        solution=dict(_ANSWER),
        wrong={"A": "underfitting", "B": "learning rate too high", "C": "good fit", "D": "overfitting"},
        explanation="A: both losses stop high and close together - the model cannot fit even the training "
        "data (underfitting). B: the loss swings and climbs from the start - the steps are too large. C: "
        "training loss goes to zero while validation loss turns upward after a minimum - overfitting (stop "
        "near the minimum, or regularise). D: both fall and settle low with a small gap - a good fit. The "
        "tempting mistake is to call C the best run because its training loss is the lowest.",
    )
)

# 11.6 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="11.6",
        title="predict: the gradient through 20 plain blocks",
        checker=matches_value(12.0, atol=1.0, what="your power of ten"),
        hint="per Linear layer the signal's variance is multiplied by fan_in * s^2 with s^2 = 1 / (3 "
        "fan_in), and ReLU keeps half of it, so one block (Linear, ReLU, Linear) multiplies the variance by "
        "1/3 * 1/2 * 1/3. Take the square root for the size, then apply it once per block between the last "
        "block and the first (19 times).",
        solution=12.0,
        wrong=1.3,  # "20 blocks, so about 20 times smaller": a linear guess for a geometric effect
        explanation="Each block scales the backward signal's variance by (1/3)(1/2)(1/3) = 1/18, its size "
        "by 1/sqrt(18) = 0.236. Between the last block and the first there are 19 blocks: 0.236^19 = "
        "10^-11.9. The measured ratio is 10^11.9 too. Depth acts as a power, not a product by the number of "
        "layers, so the first blocks of a plain deep network get no gradient worth the name.",
    )
)


# 11.7 ---------------------------------------------------------------------------------------------------
def _block_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    B, T, C = (int(n) for n in rng.integers(1, 5, size=3))
    C, H = C + 2, int(rng.integers(3, 9))  # width C >= 3, hidden H

    def t(*shape, scale=1.0):
        return torch.tensor(rng.normal(size=shape) * scale, dtype=torch.float64)

    return t(B, T, C, scale=3.0), t(C) + 1, t(C), t(H, C), t(H), t(C, H), t(C)


def _layer_norm_by_hand(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1), biased
    return (x - mean) / torch.sqrt(var + eps) * weight + bias  # (..., C)


def _pre_norm_block(x, ln_weight, ln_bias, W1, b1, W2, b2):
    h = _layer_norm_by_hand(x, ln_weight, ln_bias)  # (B, T, C): only the branch sees the normalised x
    f = torch.relu(h @ W1.T + b1) @ W2.T + b2  # (B, T, H) -> (B, T, C), nn.Linear's (out, in) layout
    return x + f  # the skip carries x itself, untouched


def _normalises_the_skip_too(x, ln_weight, ln_bias, W1, b1, W2, b2):
    h = _layer_norm_by_hand(x, ln_weight, ln_bias)
    return h + torch.relu(h @ W1.T + b1) @ W2.T + b2  # the skip now carries LN(x), not x


def _check_block(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(0)
    for _ in range(20):
        inputs = _block_inputs(rng)
        want = _pre_norm_block(*[t.clone() for t in inputs])
        got = answer(*[t.clone() for t in inputs])
        assert isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}"
        assert got.shape == want.shape, (
            f"for x of shape {tuple(inputs[0].shape)} return that shape, not {tuple(got.shape)}"
        )
        if not torch.allclose(got, want, atol=1e-8):
            x = inputs[0]
            if torch.allclose(got, want - x + _layer_norm_by_hand(x, inputs[1], inputs[2]), atol=1e-8):
                raise AssertionError("the skip path should carry x itself; you add the branch to LN(x)")
            raise AssertionError(
                f"for x of shape {tuple(x.shape)} your output differs from x + W2 relu(W1 LN(x) + b1) + b2 "
                f"by up to {(got - want).abs().max().item():.3g}"
            )


_BUILD_IT = "normalise by hand (mean and biased variance over the last axis), as in 11.2."
register(
    Exercise(
        key="11.7",
        title="a pre-norm residual block",
        checker=by_hand(
            _check_block,
            {
                "torch.nn.functional.layer_norm": _BUILD_IT,
                "torch.layer_norm": _BUILD_IT,
                "torch.nn.LayerNorm": _BUILD_IT,
            },
        ),
        hint="three lines: h = LayerNorm(x) (subtract the mean over the last axis, divide by sqrt(var + "
        "1e-5) with the biased variance, times ln_weight, plus ln_bias); f = relu(h @ W1.T + b1) @ W2.T + "
        "b2; return x + f. The skip path carries x, not the normalised h.",
        solution=_pre_norm_block,
        wrong=_normalises_the_skip_too,
        explanation="Pre-norm: y = x + f(LN(x)). Only the branch sees normalised input; the residual stream "
        "x passes through untouched, so the identity path from the output back to the input that made the "
        "20-block network of 11.6 trainable survives. Normalising the skip as well, LN(x) + f(LN(x)), puts "
        "a LayerNorm on the main path of every block, and its Jacobian is no longer the identity. Chapter "
        "17's transformer block is two of these: attention in one branch, this feed-forward in the other.",
    )
)
