"""Chapter 2: lengths, angles, projections and Gram-Schmidt, built from the definitions.

Chapter 1's `helpers.linalg` moves vectors around; this module measures them. It adds norms (lengths),
angles and cosine similarity, orthogonal projection onto a line or onto the column space of a matrix,
Gram-Schmidt (classical and modified) giving A = QR, and least squares as a projection. Solving the
small systems reuses chapter 1's `solve` and `back_substitute`. tests/test_geometry.py checks every
function against numpy.linalg (norm, qr, lstsq) and scikit-learn on random inputs.
"""

from __future__ import annotations

import numpy as np

from helpers.linalg import SingularMatrixError, as_matrix, as_vector, back_substitute, solve

#: Gram-Schmidt stops when what is left of a column is smaller than this fraction of the column.
DEPENDENCE_TOLERANCE = 1e-14


class LinearDependenceError(ValueError):
    """A column is (numerically) a combination of the others, so it adds no new direction."""


def norm(x, p: float = 2) -> float:
    """The length of x in the p-norm: (sum_i |x_i|^p)^(1/p) for p >= 1; p = inf gives max_i |x_i|."""
    x = as_vector(x)
    if p == np.inf:
        return float(np.max(np.abs(x), initial=0.0))
    if not p >= 1:
        raise ValueError(f"the p-norm needs p >= 1 (or np.inf), got p = {p}; below 1 it is not a norm")
    if p == 2:
        return float(np.sqrt(np.sum(x * x)))
    return float(np.sum(np.abs(x) ** p) ** (1 / p))


def angle(u, v) -> float:
    """The angle between u and v in radians, from u . v = |u| |v| cos(theta)."""
    return float(np.arccos(np.clip(cosine_similarity(u, v), -1.0, 1.0)))


def cosine_similarity(a, b):
    """cos of the angle between a and b: a . b / (|a| |b|), from -1 (opposite) through 0 to 1 (same way).

    Two vectors give a number. Two matrices whose rows are vectors, (n, d) and (m, d), give the (n, m)
    matrix of every row of `a` against every row of `b`, as an embedding search does.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != b.ndim or a.ndim not in (1, 2):
        raise ValueError(
            f"give two vectors or two matrices of row vectors, got shapes {a.shape} and {b.shape}"
        )
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"the vectors have {a.shape[-1]} and {b.shape[-1]} entries: they must match")
    rows_a, rows_b = np.atleast_2d(a), np.atleast_2d(b)  # (n, d), (m, d)
    lengths_a = np.sqrt(np.sum(rows_a * rows_a, axis=1))  # (n,)
    lengths_b = np.sqrt(np.sum(rows_b * rows_b, axis=1))  # (m,)
    if np.any(lengths_a == 0) or np.any(lengths_b == 0):
        raise ValueError("a zero vector has no direction, so its cosine similarity is undefined")
    similarity = (rows_a @ rows_b.T) / np.outer(lengths_a, lengths_b)  # (n, m)
    return float(similarity[0, 0]) if a.ndim == 1 else similarity


def project_onto_line(x, a) -> np.ndarray:
    """The point on the line through 0 along a that is closest to x: (a . x / a . a) a."""
    x, a = as_vector(x), as_vector(a, "a")
    if x.shape != a.shape:
        raise ValueError(f"x has {x.shape[0]} entries but the direction a has {a.shape[0]}")
    if not np.any(a):
        raise ValueError("the direction a is the zero vector, which spans no line")
    return (a @ x) / (a @ a) * a


def _normal_equations_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(A^T A)^{-1} A^T B by chapter 1's `solve`, with an error that says which assumption failed."""
    try:
        return solve(A.T @ A, A.T @ B)
    except SingularMatrixError as error:
        raise LinearDependenceError(
            f"A^T A is singular to working precision: the columns of A ({A.shape[0]}x{A.shape[1]}) are "
            "dependent, or so nearly dependent that squaring the condition number in A^T A lost them "
            "(least_squares(A, b, method='qr') avoids forming A^T A)"
        ) from error


