"""Exercises for chapter 12: convolutional networks."""

import numpy as np

from helpers.cnn import PRESETS, filter_image, make_kernel
from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 12.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="12.1",
        title="output size",
        checker=matches_value(15, what="the output width"),
        hint="count the positions the kernel can take: (size + 2 * padding - kernel) // stride, "
        "plus one for the first position.",
        solution=(32 + 2 * 1 - 5) // 2 + 1,
        wrong=(32 + 2 * 1 - 5) // 2,  # forgets the first position
        explanation="Padding makes the row 32 + 2 = 34 pixels wide. A 5-wide kernel first sits on pixels "
        "0..4, and each step moves it 2 pixels; its last start must be at most 34 - 5 = 29, "
        "so it starts at 0, 2, ..., 28: (34 - 5) // 2 + 1 = 15 positions.",
    )
)


# 12.2 ---------------------------------------------------------------------------------------------------
def _conv1d(x, w):
    k = len(w)
    return np.array([np.sum(w * x[i : i + k]) for i in range(len(x) - k + 1)])


def _signal_and_kernel(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(2, 5))
    return rng.normal(size=int(rng.integers(k, 12))), rng.normal(size=k)


def _flips_the_kernel(x, w):
    return np.convolve(x, w, mode="valid")  # the mathematicians' convolution: the kernel is reversed


register(
    Exercise(
        key="12.2",
        title="convolution in one dimension",
        checker=matches_function(_conv1d, _signal_and_kernel),
        hint="y[i] = sum over u of w[u] * x[i + u], for every i at which the whole kernel fits: "
        "len(x) - len(w) + 1 outputs. Do not flip the kernel.",
        solution=_conv1d,
        wrong=_flips_the_kernel,
        explanation="Slide the kernel along the signal and take a dot product at each position where it "
        "fits. numpy's np.correlate(x, w, 'valid') computes the same thing; np.convolve flips"
        " w first, which is the textbook convolution but not what deep-learning libraries "
        "call one.",
    )
)


# 12.3 ---------------------------------------------------------------------------------------------------
def _check_bright_above_dark(kernel) -> None:
    kernel = np.asarray(kernel, dtype=float)
    assert kernel.shape == (3, 3), f"your kernel has shape {kernel.shape}, expected (3, 3)"
    assert np.all(np.isfinite(kernel)), "your kernel contains inf or nan"
    flat = filter_image(np.full((8, 8), 0.7), kernel)
    assert np.allclose(flat, 0.0), (
        "on a flat grey image your kernel gives non-zero output: make its weights sum to 0"
    )
    edge = np.zeros((8, 8))
    edge[:4] = 1.0  # bright top half, dark bottom half
    response = filter_image(edge, kernel)[3:5, 2:6]  # the two rows that straddle the edge
    assert response.min() > 0.5, (
        "on a bright-above-dark edge your kernel should give a clearly positive output"
    )
    assert np.allclose(filter_image(edge.T, kernel), 0.0), (
        "your kernel also fires on vertical edges (bright left, dark right): it should ignore them"
    )


register(
    Exercise(
        key="12.3",
        title="design an edge detector",
        checker=_check_bright_above_dark,
        hint="start from Sobel y in PRESETS and test it on a bright-above-dark image. Which sign "
        "comes out? Each row of your kernel should weigh the three pixels left, centre and "
        "right the same way (1, 2, 1).",
        solution=np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]),
        wrong=make_kernel(*PRESETS["Sobel y (horizontal edges)"]),  # fires negative on this edge
        explanation="The output is the sum of weight times pixel, so put positive weights on the row "
        "above and negative weights on the row below: [[1, 2, 1], [0, 0, 0], [-1, -2, -1]], "
        "Sobel y upside down. Its weights sum to 0 (silent on flat regions), and each column "
        "sums to 0, so a vertical edge cancels out.",
    )
)

# 12.4 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="12.4",
        title="receptive field",
        checker=matches_value(7, what="the receptive field's width"),
        hint="one 3x3 convolution sees 3 pixels across. A second one sees 3 positions of the first"
        " layer's output, each of which saw 3 pixels, overlapping. How much wider does each "
        "layer make the view?",
        solution=7,
        wrong=9,  # multiplies 3 by 3 instead of adding the overlap
        explanation="Each 3x3 layer with stride 1 widens the view by 2 pixels (one each side): 3, then 5,"
        " then 7. DigitCNN's last layer therefore sees 7x7 patches of the 8x8 digit, nearly "
        "all of it.",
    )
)
