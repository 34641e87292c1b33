"""Exercises for chapter 3: matrix decompositions."""

import numpy as np

from helpers.decompositions import low_rank_approximation, rank_for_energy
from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register

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


# 3.5 ----------------------------------------------------------------------------------------------------
_numpy_qr = np.linalg.qr  # the oracle, kept before the checker takes numpy's name away from the answer


def _tall_matrix(rng: np.random.Generator) -> tuple[np.ndarray]:
    n = int(rng.integers(1, 6))
    return (rng.normal(size=(n + int(rng.integers(0, 4)), n)),)


def _check_qr(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(0)
    for _ in range(20):
        (A,) = _tall_matrix(rng)
        got = answer(A.copy())
        assert isinstance(got, tuple) and len(got) == 2, "return the pair (Q, R)"
        Q, R = (np.asarray(part, dtype=float) for part in got)
        m, n = A.shape
        shown = np.array2string(A, precision=3)
        assert Q.shape == (m, n) and R.shape == (n, n), f"on a {m}x{n} A: Q should be {m}x{n}, R {n}x{n}"
        assert np.allclose(Q.T @ Q, np.eye(n), atol=1e-10), (
            f"on A = {shown}: the columns of Q are not orthonormal"
        )
        assert np.allclose(R, np.triu(R), atol=1e-12), f"on A = {shown}: R is not upper triangular"
        assert np.allclose(Q @ R, A, atol=1e-10), f"on A = {shown}: Q R is not A"
        Q_np, R_np = _numpy_qr(A)
        signs = np.sign(np.diag(R_np))  # numpy's columns may point the other way
        assert np.allclose(R, R_np * signs[:, None], atol=1e-10), (
            f"on A = {shown}: Q R = A, but R's diagonal should be positive (r_kk = |w_k|)"
        )


def _gram_schmidt_qr(A):
    m, n = A.shape
    Q, R = np.zeros((m, n)), np.zeros((n, n))
    for k in range(n):
        w = A[:, k].copy()  # what is left of column k
        for j in range(k):
            R[j, k] = Q[:, j] @ w  # its part along q_j ...
            w -= R[j, k] * Q[:, j]  # ... removed
        R[k, k] = np.sqrt(w @ w)
        Q[:, k] = w / R[k, k]
    return Q, R


def _only_removes_the_last_direction(A):
    m, n = A.shape
    Q, R = np.zeros((m, n)), np.zeros((n, n))
    for k in range(n):
        w = A[:, k].copy()
        if k > 0:  # subtracts the part along q_{k-1} only: w is not orthogonal to q_0 .. q_{k-2}
            R[k - 1, k] = Q[:, k - 1] @ w
            w -= R[k - 1, k] * Q[:, k - 1]
        R[k, k] = np.sqrt(w @ w)
        Q[:, k] = w / R[k, k]
    return Q, R


_FACTORISERS = {
    "numpy.linalg.qr": "Subtract each column's parts along the q's found so far, then scale to length 1.",
    "numpy.linalg.svd": "Subtract each column's parts along the q's found so far, then scale to length 1.",
    "numpy.linalg.eigh": "Subtract each column's parts along the q's found so far, then scale to length 1.",
    "numpy.linalg.cholesky": "R = cholesky(A^T A)^T is a clever route, but not this exercise.",
    "scipy.linalg.qr": "Subtract each column's parts along the q's found so far, then scale to length 1.",
    "helpers.geometry.gram_schmidt": "That is chapter 2's answer; write yours.",
}
register(
    Exercise(
        key="3.5",
        title="QR by Gram-Schmidt",
        checker=by_hand(_check_qr, _FACTORISERS),
        hint="column by column: start from w = A[:, k]; for each earlier q_j set R[j, k] = q_j . w and "
        "subtract R[j, k] q_j from w; then R[k, k] = |w| and q_k = w / |w|.",
        solution=_gram_schmidt_qr,
        wrong=_only_removes_the_last_direction,
        explanation="Each column keeps only what is new in it, the part orthogonal to the columns before; "
        "the parts removed are the entries of R above the diagonal, and the length of what is left is the "
        "diagonal entry. Measuring each part against what is left so far (q_j . w, not q_j . a_k) is "
        "modified Gram-Schmidt, the more accurate of the two in floating point.",
    )
)

# 3.6 ----------------------------------------------------------------------------------------------------
_SHEAR_100 = np.array([[1.0, 100.0], [0.0, 1.0]])
register(
    Exercise(
        key="3.6",
        title="predict: the stretch of a matrix whose eigenvalues are 1",
        checker=matches_value(
            np.linalg.svd(_SHEAR_100, compute_uv=False)[0], atol=0.5, what="your prediction"
        ),
        hint="eigenvalues describe directions the map keeps; they say nothing about how far it can stretch "
        "other directions. What is |M x| for x = (0, 1)?",
        solution=100.01,
        wrong=1.0,  # the eigenvalues: the stretch along the only direction the shear keeps
        explanation="M (0, 1) = (100, 1), of length about 100, so some unit vector is stretched at least "
        "100-fold: sigma_1 = 100.01. The eigenvalues are both 1 because the only direction M keeps is the "
        "x-axis, which it leaves alone. For a matrix that is not symmetric, eigenvalues and stretches can "
        "be very different things; the singular values are the stretches.",
    )
)
