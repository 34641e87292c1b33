"""helpers.sparsity: exact counts, the 2:4 pattern, and pruning a GPT's Linear layers."""

import pytest
import torch
from torch import nn

from helpers.gpt import GPT, GPTConfig
from helpers.sparsity import magnitude_mask, n_m_mask, prune_linears, sparsity


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_magnitude_mask_zeroes_exactly_the_smallest(amount):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(30, 17, generator=g)
    keep = magnitude_mask(w, amount)
    assert (~keep).sum() == round(amount * w.numel())
    if keep.any() and (~keep).any():
        assert w[keep].abs().min() >= w[~keep].abs().max()
    # oracle: torch's own pruning utility picks the same entries (no ties in random floats)
    prune = pytest.importorskip("torch.nn.utils.prune")
    layer = nn.Linear(17, 30, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    prune.l1_unstructured(layer, "weight", amount=amount)
    assert torch.equal(layer.weight_mask.bool(), keep)


def test_magnitude_mask_counts_ties_exactly():
    keep = magnitude_mask(torch.ones(10), 0.3)
    assert keep.sum() == 7


def test_two_four_mask_keeps_two_per_group_of_four_the_largest():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(12, 32, generator=g)
    keep = n_m_mask(w, 2, 4)
    groups = keep.reshape(-1, 4)
    assert (groups.sum(-1) == 2).all()
    mags = w.abs().reshape(-1, 4)
    kept_min = mags.masked_fill(~groups, float("inf")).amin(-1)
    dropped_max = mags.masked_fill(groups, -1.0).amax(-1)
    assert (kept_min >= dropped_max).all()
    assert sparsity(w * keep) == 0.5
    assert (n_m_mask(w, 1, 8).reshape(-1, 8).sum(-1) == 1).all()


def test_prune_linears_prunes_copies_and_spares_the_head():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=8, n_layer=2, n_head=2, n_embd=32))
    for method, amount, want in (("magnitude", 0.75, 0.75), ("2:4", 0.0, 0.5)):
        pruned = prune_linears(model, method, amount)
        for name, m in pruned.named_modules():
            if isinstance(m, nn.Linear) and not name.endswith("lm_head"):
                assert sparsity(m.weight) == want
        assert sparsity(pruned.lm_head.weight) == 0.0
    assert sparsity(model.transformer.h[0].mlp.c_fc.weight) == 0.0  # the original is untouched


def test_bad_input_is_a_clear_error():
    w = torch.randn(4, 6)
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(w, 1.5)
    with pytest.raises(ValueError, match="multiple of m=4"):
        n_m_mask(w)
    with pytest.raises(ValueError, match="0 < n <= m"):
        n_m_mask(torch.randn(4, 8), 5, 4)
    with pytest.raises(ValueError, match="floating-point"):
        magnitude_mask(torch.ones(4, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="method"):
        prune_linears(nn.Linear(4, 4), "random")
