"""Exercises for chapter 12: convolutional networks."""

import numpy as np

from helpers.cnn import PRESETS, filter_image, make_kernel
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register

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
    return _conv1d(x, w[::-1])  # the mathematicians' convolution: the kernel is reversed


_SLIDE_IT = "slide the kernel along x yourself: one dot product per position where it fits."


register(
    Exercise(
        key="12.2",
        title="convolution in one dimension",
        checker=by_hand(
            matches_function(_conv1d, _signal_and_kernel),
            {
                "numpy.correlate": _SLIDE_IT,
                "numpy.convolve": _SLIDE_IT,
                "torch.nn.functional.conv1d": _SLIDE_IT,
                "scipy.signal.correlate": _SLIDE_IT,
            },
        ),
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


# 12.5 ---------------------------------------------------------------------------------------------------
def _depthwise_conv2d(x, w, padding):
    """Each channel c of x (N, C, H, W) filtered by its own kernel w[c] (C, kH, kW): no sum over channels."""
    C, kH, kW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # (N, C, H + 2p, W + 2p)
    H_out, W_out = x_pad.shape[2] - kH + 1, x_pad.shape[3] - kW + 1
    y = np.zeros((x.shape[0], C, H_out, W_out))  # (N, C, H_out, W_out)
    for u in range(kH):
        for v in range(kW):  # weight w[:, u, v] meets the pixels at offset (u, v) of every window
            y += w[None, :, u, v, None, None] * x_pad[:, :, u : u + H_out, v : v + W_out]
    return y


def _depthwise_inputs(rng: np.random.Generator) -> tuple:
    N, C = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    kH, kW = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    H, W = kH + int(rng.integers(0, 5)), kW + int(rng.integers(0, 5))
    return rng.normal(size=(N, C, H, W)), rng.normal(size=(C, kH, kW)), int(rng.integers(0, 2))


def _depthwise_with_flipped_kernels(x, w, padding):
    return _depthwise_conv2d(x, w[:, ::-1, ::-1], padding)  # scipy's convolve2d per channel: flipped


_BY_HAND = "write the sum over the kernel's offsets yourself, with numpy (np.pad is fine)."
register(
    Exercise(
        key="12.5",
        title="a depthwise convolution, by hand",
        checker=by_hand(
            matches_function(_depthwise_conv2d, _depthwise_inputs),
            {
                "torch.nn.functional.conv2d": _BY_HAND,
                "torch.conv2d": _BY_HAND,
                "torch.nn.functional.unfold": _BY_HAND,
                "scipy.signal.correlate2d": _BY_HAND,
                "scipy.signal.convolve2d": _BY_HAND,
                "helpers.cnn.conv2d_loops": _BY_HAND,
                "helpers.cnn.conv2d_im2col": _BY_HAND,
                "helpers.cnn.im2col": _BY_HAND,
            },
        ),
        hint="pad H and W with np.pad, then y[n, c, i, j] = sum over u, v of w[c, u, v] * x_pad[n, c, i + u, "
        "j + v]. Either four loops, or (faster) one loop over the kernel offsets (u, v) that adds w[:, u, v] "
        "times a shifted slice of the whole padded batch. Do not flip the kernel, and do not sum over c.",
        solution=_depthwise_conv2d,
        wrong=_depthwise_with_flipped_kernels,
        explanation="A depthwise convolution is F.conv2d(x, w[:, None], padding=p, groups=C): every channel "
        "keeps its own output, so it costs C kH kW multiply-adds per pixel instead of C_out C kH kW. "
        "MobileNet-style and ConvNeXt blocks pair it with a 1x1 convolution that mixes the channels; the "
        "two together approximate a full convolution at a fraction of the cost.",
    )
)

# 12.6 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="12.6",
        title="predict: an MLP on shifted digits",
        checker=matches_value(0.1, atol=0.15, what="your predicted accuracy"),
        hint="the MLP has one weight per input pixel and class. Trained on centred digits only, which "
        "weights ever saw ink at the pixels a digit covers once it has moved 2 or 3 pixels?",
        solution=0.1,
        wrong=0.8,  # "it is only 2 or 3 pixels on a 16-pixel canvas": the picture barely changes to a human
        explanation="It falls to about guessing (10% for ten classes). To a person a digit moved by two "
        "pixels is the same digit; to the MLP it is a different set of input pixels, many of which were "
        "always blank in training, so their weights never learned anything, and the pixels it did learn are "
        "now mostly blank. The CNN applies the same kernels everywhere and pools globally: it does not care.",
    )
)
