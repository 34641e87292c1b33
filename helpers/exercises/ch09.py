"""Exercises for chapter 9: neural networks from scratch."""

import numpy as np

from helpers.classic import softmax
from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.nn_numpy import one_hot


# 9.1 ----------------------------------------------------------------------------------------------------
def _logits(rng: np.random.Generator) -> tuple[np.ndarray]:
    scale = rng.choice([1.0, 10.0, 1000.0])  # ordinary logits, and logits that overflow exp
    return (rng.normal(size=int(rng.integers(2, 8))) * scale + rng.choice([0.0, 800.0]),)


def _stable_softmax(z):
    e = np.exp(z - z.max())  # shift by the max: the largest exponent is e^0 = 1
    return e / e.sum()


def _naive_softmax(z):
    with np.errstate(over="ignore", invalid="ignore"):  # quiet here; a reader's version will warn
        e = np.exp(z)  # overflows to inf once z > 709
        return e / e.sum()


register(
    Exercise(
        key="9.1",
        title="a stable softmax",
        checker=matches_function(softmax, _logits),
        hint="softmax(z) = softmax(z - c) for any constant c. Which c makes the largest exponent e^0?",
        solution=_stable_softmax,
        wrong=_naive_softmax,
        explanation="Subtracting m = max(z) from every logit multiplies the top and the bottom of the "
        "fraction by e^(-m), so nothing changes - except that now every exponent is at most 0, so exp "
        "cannot overflow, and the sum is at least 1, so the division is safe.",
    )
)

# 9.2 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="9.2",
        title="the shape of a gradient",
        checker=matches_value([100, 64], what="the shape"),
        hint="a gradient always has the shape of the thing it is the gradient of. What shape is W1 in the "
        "nn.Linear layout, (out_features, in_features)?",
        solution=(100, 64),
        wrong=(64, 100),  # the (in, out) layout
        explanation="W1 maps 64 inputs to 100 hidden units; in the (out, in) layout it is (100, 64), and so "
        "is dL/dW1 = G_Z1^T X: (100, B) @ (B, 64).",
    )
)


# 9.3 ----------------------------------------------------------------------------------------------------
def _batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    B, C = int(rng.integers(1, 7)), int(rng.integers(2, 6))
    return rng.normal(size=(B, C)) * 3, rng.integers(0, C, size=B)


def _grad_logits(Z, y):
    B, C = Z.shape
    return (softmax(Z) - one_hot(y, C)) / B  # (B, C)


def _grad_logits_of_the_sum(Z, y):
    return softmax(Z) - one_hot(y, Z.shape[1])  # the gradient of the sum, not the mean


register(
    Exercise(
        key="9.3",
        title="the gradient at the top",
        checker=matches_function(_grad_logits, _batch),
        hint="for one example, dL/dz = softmax(z) - one_hot(y). The loss is the mean over the batch: "
        "what does that do to each example's gradient?",
        solution=_grad_logits,
        wrong=_grad_logits_of_the_sum,
        explanation="Each row is softmax(z_b) - one_hot(y_b), divided by B because the loss averages the "
        "B examples. Forgetting the 1/B gives the gradient of the summed loss: B times too large, which "
        "silently multiplies the learning rate by the batch size.",
    )
)

# 9.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="9.4",
        title="counting parameters",
        checker=matches_value(9610, what="the number of parameters"),
        hint="each layer has a weight matrix (out x in) and a bias vector (out).",
        solution=64 * 128 + 128 + 128 * 10 + 10,
        wrong=64 * 128 + 128 * 10,  # the weights, without the biases
        explanation="Layer 1: W1 is 128 x 64 = 8192 numbers, b1 has 128. Layer 2: W2 is 10 x 128 = 1280, b2 "
        "has 10. Total 8192 + 128 + 1280 + 10 = 9610. Almost all of it is the first weight matrix.",
    )
)
