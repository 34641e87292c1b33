"""Exercises for chapter 6: optimisation."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.optim import Adam

# 6.1 ----------------------------------------------------------------------------------------------------
H_61 = np.array([[3.0, 1.0], [1.0, 3.0]])  # eigenvalues 2 and 4
register(
    Exercise(
        key="6.1",
        title="the largest stable learning rate",
        checker=matches_value(2.0 / np.linalg.eigvalsh(H_61).max(), atol=1e-6, what="your learning rate"),
        hint="gradient descent on f(x) = x^T H x / 2 multiplies the part of x along each eigenvector of H "
        "by (1 - lr * lambda). Find the eigenvalues of H (np.linalg.eigvalsh) and keep every "
        "|1 - lr * lambda| < 1.",
        solution=2.0 / 4.0,
        wrong=2.0 / 3.0,  # reads the curvature off the diagonal instead of the eigenvalues
        explanation="H has eigenvalues 2 and 4 (eigenvectors (1, -1) and (1, 1)). Along the steepest "
        "direction the factor 1 - 4 lr must stay above -1, so lr < 2 / 4 = 0.5. The diagonal entries (3) are "
        "the curvatures along the axes, but the valley's steepest direction is diagonal: its curvature is 4.",
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
G_63 = np.array([0.003, -40.0, 2.5])
LR_63 = 0.01


def _first_adam_move(g, lr):
    x = np.zeros_like(g)
    Adam([x], lr=lr).step([g])
    return x  # x started at 0, so this is the move


def _first_move_without_correction(g, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    m, v = (1 - beta1) * g, (1 - beta2) * g * g
    return -lr * m / (np.sqrt(v) + eps)


register(
    Exercise(
        key="6.3",
        title="Adam's first step",
        checker=matches_value(_first_adam_move(G_63, LR_63), atol=1e-6, what="your first move"),
        hint="after one step m = (1 - beta1) g and v = (1 - beta2) g^2; divide them by (1 - beta1^1) and "
        "(1 - beta2^1). What is m_hat / sqrt(v_hat)? Notice how little the size of g matters.",
        solution=-LR_63 * G_63 / (np.abs(G_63) + 1e-8),
        wrong=_first_move_without_correction(G_63, LR_63),
        explanation="Bias correction turns m and v into m_hat = g and v_hat = g^2, so the first move is "
        "-lr * g / (|g| + eps) = -lr * sign(g): [-0.01, 0.01, -0.01], whatever the gradient's size. Without "
        "the correction it would be -lr * 0.1 g / (0.0316 |g|), about 3.16 lr: too big a first step.",
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
        "(both positive: a minimum) and diag(-6, 2) (mixed signs: a saddle). So the saddle is (-1, 0): "
        "a maximum along x and a minimum along y.",
    )
)
