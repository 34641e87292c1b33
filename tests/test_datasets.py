"""Chapter 10's digits Dataset: the right items, and clear errors."""

import numpy as np
import pytest
import torch

from helpers.datasets import DigitsDataset
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


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: DigitsDataset(np.zeros((5, 63)), np.zeros(5)), r"\(N, 64\)"),
        (lambda: DigitsDataset(np.zeros((5, 64)), np.zeros(4)), r"shape \(5,\)"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
