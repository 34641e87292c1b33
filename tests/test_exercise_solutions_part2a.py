"""The reference solutions of chapters 8-11's exercises, checked against the library they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
torch (or with the book's helper that is itself tested against torch) on random inputs, and the build-it
checkers are shown to refuse the shortcuts they exist to refuse.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.autograd import Tensor, Value, cross_entropy_loss, topological_order, unbroadcast
from helpers.exercises import check, get, passes


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a library shortcut."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it yourself" in out)


# chapter 8 ----------------------------------------------------------------------------------------------
def test_8_1_two_paths_matches_torch():
    a = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ((a + -1.0) * a).backward()
    assert a.grad.item() == get("8.1").solution


def test_8_5_kept_activations_scale_with_the_batch():
    rng = np.random.default_rng(0)
    weights = [Tensor(rng.normal(size=shape)) for shape in [(64, 32), (32,), (32, 10), (10,)]]

    def kept_bytes(batch):
        h = (Tensor(rng.normal(size=(batch, 64))) @ weights[0] + weights[1]).relu()
        loss = cross_entropy_loss(h @ weights[2] + weights[3], rng.integers(0, 10, size=batch))
        nodes = topological_order(loss)
        return sum(n.data.nbytes for n in nodes) - sum(w.data.nbytes for w in weights)

    assert abs(kept_bytes(256) / kept_bytes(128) - get("8.5").solution) < 0.01


def test_8_2_sigmoid_rule_matches_torch_on_random_points():
    rule = get("8.2").solution
    for x in np.random.default_rng(0).normal(size=20) * 3:
        a = Value(float(x))
        s = rule(a)
        (s * s.exp()).backward()  # any expression through the new node
        t = torch.tensor(float(x), dtype=torch.float64, requires_grad=True)
        ts = torch.sigmoid(t)
        (ts * ts.exp()).backward()
        assert math.isclose(s.data, ts.item(), rel_tol=1e-12)
        assert math.isclose(a.grad, t.grad.item(), rel_tol=1e-10, abs_tol=1e-14)


def _sigmoid_by_composition(v):
    return 1.0 / (1.0 + (-v).exp())  # the right gradient, but from exp's, add's and pow's rules


def _sigmoid_by_torch(v):
    t = torch.tensor(v.data, dtype=torch.float64, requires_grad=True)
    s = torch.sigmoid(t)
    out = Value(s.item(), (v,), "sigmoid")

    def _backward():
        (local,) = torch.autograd.grad(s, t, retain_graph=True)  # torch does the calculus
        v.grad += local.item() * out.grad

    out._backward = _backward
    return out


def test_8_2_requires_a_backward_written_by_hand(capsys):
    assert not passes("8.2", _sigmoid_by_composition)
    assert refused("8.2", _sigmoid_by_torch, capsys)
    assert torch.autograd.grad is not None and callable(torch.Tensor.backward)  # restored after the check


def test_8_3_and_8_4_references_match_torch_autograd():
    rng = np.random.default_rng(1)
    for full, shape in [((2, 3, 4), (3, 1)), ((5, 2), (2,)), ((3, 1, 2), (1, 1, 1)), ((4,), ())]:
        grad = rng.normal(size=full)
        x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        (x * torch.as_tensor(grad)).sum().backward()  # torch broadcasts x up to `full`
        assert np.allclose(get("8.3").solution(grad, shape), x.grad.numpy())
        assert unbroadcast is get("8.3").solution  # the reference is the tested helper itself
    for n, k, m in [(1, 1, 1), (3, 4, 2), (5, 2, 6)]:
        A, B, G = rng.normal(size=(n, k)), rng.normal(size=(k, m)), rng.normal(size=(n, m))
        Bt = torch.tensor(B, requires_grad=True)
        (torch.as_tensor(A) @ Bt).backward(torch.as_tensor(G))
        assert np.allclose(get("8.4").solution(A, G), Bt.grad.numpy())


def test_8_6_softmax_vjp_matches_torch_func_vjp():
    rng = np.random.default_rng(2)
    for shape in [(5,), (3, 4), (2, 3, 7)]:
        x, v = rng.normal(size=shape) * 2, rng.normal(size=shape)
        y, pullback = torch.func.vjp(lambda t: torch.softmax(t, dim=-1), torch.as_tensor(x))
        (want,) = pullback(torch.as_tensor(v))
        assert np.allclose(get("8.6").solution(y.numpy(), v), want.numpy(), atol=1e-12)


def test_8_6_refuses_autograd(capsys):
    def by_torch(y, v):
        x = torch.log(torch.as_tensor(y))  # softmax(log y) = y, so this x stands in for the logits
        _, pullback = torch.func.vjp(lambda t: torch.softmax(t, dim=-1), x)
        return pullback(torch.as_tensor(v))[0].numpy()

    assert refused("8.6", by_torch, capsys)
    assert passes("8.6", get("8.6").solution)


# chapter 9 ----------------------------------------------------------------------------------------------
def test_9_1_and_9_3_references_match_torch():
    rng = np.random.default_rng(3)
    for scale in (1.0, 1000.0):
        z = rng.normal(size=7) * scale
        want = torch.softmax(torch.as_tensor(z), dim=0).numpy()
        assert np.allclose(get("9.1").solution(z), want, atol=1e-12)
    Z, y = rng.normal(size=(5, 4)) * 3, rng.integers(0, 4, size=5)
    Zt = torch.tensor(Z, requires_grad=True)
    F.cross_entropy(Zt, torch.as_tensor(y)).backward()
    assert np.allclose(get("9.3").solution(Z, y), Zt.grad.numpy(), atol=1e-12)


def test_9_2_and_9_4_match_torch_layers():
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    assert get("9.4").solution == sum(p.numel() for p in net.parameters())
    assert tuple(get("9.2").solution) == tuple(torch.nn.Linear(64, 100).weight.shape)


def test_9_5_prediction_is_the_expected_best_of_100_binomial_scores():
    from scipy.stats import binom  # the exact distribution of one guesser's number of hits

    k = np.arange(301)
    cdf = binom.cdf(k, 300, 0.5)
    expected_max = ((cdf**100 - np.concatenate([[0.0], cdf[:-1]]) ** 100) * k / 300).sum()
    assert abs(expected_max - get("9.5").solution) < 0.005


def test_9_6_tanh_layer_backward_matches_torch_autograd():
    rng = np.random.default_rng(4)
    for B, n_in, n_out in [(1, 1, 1), (4, 3, 5), (8, 6, 2)]:
        X, W, b = (
            torch.tensor(rng.normal(size=s), requires_grad=True) for s in [(B, n_in), (n_out, n_in), (n_out,)]
        )
        A = torch.tanh(X @ W.T + b)
        G_A = torch.as_tensor(rng.normal(size=(B, n_out)))
        A.backward(G_A)
        got = get("9.6").solution(X.detach().numpy(), W.detach().numpy(), A.detach().numpy(), G_A.numpy())
        for g, leaf in zip(got, (X, W, b), strict=True):
            assert np.allclose(g, leaf.grad.numpy(), atol=1e-12)


def test_9_6_refuses_autograd(capsys):
    def by_torch(X, W, A, G_A):
        Xt, Wt = torch.tensor(X, requires_grad=True), torch.tensor(W, requires_grad=True)
        bt = torch.tensor(np.arctanh(A[0]) - X[0] @ W.T, requires_grad=True)  # recover b from row 0
        torch.tanh(Xt @ Wt.T + bt).backward(torch.as_tensor(G_A))
        return Xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()

    assert refused("9.6", by_torch, capsys)


# chapter 10 ---------------------------------------------------------------------------------------------
def test_10_1_to_10_3_match_torch():
    assert tuple(get("10.1").solution) == tuple((torch.zeros(7, 1, 5) + torch.zeros(4, 1)).shape)
    assert tuple(get("10.2").solution) == torch.zeros(4, 6).T.stride()
    n = torch.arange(0, 400, dtype=torch.float32)
    exact = n.to(torch.bfloat16).float() == n
    assert get("10.3").solution == int(torch.nonzero(~exact)[0]) - 1  # the last integer before the first miss


def test_10_4_training_step_is_an_sgd_step_on_the_batch_loss():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 4)
    X, y = torch.randn(8, 5), torch.randint(0, 4, (8,))
    before = [p.detach().clone() for p in model.parameters()]
    grads = torch.autograd.grad(F.cross_entropy(model(X), y), list(model.parameters()))
    loss = get("10.4").solution(model, torch.optim.SGD(model.parameters(), lr=0.5), X, y)
    assert math.isclose(loss, F.cross_entropy(torch.nn.functional.linear(X, *before), y).item(), rel_tol=1e-6)
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        assert torch.allclose(p, p0 - 0.5 * g, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_10_5_gradients_keep_the_parameters_dtype_under_autocast(dtype):
    model = torch.nn.Linear(6, 3)
    with torch.autocast("cpu", dtype=dtype):
        logits = model(torch.randn(4, 6))
        loss = F.cross_entropy(logits, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert logits.dtype == dtype and model.weight.grad.dtype == get("10.5").solution


def test_10_6_windows_match_unfold():
    series = torch.randn(30)
    for block in (1, 5, 29):
        data = get("10.6").solution(series, block)
        windows = series.unfold(0, block, 1)[:-1]  # every window that still has a value after it
        assert len(data) == len(windows)
        for i in range(len(data)):
            x, target = data[i]
            assert torch.equal(x, windows[i]) and target == series[i + block]


# chapter 11 ---------------------------------------------------------------------------------------------
def test_11_1_kaiming_std_matches_torch_init():
    w = torch.nn.init.kaiming_normal_(torch.empty(2000, 512), nonlinearity="relu")
    assert math.isclose(get("11.1").solution, torch.nn.init.calculate_gain("relu") / math.sqrt(512))
    assert abs(w.std().item() - get("11.1").solution) < 0.001


def test_11_2_dropout_matches_torch_bit_for_bit():
    x = torch.randn(10_000)
    for p in (0.2, 0.5):
        torch.manual_seed(3)
        ours = get("11.2").solution(x, p, True)
        torch.manual_seed(3)
        assert torch.equal(ours, F.dropout(x, p, training=True))
        assert torch.equal(get("11.2").solution(x, p, False), F.dropout(x, p, training=False))


def test_11_3_batchnorm_eval_matches_torch():
    bn = torch.nn.BatchNorm1d(1, eps=0.0).eval()
    with torch.no_grad():
        bn.running_mean.fill_(2.0), bn.running_var.fill_(4.0), bn.weight.fill_(3.0), bn.bias.fill_(1.0)
    assert math.isclose(bn(torch.tensor([[6.0]])).item(), get("11.3").solution, rel_tol=1e-6)


def test_11_4_learning_rate_matches_torch_schedulers():
    sched = torch.optim.lr_scheduler
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = sched.SequentialLR(
        optimizer,
        [sched.LinearLR(optimizer, 1 / 100, total_iters=99), sched.CosineAnnealingLR(optimizer, 900, 1e-5)],
        milestones=[100],
    )
    for _ in range(550):
        optimizer.step()
        scheduler.step()
    assert math.isclose(optimizer.param_groups[0]["lr"], get("11.4").solution, rel_tol=1e-9)


def test_11_6_prediction_matches_a_plain_stack_at_default_initialisation():
    torch.manual_seed(0)
    width, n_blocks = 64, 20
    blocks = [
        torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width))
        for _ in range(n_blocks)
    ]
    h = torch.randn(512, width)
    inputs = []
    for block in blocks:
        inputs.append(h.requires_grad_() if not h.requires_grad else h)
        h = block(h)
    grads = torch.autograd.grad(h.square().mean(), inputs)
    k = math.log10(grads[-1].norm().item() / grads[0].norm().item())
    assert abs(k - get("11.6").solution) < 1.0  # 19 blocks of 1/sqrt(18): 10^11.9


@pytest.mark.parametrize("shape", [(2, 3, 8), (1, 1, 5), (4, 7, 16)])
def test_11_7_pre_norm_block_matches_torch_modules(shape):
    torch.manual_seed(0)
    C, H = shape[-1], 3 * shape[-1]
    norm, up, down = torch.nn.LayerNorm(C), torch.nn.Linear(C, H), torch.nn.Linear(H, C)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = torch.randn(shape) * 3
    want = x + down(torch.relu(up(norm(x))))
    got = get("11.7").solution(x, norm.weight, norm.bias, up.weight, up.bias, down.weight, down.bias)
    assert torch.allclose(got, want, atol=1e-5)


def test_11_7_refuses_torch_layer_norm_and_the_normalised_skip(capsys):
    def with_torch(x, ln_weight, ln_bias, W1, b1, W2, b2):
        h = F.layer_norm(x, x.shape[-1:], ln_weight, ln_bias)
        return x + torch.relu(h @ W1.T + b1) @ W2.T + b2

    assert refused("11.7", with_torch, capsys)
    assert not passes("11.7", get("11.7").wrong)
    assert F.layer_norm(torch.ones(1, 2), (2,)).abs().sum() == 0  # restored after the check
