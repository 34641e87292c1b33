"""Exercises for chapter 13: sequence models."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 13.1 ---------------------------------------------------------------------------------------------------
I, H = 32, 128
register(
    Exercise(
        key="13.1",
        title="counting an LSTM's parameters",
        checker=matches_value(4 * H * (I + H) + 2 * 4 * H, what="the parameter count"),
        hint="an LSTM cell has four gate blocks (i, f, g, o), each with its own weights on x and on h, "
        "and, in PyTorch's layout, two biases per block.",
        solution=4 * H * (I + H) + 2 * 4 * H,
        wrong=H * (I + H) + 2 * H,  # the count for a vanilla RNN cell: one block instead of four
        explanation="weight_ih is (4H, I) = (512, 32), weight_hh is (4H, H) = (512, 128), and bias_ih and "
        "bias_hh have 4H = 512 entries each: 16,384 + 65,536 + 1,024 = 82,944, four times a vanilla RNN "
        "cell of the same size.",
    )
)


# 13.2 ---------------------------------------------------------------------------------------------------
def _rnn_step(x, h, W_xh, W_hh, b):
    return np.tanh(W_xh @ x + W_hh @ h + b)


def _step_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    i, h = int(rng.integers(1, 5)), int(rng.integers(2, 6))
    return (
        rng.normal(size=i),
        rng.normal(size=h),
        rng.normal(size=(h, i)),
        rng.normal(size=(h, h)),
        rng.normal(size=h),
    )


def _transposes_the_recurrence(x, h, W_xh, W_hh, b):
    return np.tanh(W_xh @ x + W_hh.T @ h + b)  # h @ W_hh instead of W_hh @ h


register(
    Exercise(
        key="13.2",
        title="one step of an RNN",
        checker=matches_function(_rnn_step, _step_inputs),
        hint="h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), with x and h as 1-D vectors: use W @ v, and mind "
        "which side of the matrix the vector goes.",
        solution=_rnn_step,
        wrong=_transposes_the_recurrence,
        explanation="Mix the input and the previous state with their own matrices, add the bias and "
        "squash with tanh. Row i of W_hh says how the old state feeds unit i of the new one; using W_hh.T "
        "swaps those roles and gives a different network (the checker's random W_hh is not symmetric).",
    )
)

# 13.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="13.3",
        title="a gradient through fifty steps",
        checker=matches_value(0.9**50, atol=1e-6, what="dh_50/dh_0"),
        hint="with one unit and no tanh, h_t = w h_{t-1} + x_t, so dh_t/dh_{t-1} = w. The chain rule "
        "multiplies one such factor per step.",
        solution=0.9**50,
        wrong=0.9 * 50,  # adds the factors instead of multiplying them
        explanation="dh_50/dh_0 = w^50 = 0.9^50, about 0.0052: a signal 50 steps back reaches the end "
        "two hundred times weaker. With w = 1.1 it would be 117 times stronger. Only w = 1 keeps it: "
        "the LSTM's cell state gets that 1 from a forget gate near 1.",
    )
)

# 13.4 ---------------------------------------------------------------------------------------------------
_logits = np.array([2.0, 1.0, 0.0])
_hot = np.exp(_logits / 0.5) / np.exp(_logits / 0.5).sum()
register(
    Exercise(
        key="13.4",
        title="sampling temperature",
        checker=matches_value(_hot, atol=1e-6, what="your probabilities"),
        hint="divide the logits by the temperature, then softmax: the exp of each, divided by the sum "
        "of the exps.",
        solution=_hot,
        wrong=np.exp(_logits * 0.5) / np.exp(_logits * 0.5).sum(),  # multiplies by the temperature
        explanation="Dividing by 0.5 doubles the logits to [4, 2, 0], so softmax gives about [0.867, 0.117, "
        "0.016]: sharper than at temperature 1 ([0.665, 0.245, 0.090]). A temperature below 1 makes the "
        "likely characters likelier.",
    )
)
