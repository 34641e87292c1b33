"""The reference solutions of chapters 12-13's exercises, checked against the library they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
torch (torch.nn.functional.conv1d / conv2d, nn.GRUCell, nn.LSTMCell, autograd) or with the book's helper
that is itself tested against torch, on random inputs; each predict-then-run answer is compared with the
experiment it predicts, re-run small; and the build-it checkers are shown to refuse the shortcuts they
exist to refuse.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal
from torch import nn

from helpers.cnn import (
    DigitCNN,
    conv2d_loops,
    conv_output_size,
    filter_image,
    place_on_canvas,
    train_classifier,
)
from helpers.digits import load_digits_split
from helpers.exercises import check, get, passes
from helpers.rnn import GRUCell, LSTMCell, gradient_decay, softmax_with_temperature


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a library shortcut."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it yourself" in out)


# chapter 12 ---------------------------------------------------------------------------------------------
def test_12_1_output_width_matches_conv2d_and_the_helper():
    y = F.conv2d(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 5, 5), stride=2, padding=1)
    assert y.shape[-1] == get("12.1").solution == conv_output_size(32, 5, 2, 1)


def test_12_2_conv1d_matches_torch_conv1d_on_random_signals():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(1, 6))
        x, w = rng.normal(size=int(rng.integers(k, 20))), rng.normal(size=k)
        want = F.conv1d(torch.tensor(x)[None, None], torch.tensor(w)[None, None])[0, 0].numpy()
        assert np.allclose(get("12.2").solution(x, w), want, atol=1e-12)


def test_12_2_refuses_the_library_correlations(capsys):
    assert refused("12.2", lambda x, w: np.correlate(x, w, mode="valid"), capsys)
    assert refused("12.2", lambda x, w: np.convolve(x, w[::-1], mode="valid"), capsys)
    assert refused("12.2", lambda x, w: signal.correlate(x, w, mode="valid"), capsys)
    assert np.allclose(np.correlate([1.0, 2.0, 3.0], [1.0, 1.0]), [3.0, 5.0])  # restored after the check


def test_12_3_edge_detector_is_sobel_y_upside_down_and_fires_on_the_right_edges():
    kernel = get("12.3").solution
    edge = np.zeros((8, 8))
    edge[:4] = 1.0  # bright above, dark below
    torch_out = F.conv2d(torch.tensor(edge)[None, None], torch.tensor(kernel)[None, None], padding=1)
    assert np.allclose(filter_image(edge, kernel)[1:-1, 1:-1], torch_out[0, 0, 1:-1, 1:-1].numpy())
    assert filter_image(edge, kernel)[3:5].min() > 0 and np.allclose(filter_image(edge.T, kernel), 0.0)
    assert np.allclose(kernel, -np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]))


def test_12_4_receptive_field_matches_the_gradient_of_digit_cnn():
    torch.manual_seed(0)
    model = DigitCNN().double()
    x = torch.randn(1, 1, 15, 15, dtype=torch.float64, requires_grad=True)
    maps = model.feature_maps(x)[-1]  # (1, 32, 15, 15)
    (grad,) = torch.autograd.grad(maps[0, :, 7, 7].sum(), x)  # which input pixels reach one output pixel
    rows, cols = np.nonzero(grad[0, 0].numpy())
    assert rows.max() - rows.min() + 1 == cols.max() - cols.min() + 1 == get("12.4").solution


def test_12_5_depthwise_matches_grouped_conv2d_and_the_chapters_loops():
    rng = np.random.default_rng(1)
    for _ in range(15):
        N, C, k, p = (
            int(rng.integers(1, 3)),
            int(rng.integers(1, 5)),
            int(rng.integers(1, 4)),
            int(rng.integers(0, 3)),
        )
        x, w = rng.normal(size=(N, C, k + 4, k + 3)), rng.normal(size=(C, k, k))
        want = F.conv2d(torch.tensor(x), torch.tensor(w)[:, None], padding=p, groups=C).numpy()
        got = get("12.5").solution(x, w, p)
        assert got.shape == want.shape and np.allclose(got, want, atol=1e-12)
        for c in range(C):  # one channel at a time, it is the chapter's ordinary convolution
            one = conv2d_loops(torch.tensor(x[:, c : c + 1]), torch.tensor(w[c])[None, None], padding=p)
            assert np.allclose(got[:, c], one[:, 0].numpy(), atol=1e-12)


def test_12_5_refuses_conv2d_unfold_scipy_and_the_chapters_helpers(capsys):
    def by_torch(x, w, padding):
        return F.conv2d(torch.tensor(x), torch.tensor(w)[:, None], padding=padding, groups=w.shape[0]).numpy()

    def by_scipy(x, w, padding):
        x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        return np.stack(
            [np.stack([signal.correlate2d(xn[c], w[c], mode="valid") for c in range(len(w))]) for xn in x_pad]
        )

    def by_helper(x, w, padding):
        outs = [
            conv2d_loops(torch.tensor(x[:, c : c + 1]), torch.tensor(w[c])[None, None], padding=padding)
            for c in range(len(w))
        ]
        return torch.cat(outs, dim=1).numpy()

    for shortcut in (by_torch, by_scipy, by_helper):
        assert refused("12.5", shortcut, capsys), shortcut.__name__
    assert passes("12.5", get("12.5").solution)


def test_12_6_prediction_matches_an_mlp_trained_on_centred_digits():
    """The experiment of 12.8, small: an MLP on centred 16x16 canvases, tested on digits moved 2-3 pixels."""
    digits = load_digits_split()
    X_train, X_test, y_train, y_test = digits.tensors(images=True)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    train_classifier(
        mlp, place_on_canvas(X_train, 16), y_train, place_on_canvas(X_test, 16), y_test, 15, progress=False
    )
    with torch.no_grad():
        centred = (mlp(place_on_canvas(X_test, 16)).argmax(1) == y_test).float().mean().item()
        shifted = [
            (mlp(place_on_canvas(X_test, 16, (dy, dx))).argmax(1) == y_test).float().mean().item()
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if max(abs(dy), abs(dx)) >= 2
        ]
    assert centred > 0.9
    assert abs(np.mean(shifted) - get("12.6").solution) < 0.15  # within the checker's tolerance
    assert not passes("12.6", centred - 0.1)  # "about as good as on centred digits" is refused


# chapter 13 ---------------------------------------------------------------------------------------------
def test_13_1_parameter_count_matches_torch_lstm_cell():
    for I, H in [(32, 128), (1, 1), (7, 300), (256, 3)]:
        want = sum(p.numel() for p in nn.LSTMCell(I, H).parameters())
        assert get("13.1").solution(I, H) == want == sum(p.numel() for p in LSTMCell(I, H).parameters())


def test_13_1_refuses_counting_a_built_cell(capsys):
    assert refused(
        "13.1", lambda I, H: sum(p.numel() for p in torch.nn.LSTMCell(int(I), int(H)).parameters()), capsys
    )
    assert refused("13.1", lambda I, H: sum(p.numel() for p in LSTMCell(int(I), int(H)).parameters()), capsys)


def test_13_2_gru_step_matches_torch_gru_cell_and_the_helper():
    rng = np.random.default_rng(2)
    for _ in range(15):
        I, H = int(rng.integers(1, 6)), int(rng.integers(1, 7))
        cell = nn.GRUCell(I, H).double()
        with torch.no_grad():
            for p in cell.parameters():
                p.copy_(torch.tensor(rng.normal(size=p.shape)))
        ours = GRUCell(I, H).double()
        ours.load_state_dict(cell.state_dict())
        x, h = rng.normal(size=I), rng.normal(size=H)
        got = get("13.2").solution(x, h, *(p.detach().numpy() for p in cell.parameters()))
        with torch.no_grad():
            want = cell(torch.tensor(x)[None], torch.tensor(h)[None])[0].numpy()
            assert np.allclose(ours(torch.tensor(x)[None], torch.tensor(h)[None])[0].numpy(), want)
        assert np.allclose(got, want, atol=1e-12)


def test_13_2_refuses_the_gru_cells_of_torch_and_helpers(capsys):
    def with_torch(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = torch.nn.GRUCell(len(x), len(h)).double()
        with torch.no_grad():
            for p, value in zip(cell.parameters(), (weight_ih, weight_hh, bias_ih, bias_hh), strict=True):
                p.copy_(torch.tensor(value))
            return cell(torch.tensor(x)[None], torch.tensor(h)[None])[0].numpy()

    def with_helper(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = GRUCell(len(x), len(h)).double()
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        cell.load_state_dict(
            {n: torch.tensor(v) for n, v in zip(names, (weight_ih, weight_hh, bias_ih, bias_hh), strict=True)}
        )
        with torch.no_grad():
            return cell(torch.tensor(x)[None], torch.tensor(h)[None])[0].numpy()

    assert refused("13.2", with_torch, capsys)
    assert refused("13.2", with_helper, capsys)
    assert torch.nn.GRUCell(2, 3)(torch.zeros(1, 2)).shape == (1, 3)  # restored after the check


def test_13_3_fifty_step_gradient_matches_autograd():
    h0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    h = h0
    for x in torch.randn(50, dtype=torch.float64):
        h = 0.9 * h + x
    (grad,) = torch.autograd.grad(h, h0)
    assert math.isclose(grad.item(), get("13.3").solution, rel_tol=1e-12)


def test_13_4_temperature_probabilities_match_the_helper_and_torch():
    logits = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    want = softmax_with_temperature(logits, 0.5).numpy()
    assert np.allclose(get("13.4").solution, want, atol=1e-12)
    assert np.allclose(want, torch.softmax(logits / 0.5, dim=0).numpy())


def test_13_5_prediction_matches_the_measured_lstm_gradient():
    measured = -math.log10(gradient_decay("lstm", forget_bias=0.0)[50])
    assert abs(measured - get("13.5").solution) < 0.1  # the reference is the measurement, rounded
    assert not passes("13.5", -math.log10(gradient_decay("lstm", forget_bias=1.0)[50]))  # the open-gate LSTM
