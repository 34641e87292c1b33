"""Chapter 3: eigenvalues, the SVD and low-rank approximation, built from the definitions.

Chapter 1 (`helpers.linalg`) gave the determinant; chapter 2 (`helpers.geometry`) gave lengths and
orthogonal bases. This module adds power iteration (the dominant eigenpair), the Jacobi eigen-solver for
every eigenpair of a symmetric matrix, the SVD computed from the eigen-decomposition of A^T A (the
textbook route; see `svd_via_eigen` for why libraries avoid it), and rank-k approximation with the
"energy" bookkeeping the image-compression slider shows, and the Cholesky factorisation S = L L^T of a
symmetric positive-definite matrix (chapter 5 samples correlated Gaussians with it).
tests/test_decompositions.py checks everything against numpy.linalg (eig, eigh, svd, cholesky) and
scikit-learn on random inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from helpers.geometry import norm
from helpers.linalg import as_matrix


class ConvergenceError(RuntimeError):
    """An iteration ran out of steps before reaching its tolerance."""


class NotPositiveDefiniteError(ValueError):
    """Cholesky met a pivot that is not positive: the symmetric matrix is not positive definite."""


class PowerIteration(NamedTuple):
    """The dominant eigenpair, how many steps it took, and the residual |A v - lambda v| after each step."""

    value: float
    vector: np.ndarray
    iterations: int
    residuals: list[float]


def _square(A, name: str = "A") -> np.ndarray:
    A = as_matrix(A, name)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be square to have eigenvalues, got {A.shape[0]}x{A.shape[1]}")
    return A


def power_iteration(A, tol: float = 1e-10, max_iter: int = 1000, seed: int = 0) -> PowerIteration:
    """The eigenpair of A with the largest |lambda|: multiply a vector by A again and again, rescaling.

    Each step v <- A v / |A v| shrinks the other eigen-directions by |lambda_2 / lambda_1|. It stops when
    the residual |A v - lambda v| (lambda = v . A v, the Rayleigh quotient) is below tol * max|A_ij|, and
    raises ConvergenceError after max_iter steps (e.g. when lambda and -lambda tie for the largest size).
    """
    A = as_matrix(A)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square to have eigenvalues, got {A.shape[0]}x{A.shape[1]}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    n = A.shape[0]
    v = np.random.default_rng(seed).normal(size=n)  # (n,) a random start has a part along every direction
    v /= norm(v)
    scale = max(float(np.abs(A).max(initial=0.0)), np.finfo(float).tiny)
    residuals = []
    for step in range(1, max_iter + 1):
        w = A @ v  # (n,)
        value = float(v @ w)  # the Rayleigh quotient; v has length 1
        residuals.append(norm(w - value * v))
        if residuals[-1] <= tol * scale:
            v = v if v[np.argmax(np.abs(v))] > 0 else -v  # the sign is arbitrary: fix it for the reader
            return PowerIteration(value, v, step, residuals)
        v = w / norm(w)
    raise ConvergenceError(
        f"power iteration did not converge in {max_iter} steps (residual {residuals[-1]:.1e} > "
        f"{tol * scale:.1e}): the largest eigenvalues may tie in size (lambda, -lambda) or be complex"
    )


def symmetric_eigen(S, tol: float = 1e-14, max_sweeps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """All eigenpairs of a symmetric S by Jacobi rotations: (eigenvalues, largest first; V with S V = V diag).

    Each rotation in the (p, q) plane zeroes S[p, q]; sweeping over every pair again and again drives the
    off-diagonal part to zero, leaving the eigenvalues on the diagonal and the product of the rotations,
    an orthogonal V, holding the eigenvectors. It stops when the off-diagonal part is below tol * |S|_F.
    """
    S = as_matrix(S, "S")
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"S must be square, got {S.shape[0]}x{S.shape[1]}")
    if not np.allclose(S, S.T, rtol=1e-12, atol=1e-12 * float(np.abs(S).max(initial=0.0))):
        raise ValueError("S is not symmetric; symmetric_eigen needs S == S.T (use power_iteration otherwise)")
    A = (S + S.T) / 2  # (n, n) exactly symmetric
    n = A.shape[0]
    V = np.eye(n)
    size = np.sqrt(np.sum(A * A))
    for _ in range(max_sweeps):
        off_diagonal = np.sqrt(2 * np.sum(np.triu(A, 1) ** 2))
        if off_diagonal <= tol * size:
            order = np.argsort(np.diag(A))[::-1]
            return np.diag(A)[order].copy(), V[:, order]
        for p in range(n - 1):
            for q in range(p + 1, n):
                if abs(A[p, q]) <= 1e-18 * size:  # already negligible: rotating would only add rounding
                    A[p, q] = A[q, p] = 0.0
                    continue
                theta = (A[q, q] - A[p, p]) / (2 * A[p, q])
                t = np.sign(theta) / (abs(theta) + np.hypot(theta, 1.0)) if theta != 0 else 1.0  # tan(angle)
                c = 1 / np.hypot(t, 1.0)
                s = t * c
                for M in (A, V):  # columns p and q of A and of V: M <- M J
                    Mp, Mq = M[:, p].copy(), M[:, q].copy()
                    M[:, p], M[:, q] = c * Mp - s * Mq, s * Mp + c * Mq
                Ap, Aq = A[p, :].copy(), A[q, :].copy()  # rows p and q: A <- J^T A
                A[p, :], A[q, :] = c * Ap - s * Aq, s * Ap + c * Aq
                A[p, q] = A[q, p] = 0.0  # zero by construction; store it exactly
    raise ConvergenceError(f"Jacobi did not converge in {max_sweeps} sweeps")


def cholesky(S) -> np.ndarray:
    """L, lower triangular with a positive diagonal, such that S = L L^T, for symmetric positive-definite S.

    Column by column: L_jj = sqrt(S_jj - sum_{k<j} L_jk^2) and L_ij = (S_ij - sum_{k<j} L_ik L_jk) / L_jj
    for i > j. The square root is of a positive number exactly when S is positive definite, so the
    factorisation is also the cheapest test of positive definiteness.
    """
    S = as_matrix(S, "S")
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"S must be square, got {S.shape[0]}x{S.shape[1]}")
    if not np.allclose(S, S.T, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(S).max(initial=0.0)))):
        raise ValueError("S must be symmetric (S = S^T) for a Cholesky factorisation")
    n = S.shape[0]
    L = np.zeros((n, n))
    for j in range(n):
        pivot = S[j, j] - L[j, :j] @ L[j, :j]
        if not pivot > 0:
            raise NotPositiveDefiniteError(
                f"pivot {j} is {pivot:.3g} <= 0: S is not positive definite (x^T S x <= 0 for some x != 0)"
            )
        L[j, j] = np.sqrt(pivot)
        L[j + 1 :, j] = (S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]  # the rest of column j
    return L


def _orthonormal_completion(U: np.ndarray, m: int) -> np.ndarray:
    """Extend the orthonormal columns U (m, r) to m orthonormal columns, adding basis vectors e_i."""
    columns = list(U.T)
    for e in np.eye(m):
        if len(columns) == m:
            break
        w = e.copy()
        for _ in range(2):  # subtract the parts along the columns so far, twice for safety
            for u in columns:
                w -= (u @ w) * u
        if norm(w) > 0.5:
            columns.append(w / norm(w))
    return np.array(columns).T


def svd_via_eigen(A) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A = U diag(s) V^T (thin: k = min(m, n) singular values, largest first) from the eigenvectors of A^T A.

    A^T A = V diag(s^2) V^T, so the eigenvectors of A^T A are the right singular vectors, its eigenvalues
    are the squared singular values, and u_i = A v_i / s_i. This is the textbook route, not the library's:
    forming A^T A squares the condition number, so singular values below about sqrt(eps) * s_max
    (1.5e-8 * s_max in float64) are lost. numpy.linalg.svd works on A itself (Householder
    bidiagonalisation, then the SVD of the bidiagonal matrix) and keeps them.
    """
    A = as_matrix(A)
    m, n = A.shape
    if m < n:  # work with the smaller Gram matrix: A^T = V S U^T
        U, s, Vt = svd_via_eigen(A.T)
        return Vt.T, s, U.T
    eigenvalues, V = symmetric_eigen(A.T @ A)  # (n,), (n, n)
    s = np.sqrt(np.clip(eigenvalues, 0.0, None))  # (n,) rounding can make a zero eigenvalue slightly negative
    # Below sqrt(n eps) s_max the eigenvalues of A^T A are rounding noise: A v_i is (numerically) zero
    # there, and dividing by s_i would amplify noise. Those u_i are any unit vectors orthogonal to the rest.
    kept = s > np.sqrt(n * np.finfo(float).eps) * s[0]
    U = A @ V[:, kept] / s[kept]  # (m, r) u_i = A v_i / s_i
    if not np.all(kept):
        U = _orthonormal_completion(U, m)[:, :n]  # (m, n)
    return U, s, V.T


