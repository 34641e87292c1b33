"""Exercises for chapter 1: vectors, matrices and linear maps."""

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.linalg import back_substitute, eliminate

# 1.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="1.1",
        title="a map known by two arrows",
        checker=matches_value([[2.0, 1.0], [2.0, -1.0]], what="your matrix"),
        hint="the columns of the matrix are where e1 = (1, 0) and e2 = (0, 1) land, and you were told where "
        "(1, 1) and (1, -1) land instead. Write e1 and e2 as mixes of those two, then use linearity: "
        "e1 = ((1, 1) + (1, -1)) / 2.",
        solution=np.array([[2.0, 1.0], [2.0, -1.0]]),
        wrong=np.array([[3.0, 1.0], [1.0, 3.0]]),  # the two images used as columns, as if they were e1, e2
        explanation="e1 = ((1, 1) + (1, -1)) / 2, so by linearity A e1 = ((3, 1) + (1, 3)) / 2 = (2, 2). "
        "e2 = ((1, 1) - (1, -1)) / 2, so A e2 = ((3, 1) - (1, 3)) / 2 = (1, -1). Those are the columns: "
        "A = [[2, 1], [2, -1]]. Check: A (1, 1) = (3, 1) and A (1, -1) = (1, 3).",
    )
)


# 1.2 ----------------------------------------------------------------------------------------------------
def _triangular_system(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(1, 6))
    U = np.triu(rng.normal(size=(n, n)))
    U[np.diag_indices(n)] = rng.choice([-1, 1], n) * rng.uniform(0.5, 2.0, n)  # pivots away from zero
    return U, rng.normal(size=n)


def _back_substitute_by_hand(U, c):
    x = np.zeros(len(c))
    for i in reversed(range(len(c))):  # the last row has one unknown; each row up adds one more
        x[i] = (c[i] - U[i, i + 1 :] @ x[i + 1 :]) / U[i, i]
    return x


def _forgets_the_pivot(U, c):
    x = np.zeros(len(c))
    for i in reversed(range(len(c))):
        x[i] = c[i] - U[i, i + 1 :] @ x[i + 1 :]  # no division by U[i, i]
    return x


_SOLVERS = {
    "numpy.linalg.solve": "Go up from the last row, one unknown per row.",
    "numpy.linalg.inv": "Inverting U is more work than the back substitution it would save.",
    "numpy.linalg.lstsq": "Go up from the last row, one unknown per row.",
    "numpy.linalg.pinv": "Go up from the last row, one unknown per row.",
    "scipy.linalg.solve_triangular": "That is the answer, not the exercise.",
    "helpers.linalg.back_substitute": "That is the chapter's own answer; write yours.",
    "helpers.linalg.solve": "That is the chapter's own answer; write yours.",
    "helpers.linalg.inverse": "Go up from the last row, one unknown per row.",
}
register(
    Exercise(
        key="1.2",
        title="back substitution",
        checker=by_hand(matches_function(back_substitute, _triangular_system), _SOLVERS),
        hint="the last row has one unknown: x[n-1] = c[n-1] / U[n-1, n-1]. Go up one row at a time; each row "
        "has one new unknown once the ones below it are known.",
        solution=_back_substitute_by_hand,
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
RANK_EXERCISE = np.array([[1.0, 2.0, 0.0, 1.0], [2.0, 4.0, 1.0, 3.0], [3.0, 6.0, 1.0, 4.0]])
register(
    Exercise(
        key="1.4",
        title="rank and nullity by hand",
        checker=matches_value([2, 2], what="your [rank, nullity]"),
        hint="eliminate: subtract 2 x row 1 from row 2 and 3 x row 1 from row 3, then compare the two rows "
        "that are left. The nullity is the number of columns minus the rank (rank-nullity).",
        solution=np.array([2, 2]),
        wrong=np.array([3, 1]),  # one pivot per row, as if no row depended on the others
        explanation="Row 2 - 2 row 1 = (0, 0, 1, 1) and row 3 - 3 row 1 = (0, 0, 1, 1): the same row, so "
        "after one more subtraction only two non-zero rows are left, with pivots in columns 1 and 3. "
        "Rank 2. Columns 2 and 4 have no pivot, so they are free: x = (-2, 1, 0, 0) and (-1, 0, -1, 1) "
        "span the kernel, and 2 + 2 = 4 columns, as rank-nullity demands. (Row 3 is row 1 + row 2.)",
    )
)


# 1.5 ----------------------------------------------------------------------------------------------------
def _forward_eliminate(A, b):
    """Partial pivoting: in column k, swap up the row with the largest |entry|, then clear below it."""
    U, c = np.array(A, dtype=float), np.array(b, dtype=float)
    n = len(c)
    for k in range(n):
        p = k + int(np.argmax(np.abs(U[k:, k])))  # the row with the largest pivot candidate
        U[[k, p]], c[[k, p]] = U[[p, k]], c[[p, k]]
        for i in range(k + 1, n):
            factor = U[i, k] / U[k, k]
            U[i, k:] -= factor * U[k, k:]  # row_i <- row_i - factor * row_k
            c[i] -= factor * c[k]
    return U, c


def _eliminates_without_pivoting(A, b):
    U, c = np.array(A, dtype=float), np.array(b, dtype=float)
    for k in range(len(c)):
        for i in range(k + 1, len(c)):
            factor = U[i, k] / U[k, k]
            U[i, k:] -= factor * U[k, k:]
            c[i] -= factor * c[k]
    return U, c


def _elimination_systems() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    systems = [
        (np.array([[1e-20, 1.0], [1.0, 1.0]]), np.array([1.0, 2.0])),  # a tiny pivot (section 1.6)
        (
            np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [2.0, 0.0, 3.0]]),
            np.array([1.0, 2.0, 3.0]),
        ),  # a zero one
    ]
    for n in range(1, 7):
        systems.append((rng.normal(size=(n, n)), rng.normal(size=n)))
    return systems


