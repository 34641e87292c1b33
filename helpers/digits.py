"""scikit-learn's handwritten digits (1,797 images, 8x8, ten classes), split the one way the book uses.

They ship inside scikit-learn, so every chapter that needs real images works offline. One fixed,
stratified split keeps accuracies comparable from chapter to chapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SIDE = 8  # pixels per side
MAX_BRIGHTNESS = 16.0  # the raw pixel values run 0..16


@dataclass(frozen=True)
class DigitsSplit:
    """Images scaled to [0, 1] as rows of 64 (`X_*`, shape (N, 64)) and labels 0..9 (`y_*`, shape (N,))."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray

    def images(self, part: str = "train") -> np.ndarray:
        """The same pixels as (N, 8, 8) images."""
        X = {"train": self.X_train, "test": self.X_test}[part]
        return X.reshape(-1, SIDE, SIDE)

    def tensors(
        self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, images: bool = False
    ):
        """(X_train, X_test, y_train, y_test) as torch tensors; `images=True` gives X as (N, 1, 8, 8)."""
        shape = (-1, 1, SIDE, SIDE) if images else (-1, SIDE * SIDE)
        X_train = torch.as_tensor(self.X_train, dtype=dtype, device=device).reshape(shape)
        X_test = torch.as_tensor(self.X_test, dtype=dtype, device=device).reshape(shape)
        y_train = torch.as_tensor(self.y_train, dtype=torch.long, device=device)
        y_test = torch.as_tensor(self.y_test, dtype=torch.long, device=device)
        return X_train, X_test, y_train, y_test


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """The digits, scaled to [0, 1], split into train and test with every class in proportion."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    digits = load_digits()
    X = digits.data.astype(np.float64) / MAX_BRIGHTNESS  # (1797, 64)
    y = digits.target.astype(np.int64)  # (1797,)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return DigitsSplit(X_train, X_test, y_train, y_test)
