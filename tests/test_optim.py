"""Chapter 6's optimisers against torch.optim, step for step, and the 2D surfaces against torch.autograd."""

import warnings

import ipywidgets as widgets
import numpy as np
import pytest
import torch

from helpers import optim, slider_view

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(8)
STEPS = 300


def random_problem(rng, scale=1.0):
    """Two parameter arrays of random shapes and the gradient of a smooth, random, non-quadratic loss.

    loss(x) = sum(softplus(A x + b)) + x^T H x / 2 + 0.1 sum(cos x), with x both arrays flattened.
    """
    shapes = [(int(rng.integers(1, 5)),), (int(rng.integers(1, 4)), int(rng.integers(1, 4)))]
    sizes = [int(np.prod(s)) for s in shapes]
    n = sum(sizes)
    A = rng.normal(size=(n + 2, n)) / np.sqrt(n)
    b = rng.normal(size=n + 2)
    H = rng.normal(size=(n, n))
    H = H @ H.T / n  # a random positive semi-definite quadratic part

    def loss(x):  # torch, for the autograd check of `grad`
        return (
            torch.nn.functional.softplus(A_t @ x + b_t).sum() + 0.5 * x @ H_t @ x + 0.1 * torch.cos(x).sum()
        )

    def grad(arrays):  # numpy arrays in, a list of gradients of the same shapes out
        x = np.concatenate([np.asarray(a).reshape(-1) for a in arrays])  # (n,)
        g = A.T @ (1 / (1 + np.exp(-(A @ x + b)))) + H @ x - 0.1 * np.sin(x)  # (n,)
        return [piece.reshape(s) for piece, s in zip(np.split(g, np.cumsum(sizes)[:-1]), shapes, strict=True)]

    A_t, b_t, H_t = (torch.tensor(m) for m in (A, b, H))
    start = [scale * rng.normal(size=s) for s in shapes]
    return start, grad, loss


def test_the_random_problems_gradient_is_autograds():
    for seed in range(5):
        start, grad, loss = random_problem(np.random.default_rng(seed), scale=3.0)
        x = torch.tensor(np.concatenate([a.reshape(-1) for a in start]), requires_grad=True)
        loss(x).backward()
        ours = np.concatenate([g.reshape(-1) for g in grad(start)])
        np.testing.assert_allclose(ours, x.grad.numpy(), rtol=1e-12, atol=1e-12)


