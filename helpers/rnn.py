"""Chapter 13: recurrent networks from scratch: RNN, LSTM and GRU cells, a multi-step wrapper, a
character-level language model and a sampler.

What this adds over a feed-forward layer: a hidden state h that is carried from one step of a sequence
to the next, so the output at step t can depend on everything before it. Each cell is its update
formula written with two matrix products; the parameters have the names and shapes that
torch.nn.RNNCell / LSTMCell / GRUCell use, so `load_state_dict` copies weights across and
tests/test_rnn.py checks outputs and gradients against PyTorch's own cells and layers.

Shapes: batch first. A sequence is (B, T, I), a hidden state is (B, H); a stacked state (as torch.nn.RNN
returns it) is (L, B, H) for L layers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.corpus import CharVocab

KINDS = ("rnn", "lstm", "gru")


class RecurrentCell(nn.Module):
    """What the three cells share: for G gate blocks, weight_ih (G*H, I), weight_hh (G*H, H) and two biases
    (G*H,), with PyTorch's names, shapes and initialisation; and the shape checks of a step's input."""

    gates = 1  # G: how many blocks of H rows the weight matrices stack

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"sizes must be positive, got input {input_size} and hidden {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))  # (G*H, I)
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))  # (G*H, H)
        self.bias_ih = nn.Parameter(torch.empty(rows))  # (G*H,)
        self.bias_hh = nn.Parameter(torch.empty(rows))  # (G*H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every entry uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _check(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must be (B, {self.input_size}), got {tuple(x.shape)}")
        if h is None:
            return x.new_zeros(x.shape[0], self.hidden_size)
        if tuple(h.shape) != (x.shape[0], self.hidden_size):
            raise ValueError(
                f"the state must be (B, H) = {(x.shape[0], self.hidden_size)}, got {tuple(h.shape)}"
            )
        return h


class RNNCell(RecurrentCell):
    """The vanilla recurrent cell: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b).

    W_xh is `weight_ih` and b is `bias_ih + bias_hh` (PyTorch keeps two biases; only their sum matters).
    """

    gates = 1

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = self._check(x, h)  # (B, H)
        return torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)  # (B, H)


class LSTMCell(RecurrentCell):
    """Long short-term memory: a cell state c that is changed only by gated, elementwise updates.

        i, f, g, o = sigma(.), sigma(.), tanh(.), sigma(.)  of  W_ih x + b_ih + W_hh h + b_hh
        c_t = f * c_{t-1} + i * g        forget some of the old memory, write some new
        h_t = o * tanh(c_t)              show some of the memory

    The state is the pair (h, c). The gate blocks are stacked in PyTorch's order: input, forget, cell, output.
    `forget_bias` is added to the forget gate's bias at initialisation (1.0 is the usual advice).
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 0.0):
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.bias_ih[self.hidden_size : 2 * self.hidden_size] += self.forget_bias

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        h, c = (None, None) if state is None else state
        h = self._check(x, h)  # (B, H)
        c = torch.zeros_like(h) if c is None else c  # (B, H)
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g  # (B, H)
        h = o * torch.tanh(c)  # (B, H)
        return h, c


class GRUCell(RecurrentCell):
    """Gated recurrent unit: no separate memory; an update gate z mixes the old state with a candidate.

    r = sigma(W_ir x + b_ir + W_hr h + b_hr)            reset: how much old state the candidate sees
    z = sigma(W_iz x + b_iz + W_hz h + b_hz)            update: how much old state to keep
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))       the candidate
    h_t = (1 - z) * n + z * h_{t-1}
    """

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = self._check(x, h)  # (B, H)
        x_r, x_z, x_n = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)  # each (B, H)
        h_r, h_z, h_n = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)  # each (B, H)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h  # (B, H)


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


class Recurrent(nn.Module):
    """A cell unrolled over a sequence, optionally stacked: each layer reads the outputs of the one below.

    forward(x (B, T, I), state) -> (outputs (B, T, H) of the top layer, final state), where a state is
    h (L, B, H), or (h, c) for an LSTM, as torch.nn.RNN / LSTM / GRU with batch_first=True return it.
    """

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int = 1, **cell_options):
        super().__init__()
        if kind not in CELLS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        self.kind, self.hidden_size, self.num_layers = kind, hidden_size, num_layers
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(CELLS[kind](size, hidden_size, **cell_options) for size in sizes)

    def forward(self, x: torch.Tensor, state=None):
        if x.ndim != 3:
            raise ValueError(f"x must be a batch of sequences (B, T, I), got shape {tuple(x.shape)}")
        lstm = self.kind == "lstm"
        finals_h, finals_c = [], []
        for layer, cell in enumerate(self.cells):
            if state is None:
                s = None
            elif lstm:
                s = (state[0][layer], state[1][layer])  # ((B, H), (B, H))
            else:
                s = state[layer]  # (B, H)
            outputs = []
            for t in range(x.shape[1]):
                s = cell(x[:, t], s)  # (B, H), or a pair of them
                outputs.append(s[0] if lstm else s)
            x = torch.stack(outputs, dim=1)  # (B, T, H): the next layer's input
            finals_h.append(s[0] if lstm else s)
            if lstm:
                finals_c.append(s[1])
        h = torch.stack(finals_h)  # (L, B, H)
        return x, ((h, torch.stack(finals_c)) if lstm else h)

    @torch.no_grad()
    def load_torch(self, module: nn.RNN | nn.LSTM | nn.GRU) -> nn.Module:
        """Copy the weights of a torch.nn.RNN / LSTM / GRU of the same kind and sizes into this module."""
        expected = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[self.kind]
        if type(module) is not expected or module.num_layers != self.num_layers or module.bidirectional:
            raise ValueError(
                f"expected a one-way {expected.__name__} with {self.num_layers} layers, got {module}"
            )
        if module.hidden_size != self.hidden_size or getattr(module, "proj_size", 0):
            raise ValueError(
                f"hidden sizes differ: {module.hidden_size} (torch) and {self.hidden_size} (ours)"
            )
        for layer, cell in enumerate(self.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(module, f"{name}_l{layer}"))
        return self


