"""Exercises for chapter 2: geometry - norms, inner products, projections."""

import numpy as np

from helpers.exercises.core import Exercise, matches_function, matches_value, register
from helpers.geometry import project_onto_line

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


def _assumes_unit_length(x, a):
    return (a @ x) * a  # right only when |a| = 1


register(
    Exercise(
        key="2.3",
        title="projection onto any line",
        checker=matches_function(project_onto_line, _vector_and_direction),
        hint="the projection is c a for the number c that makes x - c a orthogonal to a: (x - c a) . a = 0. "
        "Solve for c; a need not have length 1.",
        solution=project_onto_line,
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
