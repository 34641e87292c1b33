"""Scaling laws (chapter 26): the loss as a function of model size N and training tokens D, fitted.

What this module adds over helpers.cost (which counts a run's FLOPs): the parametric law of Hoffmann et
al. (2022, "Chinchilla"),

    L(N, D) = E + A / N^alpha + B / D^beta

(E: the loss no model reaches, the entropy of the text; the two other terms: what a finite model and
finite data leave on the table), fitted to measured runs, and the compute-optimal split of a budget
C = 6 N D FLOPs between N and D, in closed form.

    loss_law(N, D, law)            the law's prediction
    fit_loss_law(N, D, loss)       least squares on log-loss from several starting points (scipy)
    compute_optimal(C, law)        (N_opt, D_opt) minimising L(N, C / (6 N))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares


@dataclass(frozen=True)
class LossLaw:
    """The parameters of L(N, D) = E + A / N^alpha + B / D^beta."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float

    def __post_init__(self):
        if min(self.A, self.B, self.alpha, self.beta) <= 0 or self.E < 0:
            raise ValueError(f"a loss law needs A, B, alpha, beta > 0 and E >= 0, got {self}")


#: Hoffmann et al. 2022, eq. (10): their fit to 400+ runs (N total parameters, D tokens, loss in nats).
CHINCHILLA = LossLaw(E=1.69, A=406.4, alpha=0.34, B=410.7, beta=0.28)


def _positive(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name} must be positive and finite, got {x}")
    return x


def loss_law(N, D, law: LossLaw) -> np.ndarray:
    """E + A / N^alpha + B / D^beta, element-wise for arrays N and D."""
    N, D = _positive("N", N), _positive("D", D)
    return law.E + law.A / N**law.alpha + law.B / D**law.beta


def fit_loss_law(N, D, loss, E_max: float | None = None) -> LossLaw:
    """The LossLaw closest to the measured `loss` at (N, D), in the least-squares sense on log(loss).

    The law is fitted through log A, log B (so A, B stay positive and the search is well scaled) and
    E in [0, E_max] (default: the smallest measured loss - E is a floor every run stays above). The
    problem is not convex; a small grid of starting points (as Hoffmann et al. did) and the best result.
    """
    N, D, loss = _positive("N", N), _positive("D", D), _positive("loss", loss)
    if not N.shape == D.shape == loss.shape or N.ndim != 1:
        raise ValueError(
            f"N, D and loss must be 1-D and the same length, got {N.shape}, {D.shape}, {loss.shape}"
        )
    if len(N) < 5:
        raise ValueError(f"the law has 5 parameters: fit it to at least 5 runs, got {len(N)}")
    E_max = float(loss.min()) if E_max is None else E_max

    def residuals(p):
        E, logA, alpha, logB, beta = p
        predicted = E + np.exp(logA - alpha * np.log(N)) + np.exp(logB - beta * np.log(D))
        return np.log(predicted) - np.log(loss)

    best = None
    lower, upper = [0.0, -20.0, 0.01, -20.0, 0.01], [E_max, 60.0, 2.0, 60.0, 2.0]
    for E0, a0, b0 in itertools.product((0.2 * E_max, 0.8 * E_max), (0.2, 0.5, 1.0), (0.2, 0.5, 1.0)):
        # start with each power term worth half the mean excess loss at the middle of the data
        scale = np.log(0.5 * (loss.mean() - E0))
        start = [E0, scale + a0 * np.log(np.median(N)), a0, scale + b0 * np.log(np.median(D)), b0]
        result = least_squares(residuals, start, bounds=(lower, upper), method="trf", x_scale="jac")
        if best is None or result.cost < best.cost:
            best = result
    E, logA, alpha, logB, beta = best.x
    return LossLaw(
        E=float(E), A=float(np.exp(logA)), alpha=float(alpha), B=float(np.exp(logB)), beta=float(beta)
    )


def compute_optimal(C, law: LossLaw) -> tuple[np.ndarray, np.ndarray]:
    """(N_opt, D_opt): the split of C = 6 N D FLOPs that minimises L(N, D).

    Put D = C / (6 N) into the law and set dL/dN = 0:
        alpha A / N^alpha = beta B / D^beta
    which gives N_opt = G (C / 6)^(beta / (alpha + beta)) with G = (alpha A / (beta B))^(1 / (alpha + beta)),
    and D_opt = C / (6 N_opt). Both grow as a power of C; their exponents add up to 1.
    """
    C = _positive("C", C)
    a, b = law.alpha, law.beta
    G = (a * law.A / (b * law.B)) ** (1 / (a + b))
    N_opt = G * (C / 6) ** (b / (a + b))
    return N_opt, C / (6 * N_opt)
