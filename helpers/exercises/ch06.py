"""Exercises for chapter 6: optimisation."""

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.optim import Adam, Optimizer

TorchAdam = torch.optim.Adam  # held here, so that by_hand can refuse torch.optim.Adam to the reader

# 6.1 ----------------------------------------------------------------------------------------------------
H_61 = np.array([[3.0, 1.0], [1.0, 3.0]])  # eigenvalues 2 and 4
register(
    Exercise(
        key="6.1",
        title="the largest stable learning rate",
        checker=matches_value(2.0 / np.linalg.eigvalsh(H_61).max(), atol=1e-6, what="your learning rate"),
        hint="gradient descent on f(x) = x^T H x / 2 multiplies the part of x along each eigenvector of H "
        "by (1 - lr * lambda). Find the eigenvalues of H (np.linalg.eigvalsh) and keep every |1 - lr * "
        "lambda| < 1.",
        solution=2.0 / 4.0,
        wrong=2.0 / 3.0,  # reads the curvature off the diagonal instead of the eigenvalues
        explanation="H has eigenvalues 2 and 4 (eigenvectors (1, -1) and (1, 1)). Along the steepest "
        "direction the factor 1 - 4 lr must stay above -1, so lr < 2 / 4 = 0.5. The diagonal entries (3) "
        "are the curvatures along the axes, but the valley's steepest direction is diagonal: its curvature "
        "is 4.",
    )
)


# 6.2 ----------------------------------------------------------------------------------------------------
def momentum_step(x, b, g, lr, momentum):
    """One heavy-ball step: the buffer first (b <- momentum * b + g), then the move (x <- x - lr * b)."""
    b = momentum * b + g
    x = x - lr * b
    return x, b


def _stale_buffer(x, b, g, lr, momentum):
    x = x - lr * b  # moves with last step's buffer
    b = momentum * b + g
    return x, b


def _momentum_inputs(rng):
    n = int(rng.integers(1, 6))
    return (
        rng.normal(size=n),
        rng.normal(size=n),
        rng.normal(size=n),
        rng.uniform(0.01, 0.5),
        rng.uniform(0, 0.99),
    )


register(
    Exercise(
        key="6.2",
        title="one heavy-ball step",
        checker=matches_function(momentum_step, _momentum_inputs),
        hint="torch's order: first fold the new gradient into the buffer, b <- momentum * b + g, then move "
        "x <- x - lr * b with the NEW buffer. Return the pair (x, b).",
        solution=momentum_step,
        wrong=_stale_buffer,
    )
)

# 6.3 ----------------------------------------------------------------------------------------------------
G1_63 = np.array([0.003, -40.0, 2.5])
G2_63 = np.array([-0.003, 40.0, 2.5])  # the first two gradients reverse, the third repeats
LR_63 = 0.01


def _adam_after(gradients, lr):
    x = np.zeros_like(gradients[0])
    opt = Adam([x], lr=lr)
    for g in gradients:
        opt.step([g])
    return x  # x started at 0


register(
    Exercise(
        key="6.3",
        title="Adam's second step",
        checker=matches_value(_adam_after([G1_63, G2_63], LR_63), atol=1e-6, what="your x after two steps"),
        hint="write out m_2 = beta1 m_1 + (1 - beta1) g_2 and v_2 likewise, with m_1 = (1 - beta1) g_1 and "
        "v_1 = (1 - beta2) g_1^2, then divide by (1 - beta1^2) and (1 - beta2^2). Where g_2 = -g_1, m_2 is "
        "small but not zero; where g_2 = g_1 the step repeats.",
        solution=_adam_after([G1_63, G2_63], LR_63),
        wrong=np.array([0.0, 0.0, -2 * LR_63]),  # as if a reversed gradient cancelled the first step exactly
        explanation="Step 1 is -lr sign(g1) in every coordinate. Where g2 = -g1: m_2 = 0.09 g1 - 0.1 g1 = "
        "-0.01 g1, m_hat = -0.01 g1 / 0.19; v_2 = (0.000999 + 0.001) g1^2, v_hat = g1^2. So step 2 is +lr * "
        "0.0526 sign(g1): the momentum of the first step nearly cancels the reversed gradient, and x ends "
        "at -0.947 lr sign(g1), not back at 0. Where g2 = g1 both steps are -lr sign(g): x = -2 lr. The "
        "size of g (0.003 or 40) does not matter at all.",
    )
)

