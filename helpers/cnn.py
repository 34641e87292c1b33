"""Chapter 12: convolution from scratch, pooling, and a small convolutional network for the digits.

What this adds to chapter 1's matrix product: a convolution slides one small weight tensor over every
position of an image. `conv2d_loops` is that sentence written as loops; `im2col` copies every patch into
a column of a matrix, so that `conv2d_im2col` is a single matrix product (which is how libraries run it).
Both give what `torch.nn.functional.conv2d` gives; tests/test_cnn.py checks them on random shapes.

Then: pooling (`pool2d`), the photo filters of the chapter with their slider (`PRESETS`, `filter_image`,
`kernel_view`), digits placed on a bigger canvas for the translation experiment (`place_on_canvas`), and
`DigitCNN` with `train_digit_classifier`, a ready-trained digit classifier for later chapters.

Shapes follow PyTorch: images are (N, C, H, W), weights are (C_out, C_in, kH, kW).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.digits import load_digits_split
from helpers.train import History, accuracy, fit
from helpers.widgets import SliderView, make_slider


# --- shapes and checks ----------------------------------------------------------------------------------
def pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """An int, or a pair of ints, as a (height, width) pair."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """How many positions a kernel of width `kernel` takes across `size` pixels: (size + 2p - k) // s + 1."""
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if padding < 0:
        raise ValueError(f"padding must be 0 or more, got {padding}")
    if kernel > size + 2 * padding:
        raise ValueError(f"a kernel of {kernel} pixels does not fit in {size} pixels with padding {padding}")
    return (size + 2 * padding - kernel) // stride + 1


def check_conv_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C_in, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(
            f"weight must be a 4-D tensor (C_out, C_in, kH, kW), got {getattr(weight, 'shape', type(weight))}"
        )
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but the weight expects {weight.shape[1]} (its dim 1)")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"bias must have shape ({weight.shape[0]},), one per output channel, got {bias.shape}"
        )


# --- convolution, twice ---------------------------------------------------------------------------------
def conv2d_loops(x, weight, bias=None, stride=1, padding=0) -> torch.Tensor:
    """Convolution as its formula: y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * x_pad[n,c, i*s+u, j*s+v]."""
    check_conv_inputs(x, weight, bias)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    H_out, W_out = conv_output_size(H, kH, sh, ph), conv_output_size(W, kW, sw, pw)
    x_pad = F.pad(x, (pw, pw, ph, ph))  # (N, C_in, H + 2ph, W + 2pw), zeros round the edge
    y = x.new_zeros(N, C_out, H_out, W_out)  # (N, C_out, H_out, W_out)
    for n in range(N):
        for o in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    patch = x_pad[n, :, i * sh : i * sh + kH, j * sw : j * sw + kW]  # (C_in, kH, kW)
                    y[n, o, i, j] = (weight[o] * patch).sum()  # the sum over c, u and v
            if bias is not None:
                y[n, o] += bias[o]
    return y


