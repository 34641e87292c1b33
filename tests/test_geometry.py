"""Chapter 2's geometry against numpy.linalg (norm, qr, lstsq) and scikit-learn, on random inputs."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics.pairwise import cosine_similarity as sklearn_cosine

from helpers import geometry, slider_view

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(20)


def random_tall(rng, low=1, high=8):
    """A random m x n matrix with m >= n (independent columns, almost surely)."""
    n = int(rng.integers(low, high))
    m = n + int(rng.integers(0, 5))
    return rng.normal(size=(m, n))


@pytest.mark.parametrize("seed", SEEDS)
def test_norms_match_numpy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=int(rng.integers(1, 30))) * 10.0 ** rng.integers(-3, 4)
    for p in [1, 2, np.inf, 3, 1.5]:
        assert geometry.norm(x, p) == pytest.approx(np.linalg.norm(x, ord=p), rel=1e-12)


finite = st.integers(-(10**6), 10**6).map(lambda i: i / 1000)  # no underflow in x * x


@given(arrays(np.float64, st.integers(1, 10), elements=finite), arrays(np.float64, 1, elements=finite))
@settings(max_examples=200, deadline=None)
def test_norm_axioms_and_their_order(x, c):
    c = float(c[0])
    l1, l2, linf = (geometry.norm(x, p) for p in (1, 2, np.inf))
    assert linf <= l2 * (1 + 1e-12) and l2 <= l1 * (1 + 1e-12)  # |x|_inf <= |x|_2 <= |x|_1
    assert l1 <= x.size * linf * (1 + 1e-12)
    assert geometry.norm(c * x) == pytest.approx(abs(c) * l2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_cosine_similarity_and_angle_match_sklearn_and_numpy(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 20))
    U, V = rng.normal(size=(5, d)), rng.normal(size=(7, d))
    np.testing.assert_allclose(geometry.cosine_similarity(U, V), sklearn_cosine(U, V), atol=1e-12)
    u, v = U[0], V[0]
    cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    assert geometry.cosine_similarity(u, v) == pytest.approx(cos, abs=1e-12)
    assert geometry.angle(u, v) == pytest.approx(np.arccos(np.clip(cos, -1, 1)), abs=1e-7)
    assert geometry.cosine_similarity(u, 3.5 * u) == pytest.approx(1.0)  # length does not matter
    assert geometry.angle(u, -u) == pytest.approx(np.pi)


@pytest.mark.parametrize("seed", SEEDS)
def test_projection_matches_least_squares_fit_of_numpy(seed):
    rng = np.random.default_rng(seed)
    A = random_tall(rng)
    m, n = A.shape
    x = rng.normal(size=m)
    X = rng.normal(size=(m, 3))
    oracle = A @ np.linalg.lstsq(A, x, rcond=None)[0]
    np.testing.assert_allclose(geometry.project(x, A), oracle, atol=1e-9)
    np.testing.assert_allclose(geometry.project(X, A), A @ np.linalg.lstsq(A, X, rcond=None)[0], atol=1e-9)
    P = geometry.projection_matrix(A)
    Q = np.linalg.qr(A)[0]
    np.testing.assert_allclose(P, Q @ Q.T, atol=1e-9)  # the same projector, built another way
    np.testing.assert_allclose(P @ P, P, atol=1e-9)  # projecting twice changes nothing
    np.testing.assert_allclose(P, P.T, atol=1e-9)
    np.testing.assert_allclose(A.T @ (x - P @ x), np.zeros(n), atol=1e-9)  # residual is orthogonal


@pytest.mark.parametrize("seed", SEEDS)
def test_projection_onto_a_line(seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 10))
    x, a = rng.normal(size=d), rng.normal(size=d)
    p = geometry.project(x, a)
    unit = a / np.linalg.norm(a)
    np.testing.assert_allclose(p, (unit @ x) * unit, atol=1e-12)
    np.testing.assert_allclose(p, geometry.project(x, a[:, None]), atol=1e-10)  # a line is a 1-column A
    np.testing.assert_allclose(geometry.projection_matrix(a), np.outer(unit, unit), atol=1e-12)
    assert abs((x - p) @ a) < 1e-10 * np.linalg.norm(x) * np.linalg.norm(a)


def qr_oracle_with_positive_diagonal(A):
    """numpy's QR (Householder, LAPACK), with column signs flipped so that R has a positive diagonal."""
    Q, R = np.linalg.qr(A)
    signs = np.sign(np.diag(R))
    return Q * signs, R * signs[:, None]


