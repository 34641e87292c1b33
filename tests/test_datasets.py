"""Chapter 10's digits Dataset and DataLoaders: the right items, batches, shuffling and errors."""

import numpy as np
import pytest
import torch

from helpers.datasets import DigitsDataset, digits_loaders
from helpers.digits import load_digits_split


def test_dataset_items_are_the_split_rows():
    split = load_digits_split()
    ds = DigitsDataset(split.X_train, split.y_train)
    assert len(ds) == len(split.X_train)
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(ds), 10):
        x, y = ds[int(i)]
        assert x.shape == (64,) and x.dtype == torch.float32 and y.dtype == torch.long and y.shape == ()
        np.testing.assert_allclose(x.numpy(), split.X_train[i], rtol=1e-6)
        assert int(y) == split.y_train[i]
    x, _ = DigitsDataset(split.X_train, split.y_train, images=True)[0]
    assert x.shape == (1, 8, 8)


def test_loaders_batch_cover_everything_and_shuffle_reproducibly():
    train, test = digits_loaders(batch_size=100, seed=3)
    batches = list(train)
    assert [len(y) for _, y in batches[:-1]] == [100] * (len(batches) - 1)
    X0, y0 = batches[0]
    assert X0.shape == (100, 64) and y0.shape == (100,)
    split = load_digits_split()
    seen = torch.cat([y for _, y in batches])
    assert torch.equal(seen.sort().values, torch.as_tensor(split.y_train).sort().values)  # a permutation
    assert not torch.equal(seen, torch.as_tensor(split.y_train))  # shuffled
    again = torch.cat([y for _, y in digits_loaders(batch_size=100, seed=3)[0]])
    assert torch.equal(seen, again)  # same seed, same order
    second_epoch = torch.cat([y for _, y in train])
    assert not torch.equal(seen, second_epoch)  # a new order every epoch
    assert torch.equal(torch.cat([y for _, y in test]), torch.as_tensor(split.y_test))  # test is not shuffled


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: DigitsDataset(np.zeros((5, 63)), np.zeros(5)), r"\(N, 64\)"),
        (lambda: DigitsDataset(np.zeros((5, 64)), np.zeros(4)), r"shape \(5,\)"),
        (lambda: digits_loaders(batch_size=0), "at least 1"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