def im2col(x, kernel_size, stride=1, padding=0) -> torch.Tensor:
    """Every kH x kW patch of x as one column: (N, C, H, W) -> (N, C*kH*kW, L), L = H_out * W_out.

    Row c*kH*kW + u*kW + v of column i*W_out + j holds x_pad[n, c, i*s+u, j*s+v], the same layout as
    torch.nn.functional.unfold. It loops over the kH*kW offsets (u, v), not over the L positions: each
    offset is one strided slice of the whole padded image.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    kH, kW = pair(kernel_size, "kernel_size")
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    N, C, H, W = x.shape
    H_out, W_out = conv_output_size(H, kH, sh, ph), conv_output_size(W, kW, sw, pw)
    x_pad = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)
    span_h, span_w = sh * (H_out - 1) + 1, sw * (W_out - 1) + 1  # rows and columns one offset's slice spans
    # offset (u, v) of every patch at once: one strided slice of the padded image, (N, C, H_out, W_out)
    shifted = [x_pad[:, :, u : u + span_h : sh, v : v + span_w : sw] for u in range(kH) for v in range(kW)]
    cols = torch.stack(shifted, dim=2)  # (N, C, kH*kW, H_out, W_out)
    return cols.reshape(N, C * kH * kW, H_out * W_out)  # (N, C*kH*kW, L)


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0) -> torch.Tensor:
    """Convolution as one matrix product: (C_out, C_in*kH*kW) @ (N, C_in*kH*kW, L), then reshape."""
    check_conv_inputs(x, weight, bias)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    N, _, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    H_out, W_out = conv_output_size(H, kH, sh, ph), conv_output_size(W, kW, sw, pw)
    cols = im2col(x, (kH, kW), (sh, sw), (ph, pw))  # (N, C_in*kH*kW, L)
    W_mat = weight.reshape(C_out, -1)  # (C_out, C_in*kH*kW): one row per output channel
    y = W_mat @ cols  # (N, C_out, L)
    if bias is not None:
        y = y + bias[:, None]  # (N, C_out, L)
    return y.reshape(N, C_out, H_out, W_out)  # (N, C_out, H_out, W_out)


# --- pooling ----------------------------------------------------------------------------------------------
def pool2d(x, kernel_size, stride=None, mode: str = "max") -> torch.Tensor:
    """Max or average over each kH x kW window of each channel separately (stride defaults to the window)."""
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    kH, kW = pair(kernel_size, "kernel_size")
    sh, sw = pair(stride if stride is not None else (kH, kW), "stride")
    N, C, H, W = x.shape
    H_out, W_out = conv_output_size(H, kH, sh), conv_output_size(W, kW, sw)
    windows = im2col(x, (kH, kW), (sh, sw)).reshape(N, C, kH * kW, H_out * W_out)  # (N, C, kH*kW, L)
    pooled = windows.amax(dim=2) if mode == "max" else windows.mean(dim=2)  # (N, C, L)
    return pooled.reshape(N, C, H_out, W_out)


# --- filters on a photo, and their slider --------------------------------------------------------------
#: Classic 3x3 kernels: (integer weights, whether to divide them by their sum).
PRESETS: dict[str, tuple[list[list[float]], bool]] = {
    "identity": ([[0, 0, 0], [0, 1, 0], [0, 0, 0]], False),
    "box blur": ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], True),
    "Gaussian blur": ([[1, 2, 1], [2, 4, 2], [1, 2, 1]], True),
    "sharpen": ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], False),
    "Sobel x (vertical edges)": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], False),
    "Sobel y (horizontal edges)": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], False),
    "Laplacian (all edges)": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]], False),
    "emboss": ([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], False),
}
WEIGHT_NAMES = [f"w{r}{c}" for r in range(3) for c in range(3)]  # slider names, row by row


def make_kernel(weights, normalise: bool = False) -> np.ndarray:
    """A 3x3 float kernel from 9 numbers (or a 3x3 list); `normalise` divides by the sum when it is not 0."""
    kernel = np.asarray(weights, dtype=float).reshape(3, 3)
    total = kernel.sum()
    if normalise and abs(total) > 1e-12:
        kernel = kernel / total
    return kernel


def filter_image(image, kernel) -> np.ndarray:
    """A greyscale image (H, W) filtered by a 2-D kernel with conv2d_im2col; same size out as in.

    The border is padded by repeating the edge pixels, so a blur does not darken the frame.
    """
    image, kernel = np.asarray(image, dtype=float), np.asarray(kernel, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"image must be greyscale (H, W), got shape {image.shape}")
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2-D with odd sides, got shape {kernel.shape}")
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image, ((ph, ph), (pw, pw)), mode="edge")  # (H + 2ph, W + 2pw)
    x = torch.from_numpy(padded)[None, None]  # (1, 1, H + 2ph, W + 2pw)
    w = torch.from_numpy(kernel)[None, None]  # (1, 1, kH, kW)
    return conv2d_im2col(x, w)[0, 0].numpy()  # (H, W)


def kernel_view(draw: Callable[[np.ndarray], None], preset: str = "Sobel x (vertical edges)"):
    """A slider view for a 3x3 kernel: a preset dropdown, a 'divide by sum' box and a 3x3 grid of sliders.

    `draw(kernel)` draws with the (3, 3) kernel the controls describe. Picking a preset writes its
    weights into the sliders; moving a slider then edits that kernel. Test it headless with
    `view.set(w11=2.0)` or `view.set(preset="box blur")`, then look at `view.values` and `view.image`.
    """
    if preset not in PRESETS:
        raise KeyError(f"no preset {preset!r}; the presets are {sorted(PRESETS)}")
    weights, normalise = PRESETS[preset]
    controls = {"preset": widgets.Dropdown(options=list(PRESETS), value=preset, description="preset")}
    controls["normalise"] = widgets.Checkbox(value=normalise, description="divide by the sum")
    for name, value in zip(WEIGHT_NAMES, np.ravel(weights), strict=True):
        controls[name] = make_slider(name, (-5.0, 5.0, 0.5, float(value)))

    def redraw(preset, normalise, w00, w01, w02, w10, w11, w12, w20, w21, w22):
        draw(make_kernel([w00, w01, w02, w10, w11, w12, w20, w21, w22], normalise))

    view = SliderView(redraw, controls, columns=3)

    def load_preset(change) -> None:
        new_weights, new_normalise = PRESETS[change["new"]]
        controls["normalise"].value = new_normalise
        for name, value in zip(WEIGHT_NAMES, np.ravel(new_weights), strict=True):
            controls[name].value = float(value)

    controls["preset"].observe(load_preset, names="value")
    grid = [widgets.HBox([controls[n] for n in WEIGHT_NAMES[r : r + 3]]) for r in (0, 3, 6)]
    view.widget = widgets.VBox(
        [widgets.HBox([controls["preset"], controls["normalise"]]), *grid, view.output]
    )
    return view


# --- digits on a canvas, for the translation experiment ----------------------------------------------------
def place_on_canvas(images, size: int = 16, shift: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """(N, 1, 8, 8) digits on a blank (N, 1, size, size) canvas: centred, then moved by (down, right)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(
            f"images must be a tensor (N, 1, h, w), got {getattr(images, 'shape', type(images))}"
        )
    h, w = images.shape[2:]
    top, left = (size - h) // 2 + shift[0], (size - w) // 2 + shift[1]
    if top < 0 or left < 0 or top + h > size or left + w > size:
        raise ValueError(f"a {h}x{w} image moved by {shift} does not fit on a {size}x{size} canvas")
    canvas = images.new_zeros(images.shape[0], 1, size, size)  # (N, 1, size, size)
    canvas[:, :, top : top + h, left : left + w] = images
    return canvas