def assert_same_iterates(ours_cls, torch_cls, hyper, seed, steps=STEPS, tol=1e-10, scale=1.0, sync=False):
    """Run ours and torch's optimiser side by side on one random problem; every iterate must agree.

    sync=True copies torch's parameters into ours after each comparison, so each step starts from the same
    point. Adam and RMSprop need that to be compared over long runs: near a minimum their fixed-size steps
    rattle back and forth and amplify differences in the last bit (torch's kernels fuse multiply-adds), so
    two correct implementations drift apart there. The free-running tests use the travelling phase.
    """
    rng = np.random.default_rng(seed)
    start, grad, _ = random_problem(rng, scale)
    ours = [a.copy() for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt = ours_cls(ours, **hyper)
    ref = torch_cls(theirs, **hyper)
    for step in range(steps):
        opt.step(grad(ours))
        for t, g in zip(theirs, grad([t.detach().numpy() for t in theirs]), strict=True):
            t.grad = torch.from_numpy(g)
        ref.step()
        for a, t in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(
                a, t.detach().numpy(), rtol=tol, atol=tol, err_msg=f"{ours_cls.__name__} {hyper} step {step}"
            )
            if sync:
                a[...] = t.detach().numpy()
    moved = max(np.abs(a - s).max() for a, s in zip(ours, start, strict=True))
    assert moved > 1e-3, "the parameters hardly moved, so the comparison proves little"
    for state, t in zip(opt.state, theirs, strict=True):  # the running averages (torch's names) agree too
        shared = (set(state) & set(ref.state[t])) - {"step"}
        assert shared or set(state) == {"step"}, f"no state in common with torch: {sorted(state)}"
        for key in shared:
            np.testing.assert_allclose(state[key], ref.state[t][key].numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_matches_torch(seed):
    rng = np.random.default_rng(1000 + seed)
    momentum = float(rng.choice([0.0, rng.uniform(0.1, 0.95)]))
    nesterov = bool(momentum > 0 and rng.random() < 0.5)
    hyper = {
        "lr": float(rng.uniform(0.005, 0.1)),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else float(rng.choice([0.0, rng.uniform(0, 0.5)])),
        "weight_decay": float(rng.choice([0.0, rng.uniform(0, 0.1)])),
        "nesterov": nesterov,
    }
    assert_same_iterates(optim.SGD, torch.optim.SGD, hyper, seed)


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sgd_matches_torch_in_every_mode(momentum, nesterov, weight_decay):
    hyper = {"lr": 0.03, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
    assert_same_iterates(optim.SGD, torch.optim.SGD, hyper, seed=7)


@pytest.mark.parametrize("seed", SEEDS)
def test_rmsprop_matches_torch(seed):
    rng = np.random.default_rng(2000 + seed)
    hyper = {
        "lr": float(rng.uniform(1e-3, 3e-2)),
        "alpha": float(rng.uniform(0.8, 0.999)),
        "eps": float(10 ** rng.uniform(-8, -3)),
        "weight_decay": float(rng.choice([0.0, rng.uniform(0, 0.1)])),
        "momentum": float(rng.choice([0.0, rng.uniform(0, 0.9)])),
        "centered": bool(rng.random() < 0.5),
    }
    assert_same_iterates(optim.RMSprop, torch.optim.RMSprop, hyper, seed, steps=100, scale=20.0)
    assert_same_iterates(optim.RMSprop, torch.optim.RMSprop, hyper, seed, tol=1e-12, sync=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_and_adamw_match_torch(seed, name):
    rng = np.random.default_rng(3000 + seed)
    hyper = {
        "lr": float(rng.uniform(1e-3, 5e-2)),
        "betas": (float(rng.uniform(0.0, 0.95)), float(rng.uniform(0.9, 0.9999))),
        "eps": float(10 ** rng.uniform(-8, -3)),
        "weight_decay": float(rng.choice([0.0, rng.uniform(0, 0.2)])),
    }
    ours, theirs = getattr(optim, name), getattr(torch.optim, name)
    assert_same_iterates(ours, theirs, hyper, seed, steps=100, scale=20.0)
    assert_same_iterates(ours, theirs, hyper, seed, tol=1e-12, sync=True)


def test_torch_defaults_are_the_same():
    for ours, theirs in [
        (optim.SGD, torch.optim.SGD),
        (optim.RMSprop, torch.optim.RMSprop),
        (optim.Adam, torch.optim.Adam),
        (optim.AdamW, torch.optim.AdamW),
    ]:
        opt = ours([np.zeros(2)])
        ref = theirs([torch.zeros(2, requires_grad=True)]).defaults
        for key, value in opt.hyper.items():
            assert ref[key] == value, f"{ours.__name__}: default {key}={value}, torch has {ref[key]}"


def test_the_same_update_runs_on_torch_tensors():
    """The rule is written with + - * / ** only, so it steps torch tensors too (as a later chapter will)."""
    torch.manual_seed(0)
    w = torch.randn(4, 3)
    ours, theirs = w.clone(), w.clone().requires_grad_(True)
    opt = optim.Adam([ours], lr=0.01, weight_decay=0.01)
    ref = torch.optim.Adam([theirs], lr=0.01, weight_decay=0.01)
    target = torch.randn(4, 3)
    for _ in range(50):
        opt.step([2 * (ours - target)])
        ref.zero_grad()
        ((theirs - target) ** 2).sum().backward()
        ref.step()
    assert isinstance(ours, torch.Tensor)
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-5, atol=1e-6)


def test_first_adam_step_has_size_lr_in_every_coordinate():
    """Bias correction: whatever the gradient's scale, the first step is lr * sign(g) (up to eps)."""
    x = np.zeros(4)
    g = np.array([1e-4, -3.0, 250.0, -0.02])
    optim.Adam([x], lr=0.1).step([g])
    np.testing.assert_allclose(x, -0.1 * np.sign(g), rtol=1e-3)


# --- surfaces and paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(optim.SURFACES))
def test_surface_gradient_and_hessian_match_autograd(name):
    surface = optim.SURFACES[name]()
    rng = np.random.default_rng(0)
    x0, x1, y0, y1 = surface.extent

    for _ in range(10):
        point = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        p = torch.tensor(point, requires_grad=True)
        value = _torch_version(name)(p)
        (grad,) = torch.autograd.grad(value, p)
        np.testing.assert_allclose(surface.f(point), value.item(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(surface.grad(point), grad.numpy(), rtol=1e-10, atol=1e-10)
        hess = torch.autograd.functional.hessian(_torch_version(name), torch.tensor(point))
        np.testing.assert_allclose(surface.hessian(point), hess.numpy(), rtol=1e-10, atol=1e-10)
    # every listed minimum is a critical point with a positive-definite Hessian
    for m in surface.minima:
        np.testing.assert_allclose(surface.grad(np.array(m)), 0.0, atol=1e-9)
        assert np.all(np.linalg.eigvalsh(surface.hessian(np.array(m))) > 0)
    # the grid is the function on a grid
    X, Y, Z = surface.grid(7)
    assert Z.shape == (7, 7)
    np.testing.assert_allclose(Z[3, 4], surface.f(np.array([X[3, 4], Y[3, 4]])))


def _torch_version(name):
    """Each surface's formula written again in torch, as the autograd oracle."""
    if name == "narrow valley":
        return lambda p: 0.5 * (p[0] ** 2 + 20 * p[1] ** 2)
    if name == "Rosenbrock":
        return lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
    if name == "saddle":
        return lambda p: p[0] ** 2 + p[1] ** 4 / 4 - p[1] ** 2 / 2
    if name == "two wells":
        return lambda p: (p[0] ** 2 - 1) ** 2 + 0.5 * p[0] + p[1] ** 2
    raise KeyError(name)


def test_saddle_hessian_has_eigenvalues_of_both_signs():
    eig = np.linalg.eigvalsh(optim.saddle().hessian(np.zeros(2)))
    np.testing.assert_allclose(np.sort(eig), [-1.0, 2.0])


@pytest.mark.parametrize("seed", range(5))
def test_gradient_descent_on_a_quadratic_is_a_matrix_power(seed):
    """x_t = (I - lr H)^t x_0: the closed form behind the stability limit lr < 2 / lambda_max."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(2, 2))
    H = A @ A.T + 0.1 * np.eye(2)
    surface = optim.quadratic(H)
    L = np.linalg.eigvalsh(H).max()
    x0 = rng.normal(size=2)
    lr = rng.uniform(0.1, 1.9) / L
    path = optim.run(surface, "sgd", steps=40, start=x0, lr=lr)
    expected = [np.linalg.matrix_power(np.eye(2) - lr * H, t) @ x0 for t in range(41)]
    np.testing.assert_allclose(path.xs, expected, atol=1e-10)
    np.testing.assert_allclose(path.losses, surface.f(np.array(expected)), atol=1e-10)
    assert not optim.run(surface, "sgd", steps=3000, start=x0, lr=0.98 * 2 / L).diverged
    assert optim.run(surface, "sgd", steps=3000, start=x0, lr=1.05 * 2 / L).diverged


def test_path_bookkeeping():
    path = optim.run(optim.narrow_valley(), "sgd", steps=100, lr=0.05)
    assert path.xs.shape == (101, 2) and path.losses.shape == (101,)
    first = path.steps_to((0, 0), 0.1)
    assert first is not None and np.linalg.norm(path.xs[first]) < 0.1 <= np.linalg.norm(path.xs[first - 1])
    assert path.steps_to((50, 50), 0.1) is None
    blown = optim.run(optim.narrow_valley(), "sgd", steps=1000, lr=0.2)
    assert blown.diverged and len(blown.xs) < 1001 and np.all(np.isfinite(blown.xs))


def test_momentum_beats_plain_descent_in_the_narrow_valley():
    valley = optim.narrow_valley()
    plain = optim.run(valley, "sgd", steps=500, lr=0.02).steps_to((0, 0), 0.01)
    heavy = optim.run(valley, "sgd", steps=500, lr=0.02, momentum=0.8).steps_to((0, 0), 0.01)
    assert heavy is not None and plain is not None and heavy < plain / 2


# --- the slider, headless ------------------------------------------------------------------------------


def make_view():
    return slider_view(
        optim.draw_explorer,
        surface=widgets.Dropdown(options=["narrow valley", "Rosenbrock"], value="narrow valley"),
        optimizer=widgets.Dropdown(options=["sgd", "rmsprop", "adam"], value="sgd"),
        lr=widgets.FloatLogSlider(value=0.02, base=10, min=-3, max=-0.5, step=0.05),
        momentum=(0.0, 0.99, 0.01, 0.0),
        steps=(10, 3000, 10, 150),
    )


def test_slider_redraws_and_the_path_follows_the_knobs():
    view = make_view()
    before = view.image
    view.set(momentum=0.8)
    assert view.redraws == 2
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    plain = optim.explore("narrow valley", "sgd", 0.02, 0.0, 150)
    heavy = optim.explore("narrow valley", "sgd", 0.02, 0.8, 150)
    assert np.linalg.norm(heavy.end) < np.linalg.norm(plain.end)
    view.set(lr=0.2)  # past 2 / 20 = 0.1: plain descent would blow up; with momentum too
    assert optim.explore("narrow valley", "sgd", 0.2, 0.8, 150).diverged
    after = view.image
    view.set(optimizer="adam", surface="Rosenbrock", lr=0.05, momentum=0.9, steps=3000)
    assert np.abs(view.image.astype(int) - after.astype(int)).sum() > 0
    adam = optim.explore("Rosenbrock", "adam", 0.05, 0.9, 3000)
    np.testing.assert_allclose(adam.end, [1.0, 1.0], atol=1e-3)
    np.testing.assert_array_equal(adam.xs, optim.run(optim.rosenbrock(), "adam", 3000, lr=0.05).xs)


# --- clear errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: optim.SGD([np.zeros(2)], lr=-1.0), "lr must be >= 0"),
        (lambda: optim.SGD([np.zeros(2)], momentum=0.0, nesterov=True), "Nesterov"),
        (lambda: optim.SGD(np.zeros(2)), "list of arrays"),
        (lambda: optim.SGD([]), "empty"),
        (lambda: optim.SGD([np.zeros(2, dtype=int)]), "float array"),
        (lambda: optim.RMSprop([np.zeros(2)], alpha=1.0), "alpha"),
        (lambda: optim.Adam([np.zeros(2)], betas=(0.9, 1.0)), "betas"),
        (lambda: optim.SGD([np.zeros(2)]).step([np.zeros(2), np.zeros(2)]), "2 gradients for 1"),
        (lambda: optim.SGD([np.zeros(2)]).step([np.zeros(3)]), r"shape \(3,\)"),
        (lambda: optim.make_optimizer("lbfgs", [np.zeros(2)]), "no optimiser called 'lbfgs'"),
        (lambda: optim.quadratic([[1, 2], [0, 1]]), "symmetric"),
        (lambda: optim.run(optim.narrow_valley(), start=(1.0, 2.0, 3.0)), "2 coordinates"),
        (lambda: optim.run(optim.narrow_valley(), steps=-1), "steps"),
        (lambda: optim.explore("moon", "sgd", 0.1, 0.0, 10), "no surface called 'moon'"),
    ],
)
def test_bad_input_gets_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
