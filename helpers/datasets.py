"""The digits as a PyTorch `Dataset`, and DataLoaders over it (chapter 10).

`helpers.digits` fixes the book's split as numpy arrays; this module adds the two objects PyTorch's
data pipeline is built from: a `Dataset` (a length and "give me example i") and a `DataLoader` (shuffle,
batch and collate those examples). Shuffling uses its own seeded generator, so two runs see the same
batches in the same order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from helpers.digits import SIDE, load_digits_split


class DigitsDataset(Dataset):
    """Digit images and their labels: item i is (image as a float32 (64,) tensor, label as a long scalar)."""

    def __init__(self, X: np.ndarray, y: np.ndarray, images: bool = False):
        X, y = np.asarray(X), np.asarray(y)
        if X.ndim != 2 or X.shape[1] != SIDE * SIDE:
            raise ValueError(f"X must have shape (N, {SIDE * SIDE}), got {X.shape}")
        if y.shape != (len(X),):
            raise ValueError(f"y must have shape ({len(X)},) to match X, got {y.shape}")
        self.X = torch.as_tensor(X, dtype=torch.float32)  # (N, 64)
        if images:
            self.X = self.X.reshape(-1, 1, SIDE, SIDE)  # (N, 1, 8, 8)
        self.y = torch.as_tensor(y, dtype=torch.long)  # (N,)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i]  # (64,) or (1, 8, 8), ()


def digits_loaders(
    batch_size: int = 32, seed: int = 0, images: bool = False
) -> tuple[DataLoader, DataLoader]:
    """(train, test) DataLoaders over the book's digits split; train shuffles with a seeded generator."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    split = load_digits_split()
    train = DigitsDataset(split.X_train, split.y_train, images=images)
    test = DigitsDataset(split.X_test, split.y_test, images=images)
    shuffler = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=shuffler),
        DataLoader(test, batch_size=256, shuffle=False),
    )
