"""Chapter 11's LayerNorm and BatchNorm1d against torch.nn, on random inputs: outputs, gradients, state."""

import pytest
import torch
import torch.nn.functional as F

from helpers.normalization import BatchNorm1d, LayerNorm, RMSNorm, layer_norm, rms_norm

SEEDS = range(8)
DT = torch.float64


def random_shape(g: torch.Generator) -> tuple[int, ...]:
    rank = int(torch.randint(1, 4, (1,), generator=g))
    return tuple(int(s) for s in torch.randint(2, 7, (rank,), generator=g))


@pytest.mark.parametrize("seed", SEEDS)
def test_layer_norm_function_matches_torch(seed):
    g = torch.Generator().manual_seed(seed)
    shape = random_shape(g)
    C = shape[-1]
    x = 3 * torch.randn(shape, generator=g, dtype=DT) + 2
    w, b = torch.randn(C, generator=g, dtype=DT), torch.randn(C, generator=g, dtype=DT)
    torch.testing.assert_close(layer_norm(x, w, b), F.layer_norm(x, (C,), w, b))
    torch.testing.assert_close(layer_norm(x, None, None, eps=1e-3), F.layer_norm(x, (C,), eps=1e-3))
    torch.testing.assert_close(layer_norm(x, w, None), F.layer_norm(x, (C,), w, None))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_module_matches_torch_forward_and_backward(seed, bias):
    g = torch.Generator().manual_seed(seed)
    B, T, C = (int(s) for s in torch.randint(1, 6, (3,), generator=g))
    C += 1
    ours, theirs = LayerNorm(C, bias=bias).to(DT), torch.nn.LayerNorm(C, bias=bias).to(DT)
    with torch.no_grad():  # move away from the ones/zeros start so the affine part is tested
        theirs.weight.normal_(generator=g)
        if bias:
            theirs.bias.normal_(generator=g)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, T, C, generator=g, dtype=DT)  # (B, T, C)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(B, T, C, generator=g, dtype=DT)
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2)
    (y1 * upstream).sum().backward()
    (y2 * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
    if bias:
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad)


