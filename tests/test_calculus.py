"""Chapter 4's finite differences and Taylor polynomials against torch.autograd and sympy."""

import numpy as np
import pytest
import torch

from helpers import calculus

SEEDS = range(12)


def random_scalar_function(rng):
    """A smooth scalar function of a tensor of any shape, written once in torch: the same expression
    is the numpy function under test (through .item()) and the autograd oracle."""
    a, b, c = (float(v) for v in rng.uniform(0.5, 1.5, size=3))

    def f(t):
        return (
            (torch.sin(a * t) * t**2).sum()
            + b * torch.log1p(t**2).sum()
            + c * (t.sum() ** 2) / (1 + t.numel())
        )

    return f


def numpy_version(f_torch):
    return lambda x: f_torch(torch.from_numpy(np.asarray(x))).item()


def autograd_gradient(f_torch, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(f_torch(t), t)
    return grad.numpy()


def test_numerical_gradient_signature_is_the_contract():
    """Chapter 9's gradient checks import numerical_gradient(f, x, eps=1e-6): keep that signature."""
    import inspect

    parameters = inspect.signature(calculus.numerical_gradient).parameters
    assert list(parameters) == ["f", "x", "eps"] and parameters["eps"].default == 1e-6


SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 2), (1, 1, 4, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("seed", SEEDS)
def test_numerical_gradient_matches_autograd_on_any_shape(seed, shape):
    rng = np.random.default_rng(seed)
    f = random_scalar_function(rng)
    x = rng.normal(size=shape)
    grad = calculus.numerical_gradient(numpy_version(f), x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, autograd_gradient(f, x), rtol=1e-6, atol=1e-7)


def test_numerical_gradient_leaves_x_unchanged_and_accepts_lists_and_float32():
    rng = np.random.default_rng(0)
    f = random_scalar_function(rng)
    x = rng.normal(size=(3, 2))
    before = x.copy()
    calculus.numerical_gradient(numpy_version(f), x)
    np.testing.assert_array_equal(x, before)  # restored bit for bit
    expected = autograd_gradient(f, x)
    np.testing.assert_allclose(calculus.numerical_gradient(numpy_version(f), x.tolist()), expected, rtol=1e-6)
    x32 = x.astype(np.float32)
    grad32 = calculus.numerical_gradient(numpy_version(f), x32)  # nudged in a float64 copy
    assert grad32.dtype == np.float64
    np.testing.assert_allclose(grad32, autograd_gradient(f, x32.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_numerical_gradient_sees_nudges_through_another_reference():
    """The gradient-check pattern of chapter 9: f reads the weights from a model, not from its argument."""
    rng = np.random.default_rng(1)
    model = {"W": rng.normal(size=(4, 3))}
    inputs = rng.normal(size=(5, 4))

    def loss(_):
        return float(np.tanh(inputs @ model["W"]).sum())

    grad = calculus.numerical_gradient(loss, model["W"])
    W = torch.tensor(model["W"], requires_grad=True)
    torch.tanh(torch.from_numpy(inputs) @ W).sum().backward()
    np.testing.assert_allclose(grad, W.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.arange(4.0)
    calls = []

    def explodes(v):
        calls.append(v.copy())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        calculus.numerical_gradient(explodes, x)
    assert calls and calls[0][0] != 0.0  # f did see a nudged x
    np.testing.assert_array_equal(x, np.arange(4.0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calculus.numerical_gradient(lambda v: v * 2, np.ones(3)), "single number"),
        (
            lambda: calculus.numerical_gradient(lambda v: v.sum(), np.ones(3), eps=0.0),
            "eps must be a positive",
        ),
        (
            lambda: calculus.numerical_gradient(lambda v: v.sum(), np.ones(3), eps=-1e-6),
            "eps must be a positive",
        ),
        (lambda: calculus.numerical_gradient(lambda v: v.sum(), np.ones(3), eps=float("nan")), "eps"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numerical_gradient_of_a_non_contiguous_array():
    rng = np.random.default_rng(2)
    f = random_scalar_function(rng)
    x = rng.normal(size=(3, 5)).T  # (5, 3), a transposed view
    np.testing.assert_allclose(
        calculus.numerical_gradient(numpy_version(f), x), autograd_gradient(f, x), rtol=1e-6, atol=1e-7
    )


# --- Jacobians ------------------------------------------------------------------------------------------


def random_vector_function(rng, out_shape):
    """A smooth map from a tensor of any shape to a tensor of out_shape, in torch."""
    m = int(np.prod(out_shape))

    def build(n):
        return torch.from_numpy(rng.normal(size=(m, n)) / np.sqrt(n))

    cache = {}

    def f(t):
        n = t.numel()
        if n not in cache:
            cache[n] = build(n)
        W = cache[n]  # (m, n)
        z = W @ t.reshape(-1)  # (m,)
        return (torch.tanh(z) + 0.1 * z**2 + torch.sin(t.reshape(-1).sum())).reshape(out_shape)

    return f


@pytest.mark.parametrize(
    ("in_shape", "out_shape"), [((3,), (2,)), ((4,), (4,)), ((2, 3), (5,)), ((3,), (2, 2)), ((), (3,))]
)
@pytest.mark.parametrize("seed", range(6))
def test_numerical_jacobian_matches_torch_functional_jacobian(seed, in_shape, out_shape):
    rng = np.random.default_rng(seed)
    f = random_vector_function(rng, out_shape)
    x = rng.normal(size=in_shape)
    J = calculus.numerical_jacobian(lambda v: f(torch.from_numpy(np.asarray(v))).numpy(), x)
    oracle = torch.autograd.functional.jacobian(f, torch.tensor(x)).numpy()
    assert J.shape == out_shape + in_shape == oracle.shape
    np.testing.assert_allclose(J, oracle, rtol=1e-6, atol=1e-8)


def test_chain_rule_jacobians_multiply():
    """J_(g o f)(x) = J_g(f(x)) J_f(x): numerically, and against autograd of the composition."""
    rng = np.random.default_rng(3)
    f, g = random_vector_function(rng, (4,)), random_vector_function(rng, (2,))
    x = rng.normal(size=3)

    def as_np(h):
        return lambda v: h(torch.from_numpy(np.asarray(v))).numpy()

    J_f = calculus.numerical_jacobian(as_np(f), x)  # (4, 3)
    J_g = calculus.numerical_jacobian(as_np(g), as_np(f)(x))  # (2, 4)
    J_gf = torch.autograd.functional.jacobian(lambda t: g(f(t)), torch.tensor(x)).numpy()  # (2, 3)
    np.testing.assert_allclose(J_g @ J_f, J_gf, rtol=1e-6, atol=1e-8)


def test_jacobian_of_a_scalar_function_is_its_gradient():
    rng = np.random.default_rng(4)
    f = numpy_version(random_scalar_function(rng))
    x = rng.normal(size=(2, 3))
    np.testing.assert_allclose(calculus.numerical_jacobian(f, x), calculus.numerical_gradient(f, x))


def test_numerical_jacobian_rejects_a_function_that_changes_shape():
    with pytest.raises(ValueError, match="shape"):
        calculus.numerical_jacobian(lambda v: np.ones(3) if v[0] > 0 else np.ones(2), np.zeros(2))


# --- gradient checks and the choice of eps --------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_gradient_check_passes_autograd_and_fails_a_buggy_gradient(seed):
    rng = np.random.default_rng(seed)
    f = random_scalar_function(rng)
    x = rng.normal(size=(3, 3))
    good = calculus.gradient_check(numpy_version(f), lambda v: autograd_gradient(f, v), x)
    assert good < 1e-6
    wrong_factor = calculus.gradient_check(numpy_version(f), lambda v: 0.5 * autograd_gradient(f, v), x)
    transposed = calculus.gradient_check(numpy_version(f), lambda v: autograd_gradient(f, v).T, x)
    assert wrong_factor > 0.3 and transposed > 1e-3


def test_gradient_check_needs_matching_shapes():
    with pytest.raises(ValueError, match="x's shape"):
        calculus.gradient_check(lambda v: v.sum(), lambda v: np.ones(2), np.ones(3))


def test_relative_error_is_scale_free_and_safe_at_zero():
    assert calculus.relative_error(1e6, 1e6 * (1 + 1e-9)) == pytest.approx(1e-9, rel=1e-3)
    assert calculus.relative_error(0.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        calculus.relative_error(np.ones(2), np.ones(3))


def test_difference_errors_show_truncation_then_rounding():
    """Central differences are second order (error ~ eps^2), forward first order (~ eps); both get worse
    again for tiny eps. The best central eps is near the cube root of machine epsilon."""
    eps = np.logspace(-13, -1, 49)
    errors = calculus.difference_errors(np.exp, np.exp, 0.7, eps)
    big = eps >= 1e-3  # truncation dominates: measure the slopes on a log-log plot
    slope_forward = np.polyfit(np.log10(eps[big]), np.log10(errors["forward"][big]), 1)[0]
    slope_central = np.polyfit(np.log10(eps[big]), np.log10(errors["central"][big]), 1)[0]
    assert slope_forward == pytest.approx(1.0, abs=0.1) and slope_central == pytest.approx(2.0, abs=0.1)
    best_central = eps[np.argmin(errors["central"])]
    best_forward = eps[np.argmin(errors["forward"])]
    assert 1e-7 <= best_central <= 1e-4 and 1e-10 <= best_forward <= 1e-6
    assert errors["central"].min() < 1e-9 < errors["central"][0]  # tiny eps: rounding error wins


# --- Taylor polynomials: sympy's series is the oracle ---------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_taylor_polynomial_of_exp_matches_sympy_series(seed):
    import sympy as sp

    rng = np.random.default_rng(seed)
    a, n = round(float(rng.uniform(-1, 1)), 3), int(rng.integers(0, 9))
    xs = rng.uniform(a - 1, a + 1, size=7)
    ours = calculus.taylor_polynomial([np.exp(a)] * (n + 1), a, xs)  # every derivative of exp is exp
    x = sp.Symbol("x")
    series = sp.series(sp.exp(x), x, sp.Rational(str(a)), n + 1).removeO()
    theirs = np.array([float(series.subs(x, v)) for v in xs])
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(calculus.TAYLOR_FUNCTIONS))
@pytest.mark.parametrize("seed", range(3))
def test_sympy_derivatives_give_sympys_series(name, seed):
    import sympy as sp

    rng = np.random.default_rng(seed)
    a, n = float(np.round(rng.uniform(-1.5, 1.5), 2)), int(rng.integers(1, 8))
    xs = np.linspace(a - 0.3, a + 0.3, 5)
    picture = calculus.taylor_picture(name, n, a, np.sort(np.append(xs, [a - 2, a + 2])))
    x = sp.Symbol("x")
    expr = sp.sympify(calculus.TAYLOR_FUNCTIONS[name], locals={"x": x})
    series = sp.series(expr, x, sp.Rational(str(a)), n + 1).removeO()
    theirs = np.array([float(series.subs(x, v)) for v in picture["x"]])
    np.testing.assert_allclose(picture["p"], theirs, rtol=1e-9, atol=1e-10)


def test_sympy_derivatives_match_repeated_autograd():
    """The k-th derivative of exp(-x^2) cos(3x) from sympy agrees with autograd applied k times."""
    rng = np.random.default_rng(5)
    for a in rng.uniform(-1, 1, size=3):
        t = torch.tensor(a, requires_grad=True)
        value = torch.exp(-(t**2)) * torch.cos(3 * t)
        autograd = [value.item()]
        for _ in range(4):
            (value,) = torch.autograd.grad(value, t, create_graph=True)
            autograd.append(value.item())
        sympy_fns = calculus.derivative_functions("exp(-x^2) cos(3x)", 4)
        np.testing.assert_allclose([fn(a) for fn in sympy_fns], autograd, rtol=1e-10, atol=1e-12)


def test_taylor_picture_improves_with_order_and_knows_where_it_is_good():
    xs = np.linspace(-4, 4, 801)
    widths = []
    for order in (1, 3, 7, 15):
        picture = calculus.taylor_picture("sin(x)", order, 0.0, xs)
        assert picture["f"] == pytest.approx(np.sin(xs))
        lo, hi = picture["good_interval"]
        inside = (xs >= lo) & (xs <= hi)
        assert np.all(picture["error"][inside] < 0.05)
        widths.append(hi - lo)
    assert widths == sorted(widths) and widths[-1] > 3 * widths[0]
    # 1 / (1 + x^2) about 0 only converges for |x| < 1, however high the order
    far = calculus.taylor_picture("1 / (1 + x^2)", 20, 0.0, xs)
    assert far["good_interval"][1] < 1.0
    # ... but centred elsewhere it is good somewhere else
    moved = calculus.taylor_picture("1 / (1 + x^2)", 20, 2.0, xs)
    assert moved["good_interval"][1] > 3.0


def test_taylor_slider_moves_the_picture():
    """Chapter 4's slider, headless: a function menu, the order and the centre each change the figure."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from helpers import slider_view

    xs = np.linspace(-4, 4, 401)
    pictures = []

    def draw(function, order, center):
        picture = calculus.taylor_picture(function, order, center, xs)
        pictures.append(picture)
        lo, hi = picture["good_interval"]
        fig, ax = plt.subplots()
        ax.axvspan(lo, hi, alpha=0.2)
        ax.plot(xs, picture["f"])
        ax.plot(xs, picture["p"])
        ax.set(ylim=(-1.6, 1.6))

    menu = widgets.Dropdown(options=list(calculus.TAYLOR_FUNCTIONS), value="sin(x)")
    view = slider_view(draw, function=menu, order=(0, 20, 1, 1), center=(-3.0, 3.0, 0.25, 0.0))
    images = [view.image]
    view.set(order=5)
    images.append(view.image)
    assert pictures[-1]["good_interval"][1] > pictures[-2]["good_interval"][1]  # higher order, wider band
    view.set(center=1.5)
    images.append(view.image)
    np.testing.assert_allclose(pictures[-1]["derivatives"][:2], [np.sin(1.5), np.cos(1.5)])
    view.set(function="1 / (1 + x^2)")
    images.append(view.image)
    np.testing.assert_allclose(pictures[-1]["f"], 1 / (1 + xs**2))
    for before, after in zip(images[:-1], images[1:], strict=True):
        assert np.abs(after.astype(int) - before.astype(int)).sum() > 0
    assert view.redraws == 4
    assert view.values == {"function": "1 / (1 + x^2)", "order": 5, "center": 1.5}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calculus.taylor_polynomial([], 0.0, 1.0), "non-empty"),
        (lambda: calculus.taylor_picture("tan(x)", 3, 0.0, np.linspace(-1, 1, 5)), "no function"),
        (lambda: calculus.taylor_picture("sin(x)", -1, 0.0, np.linspace(-1, 1, 5)), "non-negative"),
        (lambda: calculus.taylor_picture("sin(x)", 2, 5.0, np.linspace(-1, 1, 5)), "outside the grid"),
        (lambda: calculus.difference_errors(np.sin, np.cos, 0.0, [1e-3, -1e-3]), "positive"),
    ],
)
def test_taylor_and_eps_helpers_give_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- matrix calculus: vector-Jacobian products against torch.autograd --------------------------------------


@pytest.mark.parametrize("leading", [(), (3,), (2, 4)], ids=["vector", "(B, C)", "(B, T, C)"])
@pytest.mark.parametrize("seed", range(4))
def test_linear_vjp_matches_autograd_on_batches_and_sequences(leading, seed):
    rng = np.random.default_rng(seed)
    n, m = (int(k) for k in rng.integers(1, 7, size=2))
    x, W, b = rng.normal(size=(*leading, n)), rng.normal(size=(m, n)), rng.normal(size=m)
    g = rng.normal(size=(*leading, m))
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, W, b)]
    y = torch.nn.functional.linear(*tensors)  # x W^T + b
    oracle = torch.autograd.grad(y, tensors, grad_outputs=torch.from_numpy(g))
    for ours, theirs in zip(calculus.linear_vjp(x, W, g), oracle, strict=True):
        assert ours.shape == tuple(theirs.shape) and np.allclose(ours, theirs.numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones((2, 3)), np.ones(3), np.ones((2, 1))), "W must be a matrix"),
        ((np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 4))), "needs 2 entries"),
        ((np.ones((2, 3)), np.ones((4, 3)), np.ones((3, 4))), "grad_y must have y's shape"),
    ],
)
def test_linear_vjp_names_the_shape_that_is_wrong(args, message):
    with pytest.raises(ValueError, match=message):
        calculus.linear_vjp(*args)


@pytest.mark.parametrize("leading", [(), (3,), (2, 4)])
def test_softmax_jacobian_matches_autograd_and_its_rows_sum_to_zero(leading):
    rng = np.random.default_rng(len(leading))
    z = torch.from_numpy(rng.normal(size=(*leading, 5)) * 2)
    p = torch.softmax(z, dim=-1).numpy()
    J = calculus.softmax_jacobian(p)  # (..., C, C)
    for index in np.ndindex(*leading):
        oracle = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=-1), z[index]).numpy()
        assert np.allclose(J[index], oracle, atol=1e-12)
    assert np.allclose(J.sum(axis=-1), 0, atol=1e-14) and np.allclose(J, np.swapaxes(J, -1, -2))


@pytest.mark.parametrize("p", [[0.5, 0.6], [1.2, -0.2], 0.3])
def test_softmax_jacobian_refuses_what_is_not_a_distribution(p):
    with pytest.raises(ValueError, match="probabilities"):
        calculus.softmax_jacobian(p)


# --- the integral -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, f, a, b",
    [("exp", np.exp, 0.0, 1.0), ("sin", np.sin, 0.3, 2.0), ("poly", lambda x: x**3 - x, -1.0, 2.5)],
)
def test_riemann_sums_converge_to_sympy_at_their_rates(name, f, a, b):
    import sympy as sp  # the oracle, only needed here

    x = sp.Symbol("x")
    expression = {"exp": sp.exp(x), "sin": sp.sin(x), "poly": x**3 - x}[name]
    exact = float(sp.integrate(expression, (x, a, b)))
    for rule, order in [("left", 1), ("midpoint", 2), ("trapezoid", 2)]:
        coarse, fine = (abs(calculus.riemann_sum(f, a, b, n, rule) - exact) for n in (100, 1000))
        assert 0.8 * 10**order < coarse / fine < 1.2 * 10**order, (name, rule, coarse / fine)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "positive integer"),
        ({"n": 2.5}, "positive integer"),
        ({"b": 0.0}, "a < b"),
        ({"rule": "right"}, "rule"),
    ],
)
def test_riemann_sum_bad_input(kwargs, message):
    arguments = {"f": np.sin, "a": 0.0, "b": 1.0, "n": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        calculus.riemann_sum(**arguments)
