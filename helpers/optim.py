"""Chapter 6: optimisers built from their update rules, and the 2D loss surfaces they are watched on.

What this adds: `SGD` (momentum, Nesterov, weight decay), `RMSprop`, `Adam` and `AdamW` with torch's
parameter names and torch's exact arithmetic, so `tests/test_optim.py` can demand the same iterates as
`torch.optim` over hundreds of steps. Each optimiser keeps its rule in one method, `update(p, g, state)`,
written with `+ - * / **` only, so the same lines run on numpy arrays and on torch tensors; later
chapters can read that method and see exactly what `optimizer.step()` does.

The second half is the workbench: a few 2D surfaces (`quadratic`, `rosenbrock`, `saddle`, `two_wells`)
with their gradients and Hessians, `run` to record the path an optimiser takes on one, and
`draw_paths` to draw the contours and paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def zeros_like(x):
    """Zeros of x's shape and type: a numpy array for an array, a tensor for a tensor."""
    return x.new_zeros(x.shape) if hasattr(x, "new_zeros") else np.zeros_like(x)


class Optimizer:
    """A list of parameter arrays, one state dict each, and a rule that moves every array one step.

    `step(grads)` overwrites each parameter in place with `update(p, g, state)`, the way
    `torch.optim.Optimizer.step` does; subclasses only write `update`.
    """

    def __init__(self, params: Sequence, **hyper: Any):
        if isinstance(params, np.ndarray) or hasattr(params, "new_zeros"):
            raise ValueError("params must be a list of arrays, e.g. [w, b]; wrap a single array as [x]")
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: give the optimiser at least one array to update")
        for i, p in enumerate(self.params):
            if isinstance(p, np.ndarray) and not np.issubdtype(p.dtype, np.floating):
                raise ValueError(
                    f"params[{i}] has dtype {p.dtype}; it is updated in place, so it must be a float array"
                )
        lr = hyper.get("lr", 0.0)
        if not lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        self.hyper = hyper
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def step(self, grads: Sequence) -> None:
        """Move every parameter one step, given its gradient (same order and shapes as the params)."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradients for {len(self.params)} parameters")
        for i, (p, g, state) in enumerate(zip(self.params, grads, self.state, strict=True)):
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(
                    f"grads[{i}] has shape {tuple(g.shape)} but params[{i}] has {tuple(p.shape)}"
                )
            state["step"] = state.get("step", 0) + 1
            p[...] = self.update(p, g, state)

    def update(self, p, g, state: dict[str, Any]):
        """The new value of one parameter p, given its gradient g and its state (`state["step"]` = t)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Gradient descent, optionally with momentum (heavy ball or Nesterov) and L2 weight decay.

    g <- g + weight_decay * p
    b <- g on the first step, else momentum * b + (1 - dampening) * g
    g <- g + momentum * b  (Nesterov)   or   g <- b  (heavy ball)
    p <- p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if momentum < 0.0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )

    def update(self, p, g, state):
        h = self.hyper
        if h["weight_decay"] != 0.0:
            g = g + h["weight_decay"] * p
        if h["momentum"] != 0.0:
            if "momentum_buffer" not in state:
                b = g
            else:
                b = h["momentum"] * state["momentum_buffer"] + (1.0 - h["dampening"]) * g
            state["momentum_buffer"] = b
            g = g + h["momentum"] * b if h["nesterov"] else b
        return p - h["lr"] * g


