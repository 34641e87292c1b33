"""Exercises for chapter 1: vectors, matrices and linear maps."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.linalg import back_substitute

# 1.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="1.1",
        title="a quarter turn",
        checker=matches_value([[0.0, -1.0], [1.0, 0.0]], what="your matrix"),
        hint="the columns of a matrix are where e1 = (1, 0) and e2 = (0, 1) land. Where does a quarter turn "
        "anticlockwise send each of them?",
        solution=np.array([[0.0, -1.0], [1.0, 0.0]]),
        wrong=np.array([[0.0, 1.0], [-1.0, 0.0]]),  # a quarter turn clockwise
        explanation="A quarter turn anticlockwise sends e1 = (1, 0) to (0, 1) and e2 = (0, 1) to (-1, 0). "
        "Those images are the two columns, so the matrix is [[0, -1], [1, 0]].",
    )
)


# 1.2 ----------------------------------------------------------------------------------------------------
def _triangular_system(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(1, 6))
    U = np.triu(rng.normal(size=(n, n)))
    U[np.diag_indices(n)] = rng.choice([-1, 1], n) * rng.uniform(0.5, 2.0, n)  # pivots away from zero
    return U, rng.normal(size=n)


def _forgets_the_pivot(U, c):
    x = np.zeros(len(c))
    for i in reversed(range(len(c))):
        x[i] = c[i] - U[i, i + 1 :] @ x[i + 1 :]  # no division by U[i, i]
    return x


register(
    Exercise(
        key="1.2",
        title="back substitution",
        checker=matches_function(back_substitute, _triangular_system),
        hint="the last row has one unknown: x[n-1] = c[n-1] / U[n-1, n-1]. Go up one row at a time; each row "
        "has one new unknown once the ones below it are known.",
        solution=back_substitute,
        wrong=_forgets_the_pivot,
    )
)

# 1.3 ----------------------------------------------------------------------------------------------------
SHEAR = np.array([[1.0, 1.0], [0.0, 1.0]])
STRETCH = np.array([[2.0, 0.0], [0.0, 0.5]])
register(
    Exercise(
        key="1.3",
        title="compose, then undo",
        checker=matches_value(np.linalg.inv(STRETCH @ SHEAR), atol=1e-6, what="your matrix"),
        hint="'first SHEAR, then STRETCH' is the product STRETCH @ SHEAR. To undo it, undo the last step "
        "first. Check your answer by multiplying it with STRETCH @ SHEAR.",
        solution=np.linalg.inv(SHEAR) @ np.linalg.inv(STRETCH),
        wrong=np.linalg.inv(STRETCH) @ np.linalg.inv(SHEAR),  # undoes the steps in the wrong order
        explanation="Applying SHEAR then STRETCH is M = STRETCH @ SHEAR. Its inverse undoes STRETCH first, "
        "then SHEAR: M^-1 = SHEAR^-1 @ STRETCH^-1 = [[0.5, -2], [0, 2]]. Socks and shoes: you take off the "
        "shoes before the socks.",
    )
)

# 1.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="1.4",
        title="rank by hand",
        checker=matches_value(2, what="the rank"),
        hint="row 2 of M is a multiple of row 1. Subtract it and see how many independent rows are left.",
        solution=2,
        wrong=3,
        explanation="Row 2 is twice row 1, so it adds no new direction; row 3, (1, 0, 1), is not a multiple "
        "of row 1. Two independent rows: rank 2. Column view: column 3 = column 1 + column 2.",
    )
)