@pytest.mark.parametrize("modified", [True, False], ids=["modified", "classical"])
@pytest.mark.parametrize("seed", SEEDS)
def test_gram_schmidt_matches_numpy_qr_up_to_column_signs(seed, modified):
    rng = np.random.default_rng(seed)
    A = random_tall(rng)
    Q, R = geometry.gram_schmidt(A, modified=modified)
    Q_np, R_np = qr_oracle_with_positive_diagonal(A)
    np.testing.assert_allclose(Q, Q_np, atol=1e-9)
    np.testing.assert_allclose(R, R_np, atol=1e-9)
    np.testing.assert_allclose(Q.T @ Q, np.eye(A.shape[1]), atol=1e-12)
    np.testing.assert_allclose(Q @ R, A, atol=1e-12)
    assert np.all(np.diag(R) > 0) and np.allclose(R, np.triu(R))


def orthogonality_loss(Q):
    return np.abs(Q.T @ Q - np.eye(Q.shape[1])).max()


def test_modified_gram_schmidt_keeps_orthogonality_that_classical_loses():
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.normal(size=(40, 12)))[0]
    V = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    A = U @ np.diag(np.logspace(0, -10, 12)) @ V.T  # condition number 1e10
    classical = orthogonality_loss(geometry.gram_schmidt(A, modified=False)[0])
    modified = orthogonality_loss(geometry.gram_schmidt(A, modified=True)[0])
    assert classical > 1e-2  # roughly cond^2 * eps: orthogonality is gone
    assert modified < 1e-4  # roughly cond * eps
    assert orthogonality_loss(np.linalg.qr(A)[0]) < 1e-13  # Householder: eps, whatever the condition


@pytest.mark.parametrize("method", ["normal", "qr"])
@pytest.mark.parametrize("seed", SEEDS)
def test_least_squares_matches_numpy_lstsq(seed, method):
    rng = np.random.default_rng(seed)
    A = random_tall(rng)
    b = rng.normal(size=A.shape[0])
    B = rng.normal(size=(A.shape[0], 2))
    np.testing.assert_allclose(
        geometry.least_squares(A, b, method), np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-8
    )
    np.testing.assert_allclose(
        geometry.least_squares(A, B, method), np.linalg.lstsq(A, B, rcond=None)[0], atol=1e-8
    )


