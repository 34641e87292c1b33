"""Chapter 1's from-scratch linear algebra against numpy.linalg, on random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import linalg

SEEDS = range(20)


def random_shape(rng, low=1, high=7):
    return int(rng.integers(low, high)), int(rng.integers(low, high))


@pytest.mark.parametrize("seed", SEEDS)
def test_matvec_and_matmul_match_numpy(seed):
    rng = np.random.default_rng(seed)
    m, n = random_shape(rng)
    p = int(rng.integers(1, 7))
    A, B, x = rng.normal(size=(m, n)), rng.normal(size=(n, p)), rng.normal(size=n)
    np.testing.assert_allclose(linalg.matvec(A, x), A @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linalg.matmul(A, B), A @ B, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_solve_det_inverse_match_numpy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    A, b = rng.normal(size=(n, n)), rng.normal(size=n)
    B = rng.normal(size=(n, 3))
    np.testing.assert_allclose(linalg.solve(A, b), np.linalg.solve(A, b), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(linalg.solve(A, B), np.linalg.solve(A, B), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(linalg.det(A), np.linalg.det(A), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(linalg.inverse(A), np.linalg.inv(A), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_rank_matches_numpy_on_low_rank_matrices(seed):
    rng = np.random.default_rng(seed)
    m, n = random_shape(rng, 1, 9)
    r = int(rng.integers(0, min(m, n) + 1))
    A = rng.integers(-3, 4, size=(m, r)) @ rng.integers(-3, 4, size=(r, n))  # rank at most r
    assert linalg.rank(A) == np.linalg.matrix_rank(A)


@given(st.lists(st.integers(-5, 5), min_size=9, max_size=9))
@settings(max_examples=200, deadline=None)
def test_rank_and_det_agree_with_numpy_on_small_integer_matrices(entries):
    A = np.array(entries, dtype=float).reshape(3, 3)
    assert linalg.rank(A) == np.linalg.matrix_rank(A)
    assert linalg.det(A) == pytest.approx(np.linalg.det(A), abs=1e-9)


def test_row_echelon_is_reduced():
    R, pivots = linalg.row_echelon([[1, 2, 3], [2, 4, 6], [1, 0, 1]])
    assert pivots == [0, 1]
    np.testing.assert_allclose(R, [[1, 0, 1], [0, 1, 1], [0, 0, 0]], atol=1e-12)


def test_pivoting_rescues_a_tiny_pivot():
    A = np.array([[1e-20, 1.0], [1.0, 1.0]])
    b = np.array([1.0, 2.0])
    np.testing.assert_allclose(linalg.solve(A, b), np.linalg.solve(A, b), rtol=1e-12)


def test_singular_matrices_are_refused_clearly():
    singular = [[1.0, 2.0], [2.0, 4.0]]
    with pytest.raises(linalg.SingularMatrixError, match="singular"):
        linalg.solve(singular, [1.0, 2.0])
    with pytest.raises(linalg.SingularMatrixError, match="rank 1 < 2"):
        linalg.inverse(singular)
    assert linalg.det(singular) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: linalg.matmul(np.ones((2, 3)), np.ones((2, 2))), "inner sizes 3 and 2"),
        (lambda: linalg.matvec(np.ones((2, 3)), np.ones(2)), "x needs 3 entries"),
        (lambda: linalg.matvec(np.ones(3), np.ones(3)), "must be a matrix"),
        (lambda: linalg.solve(np.ones((2, 3)), np.ones(2)), "square"),
        (lambda: linalg.inverse(np.ones((2, 3))), "square"),
        (lambda: linalg.apply_to_points(np.eye(2), np.ones((4, 3))), "2 coordinates"),
    ],
)
def test_bad_shapes_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_apply_to_points_is_matvec_on_each_row():
    rng = np.random.default_rng(1)
    A, P = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
    expected = np.stack([linalg.matvec(A, p) for p in P])
    np.testing.assert_allclose(linalg.apply_to_points(A, P), expected)


@pytest.mark.parametrize("seed", range(10))
def test_null_space_spans_the_same_kernel_as_scipy(seed):
    from scipy.linalg import null_space as scipy_null_space  # the oracle, only needed here

    rng = np.random.default_rng(seed)
    m, n, r = int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(0, 5))
    A = rng.integers(-3, 4, size=(m, r)) @ rng.integers(-3, 4, size=(r, n)) * 1.0  # rank <= r
    N, oracle = linalg.null_space(A), scipy_null_space(A)
    assert N.shape == oracle.shape == (n, n - np.linalg.matrix_rank(A))  # rank-nullity
    assert np.allclose(A @ N, 0, atol=1e-9)
    if N.shape[1]:  # same span: projecting the oracle's basis onto ours changes nothing
        assert np.allclose(N @ np.linalg.lstsq(N, oracle, rcond=None)[0], oracle, atol=1e-9)


def test_null_space_of_an_invertible_matrix_is_empty_and_bad_input_is_refused():
    assert linalg.null_space(np.eye(3)).shape == (3, 0)
    with pytest.raises(ValueError, match="matrix"):
        linalg.null_space([1.0, 2.0])
