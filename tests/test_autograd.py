"""Chapter 8's autograd engines against torch.autograd (float64): random expressions built by hypothesis,
one test per operation, the graph pictures, and clear errors."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import slider_view
from helpers.autograd import Tensor, Value, as_value, cross_entropy_loss, topological_order, unbroadcast
from helpers.autograd_plots import backward_trace, draw_graph, graph_layout

warnings.filterwarnings("ignore", message=".*non-interactive.*")

# --- one table of operations that both engines and torch understand -------------------------------------
# Each entry: (arity, function). The same function runs on Values, on Tensors and on torch tensors, so
# the three graphs are built by the very same code. Some inputs are kept in range (log of a*a + 0.5)
# so that most random programs are defined; the rest are filtered out with `assume`.

ELEMENTWISE = {
    "add": (2, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 0.5)),
    "raw_div": (2, lambda a, b: a / b),
    "neg": (1, lambda a: -a),
    "exp": (1, lambda a: a.exp()),
    "log": (1, lambda a: (a * a + 0.5).log()),
    "tanh": (1, lambda a: a.tanh()),
    "relu": (1, lambda a: a.relu()),
    "square": (1, lambda a: a**2),
    "cube": (1, lambda a: a**3),
    "sqrt": (1, lambda a: (a * a + 1.0) ** 0.5),
    "recip": (1, lambda a: a**-1),
    "add_const": (1, lambda a: a + 1.5),
    "const_sub": (1, lambda a: 2.0 - a),
    "const_mul": (1, lambda a: 0.5 * a),
    "const_div": (1, lambda a: 1.0 / (a * a + 1.0)),
}
# Inputs in [-2, 2], zero included, but none so tiny that dividing by them is ill-conditioned.
FINITE = st.floats(-2.0, 2.0, allow_nan=False).map(lambda x: 0.0 if abs(x) < 1e-3 else x)


def torch_leaf(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def torch_grad(leaf):
    return np.zeros(tuple(leaf.shape)) if leaf.grad is None else leaf.grad.numpy()  # None: never used


def assert_close(ours, theirs, what):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch has {theirs.shape}"
    scale = 1.0 + np.abs(theirs).max(initial=0.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10 * scale, err_msg=what)


def usable(values, grads):
    """Filter out programs that overflow or divide by (nearly) zero: float64's edges, not these tests'.

    A value that is nearly but not exactly zero is ill-conditioned: x / x at x = 1e-6 has gradient 0,
    found as 1e6 - 1e6 with rounding errors far above the answer, differently in each engine.
    """
    values = [np.abs(v.detach().numpy()) for v in values]
    grads = [np.abs(g) for g in grads]
    if not all(np.all(np.isfinite(a)) and a.max(initial=0.0) < 1e6 for a in values + grads):
        return False
    return not any(np.any((v > 0) & (v < 1e-4)) for v in values)


# --- random scalar programs -------------------------------------------------------------------------------


@st.composite
def scalar_programs(draw):
    """Inputs, then steps (op, argument indices) where an argument may be any earlier node: a random
    DAG, so the same subexpression is often used more than once (e.g. mul(n3, n3))."""
    inputs = draw(st.lists(FINITE, min_size=1, max_size=4))
    steps, n_nodes = [], len(inputs)
    for _ in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(sorted(ELEMENTWISE)))
        steps.append((name, [draw(st.integers(0, n_nodes - 1)) for _ in range(ELEMENTWISE[name][0])]))
        n_nodes += 1
    return inputs, steps


def run(program, leaf):
    inputs, steps = program
    nodes = [leaf(x) for x in inputs]
    for name, args in steps:
        nodes.append(ELEMENTWISE[name][1](*[nodes[i] for i in args]))
    return nodes


@given(scalar_programs())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_value_matches_torch_on_random_expressions(program):
    with np.errstate(all="ignore"):
        theirs = run(program, torch_leaf)
        theirs[-1].backward()
        n_inputs = len(program[0])
        their_grads = [torch_grad(leaf) for leaf in theirs[:n_inputs]]
        assume(usable(theirs, their_grads))  # every node, used or not
    ours = run(program, Value)
    ours[-1].backward()
    assert_close(ours[-1].data, theirs[-1].item(), "value")
    for i in range(n_inputs):
        assert_close(ours[i].grad, their_grads[i], f"d out / d input {i}")


# --- random tensor programs with broadcasting -------------------------------------------------------------

REDUCTIONS = {  # (function of a node and an axis, keeps the number of dimensions?)
    "sum_keep": lambda a, axis: a.sum(axis, True),
    "mean_keep": lambda a, axis: a.mean(axis, True),
    "logsumexp_keep": lambda a, axis: a.logsumexp(axis, True),
    "sum_first": lambda a, axis: a.sum(0, False),  # drops the leading axis: still broadcasts
    "mean_first": lambda a, axis: a.mean(0, False),
    "logsumexp_first": lambda a, axis: a.logsumexp(0, False),
}


@st.composite
def broadcast_shape(draw, full):
    """A shape that broadcasts to `full`: maybe a leading axis dropped, some others shrunk to 1, and now
    and then a plain scalar."""
    if draw(st.integers(0, 7)) == 0:
        return ()
    dropped = min(draw(st.sampled_from([0, 0, 0, 1])), len(full))
    return tuple(draw(st.sampled_from([n, 1])) for n in full[dropped:])


@st.composite
def tensor_programs(draw):
    ndim = draw(st.sampled_from([1, 2, 2, 3, 3]))
    full = tuple(draw(st.integers(2, 4)) for _ in range(ndim))  # no 1s here: the other leaves bring them
    shapes = [full, *draw(st.lists(broadcast_shape(full), min_size=1, max_size=3))]
    inputs = [np.array(draw(st.lists(FINITE, min_size=math.prod(s), max_size=math.prod(s)))).reshape(s)
              for s in shapes]  # fmt: skip
    steps = []
    for _ in range(draw(st.integers(1, 10))):
        if draw(st.integers(0, 3)) == 0:  # a reduction of one node
            i = draw(st.integers(0, len(shapes) - 1))
            if not shapes[i]:
                continue
            name = draw(st.sampled_from(sorted(REDUCTIONS)))
            axis = draw(st.integers(-len(shapes[i]), len(shapes[i]) - 1))
            steps.append((name, [i], axis))
            shape = list(shapes[i])
            if name.endswith("keep"):
                shape[axis] = 1
            else:
                shape.pop(0)
            shapes.append(tuple(shape))
        else:
            name = draw(st.sampled_from(sorted(ELEMENTWISE)))
            args = [draw(st.integers(0, len(shapes) - 1)) for _ in range(ELEMENTWISE[name][0])]
            steps.append((name, args, None))
            shapes.append(np.broadcast_shapes(*[shapes[i] for i in args]))
    return inputs, steps, shapes


def run_tensors(program, leaf):
    inputs, steps, _ = program
    nodes = [leaf(x) for x in inputs]
    for name, args, axis in steps:
        if name in REDUCTIONS:
            nodes.append(REDUCTIONS[name](nodes[args[0]], axis))
        else:
            nodes.append(ELEMENTWISE[name][1](*[nodes[i] for i in args]))
    return nodes


@given(tensor_programs())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_tensor_matches_torch_on_random_broadcasting_expressions(program):
    n_inputs = len(program[0])
    with np.errstate(all="ignore"):
        theirs = run_tensors(program, torch_leaf)
        assert [tuple(t.shape) for t in theirs] == program[2]  # the strategy tracked shapes right
        theirs[-1].sum().backward()
        their_grads = [torch_grad(leaf) for leaf in theirs[:n_inputs]]
        assume(usable(theirs, their_grads))
    ours = run_tensors(program, Tensor)
    ours[-1].sum().backward()
    assert_close(ours[-1].data, theirs[-1].detach().numpy(), "value")
    for i in range(n_inputs):
        assert_close(ours[i].grad, their_grads[i], f"d out / d input {i} of shape {ours[i].shape}")


ACTIVATIONS = {"tanh": lambda a: a.tanh(), "relu": lambda a: a.relu(), "exp": lambda a: (-(a * a)).exp()}
LOSSES = {
    "sum": lambda out, y: out.sum(),
    "mean": lambda out, y: out.mean(),
    "logsumexp": lambda out, y: out.logsumexp(1, False).mean(),
    "square": lambda out, y: (out * out).mean(),
    "cross_entropy": None,  # ours vs torch.nn.functional.cross_entropy
}


@given(
    n=st.integers(1, 6),
    k=st.integers(1, 5),
    h=st.integers(1, 6),
    m=st.integers(1, 4),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    loss=st.sampled_from(sorted(LOSSES)),
    bias_as_row=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=150, deadline=None)
def test_tensor_matmul_networks_match_torch(n, k, h, m, activation, loss, bias_as_row, seed):
    """out = act(X @ W1 + b1) @ W2 + b2 + X @ W3: X is used twice, the biases broadcast over the batch."""
    rng = np.random.default_rng(seed)
    b_shape = (lambda d: (1, d)) if bias_as_row else (lambda d: (d,))
    arrays = [rng.normal(size=s) for s in [(n, k), (k, h), b_shape(h), (h, m), b_shape(m), (k, m)]]
    labels = rng.integers(0, m, size=n)

    def forward(leaves, cross_entropy_fn):
        X, W1, b1, W2, b2, W3 = leaves
        out = ACTIVATIONS[activation](X @ W1 + b1) @ W2 + b2 + X @ W3  # (n, m)
        return cross_entropy_fn(out, labels) if loss == "cross_entropy" else LOSSES[loss](out, labels)

    theirs = [torch_leaf(a) for a in arrays]
    their_loss = forward(theirs, lambda out, y: torch.nn.functional.cross_entropy(out, torch.as_tensor(y)))
    their_loss.backward()
    ours = [Tensor(a) for a in arrays]
    our_loss = forward(ours, cross_entropy_loss)
    our_loss.backward()
    assert_close(our_loss.item(), their_loss.item(), "loss")
    for name, a, b in zip(["X", "W1", "b1", "W2", "b2", "W3"], ours, theirs, strict=True):
        assert_close(a.grad, b.grad.numpy(), f"d loss / d {name}")


# --- one test per operation ---------------------------------------------------------------------------------

SCALAR_CASES = {  # name: (function, inputs, the gradients worked out by hand)
    "add": (lambda a, b: a + b, (2.0, -3.0), lambda a, b: (1.0, 1.0)),
    "mul": (lambda a, b: a * b, (2.0, -3.0), lambda a, b: (b, a)),
    "pow": (lambda a: a**3, (1.5,), lambda a: (3 * a**2,)),
    "exp": (lambda a: a.exp(), (0.7,), lambda a: (math.exp(a),)),
    "log": (lambda a: a.log(), (0.7,), lambda a: (1 / a,)),
    "tanh": (lambda a: a.tanh(), (0.7,), lambda a: (1 - math.tanh(a) ** 2,)),
    "relu+": (lambda a: a.relu(), (0.7,), lambda a: (1.0,)),
    "relu-": (lambda a: a.relu(), (-0.7,), lambda a: (0.0,)),
    "relu0": (lambda a: a.relu(), (0.0,), lambda a: (0.0,)),  # the same choice as torch
    "neg": (lambda a: -a, (0.7,), lambda a: (-1.0,)),
    "sub": (lambda a, b: a - b, (2.0, -3.0), lambda a, b: (1.0, -1.0)),
    "div": (lambda a, b: a / b, (2.0, -3.0), lambda a, b: (1 / b, -a / b**2)),
    "radd": (lambda a: 1.0 + a, (2.0,), lambda a: (1.0,)),
    "rsub": (lambda a: 1.0 - a, (2.0,), lambda a: (-1.0,)),
    "rmul": (lambda a: 3.0 * a, (2.0,), lambda a: (3.0,)),
    "rdiv": (lambda a: 3.0 / a, (2.0,), lambda a: (-3.0 / a**2,)),
    "square_of_shared": (lambda a: a * a, (-1.5,), lambda a: (2 * a,)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_each_scalar_operation_against_hand_and_torch(name):
    f, inputs, hand = SCALAR_CASES[name]
    ours = [Value(x) for x in inputs]
    out = f(*ours)
    out.backward()
    theirs = [torch_leaf(x) for x in inputs]
    their_out = f(*theirs)
    their_out.backward()
    assert out.data == pytest.approx(their_out.item(), rel=1e-12)
    for a, b, by_hand in zip(ours, theirs, hand(*inputs), strict=True):
        assert a.grad == pytest.approx(b.grad.item(), rel=1e-12, abs=1e-15)
        assert a.grad == pytest.approx(by_hand, rel=1e-12, abs=1e-15)


TENSOR_CASES = {  # name: (function, input shapes); inputs are positive so that log is defined
    "add_broadcast": (lambda a, b: a + b, [(3, 4), (4,)]),
    "add_two_stretched_axes": (lambda a, b: a + b, [(1, 1), (3, 4)]),
    "mul_broadcast": (lambda a, b: a * b, [(3, 1), (1, 4)]),
    "div_broadcast": (lambda a, b: a / b, [(2, 3, 4), (3, 1)]),
    "sub_scalar_shape": (lambda a, b: a - b, [(), (2, 3)]),
    "pow": (lambda a: a**2.5, [(3, 4)]),
    "matmul": (lambda a, b: a @ b, [(3, 4), (4, 2)]),
    "sum_all": (lambda a: a.sum(), [(3, 4)]),
    "sum_axis": (lambda a: a.sum(1), [(2, 3, 4)]),
    "sum_axes_keep": (lambda a: a.sum((0, 2), True), [(2, 3, 4)]),
    "mean_neg_axis": (lambda a: a.mean(-1), [(2, 3, 4)]),
    "exp": (lambda a: a.exp(), [(3, 4)]),
    "log": (lambda a: a.log(), [(3, 4)]),
    "tanh": (lambda a: a.tanh(), [(3, 4)]),
    "relu": (lambda a: (a - 1.0).relu(), [(3, 4)]),
    "logsumexp": (lambda a: (100.0 * a).logsumexp(1), [(3, 4)]),
}


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_each_tensor_operation_against_torch(name):
    f, shapes = TENSOR_CASES[name]
    rng = np.random.default_rng(sorted(TENSOR_CASES).index(name))
    arrays = [rng.uniform(0.2, 2.0, size=s) for s in shapes]
    weights = None
    ours, theirs = [Tensor(a) for a in arrays], [torch_leaf(a) for a in arrays]
    out, their_out = f(*ours), f(*theirs)
    weights = rng.normal(size=their_out.shape)  # a random loss, so no gradient is all ones by accident
    (out * weights).sum().backward()
    (their_out * torch.as_tensor(weights)).sum().backward()
    assert_close(out.data, their_out.detach().numpy(), f"{name} value")
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a.grad, b.grad.numpy(), f"{name} gradient")


def test_cross_entropy_matches_torch_and_survives_huge_logits():
    rng = np.random.default_rng(0)
    for scale in [1.0, 1000.0]:  # exp(1000) overflows; the log-sum-exp form does not
        logits = rng.normal(size=(8, 5)) * scale
        labels = rng.integers(0, 5, size=8)
        ours, theirs = Tensor(logits), torch_leaf(logits)
        loss = cross_entropy_loss(ours, labels)
        loss.backward()
        their_loss = torch.nn.functional.cross_entropy(theirs, torch.as_tensor(labels))
        their_loss.backward()
        assert np.isfinite(loss.item())
        assert_close(loss.item(), their_loss.item(), "cross-entropy")
        assert_close(ours.grad, theirs.grad.numpy(), "cross-entropy gradient")


@pytest.mark.parametrize(
    ("grad_shape", "shape", "axes"),
    [((5, 3), (3,), (0,)), ((5, 3), (1, 3), (0,)), ((4, 3, 5), (1, 1), (0, 1, 2)), ((3, 5), (1, 1), (0, 1)),
     ((5, 3), (5, 1), (1,)), ((2, 5, 3), (5, 1), (0, 2)),
     ((2, 3), (), (0, 1)), ((2, 3), (2, 3), ())],
)  # fmt: skip
def test_unbroadcast_sums_over_exactly_the_broadcast_axes(grad_shape, shape, axes):
    grad = np.random.default_rng(1).normal(size=grad_shape)
    got = unbroadcast(grad, shape)
    assert got.shape == shape
    np.testing.assert_allclose(got.sum(), grad.sum())
    np.testing.assert_allclose(got, grad.sum(axis=axes).reshape(shape))


def test_sgd_with_the_tensor_engine_follows_torch_step_for_step():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 3)), rng.integers(0, 2, size=16)
    arrays = [rng.normal(size=s) * 0.5 for s in [(3, 8), (8,), (8, 2), (2,)]]
    ours, theirs = [Tensor(a) for a in arrays], [torch_leaf(a) for a in arrays]
    optimizer = torch.optim.SGD(theirs, lr=0.3)
    for _ in range(20):
        W1, b1, W2, b2 = ours
        loss = cross_entropy_loss((Tensor(X) @ W1 + b1).relu() @ W2 + b2, y)
        loss.backward()  # no zero_grad: backward() overwrites the gradients
        for p in ours:
            p.data -= 0.3 * p.grad
        W1, b1, W2, b2 = theirs
        their_loss = torch.nn.functional.cross_entropy(
            (torch.as_tensor(X) @ W1 + b1).relu() @ W2 + b2, torch.as_tensor(y)
        )
        optimizer.zero_grad()
        their_loss.backward()
        optimizer.step()
        assert loss.item() == pytest.approx(their_loss.item(), rel=1e-10)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-12)


# --- the graph and the backward pass ------------------------------------------------------------------------


def example():
    a, b, c = Value(2.0, label="a"), Value(-1.5, label="b"), Value(3.5, label="c")
    return (a * b + c).tanh() * a, (a, b, c)


def test_topological_order_puts_parents_first_once_each_and_the_root_last():
    program = ([0.5, -1.0, 1.5], [("mul", [0, 1]), ("add", [3, 3]), ("tanh", [4]), ("mul", [5, 0])])
    nodes = run(program, Value)
    order = topological_order(nodes[-1])
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order) == len(nodes) - 1  # each node once; the unused input not at all
    assert id(nodes[2]) not in position
    assert order[-1] is nodes[-1]
    for node in order:
        assert all(position[id(p)] < position[id(node)] for p in node.parents)


def test_a_shared_input_gets_the_sum_over_both_paths_and_backward_does_not_accumulate_across_calls():
    a, b = Value(2.0), Value(-3.0)
    out = a * b + a  # d/da = b + 1
    out.backward()
    out.backward()  # again: the same answer, not twice it
    assert a.grad == -2.0 and b.grad == 2.0


def test_a_very_deep_graph_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    total = x
    for _ in range(20_000):
        total = total + x
    total.backward()
    assert x.grad == 20_001.0


def test_graph_layout_and_the_step_by_step_backward_pass():
    out, (a, b, c) = example()
    layout = graph_layout(out)
    assert len(layout["nodes"]) == 7 and len(layout["edges"]) == 7
    for parent, child in layout["edges"]:
        assert layout["x"][parent] < layout["x"][child]  # edges run left to right
    trace = backward_trace(out)
    grads = trace["grads"]
    assert grads.shape == (5, 7)  # the start, then one step per operation (4 of them)
    np.testing.assert_array_equal(grads[0], [0, 0, 0, 0, 0, 0, 1])
    out.backward()
    np.testing.assert_allclose(grads[-1], [n.grad for n in trace["nodes"]])
    assert grads[1][trace["nodes"].index(a)] == pytest.approx(math.tanh(0.5))  # a's first path only
    assert a.grad == pytest.approx(math.tanh(0.5) + 2 * (1 - math.tanh(0.5) ** 2) * b.data)


def test_backward_slider_redraws_and_shows_more_gradients_each_step():
    out, _ = example()

    def draw(step):
        _, ax = plt.subplots(figsize=(9, 3))
        draw_graph(ax, out, step=step)

    view = slider_view(draw, step=(0, 4, 1, 0))
    before = view.image
    view.set(step=3)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    known = [np.count_nonzero(row) for row in backward_trace(out)["grads"]]
    assert known == sorted(known) and known[0] == 1 and known[-1] == 7
    with pytest.raises(ValueError, match="step must be between 0 and 4"):
        draw_graph(plt.subplots()[1], out, step=5)
    plt.close("all")


# --- clear errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: Tensor(np.ones((2, 3))).backward(), ValueError, r"scalar .* shape \(2, 3\)"),
        (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3))), ValueError, r"\(2, 3\) @ \(2, 3\)"),
        (lambda: Tensor(np.ones(3)) @ Tensor(np.ones((3, 1))), ValueError, "matmul takes"),
        (lambda: Tensor(np.ones((2, 3))) + Tensor(np.ones(4)), ValueError, "do not broadcast"),
        (lambda: Tensor(np.ones((2, 3))).sum(2), ValueError, "axis"),
        (lambda: Tensor(np.ones((2, 3))).sum((1, -1)), ValueError, "distinct axes"),
        (lambda: Tensor(np.ones(3)) ** Tensor(2.0), TypeError, "exponent"),
        (lambda: Tensor("three"), TypeError, "numbers or arrays"),
        (lambda: Tensor(Value(1.0)), TypeError, "numbers or arrays"),
        (lambda: Value("3"), TypeError, "one plain number"),
        (lambda: Value(np.ones(2)), TypeError, "one plain number"),
        (lambda: Value(2.0) ** Value(2.0), TypeError, "exponent"),
        (lambda: Value(-1.0).log(), ValueError, "positive"),
        (lambda: unbroadcast(np.ones(3), (2, 3)), ValueError, "cannot come from"),
        (lambda: unbroadcast(np.ones((2, 3)), (4, 3)), ValueError, "cannot come from"),
        (lambda: cross_entropy_loss(Tensor(np.ones((2, 3))), [0, 3]), ValueError, "0..2"),
        (lambda: cross_entropy_loss(Tensor(np.ones((2, 3))), [0.0, 1.0]), ValueError, "integers"),
        (lambda: cross_entropy_loss(Tensor(np.ones(3)), [0]), ValueError, r"\(N, C\)"),
        (lambda: graph_layout(Tensor(1.0)), TypeError, "Value graphs"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_constants_mix_in_from_either_side():
    x = Value(3.0)
    assert as_value(x) is x
    out = 2.0 * x - 1.0 / x + np.float64(0.5)
    out.backward()
    assert out.data == pytest.approx(6.0 - 1 / 3 + 0.5)
    assert x.grad == pytest.approx(2.0 + 1 / 9)
    t = Tensor([1.0, 2.0])
    both = np.array([3.0, 4.0]) * t + 1.0  # an ndarray on the left still builds a Tensor graph
    assert isinstance(both, Tensor)
    both.sum().backward()
    np.testing.assert_allclose(t.grad, [3.0, 4.0])
