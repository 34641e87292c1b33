"""Chapter 1: vectors, matrices and linear maps, built from the definitions.

Every function here is the formula written as loops or row operations, so that a reader can match each
line to the maths. numpy.linalg does the same jobs far faster; tests/test_linalg.py checks that the two
agree on random inputs. Later chapters import these when they want the from-scratch version.
"""

from __future__ import annotations

import numpy as np


class SingularMatrixError(ValueError):
    """The matrix squashes space into fewer dimensions, so the system or inverse has no unique answer."""


def as_matrix(A, name: str = "A") -> np.ndarray:
    """A as a 2-D float array, or a clear error saying what it was instead."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a matrix (2-D), got an array of shape {A.shape}")
    return A


def as_vector(x, name: str = "x") -> np.ndarray:
    """x as a 1-D float array, or a clear error."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a vector (1-D), got an array of shape {x.shape}")
    return x


def _tolerance(A: np.ndarray) -> float:
    """Pivots smaller than this count as zero: rounding error grows with size and with the entries."""
    return 1e-10 * max(A.shape) * max(1.0, float(np.abs(A).max(initial=0.0)))


def matvec(A, x) -> np.ndarray:
    """y = A x, entry by entry: y_i = sum_j A_ij x_j."""
    A, x = as_matrix(A), as_vector(x)
    m, n = A.shape
    if x.shape[0] != n:
        raise ValueError(f"A is {m}x{n}, so x needs {n} entries, but it has {x.shape[0]}")
    y = np.zeros(m)
    for i in range(m):
        for j in range(n):
            y[i] += A[i, j] * x[j]
    return y


def matmul(A, B) -> np.ndarray:
    """C = A B, entry by entry: C_ik = sum_j A_ij B_jk (row i of A against column k of B)."""
    A, B = as_matrix(A, "A"), as_matrix(B, "B")
    m, n = A.shape
    n2, p = B.shape
    if n != n2:
        raise ValueError(f"A is {m}x{n} and B is {n2}x{p}: the inner sizes {n} and {n2} must match")
    C = np.zeros((m, p))
    for i in range(m):
        for k in range(p):
            for j in range(n):
                C[i, k] += A[i, j] * B[j, k]
    return C


def back_substitute(U, c) -> np.ndarray:
    """Solve U x = c for upper-triangular U, from the last row up: x_i = (c_i - sum_{j>i} U_ij x_j) / U_ii."""
    U, c = as_matrix(U, "U"), np.asarray(c, dtype=float)
    n = U.shape[0]
    if U.shape != (n, n) or c.shape[0] != n:
        raise ValueError(f"U must be square and c must have {U.shape[0]} rows; got {U.shape} and {c.shape}")
    x = np.zeros_like(c)
    for i in reversed(range(n)):
        if U[i, i] == 0:
            raise SingularMatrixError(f"U[{i},{i}] is zero, so x_{i} is not determined")
        x[i] = (c[i] - U[i, i + 1 :] @ x[i + 1 :]) / U[i, i]
    return x


def eliminate(A, b) -> tuple[np.ndarray, np.ndarray, int]:
    """Gaussian elimination with partial pivoting: turn A x = b into U x = c with U upper triangular.

    Returns (U, c, swaps). Partial pivoting picks the largest entry in the column as the pivot, which keeps
    the multipliers at most 1 in size and the rounding error small.
    """
    U = as_matrix(A).copy()
    n = U.shape[0]
    if U.shape != (n, n):
        raise ValueError(f"elimination needs a square matrix, got {U.shape[0]}x{U.shape[1]}")
    c = np.asarray(b, dtype=float).copy()
    if c.shape[0] != n:
        raise ValueError(f"A has {n} rows but b has {c.shape[0]}")
    tol, swaps = _tolerance(U), 0
    for k in range(n):
        p = k + int(np.argmax(np.abs(U[k:, k])))  # row of the largest pivot candidate
        if abs(U[p, k]) <= tol:
            raise SingularMatrixError(f"column {k} has no usable pivot: the matrix is singular (rank < {n})")
        if p != k:
            U[[k, p]], c[[k, p]] = U[[p, k]], c[[p, k]]
            swaps += 1
        for i in range(k + 1, n):
            factor = U[i, k] / U[k, k]
            U[i, k:] -= factor * U[k, k:]  # row_i <- row_i - factor * row_k
            c[i] -= factor * c[k]
    return U, c, swaps


def solve(A, b) -> np.ndarray:
    """x with A x = b, by elimination then back substitution. b may be a vector or a matrix of columns."""
    U, c, _ = eliminate(A, b)
    return back_substitute(U, c)


def det(A) -> float:
    """The determinant: the product of the pivots, with a minus sign for every row swap (0 if singular)."""
    A = as_matrix(A)
    try:
        U, _, swaps = eliminate(A, np.zeros(A.shape[0]))
    except SingularMatrixError:
        return 0.0
    return float((-1) ** swaps * np.prod(np.diag(U)))


def row_echelon(A) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form R of any m x n matrix, and the columns that hold its pivots."""
    R = as_matrix(A).copy()
    m, n = R.shape
    tol, pivots, row = _tolerance(R), [], 0
    for col in range(n):
        if row == m:
            break
        p = row + int(np.argmax(np.abs(R[row:, col])))
        if abs(R[p, col]) <= tol:
            R[row:, col] = 0.0  # nothing but rounding noise below: no pivot in this column
            continue
        R[[row, p]] = R[[p, row]]
        R[row] /= R[row, col]
        for i in range(m):
            if i != row:
                R[i] -= R[i, col] * R[row]
        pivots.append(col)
        row += 1
    return R, pivots


def rank(A) -> int:
    """The number of independent columns (or rows): the number of pivots."""
    return len(row_echelon(A)[1])


def null_space(A) -> np.ndarray:
    """A basis of the kernel {x : A x = 0}, one vector per column (n, n - rank), read off the echelon form.

    Every column without a pivot is free: set that free variable to 1 and the other free ones to 0, and
    the pivot rows of the reduced echelon form say what each pivot variable must be.
    """
    A = as_matrix(A)
    n = A.shape[1]
    R, pivots = row_echelon(A)
    free = [j for j in range(n) if j not in pivots]
    basis = np.zeros((n, len(free)))
    for k, j in enumerate(free):
        basis[j, k] = 1.0
        for row, p in enumerate(pivots):
            basis[p, k] = -R[row, j]  # pivot variable p = -(its row's entry in free column j)
    return basis


def inverse(A) -> np.ndarray:
    """A^{-1} by Gauss-Jordan: row-reduce [A | I] until the left half is I; the right half is then A^{-1}."""
    A = as_matrix(A)
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"only square matrices have inverses, got {A.shape[0]}x{A.shape[1]}")
    R, pivots = row_echelon(np.hstack([A, np.eye(n)]))
    if pivots[:n] != list(range(n)):
        raise SingularMatrixError(f"A has rank {sum(p < n for p in pivots)} < {n}, so it has no inverse")
    return R[:, n:]


def apply_to_points(A, P) -> np.ndarray:
    """Send each point (a row of P, shape (k, n)) through the linear map A (m x n): rows of P A^T, (k, m)."""
    A, P = as_matrix(A), np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[1] != A.shape[1]:
        raise ValueError(f"P must hold points of {A.shape[1]} coordinates as rows, got shape {P.shape}")
    return P @ A.T
