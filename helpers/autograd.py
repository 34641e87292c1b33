"""Chapter 8: reverse-mode automatic differentiation from scratch, first on numbers, then on arrays.

`Value` is a number that remembers the operation that made it and the values it was made from, so a
finished expression is a graph. Each operation is one small method with two parts: compute the output,
and a `_backward` closure that passes the output's gradient to the inputs by the operation's local
derivative (the chain rule, one edge at a time). `backward()` visits the graph in reverse topological
order, so every node has its full gradient before it passes it on.

`Tensor` is the same pattern on numpy arrays: the local rules become array formulas (matmul's gradient
is another matmul), and an input that was broadcast gets the gradient summed back to its own shape
(`unbroadcast`). Enough to train a small network; tests/test_autograd.py checks both engines against
torch.autograd on random expressions.

Unlike torch, `backward()` overwrites the `.grad` of every node in the graph (it does not add to what a
previous call left there), so a training loop needs no `zero_grad`.
"""

from __future__ import annotations

import math

import numpy as np


def topological_order(root) -> list:
    """Every node `root` depends on, each listed after all of its parents; `root` comes last.

    A depth-first search that emits a node once its parents are done. It keeps its own stack instead of
    recursing, so a graph a million operations deep (a long Python loop) does not hit the recursion limit.
    """
    order, seen = [], set()
    stack = [(root, False)]  # (node, are its parents already emitted?)
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))  # come back to it after its parents
            stack.extend((parent, False) for parent in reversed(node.parents))
    return order


# --- the scalar engine -----------------------------------------------------------------------------------


class Value:
    """A number that remembers how it was made, so that gradients can flow back to what made it."""

    def __init__(self, data, parents: tuple = (), op: str = "", label: str = ""):
        if not isinstance(data, int | float | np.number):
            raise TypeError(f"a Value holds one plain number, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0  # d(output)/d(self), filled in by backward()
        self.parents = parents  # the Values this one was computed from
        self.op = op  # the operation that made it ("" for an input)
        self.label = label  # a name for pictures
        self._backward = lambda: None  # an input has no parents to pass its gradient to

    def __repr__(self) -> str:
        return f"Value({self.data:.6g}, grad={self.grad:.6g})"

    # One method per operation: the output, then the local derivative times the output's gradient.
    # `+=`, not `=`: a value used twice receives gradient along both paths.

    def __add__(self, other):
        other = as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(a b)/da = b, d(a b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, k):
        if not isinstance(k, int | float):
            raise TypeError(f"the exponent must be a plain number, got {type(k).__name__}")
        out = Value(self.data**k, (self,), f"**{k:g}")

        def _backward():  # d(a^k)/da = k a^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():  # d(e^a)/da = e^a, the output itself
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self):
        if self.data <= 0:
            raise ValueError(f"log needs a positive number, got {self.data}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward():  # d(log a)/da = 1/a
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():  # d(tanh a)/da = 1 - tanh(a)^2
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():  # 1 where a > 0, else 0 (torch's choice at a = 0 too)
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill in `.grad` = d(self)/d(node) for every node this one depends on (reverse mode)."""
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0  # d(self)/d(self)
        for node in reversed(order):  # each node is complete before it passes its gradient on
            node._backward()

    # Everything else is built from the operations above, so it needs no rule of its own.
    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-as_value(other))

    def __truediv__(self, other):
        return self * as_value(other) ** -1

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return as_value(other) - self

    def __rtruediv__(self, other):
        return as_value(other) / self


def as_value(x) -> Value:
    """x if it is already a Value, else a constant Value (whose gradient nobody reads)."""
    return x if isinstance(x, Value) else Value(x)


# --- the tensor engine -----------------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing numpy broadcasting.

    Broadcasting copies an input along new leading axes and along axes where its size is 1. Each copy
    pushed the same input into the output, so the input's gradient is the sum over the copies.
    """
    shape = tuple(shape)
    if grad.ndim < len(shape):
        raise ValueError(f"a gradient of shape {grad.shape} cannot come from an input of shape {shape}")
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # axes broadcasting put in front
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    grad = grad.sum(axis=stretched, keepdims=True)  # axes stretched from size 1
    if grad.shape != shape:
        raise ValueError(f"a gradient of shape {grad.shape} cannot come from an input of shape {shape}")
    return grad


def _axes(axis, ndim: int) -> tuple[int, ...]:
    """`axis` (None for all, an int, or a tuple; negatives count from the end) as sorted axes >= 0."""
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    if any(not -ndim <= a < ndim for a in axis) or len({a % ndim for a in axis}) != len(axis):
        raise ValueError(f"axis {axis} is not a set of distinct axes of an array with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axis))


class Tensor:
    """A float64 array that remembers how it was made: `Value`'s pattern, with array-shaped rules."""

    __array_ufunc__ = None  # so that `ndarray + Tensor` calls Tensor.__radd__ instead of numpy's loop

    def __init__(self, data, parents: tuple = (), op: str = "", label: str = ""):
        if isinstance(data, Tensor | Value):
            raise TypeError(f"Tensor wraps numbers or arrays, got a {type(data).__name__}")
        try:
            self.data = np.array(data, dtype=np.float64)  # a copy, so the caller's array stays theirs
        except (TypeError, ValueError) as error:
            raise TypeError(f"Tensor wraps numbers or arrays, got {type(data).__name__}") from error
        self.grad = np.zeros_like(self.data)  # same shape as data
        self.parents = parents
        self.op = op
        self.label = label
        self._backward = lambda: None

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, op={self.op or 'input'!r})"

    def item(self) -> float:
        return self.data.item()

    def __add__(self, other) -> Tensor:
        other = as_tensor(other)
        out = Tensor(_broadcast(np.add, self, other), (self, other), "+")

        def _backward():  # each input gets the output's gradient, summed back to its own shape
            self.grad += unbroadcast(out.grad, self.shape)
            other.grad += unbroadcast(out.grad, other.shape)

        out._backward = _backward
        return out

    def __mul__(self, other) -> Tensor:
        other = as_tensor(other)
        out = Tensor(_broadcast(np.multiply, self, other), (self, other), "*")

        def _backward():  # elementwise: d(a b)/da = b, then sum over the broadcast copies
            self.grad += unbroadcast(other.data * out.grad, self.shape)
            other.grad += unbroadcast(self.data * out.grad, other.shape)

        out._backward = _backward
        return out

    def __pow__(self, k) -> Tensor:
        if not isinstance(k, int | float):
            raise TypeError(f"the exponent must be a plain number, got {type(k).__name__}")
        out = Tensor(self.data**k, (self,), f"**{k:g}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def __matmul__(self, other) -> Tensor:
        other = as_tensor(other)
        if self.ndim != 2 or other.ndim != 2 or self.shape[1] != other.shape[0]:
            raise ValueError(f"matmul takes (n, k) @ (k, m) matrices, got {self.shape} @ {other.shape}")
        out = Tensor(self.data @ other.data, (self, other), "@")  # (n, k) @ (k, m) -> (n, m)

        def _backward():
            self.grad += out.grad @ other.data.T  # (n, m) @ (m, k) -> (n, k), the shape of self
            other.grad += self.data.T @ out.grad  # (k, n) @ (n, m) -> (k, m), the shape of other

        out._backward = _backward
        return out

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        axes = _axes(axis, self.ndim)
        out = Tensor(self.data.sum(axis=axes, keepdims=keepdims), (self,), "sum")

        def _backward():  # every summed entry moved the total by 1: copy the gradient back over them
            grad = out.grad if keepdims else np.expand_dims(out.grad, axes)
            self.grad += np.broadcast_to(grad, self.shape)

        out._backward = _backward
        return out

    def exp(self) -> Tensor:
        out = Tensor(np.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Tensor:
        out = Tensor(np.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Tensor:
        out = Tensor(np.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Tensor:
        out = Tensor(np.maximum(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill in `.grad` = d(self)/d(node) for every node; `self` must be a scalar, like a loss."""
        if self.data.size != 1:
            raise ValueError(
                f"backward() starts from a scalar (a loss), but this tensor has shape {self.shape}: "
                "reduce it first, e.g. with .sum() or .mean()"
            )
        order = topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            node._backward()

    # Built from the operations above: no rules of their own.
    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        count = math.prod(self.shape[a] for a in _axes(axis, self.ndim))
        return self.sum(axis, keepdims) * (1.0 / count)

    def logsumexp(self, axis=-1, keepdims: bool = False) -> Tensor:
        """log(sum(exp(x))) without overflow: shift by the max (a constant), which cancels exactly."""
        shift = self.data.max(axis=_axes(axis, self.ndim), keepdims=True)
        total = (self - shift).exp().sum(axis, keepdims=True).log() + shift
        return total if keepdims else total.sum(axis)  # summing a size-1 axis just drops it

    def __neg__(self) -> Tensor:
        return self * -1.0

    def __sub__(self, other) -> Tensor:
        return self + (-as_tensor(other))

    def __truediv__(self, other) -> Tensor:
        return self * as_tensor(other) ** -1

    def __radd__(self, other) -> Tensor:
        return self + other

    def __rmul__(self, other) -> Tensor:
        return self * other

    def __rsub__(self, other) -> Tensor:
        return as_tensor(other) - self

    def __rtruediv__(self, other) -> Tensor:
        return as_tensor(other) / self


def as_tensor(x) -> Tensor:
    """x if it is already a Tensor, else a constant Tensor."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _broadcast(ufunc, a: Tensor, b: Tensor) -> np.ndarray:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not broadcast together") from None
    return ufunc(a.data, b.data)


def cross_entropy_loss(logits: Tensor, labels) -> Tensor:
    """Mean cross-entropy of (N, C) logits against N integer labels, via a stable log-softmax."""
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"want (N, C) logits and N labels, got {logits.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) >= logits.shape[1]:
        raise ValueError(f"labels must be integers in 0..{logits.shape[1] - 1}")
    log_probs = logits - logits.logsumexp(axis=1, keepdims=True)  # (N, C)
    one_hot = np.eye(logits.shape[1])[labels]  # (N, C), a constant
    return -(log_probs * one_hot).sum(axis=1).mean()
