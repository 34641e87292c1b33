"""Chapter 9: a neural network in numpy alone, its backward pass written out by hand in matrix form.

Chapter 8 found gradients by recording a graph. Here the graph is always the same - linear layer, ReLU,
linear layer, ..., softmax cross-entropy - so its backward pass can be derived once, on paper, and
written as a few matrix products per layer. This module adds: a numerically stable softmax,
log-softmax and cross-entropy; an MLP whose weights follow torch's `nn.Linear` layout (W is
(out_features, in_features)); its forward pass keeping a cache, its backward pass returning every
gradient, a plain SGD step; and mini-batch training with a progress bar.

    model = MLP([64, 64, 10], seed=0)        # 64 pixels -> 64 hidden units -> 10 classes
    logits, cache = model.forward(X)         # (B, 10), and what backward needs
    grads = model.backward(cache, y)         # {"W1": (64, 64), "b1": (64,), "W2": (10, 64), "b2": (10,)}
    model.step(grads, lr=0.1)                # W <- W - lr dL/dW
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from helpers.classic import softmax  # chapter 7's, reused


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """log softmax(z) = z - logsumexp(z) = (z - m) - log sum exp(z - m), with m = max(z)."""
    z = np.asarray(logits, dtype=float)
    shifted = z - z.max(axis=axis, keepdims=True)  # <= 0, and exactly 0 at the max
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _check_labels(logits: np.ndarray, labels) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, classes), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"want one label per row: {logits.shape[0]} rows, but labels have shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) >= logits.shape[1]:
        raise ValueError(f"labels must be integers in 0..{logits.shape[1] - 1}")
    return labels


def cross_entropy_loss(logits, labels) -> float:
    """The mean over rows of -log softmax(logits)[label], as torch.nn.functional.cross_entropy computes."""
    logits = np.asarray(logits, dtype=float)  # (N, C)
    labels = _check_labels(logits, labels)  # (N,)
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())


def one_hot(labels, n_classes: int) -> np.ndarray:
    """(N,) integer labels -> (N, n_classes) rows with a single 1."""
    return np.eye(n_classes)[np.asarray(labels)]


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


class MLP:
    """Linear -> ReLU -> ... -> Linear, with every gradient derived by hand.

    sizes = [n_in, hidden..., n_classes]. Layer l has W{l} of shape (sizes[l], sizes[l-1]) and b{l} of
    shape (sizes[l],), as in torch.nn.Linear. Weights start as N(0, 2 / fan_in) (He initialisation: keeps
    the size of the activations steady through ReLU layers); biases start at 0.
    """

    def __init__(self, sizes, seed: int = 0):
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output size, all >= 1; got {sizes}")
        rng = np.random.default_rng(seed)
        self.sizes = sizes
        self.params: dict[str, np.ndarray] = {}
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            self.params[f"W{l}"] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))  # (out, in)
            self.params[f"b{l}"] = np.zeros(n_out)  # (out,)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def forward(self, X) -> tuple[np.ndarray, dict]:
        """Logits (B, classes) for the rows of X (B, n_in), and a cache of what backward needs."""
        A = np.asarray(X, dtype=float)
        if A.ndim != 2 or A.shape[1] != self.sizes[0]:
            raise ValueError(f"X must be (batch, {self.sizes[0]}), got shape {A.shape}")
        cache = {"A0": A}
        for l in range(1, self.n_layers + 1):
            Z = A @ self.params[f"W{l}"].T + self.params[f"b{l}"]  # (B, in) @ (in, out) + (out,) -> (B, out)
            cache[f"Z{l}"] = Z
            A = relu(Z) if l < self.n_layers else Z  # no ReLU after the last layer: logits
            cache[f"A{l}"] = A
        return A, cache

    def backward(self, cache: dict, labels) -> dict[str, np.ndarray]:
        """Gradients of the mean cross-entropy with respect to every parameter, layer by layer backwards."""
        logits = cache[f"A{self.n_layers}"]  # (B, C)
        labels = _check_labels(logits, labels)
        B = logits.shape[0]
        dZ = (softmax(logits) - one_hot(labels, logits.shape[1])) / B  # (B, C): dL/dlogits
        grads = {}
        for l in range(self.n_layers, 0, -1):
            grads[f"W{l}"] = dZ.T @ cache[f"A{l - 1}"]  # (out, B) @ (B, in) -> (out, in), W's shape
            grads[f"b{l}"] = dZ.sum(axis=0)  # (out,): b was broadcast over the batch
            if l > 1:
                dA = dZ @ self.params[f"W{l}"]  # (B, out) @ (out, in) -> (B, in)
                dZ = dA * (cache[f"Z{l - 1}"] > 0)  # (B, in): ReLU passes gradient where its input was > 0
        return grads

    def loss(self, X, labels) -> float:
        return cross_entropy_loss(self.forward(X)[0], labels)

    def predict(self, X) -> np.ndarray:
        return self.forward(X)[0].argmax(axis=1)

    def accuracy(self, X, labels) -> float:
        return float((self.predict(X) == np.asarray(labels)).mean())

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        """Plain SGD: every parameter moves against its gradient, p <- p - lr dL/dp (in place)."""
        for name, p in self.params.items():
            p -= lr * grads[name]


def train(
    model: MLP,
    X,
    y,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    X_val=None,
    y_val=None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Mini-batch SGD: each epoch shuffles the rows, then steps once per batch of `batch_size` rows.

    Returns {"step_loss": loss of every batch, "val_accuracy": accuracy on (X_val, y_val) after every
    epoch (empty without them)}.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
    rng = np.random.default_rng(seed)
    history = {"step_loss": [], "val_accuracy": []}
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    for _ in bar:
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size]
            logits, cache = model.forward(X[rows])  # (B, C)
            history["step_loss"].append(cross_entropy_loss(logits, y[rows]))
            model.step(model.backward(cache, y[rows]), lr)
        if X_val is not None:
            history["val_accuracy"].append(model.accuracy(X_val, y_val))
            bar.set_postfix(val_accuracy=f"{history['val_accuracy'][-1]:.3f}")
    return history


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """counts[i, j] = how many examples of true class i were predicted as class j."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} and {y_pred.shape}")
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)  # one count per (true, predicted) pair
    return counts


def smooth(values: list[float], window: int) -> np.ndarray:
    """A running mean over `window` values (the first values average what there is so far)."""
    values = np.asarray(values, dtype=float)
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts
