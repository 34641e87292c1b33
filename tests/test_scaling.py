"""helpers.scaling: the fit recovers a known law, the closed-form optimum equals a numerical one, and the
shipped sweep is consistent with the model it describes."""

import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from helpers.data import data_path
from helpers.scaling import CHINCHILLA, LossLaw, compute_optimal, fit_loss_law, loss_law

TRUE = LossLaw(E=1.2, A=30.0, alpha=0.4, B=60.0, beta=0.3)
GRID_N = np.repeat([1e4, 3e4, 1e5, 3e5, 1e6], 4)
GRID_D = np.tile([2e5, 4e5, 8e5, 1.6e6], 5)


def test_fit_recovers_a_known_law_from_exact_losses():
    fitted = fit_loss_law(GRID_N, GRID_D, loss_law(GRID_N, GRID_D, TRUE))
    for name in ("E", "A", "alpha", "B", "beta"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=1e-3), name


def test_fit_with_noise_still_predicts_well():
    rng = np.random.default_rng(0)
    loss = loss_law(GRID_N, GRID_D, TRUE) * np.exp(rng.normal(0, 0.005, GRID_N.shape))
    fitted = fit_loss_law(GRID_N, GRID_D, loss)
    new_N, new_D = np.array([5e4, 5e5]), np.array([3e5, 1e6])
    assert np.allclose(loss_law(new_N, new_D, fitted), loss_law(new_N, new_D, TRUE), rtol=0.02)


def test_closed_form_optimum_equals_a_numerical_minimum():
    for law in (TRUE, CHINCHILLA):
        for C in (1e12, 1e18, 5.76e23):
            N_opt, D_opt = compute_optimal(C, law)
            assert 6 * N_opt * D_opt == pytest.approx(C)
            best = minimize_scalar(
                lambda logN, C=C, law=law: loss_law(np.exp(logN), C / (6 * np.exp(logN)), law),
                bounds=(0, 80),
                method="bounded",
                options={"xatol": 1e-10},
            )
            assert np.log(N_opt) == pytest.approx(best.x, abs=1e-3)


def test_chinchilla_published_law_at_gophers_budget():
    # the rounded published parameters of eq. (10) put the optimum at about 32B parameters and about 90
    # tokens per parameter - not the 20 of Chinchilla itself (the notebook says why)
    N_opt, D_opt = compute_optimal(5.76e23, CHINCHILLA)
    assert 3.0e10 < N_opt < 3.4e10
    assert 85 < D_opt / N_opt < 100


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="at least 5 runs"):
        fit_loss_law([1, 2], [1, 2], [3, 2])
    with pytest.raises(ValueError, match="same length"):
        fit_loss_law([1, 2, 3, 4, 5], [1, 2, 3, 4], [3, 2, 2, 2, 2])
    with pytest.raises(ValueError, match="N must be positive"):
        loss_law([0.0], [1.0], TRUE)
    with pytest.raises(ValueError, match="C must be positive"):
        compute_optimal(-1.0, TRUE)
    with pytest.raises(ValueError, match="A, B, alpha, beta > 0"):
        LossLaw(E=1.0, A=-1.0, alpha=0.3, B=1.0, beta=0.3)


def test_shipped_sweep_is_complete_and_consistent():
    sweep = json.loads(data_path("scaling_sweep.json").read_text(encoding="utf-8"))
    runs = sweep["runs"]
    assert len({(r["n_layer"], r["n_embd"]) for r in runs}) >= 4
    assert len({r["D"] for r in runs}) >= 4
    for r in runs:
        assert r["D"] == r["steps"] * 16 * 64
    # more data never hurt at these sizes: for every size the loss falls with D
    for size in {(r["n_layer"], r["n_embd"]) for r in runs}:
        losses = [
            r["val_loss"] for r in sorted(runs, key=lambda r: r["D"]) if (r["n_layer"], r["n_embd"]) == size
        ]
        assert all(a > b for a, b in zip(losses, losses[1:], strict=False)), size
    fitted = fit_loss_law(*(np.array([r[k] for r in runs], dtype=float) for k in ("N", "D", "val_loss")))
    predicted = loss_law([r["N"] for r in runs], [r["D"] for r in runs], fitted)
    assert np.abs(predicted - [r["val_loss"] for r in runs]).max() < 0.15