class RMSprop(Optimizer):
    """Divide each coordinate's step by a running root-mean-square of its gradients.

    g <- g + weight_decay * p
    v <- alpha * v + (1 - alpha) * g**2          (v starts at 0)
    d <- sqrt(v) + eps   (centered: sqrt(v - gbar**2) + eps, gbar a running mean of g)
    p <- p - lr * g / d   (with momentum: b <- momentum * b + g / d;  p <- p - lr * b)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        if eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if momentum < 0.0 or weight_decay < 0.0:
            raise ValueError(f"momentum and weight_decay must be >= 0, got {momentum} and {weight_decay}")
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )

    def update(self, p, g, state):
        h = self.hyper
        if h["weight_decay"] != 0.0:
            g = g + h["weight_decay"] * p
        v = h["alpha"] * state.get("square_avg", zeros_like(p)) + (1.0 - h["alpha"]) * g * g
        state["square_avg"] = v
        if h["centered"]:
            gbar = h["alpha"] * state.get("grad_avg", zeros_like(p)) + (1.0 - h["alpha"]) * g
            state["grad_avg"] = gbar
            d = (v - gbar * gbar) ** 0.5 + h["eps"]
        else:
            d = v**0.5 + h["eps"]
        if h["momentum"] > 0.0:
            b = h["momentum"] * state.get("momentum_buffer", zeros_like(p)) + g / d
            state["momentum_buffer"] = b
            return p - h["lr"] * b
        return p - h["lr"] * g / d


class Adam(Optimizer):
    """Momentum (a running mean m of g) divided by a running RMS (sqrt of a running mean v of g**2).

    g <- g + weight_decay * p                    (AdamW instead shrinks p directly, see below)
    m <- beta1 * m + (1 - beta1) * g             (m and v start at 0 ...)
    v <- beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t),  v_hat = v / (1 - beta2**t)    (... which these corrections undo)
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)
    """

    decoupled = False  # AdamW sets this: weight decay shrinks p instead of adding to g

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must each be in [0, 1), got {betas}")
        if eps < 0.0 or weight_decay < 0.0:
            raise ValueError(f"eps and weight_decay must be >= 0, got {eps} and {weight_decay}")
        super().__init__(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)

    def update(self, p, g, state):
        h = self.hyper
        (beta1, beta2), t = h["betas"], state["step"]
        if h["weight_decay"] != 0.0:
            if self.decoupled:
                p = p * (1.0 - h["lr"] * h["weight_decay"])
            else:
                g = g + h["weight_decay"] * p
        m = beta1 * state.get("exp_avg", zeros_like(p)) + (1.0 - beta1) * g
        v = beta2 * state.get("exp_avg_sq", zeros_like(p)) + (1.0 - beta2) * g * g
        state["exp_avg"], state["exp_avg_sq"] = m, v
        m_hat = m / (1.0 - beta1**t)
        v_hat = v / (1.0 - beta2**t)
        return p - h["lr"] * m_hat / (v_hat**0.5 + h["eps"])


class AdamW(Adam):
    """Adam with decoupled weight decay: p <- p * (1 - lr * weight_decay) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params: Sequence, **hyper: Any) -> Optimizer:
    """An optimiser by name ("sgd", "rmsprop", "adam", "adamw"), e.g. make_optimizer("sgd", [x], lr=0.1)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"no optimiser called {name!r}; choose from {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, **hyper)


# --- 2D loss surfaces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    """A function of two variables with its gradient and Hessian, all taking points of shape (..., 2).

    `minima` lists its minimisers; `start` is where paths begin by default; `extent` is the plotting box
    (xmin, xmax, ymin, ymax).
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]
    minima: tuple[tuple[float, float], ...]
    start: tuple[float, float]
    extent: tuple[float, float, float, float]
    log_levels: bool = False  # contour levels spaced in log(f - f_min), for steep surfaces

    def grid(self, n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, Y, Z) on an n-by-n grid over `extent`, ready for `plt.contour`."""
        x0, x1, y0, y1 = self.extent
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))  # (n, n) each
        return X, Y, self.f(np.stack([X, Y], axis=-1))  # (n, n)


def _points(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape[-1:] != (2,):
        raise ValueError(f"points on a 2D surface need 2 coordinates in the last axis, got shape {x.shape}")
    return x


def quadratic(H, centre=(0.0, 0.0), name: str = "quadratic", start=(-2.0, 1.5), extent=None) -> Surface:
    """f(x) = 1/2 (x - c)^T H (x - c) for a symmetric positive-definite 2x2 H: one bowl, minimum at c."""
    H = np.asarray(H, dtype=float)
    c = np.asarray(centre, dtype=float)
    if H.shape != (2, 2) or not np.allclose(H, H.T):
        raise ValueError(f"H must be a symmetric 2x2 matrix, got {H.tolist()}")

    def f(x):
        d = _points(x) - c  # (..., 2)
        return 0.5 * np.einsum("...i,ij,...j->...", d, H, d)

    def grad(x):
        return (_points(x) - c) @ H  # H is symmetric, so this is H (x - c)

    def hessian(x):
        return np.broadcast_to(H, (*_points(x).shape[:-1], 2, 2)).copy()

    extent = extent or (c[0] - 2.5, c[0] + 2.5, c[1] - 2.0, c[1] + 2.0)
    return Surface(name, f, grad, hessian, (tuple(c),), tuple(start), tuple(extent))


def narrow_valley(curvature_x: float = 1.0, curvature_y: float = 20.0) -> Surface:
    """An elongated bowl, f = (a x^2 + b y^2) / 2: gentle along x, steep across y (condition number b/a)."""
    return quadratic(np.diag([curvature_x, curvature_y]), name="narrow valley", start=(-2.2, 1.2))


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Rosenbrock's banana, f = (a - x)^2 + b (y - x^2)^2: a curved valley with a flat floor; min (a, a^2)."""

    def f(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return np.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], axis=-1)

    def hessian(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        hxx = 2 - 4 * b * (y - x**2) + 8 * b * x**2
        hxy = -4 * b * x
        hyy = 2 * b * np.ones_like(x)
        return np.stack([np.stack([hxx, hxy], -1), np.stack([hxy, hyy], -1)], -2)

    return Surface("Rosenbrock", f, grad, hessian, ((a, a * a),), (-1.2, 1.0), (-2.0, 2.0, -1.0, 3.0), True)


def saddle() -> Surface:
    """f = x^2 + y^4/4 - y^2/2: a saddle at the origin between two minima at (0, -1) and (0, 1)."""

    def f(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return x**2 + y**4 / 4 - y**2 / 2

    def grad(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return np.stack([2 * x, y**3 - y], axis=-1)

    def hessian(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        zero = np.zeros_like(x)
        return np.stack([np.stack([zero + 2, zero], -1), np.stack([zero, 3 * y**2 - 1], -1)], -2)

    return Surface("saddle", f, grad, hessian, ((0.0, -1.0), (0.0, 1.0)), (1.5, 1e-3), (-1.7, 1.7, -1.6, 1.6))


def two_wells() -> Surface:
    """Not convex: f = (x^2 - 1)^2 + x/2 + y^2 has a deep well near x = -1 and a shallow one near x = 1."""

    def f(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return (x**2 - 1) ** 2 + 0.5 * x + y**2

    def grad(p):
        x, y = _points(p)[..., 0], _points(p)[..., 1]
        return np.stack([4 * x * (x**2 - 1) + 0.5, 2 * y], axis=-1)

    def hessian(p):
        x = _points(p)[..., 0]
        zero = np.zeros_like(x)
        return np.stack([np.stack([12 * x**2 - 4, zero], -1), np.stack([zero, zero + 2], -1)], -2)

    # the minima solve 4x^3 - 4x + 1/2 = 0 with y = 0; the middle root is a saddle
    roots = np.sort(np.roots([4.0, 0.0, -4.0, 0.5]).real)
    minima = ((float(roots[0]), 0.0), (float(roots[2]), 0.0))
    return Surface("two wells", f, grad, hessian, minima, (0.3, 1.2), (-1.8, 1.8, -1.5, 1.5))


SURFACES: dict[str, Callable[[], Surface]] = {
    "narrow valley": narrow_valley,
    "Rosenbrock": rosenbrock,
    "saddle": saddle,
    "two wells": two_wells,
}


# --- running an optimiser on a surface ----------------------------------------------------------------


@dataclass
class Path:
    """The points an optimiser visited, `xs` (steps + 1, 2), and the loss at each, `losses` (steps + 1,)."""

    xs: np.ndarray
    losses: np.ndarray
    diverged: bool = False
    label: str = ""
    hyper: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> np.ndarray:
        return self.xs[-1]

    def steps_to(self, point, tol: float) -> int | None:
        """The first step at which the path is within `tol` of `point` (Euclidean), or None if never."""
        close = np.linalg.norm(self.xs - np.asarray(point, dtype=float), axis=-1) < tol
        return int(np.argmax(close)) if close.any() else None


def run(
    surface: Surface,
    optimizer: str = "sgd",
    steps: int = 100,
    start=None,
    blowup: float = 1e6,
    **hyper: Any,
) -> Path:
    """Run `optimizer` ("sgd", "rmsprop", "adam", "adamw") for `steps` steps on `surface`; record the path.

    `hyper` goes to the optimiser (lr, momentum, betas, ...). A path that leaves the ball of radius
    `blowup` (or stops being finite) is cut short and marked `diverged`.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x = _points(surface.start if start is None else start).copy()  # (2,)
    if x.shape != (2,):
        raise ValueError(f"start must be one point (x, y), got shape {x.shape}")
    opt = make_optimizer(optimizer, [x], **hyper)
    xs, losses, diverged = [x.copy()], [float(surface.f(x))], False
    for _ in range(steps):
        opt.step([surface.grad(x)])
        if not np.all(np.isfinite(x)) or np.linalg.norm(x) > blowup:
            diverged = True
            break
        xs.append(x.copy())
        losses.append(float(surface.f(x)))
    label = optimizer + ", " + ", ".join(f"{k}={v:g}" for k, v in hyper.items() if np.isscalar(v))
    return Path(np.array(xs), np.array(losses), diverged, label, dict(hyper))


def draw_paths(ax: plt.Axes, surface: Surface, paths: Sequence[Path] = (), levels: int = 25, n: int = 150):
    """Contours of `surface` on `ax`, its minima as stars, and each path as a line of dots."""
    X, Y, Z = surface.grid(n)
    if surface.log_levels:
        low = Z.min()
        lv = low + np.geomspace(1e-2, Z.max() - low + 1e-2, levels)
    else:
        lv = np.linspace(Z.min(), np.percentile(Z, 95), levels)
    ax.contour(X, Y, Z, levels=lv, cmap="viridis", linewidths=0.8, alpha=0.8)
    for m in surface.minima:
        ax.plot(*m, marker="*", color="black", markersize=12, linestyle="none")
    for i, path in enumerate(paths):
        ax.plot(
            path.xs[:, 0], path.xs[:, 1], "o-", color=f"C{i + 1}", markersize=2.5, lw=1.2, label=path.label
        )
        ax.plot(*path.xs[0], "s", color=f"C{i + 1}", markersize=6)
    x0, x1, y0, y1 = surface.extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if paths:
        ax.legend(loc="upper right", fontsize=8)
    return ax


# --- the chapter's slider: one optimiser on one surface -----------------------------------------------


def explore(surface: str, optimizer: str, lr: float, momentum: float, steps: int) -> Path:
    """The path the slider shows. `momentum` is SGD's and RMSprop's momentum, and Adam's beta1."""
    if surface not in SURFACES:
        raise ValueError(f"no surface called {surface!r}; choose from {sorted(SURFACES)}")
    if optimizer in ("adam", "adamw"):
        hyper = {"lr": lr, "betas": (momentum, 0.999)}
    else:
        hyper = {"lr": lr, "momentum": momentum}
    path = run(SURFACES[surface](), optimizer, steps, **hyper)
    path.label = f"{optimizer}, lr={lr:.3g}, " + ("beta1" if optimizer.startswith("adam") else "momentum")
    path.label += f"={momentum:.2f}"
    return path


def draw_explorer(surface: str, optimizer: str, lr: float, momentum: float, steps: int) -> Path:
    """Contours of the surface, the path of `explore(...)`, and its loss curve; returns the path."""
    path = explore(surface, optimizer, lr, momentum, steps)
    s = SURFACES[surface]()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    draw_paths(left, s, [path])
    distance = float(np.min(np.linalg.norm(np.asarray(s.minima) - path.end, axis=-1)))
    verdict = "DIVERGED" if path.diverged else f"ends {distance:.2g} from a minimum"
    left.set_title(f"{s.name}: {len(path.xs) - 1} steps, {verdict}")
    f_min = min(float(s.f(np.asarray(m))) for m in s.minima)
    right.semilogy(np.maximum(path.losses - f_min, 1e-16), color="C1")
    right.set(xlabel="step", ylabel="f(x) - f(minimum)", title="loss above the minimum (log scale)")
    fig.tight_layout()
    return path
