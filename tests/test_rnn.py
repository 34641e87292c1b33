"""Chapter 13's recurrent cells and layers against torch.nn's (same weights: same outputs, same gradients),
the character model's pieces, the sampler, the gradient measurement and the two sliders, headless."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import rnn, slider_view
from helpers.corpus import CharVocab

warnings.filterwarnings("ignore", message=".*non-interactive.*")

TORCH_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def sizes(seed):
    rng = np.random.default_rng(seed)
    return tuple(int(v) for v in rng.integers(1, 7, size=4))  # B, T, I, H


def params_and_inputs(module, inputs):
    return [*module.parameters(), *inputs]


@pytest.mark.parametrize("kind", rnn.KINDS)
@pytest.mark.parametrize("seed", range(8))
def test_cells_match_torch_outputs_and_gradients(kind, seed):
    B, _, I, H = sizes(seed)
    torch.manual_seed(seed)
    theirs = TORCH_CELLS[kind](I, H).double()
    ours = rnn.CELLS[kind](I, H).double()
    ours.load_state_dict(theirs.state_dict())  # same names and shapes, so the weights copy straight across
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    state, leaves = ((h, c), [x, h, c]) if kind == "lstm" else (h, [x, h])
    out_ours, out_theirs = ours(x, state), theirs(x, state)
    if kind != "lstm":
        out_ours, out_theirs = (out_ours,), (out_theirs,)
    weights = [torch.randn_like(o) for o in out_theirs]  # a random loss sum(w * out)
    grads = []
    for module, outs in [(ours, out_ours), (theirs, out_theirs)]:
        for o, t in zip(outs, out_theirs, strict=True):
            torch.testing.assert_close(o, t, rtol=1e-12, atol=1e-12)
        loss = sum((w * o).sum() for w, o in zip(weights, outs, strict=True))
        grads.append(torch.autograd.grad(loss, params_and_inputs(module, leaves)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", rnn.KINDS)
def test_cells_start_from_a_zero_state_like_torch(kind):
    torch.manual_seed(0)
    theirs, ours = TORCH_CELLS[kind](3, 5), rnn.CELLS[kind](3, 5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3)
    a, b = ours(x), theirs(x)
    for o, t in zip(a if kind == "lstm" else [a], b if kind == "lstm" else [b], strict=True):
        torch.testing.assert_close(o, t)


@pytest.mark.parametrize("kind", rnn.KINDS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layer_matches_torch_rnn_lstm_gru(kind, num_layers, with_state):
    B, T, I, H = sizes(num_layers * 10 + with_state)
    torch.manual_seed(num_layers)
    theirs = TORCH_LAYERS[kind](I, H, num_layers=num_layers, batch_first=True).double()
    ours = rnn.Recurrent(kind, I, H, num_layers).double().load_torch(theirs)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    state = None
    if with_state:
        h0 = torch.randn(num_layers, B, H, dtype=torch.float64)
        state = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    (y_ours, s_ours), (y_theirs, s_theirs) = ours(x, state), theirs(x, state)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-10, atol=1e-12)
    for a, b in zip(
        s_ours if kind == "lstm" else [s_ours], s_theirs if kind == "lstm" else [s_theirs], strict=True
    ):
        assert a.shape == (num_layers, B, H)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    upstream = torch.randn_like(y_theirs)
    g_ours = torch.autograd.grad((y_ours * upstream).sum(), [x, *ours.parameters()])
    g_theirs = torch.autograd.grad((y_theirs * upstream).sum(), [x, *theirs.parameters()])
    torch.testing.assert_close(g_ours[0], g_theirs[0], rtol=1e-10, atol=1e-12)  # d loss / d inputs
    by_name = dict(zip([n for n, _ in theirs.named_parameters()], g_theirs[1:], strict=True))
    for (name, _), grad in zip(ours.named_parameters(), g_ours[1:], strict=True):
        layer, param = name.split(".")[1], name.split(".")[2]  # cells.<layer>.<param>
        torch.testing.assert_close(grad, by_name[f"{param}_l{layer}"], rtol=1e-10, atol=1e-12)


def test_forget_bias_opens_the_forget_gate_only():
    torch.manual_seed(0)
    plain = rnn.LSTMCell(4, 8)
    torch.manual_seed(0)
    opened = rnn.LSTMCell(4, 8, forget_bias=1.0)
    difference = (opened.bias_ih - plain.bias_ih).detach()
    torch.testing.assert_close(difference[8:16], torch.ones(8))
    assert difference[:8].abs().max() == 0 and difference[16:].abs().max() == 0


def test_char_model_is_causal_and_shaped():
    torch.manual_seed(0)
    model = rnn.CharRNN(vocab_size=11, hidden_size=16, kind="lstm")
    ids = torch.randint(0, 11, (2, 9))
    logits, (h, c) = model(ids)
    assert logits.shape == (2, 9, 11) and h.shape == c.shape == (1, 2, 16)
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    torch.testing.assert_close(model(changed)[0][:, :5], logits[:, :5])  # the past does not see the future
    assert not torch.allclose(model(changed)[0][:, 5:], logits[:, 5:])
    continued, _ = model(ids[:, 4:], model(ids[:, :4])[1])  # feeding the state on = one long sequence
    torch.testing.assert_close(continued, logits[:, 4:], rtol=1e-5, atol=1e-6)


def test_random_windows_targets_are_the_next_characters():
    ids = torch.arange(100)
    x, y = rnn.random_windows(ids, 7, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 7)
    torch.testing.assert_close(y, x + 1)
    torch.testing.assert_close(x[:, 1:], x[:, :-1] + 1)
    with pytest.raises(ValueError, match="more than 7"):
        rnn.random_windows(torch.arange(7), 7, 1, torch.Generator())


def test_sequence_loss_is_cross_entropy_per_character():
    logits, targets = torch.randn(3, 4, 6), torch.randint(0, 6, (3, 4))
    want = F.cross_entropy(logits.reshape(12, 6), targets.reshape(12))
    torch.testing.assert_close(rnn.sequence_loss((logits, None), targets), want)
    uniform = rnn.sequence_loss(torch.zeros(2, 5, 10), torch.zeros(2, 5, dtype=torch.long))
    assert uniform.item() == pytest.approx(np.log(10))


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    torch.testing.assert_close(rnn.softmax_with_temperature(logits, 1.0), torch.softmax(logits.double(), 0))
    entropies = []
    for t in [0.05, 0.5, 1.0, 2.0, 50.0]:
        p = rnn.softmax_with_temperature(logits, t)
        assert p.sum().item() == pytest.approx(1.0)
        entropies.append(-(p * p.log()).sum().item())
    assert entropies == sorted(entropies)  # hotter = flatter = more entropy
    assert entropies[0] < 0.01 and entropies[-1] == pytest.approx(np.log(4), abs=0.01)
    with pytest.raises(ValueError, match="positive"):
        rnn.softmax_with_temperature(logits, 0.0)


def test_sample_is_reproducible_and_uses_the_vocabulary():
    vocab = CharVocab.from_text("abc de")
    torch.manual_seed(0)
    model = rnn.CharRNN(vocab.size, 8, "gru")
    a = rnn.sample(model, vocab, "ab", 30, temperature=1.0, seed=3)
    assert a == rnn.sample(model, vocab, "ab", 30, temperature=1.0, seed=3)
    assert len(a) == 30 and set(a) <= set(vocab.chars)
    greedy = rnn.sample(model, vocab, "ab", 10, temperature=1e-4, seed=0)
    assert greedy == rnn.sample(model, vocab, "ab", 10, temperature=1e-4, seed=99)  # almost greedy: no chance
    with pytest.raises(ValueError, match="prompt"):
        rnn.sample(model, vocab, "", 5)


def test_hidden_gradient_norms_match_a_hand_computed_step():
    torch.manual_seed(0)
    cell = rnn.RNNCell(3, 5).double()
    inputs = torch.randn(2, 4, 3, dtype=torch.float64)
    norms = rnn.hidden_gradient_norms(cell, inputs)
    assert norms.shape == (4,)
    assert norms[-1] == pytest.approx(np.sqrt(2 * 5))  # dL/dh_{T-1} is all ones
    h, hs = None, []
    for t in range(4):
        h = cell(inputs[:, t], h)
        hs.append(h.detach())
    # one step back through h_t = tanh(W x + W_hh h_{t-1} + b): dL/dh_{T-2} = (ones * (1 - h_{T-1}^2)) @ W_hh
    by_hand = ((1 - hs[-1] ** 2) @ cell.weight_hh.detach()).norm().item()
    assert norms[-2] == pytest.approx(by_hand)


def test_set_spectral_radius_matches_numpy_eigenvalues():
    W = torch.randn(6, 6)
    rnn.set_spectral_radius(W, 0.9)
    assert np.abs(np.linalg.eigvals(W.numpy().astype(np.float64))).max() == pytest.approx(0.9, rel=1e-5)
    with pytest.raises(ValueError, match="square"):
        rnn.set_spectral_radius(torch.ones(2, 3), 1.0)


def test_gradients_vanish_in_the_rnn_and_survive_in_the_lstm():
    rnn_decay = rnn.gradient_decay("rnn", steps=51)
    lstm_decay = rnn.gradient_decay("lstm", steps=51, forget_bias=1.0)
    assert rnn_decay[0] == lstm_decay[0] == 1.0
    assert rnn_decay[50] < 1e-8 and lstm_decay[50] > 1e4 * rnn_decay[50]
    closed = rnn.gradient_decay("lstm", steps=51, forget_bias=0.0)
    assert closed[50] < lstm_decay[50]  # a more open forget gate keeps more gradient
    small, large = (rnn.gradient_decay("rnn", steps=31, radius=r)[30] for r in (0.5, 1.5))
    assert small < 1e-6 < 1.0 < large  # below 1 the gradient vanishes, above 1 it explodes
    with pytest.raises(ValueError, match="radius"):
        rnn.gradient_decay("lstm", radius=1.0)


def test_gradient_decay_slider_redraws():
    import matplotlib.pyplot as plt

    def draw(radius, forget_bias):
        plt.semilogy(rnn.gradient_decay("rnn", steps=20, radius=radius))
        plt.semilogy(rnn.gradient_decay("lstm", steps=20, forget_bias=forget_bias))
        plt.ylim(1e-20, 1e5)

    view = slider_view(draw, radius=(0.2, 2.0, 0.1, 0.6), forget_bias=(-2.0, 4.0, 0.5, 1.0))
    before = view.image
    view.set(radius=1.5)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0


def test_temperature_slider_redraws():
    import matplotlib.pyplot as plt

    logits = torch.tensor([3.0, 1.0, 0.0, -2.0])

    def draw(temperature):
        plt.bar(range(4), rnn.softmax_with_temperature(logits, temperature).numpy())
        plt.ylim(0, 1)

    view = slider_view(draw, temperature=(0.1, 2.0, 0.1, 1.0))
    before = view.image
    view.set(temperature=0.2)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rnn.RNNCell(0, 4), "positive"),
        (lambda: rnn.RNNCell(3, 4)(torch.ones(2, 5)), r"\(B, 3\)"),
        (lambda: rnn.GRUCell(3, 4)(torch.ones(2, 3), torch.ones(2, 5)), "state"),
        (lambda: rnn.Recurrent("transformer", 3, 4), "kind"),
        (lambda: rnn.Recurrent("rnn", 3, 4, num_layers=0), "num_layers"),
        (lambda: rnn.Recurrent("rnn", 3, 4)(torch.ones(2, 3)), r"\(B, T, I\)"),
        (lambda: rnn.Recurrent("rnn", 3, 4).load_torch(nn.LSTM(3, 4)), "RNN"),
        (lambda: rnn.Recurrent("lstm", 3, 4).load_torch(nn.LSTM(3, 5)), "hidden sizes"),
        (lambda: rnn.hidden_gradient_norms(rnn.RNNCell(3, 4), torch.ones(2, 3)), r"\(B, T, I\)"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("context", [0, 1, 2])
def test_ngram_cross_entropy_matches_a_dense_table(context):
    rng = np.random.default_rng(context)
    V, alpha = 5, 0.3
    train, val = rng.integers(0, V, 400), rng.integers(0, V, 100)
    counts = np.zeros((V,) * (context + 1))
    np.add.at(counts, tuple(train[i : len(train) - context + i] for i in range(context + 1)), 1)
    probs = (counts + alpha) / (counts.sum(axis=-1, keepdims=True) + alpha * V)  # (V,)*(context+1)
    want = -np.log(probs[tuple(val[i : len(val) - context + i] for i in range(context + 1))]).mean()
    assert rnn.ngram_cross_entropy(train, val, context, V, alpha) == pytest.approx(want)


def test_ngram_cross_entropy_of_a_repeating_text_falls_with_context():
    ids = np.tile([0, 1, 2, 0, 3], 50)  # after "0" comes 1 or 3; after "2 0" always 3
    ce = [rnn.ngram_cross_entropy(ids, ids, k, 4) for k in range(3)]
    assert ce[0] > ce[1] > ce[2] and ce[2] < 0.01
    with pytest.raises(ValueError, match="64-bit"):
        rnn.ngram_cross_entropy(ids, ids, 20, 103)
