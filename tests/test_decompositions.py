"""Chapter 3's decompositions against numpy.linalg (eig, eigh, svd) and scikit-learn, on random inputs."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD

from helpers import decompositions as dec
from helpers import slider_view

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(20)


def random_orthogonal(rng, n):
    Q, R = np.linalg.qr(rng.normal(size=(n, n)))
    return Q * np.sign(np.diag(R))


def same_up_to_sign(got, want, atol):
    """Columns of `got` equal columns of `want`, each possibly times -1."""
    signs = np.sign(np.sum(got * want, axis=0))
    signs[signs == 0] = 1
    np.testing.assert_allclose(got * signs, want, atol=atol)


@pytest.mark.parametrize("seed", SEEDS)
def test_power_iteration_finds_the_dominant_eigenpair_of_eigh(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    B = rng.normal(size=(n, n))
    S = B + B.T
    values, vectors = np.linalg.eigh(S)
    top = int(np.argmax(np.abs(values)))
    others = np.delete(np.abs(values), top)
    steps = int(60 / np.log(np.abs(values[top]) / others.max())) + 100  # enough for a 1e-12 residual
    result = dec.power_iteration(S, tol=1e-12, max_iter=steps, seed=seed)
    assert result.value == pytest.approx(values[top], rel=1e-9)
    same_up_to_sign(result.vector[:, None], vectors[:, [top]], atol=1e-6)
    assert result.iterations == len(result.residuals) and result.residuals[-1] <= 1e-12 * np.abs(S).max()


@pytest.mark.parametrize("seed", SEEDS)
def test_power_iteration_on_a_non_symmetric_matrix_matches_eig(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    X = rng.normal(size=(n, n))  # eigenvectors, not orthogonal
    wanted = np.concatenate([[rng.choice([-1, 1]) * 3.0], rng.uniform(-1.5, 1.5, n - 1)])
    A = X @ np.diag(wanted) @ np.linalg.inv(X)
    values, vectors = np.linalg.eig(A)
    top = int(np.argmax(np.abs(values)))
    result = dec.power_iteration(A, tol=1e-12, max_iter=5000)
    assert result.value == pytest.approx(values[top].real, rel=1e-8)
    unit = vectors[:, top].real / np.linalg.norm(vectors[:, top].real)
    same_up_to_sign(result.vector[:, None], unit[:, None], atol=1e-6)


def test_power_iteration_converges_at_the_rate_of_the_eigenvalue_ratio():
    rng = np.random.default_rng(0)
    Q = random_orthogonal(rng, 5)
    S = Q @ np.diag([4.0, 2.0, 1.0, 0.5, 0.1]) @ Q.T
    residuals = np.array(dec.power_iteration(S, tol=1e-13).residuals)
    rate = np.exp(np.polyfit(np.arange(10, 30), np.log(residuals[10:30]), 1)[0])
    assert rate == pytest.approx(0.5, abs=0.02)  # |lambda_2 / lambda_1| = 2 / 4


@pytest.mark.parametrize(
    "A", [[[0.0, 1.0], [1.0, 0.0]], [[0.0, -1.0], [1.0, 0.0]]], ids=["plus-minus-one", "quarter-turn"]
)
def test_power_iteration_gives_up_clearly(A):
    with pytest.raises(dec.ConvergenceError, match="did not converge in 200 steps"):
        dec.power_iteration(A, max_iter=200)


@pytest.mark.parametrize("seed", SEEDS)
def test_symmetric_eigen_matches_eigh(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    B = rng.normal(size=(n, n)) * 10.0 ** rng.integers(-3, 4)
    S = B + B.T
    values, V = dec.symmetric_eigen(S)
    values_np, V_np = np.linalg.eigh(S)
    scale = np.abs(values_np).max()
    np.testing.assert_allclose(values, values_np[::-1], atol=1e-12 * scale)
    same_up_to_sign(V, V_np[:, ::-1], atol=1e-8)  # random eigenvalues are well separated
    np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(S @ V, V * values, atol=1e-12 * scale)


def test_symmetric_eigen_handles_repeated_eigenvalues():
    rng = np.random.default_rng(1)
    Q = random_orthogonal(rng, 6)
    S = Q @ np.diag([3.0, 3.0, 3.0, -1.0, 0.0, 0.0]) @ Q.T
    values, V = dec.symmetric_eigen(S)
    np.testing.assert_allclose(values, [3, 3, 3, 0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(S @ V, V * values, atol=1e-12)  # any basis of each eigenspace will do
    np.testing.assert_allclose(V.T @ V, np.eye(6), atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_svd_via_eigen_matches_numpy_svd(seed):
    rng = np.random.default_rng(seed)
    m, n = (int(k) for k in rng.integers(1, 9, size=2))
    A = rng.normal(size=(m, n))
    U, s, Vt = dec.svd_via_eigen(A)
    U_np, s_np, Vt_np = np.linalg.svd(A, full_matrices=False)
    k = min(m, n)
    assert U.shape == (m, k) and s.shape == (k,) and Vt.shape == (k, n)
    np.testing.assert_allclose(s, s_np, atol=1e-10 * s_np[0])  # well-conditioned: nothing lost
    same_up_to_sign(U, U_np, atol=1e-6)
    same_up_to_sign(Vt.T, Vt_np.T, atol=1e-6)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_svd_via_eigen_on_a_rank_deficient_matrix(seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(7, 2)) @ rng.normal(size=(2, 5))  # rank 2
    U, s, Vt = dec.svd_via_eigen(A)
    s_np = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(s[:2], s_np[:2], rtol=1e-10)
    assert np.all(s[2:] < 1e-6 * s[0])  # zero, up to the sqrt(eps) noise of A^T A
    np.testing.assert_allclose(U.T @ U, np.eye(5), atol=1e-10)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-6 * s[0])


def test_svd_via_eigen_loses_the_small_singular_values_that_numpy_keeps():
    rng = np.random.default_rng(0)
    true = np.logspace(0, -12, 7)
    A = random_orthogonal(rng, 10)[:, :7] @ np.diag(true) @ random_orthogonal(rng, 7).T
    ours = dec.svd_via_eigen(A)[1]
    numpy = np.linalg.svd(A, compute_uv=False)
    assert np.abs(numpy - true).max() < 1e-14  # absolute error eps * s_max, whatever the size
    assert abs(ours[-1] - true[-1]) > 100 * true[-1]  # s = 1e-12 is below sqrt(eps): pure noise
    np.testing.assert_allclose(ours[:3], true[:3], rtol=1e-6)  # the large ones are fine


@pytest.mark.parametrize("seed", SEEDS)
def test_low_rank_approximation_matches_sklearn_truncated_svd_and_eckart_young(seed):
    rng = np.random.default_rng(seed)
    m, n = (int(k) for k in rng.integers(3, 12, size=2))
    A = rng.normal(size=(m, n))
    k = int(rng.integers(1, min(m, n)))
    A_k = dec.low_rank_approximation(A, k)
    tsvd = TruncatedSVD(n_components=k, algorithm="arpack", random_state=0).fit(A)
    np.testing.assert_allclose(A_k, tsvd.inverse_transform(tsvd.transform(A)), atol=1e-9)
    assert np.linalg.matrix_rank(A_k) == k
    s = np.linalg.svd(A, compute_uv=False)
    error = np.sum((A - A_k) ** 2)
    assert error == pytest.approx(np.sum(s[k:] ** 2), rel=1e-9)  # the discarded energy
    for _ in range(20):  # Eckart-Young: no other rank-k matrix is closer
        B = A_k + 0.1 * rng.normal(size=(m, k)) @ rng.normal(size=(k, n))
        B = dec.low_rank_approximation(B, k)  # still rank k, but a different one
        assert np.sum((A - B) ** 2) >= error * (1 - 1e-12)
    svd = dec.svd_via_eigen(A)
    np.testing.assert_allclose(dec.low_rank_approximation(A, k, svd=svd), A_k, atol=1e-8)


def test_energy_rank_and_storage_bookkeeping():
    s = np.array([3.0, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(dec.energy_kept(s), np.cumsum([9, 4, 1, 0]) / 14)
    assert dec.rank_for_energy(s, 0.5) == 1  # 9/14 = 0.64
    assert dec.rank_for_energy(s, 0.9) == 2  # 13/14 = 0.93
    assert dec.rank_for_energy(s, 1.0) == 3
    assert dec.storage_ratio(100, 50, 5) == pytest.approx(5 * 151 / 5000)
    rng = np.random.default_rng(0)
    for _ in range(10):
        s = np.sort(rng.exponential(size=20))[::-1]
        fraction = rng.uniform(0.05, 1.0)
        k = dec.rank_for_energy(s, fraction)
        assert np.sum(s[:k] ** 2) >= fraction * np.sum(s**2) * (1 - 1e-12)
        assert k == 1 or np.sum(s[: k - 1] ** 2) < fraction * np.sum(s**2)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: dec.power_iteration(np.ones((2, 3))), ValueError, "square"),
        (lambda: dec.power_iteration(np.eye(2), max_iter=0), ValueError, "max_iter"),
        (lambda: dec.symmetric_eigen([[1.0, 2.0], [0.0, 1.0]]), ValueError, "not symmetric"),
        (lambda: dec.symmetric_eigen(np.ones(3)), ValueError, "must be a matrix"),
        (lambda: dec.low_rank_approximation(np.eye(3), 4), ValueError, "from 0 to 3"),
        (lambda: dec.low_rank_approximation(np.eye(3), 1.5), ValueError, "integer"),
        (lambda: dec.energy_kept([1.0, -1.0]), ValueError, ">= 0"),
        (lambda: dec.energy_kept([0.0, 0.0]), ValueError, "all singular values are zero"),
        (lambda: dec.rank_for_energy([1.0], 1.5), ValueError, "fraction"),
    ],
)
def test_bad_input_gets_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_compression_slider_moves_the_image_and_the_numbers():
    rng = np.random.default_rng(0)
    image = np.add.outer(np.linspace(0, 1, 40), np.linspace(0, 1, 30)) + 0.3 * rng.random((40, 30))
    svd = np.linalg.svd(image, full_matrices=False)

    def draw(k):
        picture = dec.compression(svd, k)
        fig, (left, right) = plt.subplots(1, 2)
        left.imshow(picture["approximation"], cmap="gray")
        right.plot(np.arange(1, 31), dec.energy_kept(svd[1]))
        right.axvline(k)

    view = slider_view(draw, k=(1, 30, 1, 2))
    before = view.image
    view.set(k=20)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    small, large = dec.compression(svd, 2), dec.compression(svd, 20)
    assert large["energy_kept"] > small["energy_kept"] and large["storage_ratio"] > small["storage_ratio"]
    for picture, k in [(small, 2), (large, 20)]:
        error = np.sum((image - picture["approximation"]) ** 2)
        assert error == pytest.approx(picture["squared_error"], rel=1e-8)
        assert picture["energy_kept"] == pytest.approx(1 - error / np.sum(image**2), abs=1e-12)
        assert picture["storage_ratio"] == pytest.approx(k * (40 + 30 + 1) / (40 * 30))
    full = dec.compression(svd, 30)
    np.testing.assert_allclose(full["approximation"], image, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_cholesky_matches_numpy_on_random_positive_definite_matrices(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    X = rng.normal(size=(n + 3, n))
    S = X.T @ X + 0.1 * np.eye(n)  # (n, n) symmetric positive definite
    L = dec.cholesky(S)
    assert np.allclose(L, np.linalg.cholesky(S), atol=1e-10)
    assert np.allclose(L @ L.T, S) and np.allclose(L, np.tril(L)) and np.all(np.diag(L) > 0)


@pytest.mark.parametrize(
    "S, error, message",
    [
        (
            [[1.0, 2.0], [2.0, 1.0]],
            dec.NotPositiveDefiniteError,
            "not positive definite",
        ),  # eigenvalues 3, -1
        ([[1.0, 0.0], [0.0, 0.0]], dec.NotPositiveDefiniteError, "pivot 1"),  # semi-definite only
        ([[2.0, 1.0], [0.0, 2.0]], ValueError, "symmetric"),
        ([[1.0, 0.0, 0.0]], ValueError, "square"),
    ],
)
def test_cholesky_refuses_what_it_cannot_factor(S, error, message):
    with pytest.raises(error, match=message):
        dec.cholesky(S)
    if error is dec.NotPositiveDefiniteError:
        with pytest.raises(np.linalg.LinAlgError):  # numpy agrees
            np.linalg.cholesky(np.array(S))
