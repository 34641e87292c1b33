"""The digits as a PyTorch `Dataset` (chapter 10).

`helpers.digits` fixes the book's split as numpy arrays; this module adds the object PyTorch's data
pipeline starts from: a `Dataset` (a length and "give me example i"), which a `DataLoader` then shuffles,
batches and collates (chapter 10 builds its loaders in the notebook, with a seeded generator).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from helpers.digits import SIDE


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
