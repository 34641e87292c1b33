"""helpers.ssm: the scans against a plain loop and each other, discretisation, the layers and the language
model, and a smoke test of scripts/compare_ssm.py."""

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers.ssm import (
    SSMLM,
    DiagonalSSM,
    SelectiveSSM,
    SSMConfig,
    associative_combine,
    discretize,
    scan,
    scan_parallel,
    scan_sequential,
    state_bytes,
)
from tests.conftest import ROOT

SEEDS = range(6)


def loop_scan(a, b):
    """The recurrence written with Python numbers, element by element."""
    B, T = a.shape[:2]
    flat_a, flat_b = a.reshape(B, T, -1), b.reshape(B, T, -1)
    h = torch.zeros_like(flat_b)
    for i in range(B):
        for c in range(flat_a.shape[2]):
            state = 0.0
            for t in range(T):
                state = float(flat_a[i, t, c]) * state + float(flat_b[i, t, c])
                h[i, t, c] = state
    return h.reshape(b.shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_scans_agree_with_a_loop_and_each_other(seed):
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(1, 70, (1,), generator=g))  # powers of two and not
    a = torch.rand(2, T, 3, 2, generator=g, dtype=torch.float64)
    b = torch.randn(2, T, 3, 2, generator=g, dtype=torch.float64)
    expected = loop_scan(a, b)
    torch.testing.assert_close(scan_sequential(a, b), expected)
    torch.testing.assert_close(scan_parallel(a, b), expected)
    torch.testing.assert_close(scan(a, b, "sequential"), scan(a, b, "parallel"))


def test_the_combine_operator_is_associative_and_composes_steps():
    g = torch.Generator().manual_seed(0)
    p, q, r = [(torch.rand(5, generator=g), torch.randn(5, generator=g)) for _ in range(3)]
    left = associative_combine(associative_combine(p, q), r)
    right = associative_combine(p, associative_combine(q, r))
    for x, y in zip(left, right, strict=True):
        torch.testing.assert_close(x, y)
    h = torch.randn(5, generator=g)
    a, b = associative_combine(p, q)
    torch.testing.assert_close(a * h + b, q[0] * (p[0] * h + p[1]) + q[1])


def test_parallel_scan_gradients_match_the_sequential_ones():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    grads = [torch.autograd.grad(f(a, b).square().sum(), (a, b)) for f in (scan_sequential, scan_parallel)]
    for x, y in zip(*grads, strict=True):
        torch.testing.assert_close(x, y)


def test_discretize_is_the_exact_solution_for_constant_input():
    A, B, dt, x = torch.tensor([-0.5, -2.0]), torch.tensor([1.0, 3.0]), 0.1, 0.7
    a, b = discretize(A, B, torch.tensor(dt))
    h, n = torch.zeros(2), 1000  # Euler with 1000 tiny steps of dt / 1000
    for _ in range(n):
        h = h + dt / n * (A * h + B * x)
    torch.testing.assert_close(b * x, h, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(a, torch.exp(dt * A))


def test_diagonal_ssm_is_a_convolution_with_its_impulse_response():
    torch.manual_seed(0)
    layer = DiagonalSSM(3, 4).double()
    x = torch.randn(2, 25, 3, dtype=torch.float64)
    y = layer(x)
    impulse = torch.zeros(1, 25, 3, dtype=torch.float64)
    impulse[:, 0] = 1.0
    kernel = layer(impulse)[0] - layer.D * impulse[0]  # (25, 3): response to a single 1 at t = 0
    expected = torch.stack([(kernel[: t + 1].flip(0) * x[:, : t + 1]).sum(1) for t in range(25)], 1)
    torch.testing.assert_close(y, expected + layer.D * x)
    torch.testing.assert_close(layer(x, "sequential"), y)


def test_selective_ssm_step_matches_the_scan_and_depends_on_the_input():
    torch.manual_seed(0)
    layer = SelectiveSSM(8, 4).double()
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    y = layer(x)
    h = torch.zeros(2, 8, 4, dtype=torch.float64)
    for t in range(12):
        y_t, h = layer.step(x[:, t], h)
        torch.testing.assert_close(y_t, y[:, t])
    a1, _, _ = layer.coefficients(x[:, 0])
    a2, _, _ = layer.coefficients(2 * x[:, 0])
    assert not torch.allclose(a1, a2)  # the decay depends on the input: that is "selective"
    assert ((a1 > 0) & (a1 < 1)).all()


def test_ssm_lm_shapes_causality_and_step():
    torch.manual_seed(0)
    model = SSMLM(SSMConfig(vocab_size=11, n_layer=2, n_embd=16, d_state=4)).double().eval()
    idx = torch.randint(0, 11, (3, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 10, 11) and loss.ndim == 0
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 11
    torch.testing.assert_close(model(changed)[0][:, :6], logits[:, :6])  # the future does not leak back
    state = model.init_state(3)
    size = state_bytes(state)
    with torch.no_grad():
        for t in range(10):
            step_logits, state = model.step(idx[:, t], [(c.double(), h.double()) for c, h in state])
            torch.testing.assert_close(step_logits, logits[:, t])
    assert state_bytes([(c.float(), h.float()) for c, h in state]) == size  # constant per token


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: scan_sequential(torch.rand(2, 3), torch.rand(2, 4)), "same shape"),
        (lambda: scan_parallel(torch.rand(3), torch.rand(3)), r"\(B, T, \.\.\.\)"),
        (lambda: scan(torch.rand(2, 3), torch.rand(2, 3), "fast"), "parallel"),
        (lambda: discretize(torch.tensor([0.5]), torch.ones(1), torch.tensor(0.1)), "negative"),
        (lambda: DiagonalSSM(0), "positive"),
        (lambda: DiagonalSSM(4)(torch.randn(2, 5, 3)), r"\(B, T, 4\)"),
        (lambda: SelectiveSSM(4)(torch.randn(5, 4)), r"\(B, T, 4\)"),
        (lambda: SSMConfig(vocab_size=0), "vocab_size"),
        (lambda: SSMConfig(vocab_size=5, scan="fast"), "scan"),
        (lambda: SSMLM(SSMConfig(vocab_size=5))(torch.zeros(4, dtype=torch.long)), r"\(B, T\)"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_compare_ssm_script_runs_a_tiny_job(tmp_path):
    out = tmp_path / "cmp.json"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/compare_ssm.py"), "--steps", "2", "--eval-interval", "2"]
        + ["--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    gpt, ssm = result["models"]["gpt"], result["models"]["ssm"]
    assert len(gpt["step_loss"]) == len(ssm["step_loss"]) == 2
    assert abs(ssm["parameters"] / gpt["parameters"] - 1) < 0.1
