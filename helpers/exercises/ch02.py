"""Exercises for chapter 2: geometry - norms, inner products, projections."""

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.geometry import project, project_onto_line

# 2.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="2.1",
        title="three lengths of one vector",
        checker=matches_value([19.0, 13.0, 12.0], what="your [L1, L2, L-infinity]"),
        hint="L1 adds the sizes |v_i|, L2 is the square root of the sum of squares, L-infinity is the "
        "largest size. A minus sign does not make a length shorter.",
        solution=np.array([19.0, 13.0, 12.0]),
        wrong=np.array([11.0, 13.0, 12.0]),  # L1 without the absolute values: 3 - 4 + 12
        explanation="For v = (3, -4, 12): L1 = 3 + 4 + 12 = 19, L2 = sqrt(9 + 16 + 144) = sqrt(169) = 13, "
        "L-infinity = max(3, 4, 12) = 12. Always L-infinity <= L2 <= L1.",
    )
)

# 2.2 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="2.2",
        title="an angle in 3-D",
        checker=matches_value(60.0, atol=1e-6, what="your angle"),
        hint="cos(theta) = u . v / (|u| |v|). Both vectors have length sqrt(2). The answer is wanted in "
        "degrees: np.degrees converts.",
        solution=60.0,
        wrong=float(np.arccos(0.5)),  # the right angle, but in radians
        explanation="u . v = 1, |u| = |v| = sqrt(2), so cos(theta) = 1/2 and theta = 60 degrees "
        "(pi/3 = 1.047 radians). Picture a unit cube: u and v are the diagonals of two faces that meet at a "
        "corner, and with the third diagonal, v - u, they make an equilateral triangle.",
    )
)


# 2.3 ----------------------------------------------------------------------------------------------------
def _vector_and_direction(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    d = int(rng.integers(2, 6))
    return rng.normal(size=d), rng.normal(size=d) * rng.uniform(0.2, 5.0)  # a is rarely of length 1


def _project_onto_line_by_hand(x, a):
    c = (a @ x) / (a @ a)  # the c that makes x - c a orthogonal to a
    return c * a


def _assumes_unit_length(x, a):
    return (a @ x) * a  # right only when |a| = 1


register(
    Exercise(
        key="2.3",
        title="projection onto any line",
        checker=by_hand(
            matches_function(project_onto_line, _vector_and_direction),
            {
                "helpers.geometry.project_onto_line": "Find c with (x - c a) . a = 0 yourself.",
                "helpers.geometry.project": "Find c with (x - c a) . a = 0 yourself.",
                "helpers.geometry.projection_matrix": "Find c with (x - c a) . a = 0 yourself.",
            },
        ),
        hint="the projection is c a for the number c that makes x - c a orthogonal to a: (x - c a) . a = 0. "
        "Solve for c; a need not have length 1.",
        solution=_project_onto_line_by_hand,
        wrong=_assumes_unit_length,
    )
)

# 2.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="2.4",
        title="the best line through four points",
        checker=matches_value([1.5, 1.0], atol=1e-6, what="your [intercept, slope]"),
        hint="build A with a column of ones and a column of t, then solve the normal equations "
        "A^T A x = A^T y (least_squares from helpers.geometry does it, or np.linalg.lstsq).",
        solution=np.array([1.5, 1.0]),
        wrong=np.array([1.0, 1.0]),  # the line through the first and the last point
        explanation="A = [[1, 0], [1, 1], [1, 2], [1, 3]], y = (1, 3, 4, 4). A^T A = [[4, 6], [6, 14]] and "
        "A^T y = (12, 23); solving gives intercept 1.5 and slope 1. The line through the two end points, "
        "1 + t, has the same slope but sits too low: its residuals (0, 1, 1, 0) do not sum to zero, which "
        "the column of ones in A demands.",
    )
)


# 2.5 ----------------------------------------------------------------------------------------------------
def _vector_and_subspace(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    m = int(rng.integers(2, 8))
    n = int(rng.integers(1, m + 1))
    return rng.normal(size=m), rng.normal(size=(m, n)) * rng.uniform(0.2, 5.0)  # columns rarely orthonormal


def _project_onto_columns(b, A):
    x_hat = np.linalg.solve(A.T @ A, A.T @ b)  # the normal equations: A^T (b - A x) = 0
    return A @ x_hat


def _assumes_orthonormal_columns(b, A):
    return A @ (A.T @ b)  # right only when A^T A = I


register(
    Exercise(
        key="2.5",
        title="projection onto a subspace",
        checker=by_hand(
            matches_function(project, _vector_and_subspace),
            {
                "numpy.linalg.lstsq": "Write down the normal equations and solve them.",
                "numpy.linalg.pinv": "Write down the normal equations and solve them.",
                "numpy.linalg.qr": "Write down the normal equations and solve them.",
                "numpy.linalg.svd": "Write down the normal equations and solve them.",
                "scipy.linalg.lstsq": "Write down the normal equations and solve them.",
                "helpers.geometry.project": "That is the chapter's own answer; write yours.",
                "helpers.geometry.projection_matrix": "That is the chapter's own answer; write yours.",
                "helpers.geometry.least_squares": "Write down the normal equations and solve them.",
                "helpers.geometry.gram_schmidt": "Write down the normal equations and solve them.",
            },
        ),
        hint="the projection is p = A x_hat, where the residual b - A x_hat is orthogonal to every column: "
        "A^T (b - A x_hat) = 0. That is a small square system for x_hat; np.linalg.solve may solve it.",
        solution=_project_onto_columns,
        wrong=_assumes_orthonormal_columns,
        explanation="A^T A x_hat = A^T b has one equation per column of A; solve it and p = A x_hat. "
        "A (A^T b) is the shortcut that is right only for orthonormal columns, where A^T A = I: with "
        "any other basis of the same subspace it lands somewhere else.",
    )
)


# 2.6 ----------------------------------------------------------------------------------------------------
def _within_a_factor_of_two_of(expected: float):
    def checker(answer) -> None:
        assert np.ndim(answer) == 0, "answer with one number"
        value = float(answer)
        assert expected / 2 <= value <= expected * 2, (
            f"{value:g} is more than a factor 2 away from what the experiment finds"
        )

    return checker


register(
    Exercise(
        key="2.6",
        title="predict: how similar are two random directions?",
        checker=_within_a_factor_of_two_of(float(np.sqrt(2 / np.pi / 1000))),
        hint="cos = u . v / (|u| |v|). |u| and |v| are both close to sqrt(1000); u . v is a sum of 1000 "
        "products of independent numbers with mean 0 and variance 1, so its size is about sqrt(1000).",
        solution=0.025,
        wrong=0.5,  # the 2-D intuition: a random angle, anywhere between 0 and 180 degrees
        explanation="u . v is a sum of 1000 independent terms of mean 0 and variance 1: its typical size is "
        "sqrt(1000), about 32, while |u| |v| is about 1000. So |cos| is about 1 / sqrt(1000) = 0.03 (on "
        "average sqrt(2 / pi) / sqrt(1000) = 0.025). In high dimensions almost all pairs of random "
        "directions are almost orthogonal, which is why a cosine of 0.3 between two embeddings already "
        "means something.",
    )
)
