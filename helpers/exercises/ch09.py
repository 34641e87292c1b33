"""Exercises for chapter 9: neural networks from scratch."""

import numpy as np

from helpers.classic import softmax
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
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
        hint="for one example, dL/dz = softmax(z) - one_hot(y). The loss is the mean over the batch: what "
        "does that do to each example's gradient?",
        solution=_grad_logits,
        wrong=_grad_logits_of_the_sum,
        explanation="Each row is softmax(z_b) - one_hot(y_b), divided by B because the loss averages the B "
        "examples. Forgetting the 1/B gives the gradient of the summed loss: B times too large, which "
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


# 9.5 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="9.5",
        title="predict: the best of 100 coin flips",
        checker=matches_value(0.57, atol=0.025, what="your predicted best accuracy"),
        hint="each classifier's score on 300 examples is a binomial proportion: mean 0.5, standard error "
        "sqrt(0.5 * 0.5 / 300). The best of 100 such draws sits about 2.5 standard errors above the mean.",
        solution=0.57,
        wrong=0.5,  # "they are all guessing, so the best one scores 50% too"
        explanation="Each score is 0.5 plus noise with standard error sqrt(0.25 / 300) = 0.029 (chapter 5). "
        "The largest of 100 such draws lands about 2.5 standard errors up: 0.5 + 2.5 * 0.029 = 0.57. "
        "Picking the best of many on one set selects the luckiest noise, so its score on that set is biased "
        "upward; on fresh examples the chosen classifier is back at 0.5. That is why the set you choose on "
        "cannot be the set you report.",
    )
)


# 9.6 ----------------------------------------------------------------------------------------------------
def _tanh_layer_case(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    B, n_in, n_out = (int(n) for n in rng.integers(1, 7, size=3))
    X, W, b = rng.normal(size=(B, n_in)), rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
    A = np.tanh(X @ W.T + b)  # (B, n_out): the forward pass, kept for backward
    return X, W, A, rng.normal(size=(B, n_out))  # and G_A = dL/dA


def _tanh_layer_backward(X, W, A, G_A):
    G_Z = G_A * (1 - A**2)  # (B, n_out): tanh'(Z) = 1 - tanh(Z)^2, from the stored output
    return G_Z @ W, G_Z.T @ X, G_Z.sum(axis=0)  # G_X (B, n_in), G_W (n_out, n_in), G_b (n_out,)


def _tanh_layer_backward_relu_mask(X, W, A, G_A):
    G_Z = G_A * (A > 0)  # the ReLU's rule from the table, not tanh's
    return G_Z @ W, G_Z.T @ X, G_Z.sum(axis=0)


def _check_layer_backward(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(0)
    for _ in range(25):
        X, W, A, G_A = _tanh_layer_case(rng)
        got = answer(X.copy(), W.copy(), A.copy(), G_A.copy())
        assert isinstance(got, tuple | list) and len(got) == 3, "return three arrays: (G_X, G_W, G_b)"
        for name, g, want in zip(("G_X", "G_W", "G_b"), got, _tanh_layer_backward(X, W, A, G_A), strict=True):
            g = np.asarray(g, dtype=float)
            assert g.shape == want.shape, f"{name} has shape {g.shape}; it must have the shape {want.shape}"
            assert np.allclose(g, want, rtol=1e-9, atol=1e-12), (
                f"{name} has the right shape (X {X.shape}, W {W.shape}) but wrong entries"
            )


_BY_HAND = "write the three products from the chain rule, with numpy."
register(
    Exercise(
        key="9.6",
        title="a tanh layer's backward pass",
        checker=by_hand(
            _check_layer_backward,
            {
                "torch.autograd.grad": _BY_HAND,
                "torch.Tensor.backward": _BY_HAND,
                "torch.func.vjp": _BY_HAND,
            },
        ),
        hint="first undo the activation: G_Z = G_A times tanh'(Z), and tanh' = 1 - tanh^2 can be read off "
        "the stored output A. Then the linear layer's three rules from the table in 9.4: G_X = G_Z W, G_W = "
        "G_Z^T X, G_b = the column sums of G_Z.",
        solution=_tanh_layer_backward,
        wrong=_tanh_layer_backward_relu_mask,
        explanation="Only the activation's rule changes from the ReLU network of 9.4: tanh's slope is 1 - "
        "A^2, a number between 0 and 1 for every entry, where ReLU's is a 0/1 mask. The linear part is the "
        "same three products whatever the activation, which is why MLP.backward can loop over layers.",
    )
)