def test_layer_norm_contract_gpt2_parameter_names():
    ln = LayerNorm(8)
    assert [name for name, _ in ln.named_parameters()] == ["weight", "bias"]
    assert ln.weight.shape == (8,) and torch.equal(ln.weight, torch.ones(8))
    assert torch.equal(ln.bias, torch.zeros(8))
    no_bias = LayerNorm(8, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert set(ln.state_dict()) == set(torch.nn.LayerNorm(8).state_dict())
    block = torch.nn.ModuleDict({"ln_1": LayerNorm(4)})
    assert set(block.state_dict()) == {"ln_1.weight", "ln_1.bias"}


def test_layer_norm_output_has_zero_mean_unit_variance_per_row():
    x = torch.randn(50, 16, dtype=DT) * 10 + 5
    y = LayerNorm(16).to(DT)(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(50, dtype=DT), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(50, dtype=DT), atol=1e-5, rtol=0)


def _pair(C, g, affine=True, momentum=0.1):
    ours, theirs = BatchNorm1d(C, momentum=momentum, affine=affine).to(DT), None
    theirs = torch.nn.BatchNorm1d(C, momentum=momentum, affine=affine).to(DT)
    if affine:
        with torch.no_grad():
            theirs.weight.normal_(generator=g)
            theirs.bias.normal_(generator=g)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("with_length", [False, True])
def test_batch_norm_train_mode_matches_torch_outputs_grads_and_running_stats(seed, with_length):
    g = torch.Generator().manual_seed(seed)
    C = int(torch.randint(1, 7, (1,), generator=g))
    momentum = float(torch.rand(1, generator=g)) * 0.5 + 0.05
    ours, theirs = _pair(C, g, momentum=momentum)
    for _ in range(4):  # several steps, so the running averages are compared after repeated updates
        N = int(torch.randint(2, 9, (1,), generator=g))
        shape = (N, C, int(torch.randint(1, 5, (1,), generator=g))) if with_length else (N, C)
        x = 2 * torch.randn(shape, generator=g, dtype=DT) - 1
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        upstream = torch.randn(shape, generator=g, dtype=DT)
        y1, y2 = ours(x1), theirs(x2)
        torch.testing.assert_close(y1, y2)
        (y1 * upstream).sum().backward()
        (y2 * upstream).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad)
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 4


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_eval_mode_uses_running_stats_like_torch(seed):
    g = torch.Generator().manual_seed(seed)
    C = int(torch.randint(1, 7, (1,), generator=g))
    ours, theirs = _pair(C, g)
    for _ in range(3):
        x = torch.randn(16, C, generator=g, dtype=DT) * 3 + 4
        ours(x), theirs(x)
    ours.eval(), theirs.eval()
    x = torch.randn(5, C, generator=g, dtype=DT).requires_grad_()
    y = ours(x)
    torch.testing.assert_close(y, theirs(x))
    # in eval mode each example is normalised on its own: the first row's output ignores the others
    torch.testing.assert_close(ours(x[:1]), y[:1])
    before = ours.running_mean.clone()
    ours(x)
    assert torch.equal(before, ours.running_mean), "eval mode must not update the running statistics"
    # gradient in eval mode is the affine map through fixed statistics
    x2 = x.detach().clone().requires_grad_()
    ours(x).sum().backward()
    theirs(x2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_batch_norm_without_affine_matches_torch():
    g = torch.Generator().manual_seed(0)
    ours, theirs = _pair(3, g, affine=False)
    assert ours.weight is None and ours.bias is None and list(ours.parameters()) == []
    x = torch.randn(10, 3, generator=g, dtype=DT)
    torch.testing.assert_close(ours(x), theirs(x))
    assert set(ours.state_dict()) == set(theirs.state_dict())


def test_batch_norm_train_output_is_standardised_per_feature():
    x = torch.randn(64, 5, dtype=DT) * torch.tensor([1.0, 10, 0.5, 3, 100], dtype=DT) + 7
    y = BatchNorm1d(5).to(DT)(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(5, dtype=DT), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.var(0, unbiased=False), torch.ones(5, dtype=DT), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: LayerNorm(0), "positive int"),
        (lambda: LayerNorm(4, eps=0.0), "eps must be positive"),
        (lambda: LayerNorm(4)(torch.randn(2, 5)), r"LayerNorm\(4\) got input of shape \(2, 5\)"),
        (lambda: layer_norm(torch.randn(2, 3), torch.ones(4), None), "weight has shape"),
        (lambda: layer_norm(torch.tensor(1.0), None, None), "scalar"),
        (lambda: BatchNorm1d(-1), "positive int"),
        (lambda: BatchNorm1d(3, momentum=1.5), "momentum"),
        (lambda: BatchNorm1d(3)(torch.randn(4, 2)), r"expects \(N, 3\)"),
        (lambda: BatchNorm1d(3)(torch.randn(1, 3)), "more than one value"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- RMSNorm (chapter 17's modern block) ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_rms_norm_matches_torch(seed):
    g = torch.Generator().manual_seed(seed)
    shape = random_shape(g)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.randn(shape[-1], generator=g, dtype=torch.float64)
    torch.testing.assert_close(rms_norm(x, w, 1e-6), F.rms_norm(x, (shape[-1],), w, 1e-6))
    torch.testing.assert_close(rms_norm(x, None, 0.1), F.rms_norm(x, (shape[-1],), None, 0.1))
    ours, theirs = RMSNorm(shape[-1], eps=1e-5).double(), torch.nn.RMSNorm(shape[-1], eps=1e-5).double()
    with torch.no_grad():
        ours.weight.copy_(w)
        theirs.weight.copy_(w)
    torch.testing.assert_close(ours(x), theirs(x))
    assert list(dict(ours.named_parameters())) == ["weight"]  # no bias, one statistic fewer than LayerNorm


def test_rms_norm_keeps_the_dtype_and_differs_from_layer_norm_only_by_the_mean():
    x = torch.randn(5, 16)
    assert rms_norm(x.bfloat16(), torch.ones(16, dtype=torch.bfloat16)).dtype == torch.bfloat16
    centred = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(rms_norm(centred, None, 1e-5), layer_norm(x, None, None, 1e-5))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: RMSNorm(0), "positive int"),
        (lambda: RMSNorm(4, eps=0), "eps must be positive"),
        (lambda: RMSNorm(4)(torch.ones(2, 3)), r"RMSNorm\(4\)"),
        (
            lambda: rms_norm(torch.ones(2, 3), torch.ones(4)),
            "last dimension is 3",
        ),
        (lambda: rms_norm(torch.tensor(1.0), None), "scalar"),
    ],
)
def test_rms_norm_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
