"""The shipped corpus and the character vocabulary."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers.corpus import CharVocab, load_corpus, train_val_split


def test_corpus_is_the_shipped_text():
    text = load_corpus()
    assert 400_000 < len(text) < 600_000
    assert "assert" in text and "def " in text


def test_split_keeps_order_and_everything():
    train, val = train_val_split("abcdefghij", 0.8)
    assert (train, val) == ("abcdefgh", "ij")
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split("abc", 1.0)


@given(st.text(min_size=1))
def test_char_vocab_round_trips_any_text(text):
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert all(0 <= i < vocab.size for i in ids)
    assert torch.equal(vocab.tensor(text), torch.tensor(ids, dtype=torch.long))


def test_char_vocab_errors_are_clear():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("abd")
    with pytest.raises(ValueError, match="outside 0..2"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="empty"):
        CharVocab.from_text("")