class CharRNN(nn.Module):
    """A character-level language model: embedding -> Recurrent -> linear layer to one logit per character.

    forward(ids (B, T), state) -> (logits (B, T, V), state). The logits at step t score the character
    at step t + 1. An embedding row is the same as a one-hot vector times a weight matrix, stored as a
    lookup table.
    """

    def __init__(
        self, vocab_size: int, hidden_size: int = 128, kind: str = "lstm", embed_size: int = 32, **cell
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.rnn = Recurrent(kind, embed_size, hidden_size, **cell)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        outputs, state = self.rnn(self.embed(ids), state)  # (B, T, H)
        return self.head(outputs), state  # (B, T, V)


def random_windows(ids: torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator):
    """`batch_size` random windows of the text: inputs (B, T) and targets (B, T), the next character each."""
    if ids.ndim != 1 or len(ids) <= seq_len:
        raise ValueError(f"need a 1-D tensor of more than {seq_len} ids, got shape {tuple(ids.shape)}")
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(seq_len)  # (T,)
    windows = ids[starts[:, None] + offsets]  # (B, T)
    return windows, ids[starts[:, None] + offsets + 1]  # (B, T), (B, T)


def sequence_loss(output, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (logits (B, T, V), state) against targets (B, T): nats per character."""
    logits = output[0] if isinstance(output, tuple) else output
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / temperature): below 1 sharpens the distribution, above 1 flattens it."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return torch.softmax(logits.double() / temperature, dim=-1)


@torch.no_grad()
def sample(
    model: CharRNN, vocab: CharVocab, prompt: str, length: int, temperature: float = 1.0, seed: int = 0
) -> str:
    """Feed `prompt`, then draw `length` characters one at a time, each fed back in; returns the new text."""
    if not prompt:
        raise ValueError("give a prompt of at least one character")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    logits, state = model(vocab.tensor(prompt)[None].to(device))  # (1, T, V)
    drawn = []
    for _ in range(length):
        probs = softmax_with_temperature(logits[0, -1].cpu(), temperature)  # (V,)
        next_id = int(torch.multinomial(probs, 1, generator=generator))
        drawn.append(next_id)
        logits, state = model(torch.tensor([[next_id]], device=device), state)  # (1, 1, V)
    model.train(was_training)
    return vocab.decode(drawn)


def hidden_gradient_norms(cell: nn.Module, inputs: torch.Tensor) -> np.ndarray:
    """Run `cell` over inputs (B, T, I) from a zero state; return ||dL/dh_t|| for t = 0..T-1, where the loss
    L is the sum of the last hidden state h_{T-1}. Shows how far back a signal from the end reaches."""
    if inputs.ndim != 3:
        raise ValueError(f"inputs must be (B, T, I), got shape {tuple(inputs.shape)}")
    state, hidden = None, []
    for t in range(inputs.shape[1]):
        state = cell(inputs[:, t], state)
        hidden.append(state[0] if isinstance(state, tuple) else state)  # (B, H)
    grads = torch.autograd.grad(hidden[-1].sum(), hidden)  # T tensors (B, H); h_{T-1} gets ones
    return np.array([g.norm().item() for g in grads])


@torch.no_grad()
def set_spectral_radius(weight: torch.Tensor, radius: float) -> torch.Tensor:
    """Rescale a square matrix in place so that its largest |eigenvalue| is `radius`; returns it."""
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"need a square matrix, got shape {tuple(weight.shape)}")
    current = torch.linalg.eigvals(weight.detach().cpu().double()).abs().max().item()  # eigvals: CPU float64
    return weight.mul_(radius / current)


def gradient_decay(
    kind: str,
    steps: int = 60,
    hidden_size: int = 64,
    input_size: int = 16,
    batch_size: int = 16,
    radius: float | None = None,
    forget_bias: float = 1.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """||dL/dh_t|| / ||dL/dh_{T-1}|| for a freshly initialised cell on random inputs, indexed by the
    distance d = T-1-t from the end (entry 0 is 1). `radius` rescales the recurrent matrix W_hh of an RNN
    cell to that spectral radius; `forget_bias` is the LSTM's forget-gate bias at initialisation."""
    if kind not in CELLS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    options = {"forget_bias": forget_bias} if kind == "lstm" else {}
    cell = CELLS[kind](input_size, hidden_size, **options)
    if radius is not None:
        if kind != "rnn":
            raise ValueError("radius applies to the vanilla RNN cell only")
        set_spectral_radius(cell.weight_hh, radius)
    inputs = torch.randn(batch_size, steps, input_size, generator=generator)  # (B, T, I)
    norms = hidden_gradient_norms(cell.to(device), inputs.to(device))  # (T,)
    return norms[::-1] / norms[-1]


def ngram_cross_entropy(train_ids, val_ids, context: int, vocab_size: int, alpha: float = 0.1) -> float:
    """Nats per character on `val_ids` of a table of counts that predicts each character from the `context`
    characters before it, counted on `train_ids`, with add-alpha smoothing:

        p(next | ctx) = (count(ctx, next) + alpha) / (count(ctx) + alpha * V)

    The baseline a recurrent model has to beat. Only the contexts that occur are stored (sorted keys).
    """
    if context < 0 or alpha <= 0:
        raise ValueError(f"need context >= 0 and alpha > 0, got {context} and {alpha}")
    if vocab_size ** (context + 1) >= 2**62:
        raise ValueError(
            f"{vocab_size}^{context + 1} keys do not fit in 64-bit integers: use a shorter context"
        )
    train, val = np.asarray(train_ids, dtype=np.int64), np.asarray(val_ids, dtype=np.int64)

    def contexts_and_next(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = np.zeros(len(ids) - context, dtype=np.int64)  # the context as one base-V number
        for i in range(context):
            key = key * vocab_size + ids[i : len(ids) - context + i]
        return key, ids[context:]

    def count_of(keys: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
        where = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[where] == query, counts[where], 0)

    ctx, nxt = contexts_and_next(train)
    pair_keys, pair_counts = np.unique(ctx * vocab_size + nxt, return_counts=True)
    ctx_keys, ctx_counts = np.unique(ctx, return_counts=True)
    val_ctx, val_nxt = contexts_and_next(val)
    numerator = count_of(pair_keys, pair_counts, val_ctx * vocab_size + val_nxt) + alpha
    denominator = count_of(ctx_keys, ctx_counts, val_ctx) + alpha * vocab_size
    return float(-np.log(numerator / denominator).mean())