def _check_rank(k, limit: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= limit:
        raise ValueError(f"k must be an integer from 0 to {limit}, got {k!r}")
    return int(k)


def low_rank_approximation(A, k: int, svd: tuple | None = None) -> np.ndarray:
    """The best rank-k approximation of A (Eckart-Young): the first k terms of sum_i s_i u_i v_i^T.

    `svd` is an optional precomputed (U, s, Vt) of A, e.g. from numpy.linalg.svd(A, full_matrices=False),
    so that a slider can try many k without recomputing it.
    """
    A = as_matrix(A)
    U, s, Vt = np.linalg.svd(A, full_matrices=False) if svd is None else svd
    k = _check_rank(k, len(s))
    return (U[:, :k] * s[:k]) @ Vt[:k]  # (m, k) (k, n) -> (m, n)


def energy_kept(s) -> np.ndarray:
    """Fraction of sum(s_i^2) = |A|_F^2 that the first k singular values hold, for k = 1 .. len(s)."""
    s = np.asarray(s, dtype=float)
    if s.ndim != 1 or s.size == 0 or np.any(s < 0):
        raise ValueError("s must be a non-empty vector of singular values (all >= 0)")
    energy = np.cumsum(s**2)
    if energy[-1] == 0:
        raise ValueError("all singular values are zero: the matrix has no energy to keep")
    return energy / energy[-1]


def rank_for_energy(s, fraction: float) -> int:
    """The smallest k whose first k singular values keep at least `fraction` of the energy."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    kept = energy_kept(s)
    return int(np.searchsorted(kept, fraction * (1 - 1e-12)) + 1)  # tolerance: fraction 1 is reachable


def storage_ratio(m: int, n: int, k: int) -> float:
    """Numbers stored for rank k (U_k: m k, s_k: k, V_k: n k) over the m n numbers of the full matrix."""
    return k * (m + n + 1) / (m * n)


def compression(svd: tuple, k: int) -> dict[str, object]:
    """What the rank-k compression slider shows: the image, the energy kept, the storage, the error."""
    U, s, Vt = svd
    k = _check_rank(k, len(s))
    approximation = (U[:, :k] * s[:k]) @ Vt[:k]  # (m, n)
    return {
        "approximation": approximation,
        "energy_kept": float(energy_kept(s)[k - 1]) if k > 0 else 0.0,
        "storage_ratio": storage_ratio(U.shape[0], Vt.shape[1], k),
        "squared_error": float(np.sum(s[k:] ** 2)),  # Eckart-Young: |A - A_k|_F^2
    }