def test_least_squares_recovers_an_exact_fit():
    rng = np.random.default_rng(3)
    A, x = rng.normal(size=(30, 4)), rng.normal(size=4)
    np.testing.assert_allclose(geometry.least_squares(A, A @ x), x, atol=1e-10)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: geometry.norm([1.0, 2.0], p=0.5), ValueError, "p >= 1"),
        (lambda: geometry.norm(np.ones((2, 2))), ValueError, "must be a vector"),
        (lambda: geometry.cosine_similarity([0.0, 0.0], [1.0, 2.0]), ValueError, "zero vector"),
        (lambda: geometry.cosine_similarity([1.0, 2.0], [1.0, 2.0, 3.0]), ValueError, "2 and 3 entries"),
        (lambda: geometry.cosine_similarity(np.ones((2, 2)), np.ones(2)), ValueError, "two vectors or two"),
        (lambda: geometry.project([1.0, 2.0], [0.0, 0.0]), ValueError, "zero vector"),
        (lambda: geometry.project([1.0, 2.0], [1.0, 2.0, 3.0]), ValueError, "direction a has 3"),
        (lambda: geometry.project([1.0, 2.0], np.ones((3, 2))), ValueError, "must have 3 rows"),
        (
            lambda: geometry.project(np.ones(3), [[1, 2], [2, 4], [3, 6]]),
            geometry.LinearDependenceError,
            "dependent",
        ),
        (lambda: geometry.gram_schmidt(np.ones((2, 3))), ValueError, "at most 2 columns"),
        (lambda: geometry.gram_schmidt([[1, 2], [2, 4], [3, 6]]), geometry.LinearDependenceError, "column 1"),
        (lambda: geometry.gram_schmidt([[0, 1], [0, 1]]), geometry.LinearDependenceError, "column 0"),
        (lambda: geometry.least_squares(np.ones((2, 3)), np.ones(2)), ValueError, "more unknowns"),
        (lambda: geometry.least_squares(np.eye(3), np.ones(2)), ValueError, "must have 3 rows"),
        (lambda: geometry.least_squares(np.eye(3), np.ones(3), "svd"), ValueError, "'normal' or 'qr'"),
    ],
)
def test_bad_input_gets_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_line_projection_numbers():
    picture = geometry.line_projection(vector_angle=60.0, line_angle=0.0, length=2.0)
    np.testing.assert_allclose(picture["x"], [1.0, np.sqrt(3)])
    np.testing.assert_allclose(picture["projection"], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(picture["residual"], [0.0, np.sqrt(3)], atol=1e-12)
    assert picture["cos_angle"] == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    for vector_angle, line_angle in rng.uniform(-180, 180, size=(20, 2)):
        picture = geometry.line_projection(vector_angle, line_angle, length=1.5)
        assert abs(picture["residual"] @ picture["direction"]) < 1e-12  # a right angle
        np.testing.assert_allclose(picture["projection"] + picture["residual"], picture["x"])
        cos = np.cos(np.radians(vector_angle - line_angle))
        assert picture["coefficient"] == pytest.approx(1.5 * cos, abs=1e-12)


def draw_projection(vector_angle, line_angle):
    picture = geometry.line_projection(vector_angle, line_angle)
    fig, ax = plt.subplots()
    ax.axline((0, 0), picture["direction"])
    ax.plot(*np.stack([np.zeros(2), picture["x"]]).T)
    ax.plot(*np.stack([picture["x"], picture["projection"]]).T)
    ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5))


def test_projection_slider_moves_the_picture_and_keeps_the_right_angle():
    view = slider_view(
        draw_projection, vector_angle=(-180.0, 180.0, 5.0, 60.0), line_angle=(0.0, 180.0, 5.0, 20.0)
    )
    before = view.image
    view.set(line_angle=110.0)
    assert view.redraws == 2 and view.values == {"vector_angle": 60.0, "line_angle": 110.0}
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    picture = geometry.line_projection(**view.values)
    assert abs(picture["residual"] @ picture["direction"]) < 1e-12
    assert picture["coefficient"] == pytest.approx(2.0 * np.cos(np.radians(50.0)))


@pytest.mark.parametrize("seed", range(5))
def test_qr_least_squares_keeps_the_accuracy_that_the_normal_equations_lose(seed):
    rng = np.random.default_rng(seed)
    A = np.vander(np.linspace(0, 1, 50), 8, increasing=True)  # a degree-7 polynomial fit, cond(A) ~ 1e5
    x = rng.normal(size=8)
    b = A @ x
    qr_error = np.abs(geometry.least_squares(A, b, "qr") - x).max()
    normal_error = np.abs(geometry.least_squares(A, b, "normal") - x).max()
    lstsq_error = np.abs(np.linalg.lstsq(A, b, rcond=None)[0] - x).max()
    assert qr_error < 1e-10 and lstsq_error < 1e-10
    assert normal_error > 1000 * qr_error  # cond(A^T A) = cond(A)^2 ~ 1e10
