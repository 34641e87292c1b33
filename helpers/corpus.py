"""The book's text corpus and the simplest tokenizer: one id per character.

`load_corpus()` returns Python's own documentation (see data/make_corpus.py for why this text), shipped
in data/ and checked against its hash, so every reader trains on exactly the same characters.
`CharVocab` maps characters to ids and back; chapter 15 builds better tokenizers on top of this idea.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from helpers.data import data_path

CORPUS_FILE = "python_docs.txt"


def load_corpus() -> str:
    """The whole corpus as one string (about 465,000 characters), verified against data/MANIFEST.sha256."""
    return data_path(CORPUS_FILE).read_text(encoding="utf-8")


def train_val_split(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """The first `train_fraction` of the text for training, the rest for validation (no shuffling:
    validation text is text the model has never seen, not sentences mixed in from the same pages)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


@dataclass(frozen=True)
class CharVocab:
    """A character-level vocabulary: the sorted set of characters, each with its index as id."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        if not text:
            raise ValueError("cannot build a vocabulary from empty text")
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}")
        return [index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.size]
        if bad:
            raise ValueError(f"ids outside 0..{self.size - 1}: {bad[:10]}")
        return "".join(self.chars[i] for i in ids)

    def tensor(self, text: str) -> torch.Tensor:
        """The text as a 1-D tensor of ids (int64)."""
        return torch.tensor(np.array(self.encode(text), dtype=np.int64))
