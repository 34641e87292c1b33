"""Chapter 11's learning-rate schedules against torch.optim.lr_scheduler, step by step."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers import slider_view
from helpers.schedules import (
    as_lambda,
    constant,
    cosine,
    curve,
    draw_schedules,
    step_decay,
    torch_scheduler,
    warmup_cosine,
)

warnings.filterwarnings("ignore", message=".*non-interactive.*")


def torch_lrs(make_scheduler, steps, lr):
    """The lr torch's scheduler gives the optimiser at steps 0 .. steps - 1."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize("seed", range(5))
def test_step_decay_matches_step_lr(seed):
    rng = np.random.default_rng(seed)
    lr, size, gamma = rng.uniform(0.01, 1), int(rng.integers(1, 20)), rng.uniform(0.1, 0.9)
    ours = curve(step_decay, 100, peak_lr=lr, step_size=size, gamma=gamma)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, size, gamma), 100, lr)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_cosine_matches_cosine_annealing_lr(seed):
    rng = np.random.default_rng(seed)
    lr, total = rng.uniform(0.01, 1), int(rng.integers(5, 200))
    min_lr = lr * rng.uniform(0, 0.5)
    ours = curve(cosine, total + 1, peak_lr=lr, total_steps=total, min_lr=min_lr)
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total, min_lr), total + 1, lr)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)  # torch's recursion drifts by ~1 ulp


@pytest.mark.parametrize("seed", range(5))
def test_warmup_cosine_matches_linear_then_cosine(seed):
    rng = np.random.default_rng(seed)
    lr, warmup = rng.uniform(0.01, 1), int(rng.integers(2, 30))
    total = warmup + int(rng.integers(5, 200))
    min_lr = lr * rng.uniform(0, 0.5)

    def make(o):
        warm = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / warmup, total_iters=warmup - 1)
        decay = torch.optim.lr_scheduler.CosineAnnealingLR(o, total - warmup, min_lr)
        return torch.optim.lr_scheduler.SequentialLR(o, [warm, decay], milestones=[warmup])

    ours = curve(warmup_cosine, total, peak_lr=lr, warmup_steps=warmup, total_steps=total, min_lr=min_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's deprecation notes about epoch arguments
        theirs = torch_lrs(make, total, lr)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_warmup_cosine_shape_of_the_curve():
    lrs = curve(warmup_cosine, 120, peak_lr=1.0, warmup_steps=10, total_steps=100, min_lr=0.1)
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[10] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[:10]) > 0) and np.all(np.diff(lrs[10:100]) < 0)
    assert lrs[55] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    np.testing.assert_allclose(lrs[100:], 0.1)  # after the end it stays at the floor
    assert warmup_cosine(5, 1.0, 0, 10) == pytest.approx(cosine(5, 1.0, 10))  # no warm-up: plain cosine
    assert curve(constant, 4, peak_lr=0.3).tolist() == [0.3] * 4


def test_torch_scheduler_drives_an_optimizer_along_the_curve():
    params = dict(peak_lr=0.5, warmup_steps=5, total_steps=40, min_lr=0.01)
    lrs = torch_lrs(lambda o: torch_scheduler(o, warmup_cosine, **params), 40, lr=123.0)  # lr is overwritten
    np.testing.assert_allclose(lrs, curve(warmup_cosine, 40, **params), rtol=1e-12)
    assert as_lambda(step_decay, peak_lr=2.0, step_size=3, gamma=0.5)(7) == pytest.approx(0.25)


def test_schedule_slider_headless():
    def draw(warmup_steps, min_lr):
        _, ax = plt.subplots()
        draw_schedules(
            ax,
            {
                "warm-up + cosine": curve(
                    warmup_cosine, 100, peak_lr=1.0, warmup_steps=warmup_steps, total_steps=100, min_lr=min_lr
                )
            },
        )

    view = slider_view(draw, warmup_steps=(0, 50, 5, 10), min_lr=(0.0, 0.5, 0.05, 0.0))
    before = view.image
    view.set(warmup_steps=40)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    lrs = curve(warmup_cosine, 100, peak_lr=1.0, warmup_steps=40, total_steps=100, min_lr=0.0)
    assert lrs[:40].argmax() == 39 and lrs[39] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: constant(-1, 0.1), "counts from 0"),
        (lambda: constant(0, 0.0), "peak_lr must be positive"),
        (lambda: step_decay(0, 0.1, 0), "step_size"),
        (lambda: cosine(0, 0.1, 10, min_lr=0.5), "min_lr"),
        (lambda: warmup_cosine(0, 0.1, 10, 10), "warmup_steps < total_steps"),
        (lambda: curve(constant, 0, peak_lr=0.1), "at least 1"),
    ],
)
def test_bad_arguments_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
