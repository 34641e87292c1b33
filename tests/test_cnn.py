"""Chapter 12's convolution, im2col and pooling against torch.nn.functional, on random shapes; the photo
filters against scipy.signal; the kernel slider moved headless; the digit CNN's shift behaviour."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from helpers import cnn

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(25)


def random_conv_case(seed: int, bias: bool = True):
    """Random sizes, kernel, stride and padding (ints or pairs) that fit, as float64 tensors."""
    rng = np.random.default_rng(seed)
    N, C_in, C_out = (int(v) for v in rng.integers(1, 4, size=3))
    kH, kW = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
    if seed % 2 == 0:  # half the cases use the plain-int spelling that F.conv2d also accepts
        sw, pw = sh, ph
    H = int(rng.integers(max(1, kH - 2 * ph), 10))
    W = int(rng.integers(max(1, kW - 2 * pw), 10))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C_in, H, W, generator=gen, dtype=torch.float64)
    w = torch.randn(C_out, C_in, kH, kW, generator=gen, dtype=torch.float64)
    b = torch.randn(C_out, generator=gen, dtype=torch.float64) if bias else None
    stride, padding = ((sh, sw), (ph, pw)) if seed % 2 else (sh, ph)
    return x, w, b, stride, padding


@pytest.mark.parametrize("seed", SEEDS)
def test_both_convolutions_match_torch_conv2d(seed):
    x, w, b, stride, padding = random_conv_case(seed, bias=seed % 4 != 0)
    want = F.conv2d(x, w, b, stride=stride, padding=padding)
    torch.testing.assert_close(cnn.conv2d_loops(x, w, b, stride, padding), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(cnn.conv2d_im2col(x, w, b, stride, padding), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_im2col_matches_unfold(seed):
    x, w, _, stride, padding = random_conv_case(seed)
    kernel = tuple(w.shape[2:])
    torch.testing.assert_close(
        cnn.im2col(x, kernel, stride, padding), F.unfold(x, kernel, stride=stride, padding=padding)
    )


@given(
    n=st.integers(1, 3),
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    size=st.integers(3, 12),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=100, deadline=None)
def test_im2col_convolution_matches_conv2d_property(n, c_in, c_out, size, k, stride, padding, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, size, size + 1, generator=gen, dtype=torch.float64)
    w = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64)
    want = F.conv2d(x, w, b, stride=stride, padding=padding)
    torch.testing.assert_close(cnn.conv2d_im2col(x, w, b, stride, padding), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(10))
def test_gradients_through_im2col_convolution_match_conv2d(seed):
    x, w, b, stride, padding = random_conv_case(seed)
    upstream = torch.randn_like(F.conv2d(x, w, b, stride=stride, padding=padding))  # a random dL/dy
    grads = []
    for conv in (cnn.conv2d_im2col, F.conv2d):
        leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
        out = conv(leaves[0], leaves[1], leaves[2], stride=stride, padding=padding)
        grads.append(torch.autograd.grad((out * upstream).sum(), leaves))
    for ours, theirs, name in zip(*grads, ["x", "weight", "bias"], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10, msg=f"d loss / d {name} differs")


def test_gradients_through_the_loops_match_conv2d_and_gradcheck_passes():
    x, w, b, stride, padding = random_conv_case(3)
    leaves = [t.clone().requires_grad_(True) for t in (x, w, b)]
    ours = torch.autograd.grad(cnn.conv2d_loops(*leaves, stride, padding).square().sum(), leaves)
    theirs = torch.autograd.grad(F.conv2d(*leaves, stride=stride, padding=padding).square().sum(), leaves)
    for a, c in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-10)
    small = [torch.randn(1, 2, 5, 4, dtype=torch.float64), torch.randn(3, 2, 2, 3, dtype=torch.float64)]
    small = [t.requires_grad_(True) for t in small]
    assert torch.autograd.gradcheck(lambda a, c: cnn.conv2d_im2col(a, c, None, 2, 1), small)


@pytest.mark.parametrize("seed", range(15))
def test_pooling_matches_torch(seed):
    rng = np.random.default_rng(seed)
    k, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = torch.randn(2, 3, int(rng.integers(k, 11)), int(rng.integers(k, 11)), dtype=torch.float64)
    torch.testing.assert_close(cnn.pool2d(x, k, s, "max"), F.max_pool2d(x, k, s))
    torch.testing.assert_close(cnn.pool2d(x, k, s, "avg"), F.avg_pool2d(x, k, s))
    torch.testing.assert_close(cnn.pool2d(x, k), F.max_pool2d(x, k))  # stride defaults to the window


@pytest.mark.parametrize(("size", "k", "s", "p", "want"), [(8, 3, 1, 1, 8), (8, 3, 2, 0, 3), (7, 7, 1, 0, 1)])
def test_conv_output_size(size, k, s, p, want):
    assert cnn.conv_output_size(size, k, s, p) == want
    assert (
        want
        == F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p).shape[-1]
    )


@pytest.mark.parametrize("preset", sorted(cnn.PRESETS))
def test_photo_filter_matches_scipy_correlate(preset):
    rng = np.random.default_rng(0)
    image = rng.random((20, 30))
    kernel = cnn.make_kernel(*cnn.PRESETS[preset])
    padded = np.pad(image, 1, mode="edge")
    np.testing.assert_allclose(cnn.filter_image(image, kernel), signal.correlate2d(padded, kernel, "valid"))
    # a true convolution flips the kernel; deep learning's "convolution" does not
    flipped = signal.convolve2d(padded, kernel[::-1, ::-1], "valid")
    np.testing.assert_allclose(cnn.filter_image(image, kernel), flipped, atol=1e-12)


def test_filters_do_what_their_names_say():
    rng = np.random.default_rng(1)
    image = rng.random((16, 16))
    kernel = {name: cnn.make_kernel(*spec) for name, spec in cnn.PRESETS.items()}
    np.testing.assert_allclose(cnn.filter_image(image, kernel["identity"]), image)
    assert (
        cnn.filter_image(image, kernel["box blur"]).std() < 0.6 * image.std()
    )  # blurring averages noise away
    np.testing.assert_allclose(kernel["Gaussian blur"].sum(), 1.0)
    step = np.zeros((10, 10))
    step[:, 5:] = 1.0  # dark on the left, bright on the right: one vertical edge
    edges = cnn.filter_image(step, kernel["Sobel x (vertical edges)"])
    assert set(np.flatnonzero(np.abs(edges).sum(axis=0))) == {4, 5}  # only the two columns at the edge
    np.testing.assert_allclose(cnn.filter_image(step, kernel["Sobel y (horizontal edges)"]), 0.0)
    np.testing.assert_allclose(cnn.filter_image(np.full((6, 6), 0.3), kernel["Laplacian (all edges)"]), 0.0)


def test_make_kernel_normalises_only_when_it_can():
    np.testing.assert_allclose(cnn.make_kernel(np.ones(9), normalise=True), np.full((3, 3), 1 / 9))
    sobel = cnn.PRESETS["Sobel x (vertical edges)"][0]
    np.testing.assert_allclose(cnn.make_kernel(sobel, normalise=True), sobel)  # sum 0: left alone


def test_kernel_slider_redraws_and_presets_fill_the_sliders():
    import matplotlib.pyplot as plt

    image = np.random.default_rng(2).random((24, 24))
    seen = []

    def draw(kernel):
        seen.append(kernel)
        plt.imshow(cnn.filter_image(image, kernel), cmap="gray", vmin=-1, vmax=2)

    view = cnn.kernel_view(draw, preset="identity")
    np.testing.assert_allclose(seen[-1], cnn.make_kernel(*cnn.PRESETS["identity"]))
    before = view.image
    view.set(w11=3.0)
    assert view.values["w11"] == 3.0 and seen[-1][1, 1] == 3.0
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    view.set(preset="box blur")
    assert view.values["normalise"] is True
    np.testing.assert_allclose(seen[-1], np.full((3, 3), 1 / 9))
    assert [view.values[n] for n in cnn.WEIGHT_NAMES] == [1.0] * 9
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()
    with pytest.raises(KeyError, match="no preset"):
        cnn.kernel_view(draw, preset="blurry")


def test_place_on_canvas_centres_and_shifts():
    digits = torch.rand(3, 1, 8, 8)
    centred = cnn.place_on_canvas(digits, 16)
    assert centred.shape == (3, 1, 16, 16)
    torch.testing.assert_close(centred[:, :, 4:12, 4:12], digits)
    assert centred.sum() == pytest.approx(digits.sum().item(), rel=1e-6)
    moved = cnn.place_on_canvas(digits, 16, shift=(-4, 3))
    torch.testing.assert_close(moved[:, :, 0:8, 7:15], digits)
    with pytest.raises(ValueError, match="does not fit"):
        cnn.place_on_canvas(digits, 16, shift=(5, 0))
    with pytest.raises(ValueError, match="tensor"):
        cnn.place_on_canvas(digits[:, 0], 16)


def test_digit_cnn_feature_maps_move_with_the_digit():
    torch.manual_seed(0)
    model = cnn.DigitCNN().eval()
    digits = torch.rand(4, 1, 8, 8)
    assert model(digits).shape == (4, 10) and model(cnn.place_on_canvas(digits, 16)).shape == (4, 10)
    a = model.feature_maps(cnn.place_on_canvas(digits, 16))[0]  # (4, 16, 16, 16)
    b = model.feature_maps(cnn.place_on_canvas(digits, 16, shift=(1, 2)))[0]
    torch.testing.assert_close(b[:, :, 1:, 2:], a[:, :, :-1, :-2])  # convolution is shift-equivariant


def test_train_digit_classifier_is_accurate_and_reproducible():
    model, accuracy = cnn.train_digit_classifier("cpu", epochs=5, seed=0)
    assert accuracy > 0.9 and not model.training
    X_test = torch.rand(3, 1, 8, 8)
    assert model(X_test).shape == (3, 10)
    one, _ = cnn.train_digit_classifier("cpu", epochs=1, seed=1)
    again, _ = cnn.train_digit_classifier("cpu", epochs=1, seed=1)
    for a, b in zip(one.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: cnn.conv2d_im2col(torch.ones(1, 8, 8), torch.ones(1, 1, 3, 3)), ValueError, "4-D"),
        (lambda: cnn.conv2d_loops(torch.ones(1, 2, 8, 8), torch.ones(1, 3, 3, 3)), ValueError, "2 channels"),
        (
            lambda: cnn.conv2d_im2col(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3)),
            ValueError,
            "does not fit",
        ),
        (
            lambda: cnn.conv2d_im2col(torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3), stride=0),
            ValueError,
            "stride",
        ),
        (
            lambda: cnn.conv2d_loops(torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3), padding=-1),
            ValueError,
            "padding",
        ),
        (
            lambda: cnn.conv2d_im2col(torch.ones(1, 1, 5, 5), torch.ones(2, 1, 3, 3), torch.ones(3)),
            ValueError,
            "bias",
        ),
        (lambda: cnn.im2col(torch.ones(1, 1, 5, 5), (1, 2, 3)), ValueError, "pair"),
        (lambda: cnn.pool2d(torch.ones(1, 1, 4, 4), 2, mode="median"), ValueError, "mode"),
        (lambda: cnn.filter_image(np.ones((4, 4, 3)), np.ones((3, 3))), ValueError, "greyscale"),
        (lambda: cnn.filter_image(np.ones((4, 4)), np.ones((2, 2))), ValueError, "odd"),
        (lambda: cnn.DigitCNN(channels=()), ValueError, "channels"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