def project(x, onto) -> np.ndarray:
    """Orthogonal projection of x onto a line (`onto` a vector) or a column space (`onto` a matrix A).

    Onto the column space: P x with P = A (A^T A)^{-1} A^T; x may be a vector (m,) or columns (m, k).
    """
    onto = np.asarray(onto, dtype=float)
    if onto.ndim == 1:
        return project_onto_line(x, onto)
    A, x = as_matrix(onto), np.asarray(x, dtype=float)
    if x.ndim not in (1, 2) or x.shape[0] != A.shape[0]:
        raise ValueError(f"A has {A.shape[0]} rows, so x must have {A.shape[0]} rows, got shape {x.shape}")
    return A @ _normal_equations_solve(A, x)


def projection_matrix(A) -> np.ndarray:
    """P = A (A^T A)^{-1} A^T, the matrix that projects onto the column space of A (a vector: a line)."""
    A = np.asarray(A, dtype=float)
    A = A[:, None] if A.ndim == 1 else as_matrix(A)
    return A @ _normal_equations_solve(A, np.eye(A.shape[0]))  # P x = A (A^T A)^{-1} A^T x for every x


def gram_schmidt(A, modified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A = Q R: orthonormal columns Q (m, n) and upper-triangular R (n, n) with a positive diagonal.

    Column k of Q is column k of A minus its parts along q_0 .. q_{k-1}, scaled to length 1, and
    R[j, k] = q_j . a_k records the parts. Classical (modified=False) measures every part against the
    original column; modified measures each part against what is left after the earlier subtractions,
    which keeps Q far closer to orthogonal when the columns are nearly dependent.
    """
    A = as_matrix(A)
    m, n = A.shape
    if n > m:
        raise ValueError(f"A has {n} columns in R^{m}: at most {m} columns can be independent")
    Q, R = np.zeros((m, n)), np.zeros((n, n))
    for k in range(n):
        w = A[:, k].copy()  # (m,) what is left of column k
        for j in range(k):
            R[j, k] = Q[:, j] @ (w if modified else A[:, k])
            w -= R[j, k] * Q[:, j]
        R[k, k] = norm(w)
        if R[k, k] <= DEPENDENCE_TOLERANCE * norm(A[:, k]):
            what = "zero" if k == 0 else "a combination of the columns before it"
            raise LinearDependenceError(f"column {k} of A is (numerically) {what}")
        Q[:, k] = w / R[k, k]
    return Q, R


def least_squares(A, b, method: str = "normal") -> np.ndarray:
    """The x that makes |A x - b| smallest, so that A x is the projection of b onto the columns of A.

    method "normal": solve the normal equations A^T A x = A^T b.
    method "qr":     A = QR, then R x = Q^T b by back substitution, with Q^T b taken the modified
                     Gram-Schmidt way (each part subtracted from what is left of b). It never forms
                     A^T A, so it keeps the accuracy that the normal equations lose when the columns of
                     A are nearly dependent.
    """
    A, b = as_matrix(A), np.asarray(b, dtype=float)
    m, n = A.shape
    if b.ndim not in (1, 2) or b.shape[0] != m:
        raise ValueError(f"A has {m} rows, so b must have {m} rows, got shape {b.shape}")
    if n > m:
        raise ValueError(f"A is {m}x{n}: more unknowns than equations, so the best x is not unique")
    if method == "normal":
        return _normal_equations_solve(A, b)
    if method == "qr":
        Q, R = gram_schmidt(A)
        z, left = np.zeros((n, *b.shape[1:])), b.copy()  # z = Q^T b; `left` is what is left of b
        for j in range(n):
            z[j] = Q[:, j] @ left
            left = left - np.multiply.outer(Q[:, j], z[j])
        return back_substitute(R, z)
    raise ValueError(f"method must be 'normal' or 'qr', got {method!r}")


def line_projection(vector_angle: float, line_angle: float, length: float = 2.0) -> dict[str, np.ndarray]:
    """The numbers the projection slider draws: a vector, a line through 0, the projection and residual.

    Angles are in degrees from the x axis. The residual x - p is at a right angle to the line.
    """
    x = length * np.array([np.cos(np.radians(vector_angle)), np.sin(np.radians(vector_angle))])
    direction = np.array([np.cos(np.radians(line_angle)), np.sin(np.radians(line_angle))])
    p = project_onto_line(x, direction)
    return {
        "x": x,
        "direction": direction,
        "projection": p,
        "residual": x - p,
        "coefficient": np.float64(direction @ x),  # signed length of p along the line
        "cos_angle": np.float64(cosine_similarity(x, direction)),
    }