def _check_forward_elimination(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for A, b in _elimination_systems():
        U_want, c_want, _ = eliminate(A, b)
        got = answer(A.copy(), b.copy())
        assert isinstance(got, tuple) and len(got) == 2, "return the pair (U, c)"
        U, c = (np.asarray(part, dtype=float) for part in got)
        shown = np.array2string(A, precision=3)
        assert U.shape == A.shape and c.shape == b.shape, f"on A = {shown}: U and c have the wrong shapes"
        assert np.allclose(np.tril(U, -1), 0, atol=1e-12), f"on A = {shown}: U is not upper triangular"
        x_true = back_substitute(U_want, c_want)
        assert np.allclose(back_substitute(U, c), x_true, rtol=1e-8, atol=1e-8), (
            f"on A = {shown}, b = {b}: U x = c does not have the solution of A x = b"
            + (" - a tiny pivot wrecked it: did you pivot?" if abs(A[0, 0]) < 1e-10 else "")
        )
        assert np.allclose(U, U_want, atol=1e-9) and np.allclose(c, c_want, atol=1e-9), (
            f"on A = {shown}: right solution, but not the U of partial pivoting (largest |entry| as pivot)"
        )


_ELIMINATORS = {
    "numpy.linalg.solve": "Clear each column below its pivot with row operations.",
    "numpy.linalg.inv": "Clear each column below its pivot with row operations.",
    "numpy.linalg.qr": "QR is another factorisation; this one is elimination.",
    "scipy.linalg.lu": "LU is what you are building.",
    "scipy.linalg.lu_factor": "LU is what you are building.",
    "helpers.linalg.eliminate": "That is the chapter's own answer; write yours.",
    "helpers.linalg.row_echelon": "Clear each column below its pivot with row operations.",
}
register(
    Exercise(
        key="1.5",
        title="forward elimination with partial pivoting",
        checker=by_hand(_check_forward_elimination, _ELIMINATORS),
        hint="for k = 0, 1, ...: find the row p >= k with the largest |U[p, k]| and swap rows k and p of U "
        "AND of c; then for every row i below k subtract (U[i, k] / U[k, k]) times row k, from U and from c.",
        solution=_forward_eliminate,
        wrong=_eliminates_without_pivoting,
    )
)

# 1.6 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="1.6",
        title="predict: elimination with a tiny pivot",
        checker=matches_value(0.0, atol=1e-6, what="your prediction of x1"),
        hint="with 1e-20 as the pivot the multiplier is 1e20, and 1 - 1e20 rounds to -1e20 in float64. "
        "Follow x2, then put it into the first row: 1e-20 x1 + x2 = 1.",
        solution=0.0,
        wrong=1.0,  # the true x1: what elimination would give with exact arithmetic
        explanation="The multiplier is 1e20, so row 2 becomes (0, 1 - 1e20 | 2 - 1e20), which float64 "
        "rounds to (0, -1e20 | -1e20): x2 = 1, almost right. Row 1 then says 1e-20 x1 = 1 - x2 = 0, so "
        "x1 = 0 instead of 1. Every digit of x1 is lost, from one division by a tiny pivot.",
    )
)