# --- the small CNN --------------------------------------------------------------------------------------
class DigitCNN(nn.Module):
    """3x3 convolutions (stride 1, padding 1) with ReLU, a global max pool, and a linear layer to the classes.

    No layer has a stride and the pool is global, so the network accepts any image size, and moving the
    digit on a blank canvas moves every feature map with it while leaving the max of each map unchanged.
    """

    def __init__(self, channels: Sequence[int] = (16, 16, 32), classes: int = 10, in_channels: int = 1):
        super().__init__()
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive widths, got {channels!r}")
        widths = [in_channels, *channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = nn.Linear(widths[-1], classes)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each conv + ReLU, each (N, C_layer, H, W)."""
        maps = []
        for conv in self.convs:
            x = torch.relu(conv(x))  # (N, C_layer, H, W)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.feature_maps(x)[-1]  # (N, C_last, H, W)
        pooled = features.amax(dim=(2, 3))  # (N, C_last): the strongest response anywhere
        return self.head(pooled)  # (N, classes)


def train_classifier(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Adam on cross-entropy with shuffled mini-batches (helpers.train.fit); test accuracy after each epoch.

    Runs on the model's device; the data may be anywhere. Returns the History (`"test_accuracy"` per epoch).
    """
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        raise ValueError("each X must have as many rows as its y")
    device = next(model.parameters()).device
    X_train, y_train = X_train.to(device), y_train.to(device)
    order = torch.Generator().manual_seed(seed)

    def batches():
        perm = torch.randperm(len(X_train), generator=order).to(device)  # (N,)
        return zip(X_train[perm].split(batch_size), y_train[perm].split(batch_size), strict=True)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    evaluate = lambda m: {"test_accuracy": accuracy(m, X_test, y_test)}  # noqa: E731
    return fit(model, batches, F.cross_entropy, optimizer, epochs, evaluate, device=device, progress=progress)


def train_digit_classifier(
    device: torch.device | str = "cpu", epochs: int = 15, seed: int = 0, progress: bool = False
) -> tuple[DigitCNN, float]:
    """A DigitCNN trained on the book's digits split: (model in eval mode on `device`, test accuracy).

    Input: (N, 1, 8, 8) images with pixels in [0, 1], as `load_digits_split().tensors(images=True)` gives.
    Output: (N, 10) logits. About two seconds on a laptop CPU; test accuracy about 0.98.
    """
    X_train, X_test, y_train, y_test = load_digits_split().tensors(images=True)  # (N, 1, 8, 8)
    torch.manual_seed(seed)
    model = DigitCNN().to(device)
    history = train_classifier(model, X_train, y_train, X_test, y_test, epochs, seed=seed, progress=progress)
    return model.eval(), history.last("test_accuracy")