# 6.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="6.4",
        title="find the saddle",
        checker=matches_value([-1.0, 0.0], atol=1e-6, what="your point"),
        hint="set both partial derivatives of f(x, y) = x^3 - 3x + y^2 to zero; that gives two critical "
        "points. The Hessian is diag(6x, 2): which point has eigenvalues of both signs?",
        solution=np.array([-1.0, 0.0]),
        wrong=np.array([1.0, 0.0]),  # the other critical point: the minimum
        explanation="grad f = (3x^2 - 3, 2y) is zero at (1, 0) and (-1, 0). The Hessian there is diag(6, 2) "
        "(both positive: a minimum) and diag(-6, 2) (mixed signs: a saddle). So the saddle is (-1, 0): a "
        "maximum along x and a minimum along y.",
    )
)


# 6.5 ----------------------------------------------------------------------------------------------------
def adam_step(x, m, v, g, t, lr, beta1, beta2, eps):
    """Step t (counting from 1) of Adam: returns the new (x, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return x - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _adam_without_correction(x, m, v, g, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return x - lr * m / (np.sqrt(v) + eps), m, v  # no bias correction: too big a start


def _uses_an_optimiser_class(answer) -> bool:
    """True if the function names an optimiser class as a global (ours, the notebook's or torch's)."""
    names = getattr(getattr(answer, "__code__", None), "co_names", ())
    namespace = getattr(answer, "__globals__", {})
    for name in names:
        value = namespace.get(name)
        if isinstance(value, type) and issubclass(value, Optimizer | torch.optim.Optimizer):
            return True
    return False


def _check_adam_step(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    assert not _uses_an_optimiser_class(answer), (
        "your function uses an optimiser class: write the step itself"
    )
    rng = np.random.default_rng(0)
    for trial in range(10):
        n, steps = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        lr, eps = float(rng.uniform(0.001, 0.1)), float(10.0 ** rng.uniform(-8, -3))
        beta1, beta2 = float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))
        x0 = rng.normal(size=n)
        p = torch.tensor(x0, requires_grad=True)  # float64: torch.optim.Adam is the oracle
        oracle = TorchAdam([p], lr=lr, betas=(beta1, beta2), eps=eps)
        x, m, v = x0.copy(), np.zeros(n), np.zeros(n)
        for t in range(1, steps + 1):
            g = rng.normal(size=n) * 10.0 ** rng.uniform(-3, 2)
            p.grad = torch.from_numpy(g.copy())
            oracle.step()
            got = answer(x.copy(), m.copy(), v.copy(), g.copy(), t, lr, beta1, beta2, eps)
            assert isinstance(got, tuple) and len(got) == 3, "return the triple (x, m, v)"
            x, m, v = (np.asarray(a, dtype=float) for a in got)
            assert x.shape == (n,), f"x should keep its shape ({n},), got {x.shape}"
            assert np.allclose(x, p.detach().numpy(), rtol=1e-7, atol=1e-10), (
                f"trial {trial}, step t = {t}: your x is {np.round(x, 6)}, torch.optim.Adam's is "
                f"{np.round(p.detach().numpy(), 6)}"
            )


register(
    Exercise(
        key="6.5",
        title="build an Adam step",
        checker=by_hand(
            _check_adam_step,
            {
                "torch.optim.Adam": "write the two running averages and the corrected step with numpy.",
                "torch.optim.AdamW": "write the two running averages and the corrected step with numpy.",
                "helpers.optim.Adam": "write the two running averages and the corrected step with numpy.",
            },
        ),
        hint="four lines: update m with g, update v with g * g, divide each by (1 - beta^t) with its own "
        "beta, then step x by -lr * m_hat / (sqrt(v_hat) + eps). Return the raw m and v, not the corrected "
        "ones: the correction is recomputed from t at every step.",
        solution=adam_step,
        wrong=_adam_without_correction,
    )
)

# 6.6 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="6.6",
        title="predict: a four times bigger batch",
        checker=matches_value(2.0, atol=0.01, what="your factor"),
        hint="a mini-batch gradient is an average of B per-example gradients. How does the spread of an "
        "average fall with the number of things averaged (chapter 5)?",
        solution=2.0,
        wrong=4.0,  # the noise variance falls 4 times; its standard deviation only 2 times
        explanation="The mini-batch gradient is a sample mean of B independent per-example gradients, so "
        "its standard deviation is sigma / sqrt(B), chapter 5's standard error. Four times the batch halves "
        "the noise: it is the variance that falls four times. (Drawing without replacement from a finite "
        "data set shrinks it a little more, by sqrt((N - B) / (N - 1)).)",
    )
)
