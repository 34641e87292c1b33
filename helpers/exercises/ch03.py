"""Exercises for chapter 3: matrix decompositions."""

import numpy as np

from helpers.decompositions import low_rank_approximation, rank_for_energy
from helpers.exercises.core import Exercise, matches_function, matches_value, register

# 3.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="3.1",
        title="double every edge",
        checker=matches_value(40.0, what="det(2A)"),
        hint="2A = (2I) A, and the determinant of a product is the product of the determinants. What does 2I "
        "do to the volume of a unit cube in 3-D?",
        solution=40.0,
        wrong=10.0,  # as if the determinant scaled like the matrix, by 2
        explanation="2I doubles each of the three edges of the unit cube, so it multiplies volumes by "
        "2 * 2 * 2 = 8: det(2A) = det(2I) det(A) = 8 * 5 = 40. In n dimensions det(cA) = c^n det(A).",
    )
)

# 3.2 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="3.2",
        title="eigenvalues by hand",
        checker=matches_value([3.0, 1.0], atol=1e-6, what="your eigenvalues (largest first)"),
        hint="try the vectors (1, 1) and (1, -1): what does the matrix do to each? Or solve "
        "det(A - lambda I) = (2 - lambda)^2 - 1 = 0.",
        solution=np.array([3.0, 1.0]),
        wrong=np.array([2.0, 2.0]),  # the diagonal: right only for a diagonal (or triangular) matrix
        explanation="A (1, 1) = (3, 3) = 3 (1, 1) and A (1, -1) = (1, -1): the eigenvalues are 3 and 1, with "
        "orthogonal eigenvectors, as the spectral theorem promises for a symmetric matrix. Their sum, 4, is "
        "the trace (2 + 2) and their product, 3, is the determinant (4 - 1).",
    )
)


# 3.3 ----------------------------------------------------------------------------------------------------
def _a_matrix(rng: np.random.Generator) -> tuple[np.ndarray]:
    m, n = (int(k) for k in rng.integers(2, 7, size=2))
    return (rng.normal(size=(m, n)),)


def _best_rank_one(A):
    return low_rank_approximation(A, 1)


def _first_column_of_vt(A):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return s[0] * np.outer(U[:, 0], Vt[:, 0])  # Vt holds v_i as rows, not columns


register(
    Exercise(
        key="3.3",
        title="the best rank-one matrix",
        checker=matches_function(_best_rank_one, _a_matrix),
        hint="U, s, Vt = np.linalg.svd(A). The answer is s_1 u_1 v_1^T. Careful: numpy returns V transposed, "
        "so v_1 is the first ROW of Vt.",
        solution=_best_rank_one,
        wrong=_first_column_of_vt,
        explanation="s[0] * np.outer(U[:, 0], Vt[0]) is the first term of the SVD sum; by Eckart-Young no "
        "other rank-one matrix is closer to A in the Frobenius norm.",
    )
)


# 3.4 ----------------------------------------------------------------------------------------------------
def _spectrum_and_fraction(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    s = np.sort(rng.exponential(size=int(rng.integers(3, 30))))[::-1]  # singular values, largest first
    return s, float(rng.uniform(0.5, 0.99))


def _counts_singular_values_not_squares(s, fraction):
    return int(np.searchsorted(np.cumsum(s) / np.sum(s), fraction) + 1)


register(
    Exercise(
        key="3.4",
        title="how many singular values keep the energy",
        checker=matches_function(rank_for_energy, _spectrum_and_fraction),
        hint="energy is the sum of the SQUARED singular values (it is |A|_F^2). Find the smallest k with "
        "s_1^2 + ... + s_k^2 >= fraction * (s_1^2 + ... + s_n^2); np.cumsum helps.",
        solution=rank_for_energy,
        wrong=_counts_singular_values_not_squares,
    )
)
