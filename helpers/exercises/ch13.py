"""Exercises for chapter 13: sequence models."""

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register


# 13.1 ---------------------------------------------------------------------------------------------------
def _lstm_parameters(I, H):
    return 4 * H * (I + H) + 2 * 4 * H  # weight_ih (4H, I), weight_hh (4H, H), bias_ih and bias_hh (4H,)


def _sizes(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(1, 300)), int(rng.integers(1, 300))


def _rnn_cell_parameters(I, H):
    return H * (I + H) + 2 * H  # the count for a vanilla RNN cell: one block instead of four


_FROM_THE_SHAPES = "write the count as a formula in I and H, from the shapes of the four tensors."
register(
    Exercise(
        key="13.1",
        title="counting an LSTM's parameters",
        checker=by_hand(
            matches_function(_lstm_parameters, _sizes),
            {
                "torch.nn.LSTMCell": _FROM_THE_SHAPES,
                "torch.nn.LSTM": _FROM_THE_SHAPES,
                "helpers.rnn.LSTMCell": _FROM_THE_SHAPES,
                "helpers.rnn.Recurrent": _FROM_THE_SHAPES,
            },
        ),
        hint="an LSTM cell has four gate blocks (i, f, g, o), each with its own weights on x and on h, "
        "and, in PyTorch's layout, two biases per block.",
        solution=_lstm_parameters,
        wrong=_rnn_cell_parameters,
        explanation="weight_ih is (4H, I), weight_hh is (4H, H), and bias_ih and bias_hh have 4H entries "
        "each: 4H(I + H) + 8H, four times a vanilla RNN cell of the same size. For I = 32 and H = 128 that "
        "is 16,384 + 65,536 + 1,024 = 82,944. The H^2 term dominates: doubling the state quadruples the "
        "recurrent weights.",
    )
)


# 13.2 ---------------------------------------------------------------------------------------------------
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gru_step(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    x_r, x_z, x_n = np.split(weight_ih @ x + bias_ih, 3)  # each (H,): PyTorch's order r, z, n
    h_r, h_z, h_n = np.split(weight_hh @ h + bias_hh, 3)  # each (H,)
    r = _sigmoid(x_r + h_r)  # reset gate
    z = _sigmoid(x_z + h_z)  # update gate
    n = np.tanh(x_n + r * h_n)  # candidate: r scales the recurrent term, bias b_hn included
    return (1 - z) * n + z * h  # (H,)


def _gru_inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    i, h = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    return (
        rng.normal(size=i),
        rng.normal(size=h),
        rng.normal(size=(3 * h, i)),
        rng.normal(size=(3 * h, h)),
        rng.normal(size=3 * h),
        rng.normal(size=3 * h),
    )


def _gru_step_z_swapped(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    x_r, x_z, x_n = np.split(weight_ih @ x + bias_ih, 3)
    h_r, h_z, h_n = np.split(weight_hh @ h + bias_hh, 3)
    r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return z * n + (1 - z) * h  # the update gate the other way round: z near 1 would overwrite the state


_BUILD_IT = "write the gates with numpy: two matrix products, np.split into three, sigmoid and tanh."
register(
    Exercise(
        key="13.2",
        title="one step of a GRU, by hand",
        checker=by_hand(
            matches_function(_gru_step, _gru_inputs),
            {
                "torch.nn.GRUCell": _BUILD_IT,
                "torch.nn.GRU": _BUILD_IT,
                "torch.gru_cell": _BUILD_IT,
                "helpers.rnn.GRUCell": _BUILD_IT,
                "helpers.rnn.Recurrent": _BUILD_IT,
            },
        ),
        hint="split W_ih x + b_ih and W_hh h + b_hh into three blocks of H each, in PyTorch's order r, z, n. "
        "r = sigmoid(x_r + h_r), z = sigmoid(x_z + h_z), n = tanh(x_n + r * h_n), and the new state is "
        "(1 - z) * n + z * h: z near 1 keeps the old state.",
        solution=_gru_step,
        wrong=_gru_step_z_swapped,
        explanation="The stacked weights hold three blocks, reset r, update z and candidate n. Two details "
        "trip people up. The reset gate multiplies the recurrent term of the candidate after its matrix "
        "product and bias, r * (W_hn h + b_hn), which is PyTorch's (and cuDNN's) choice; the 2014 paper put "
        "it inside, W_hn (r * h), a different network. And z weighs the old state, so z near 1 copies h "
        "forward: that copy is the GRU's path for gradients, as the forget gate is the LSTM's.",
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

# 13.5 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="13.5",
        title="predict: an LSTM at PyTorch's initialisation",
        checker=matches_value(11.4, atol=4.0, what="your power of ten"),
        hint="at initialisation the forget gates are sigmoid of a number near 0. Along the cell state the "
        "gradient is multiplied by one forget gate per step. What does 50 of those factors make, roughly?",
        solution=11.4,
        wrong=1.0,  # "LSTMs solve vanishing gradients": they can, once the forget gates are open
        explanation="About 11 powers of ten: the measured ratio 50 steps back is 4e-12 (10^-11.4), close to "
        "the RNN's 10^-13. With the forget bias near 0 every forget gate starts near sigmoid(0) = 0.5, and "
        "0.5^50 = 10^-15; the other paths through the gates add a little. The LSTM does not keep gradients "
        "alive by itself: it can, when its forget gates are near 1, which a forget bias of 1 (or training) "
        "arranges.",
    )
)
