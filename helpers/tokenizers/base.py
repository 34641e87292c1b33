"""What every tokenizer in the book shares: bytes, an ordered list of merges, encode, decode, save, load.

A byte-level BPE tokenizer is fully described by three things:

- `byte_ids`: the id of each of the 256 possible bytes (the identity, 0..255, for the book's own
  tokenizers; a shuffled order for files in GPT-2's format);
- `merges`: `(a, b, new_id)` triples in the order they were learned. The position of a merge in the list is
  its *rank*; encoding applies the lowest-ranked merge first, exactly as training learned them;
- `special_tokens`: strings such as `<|endoftext|>` that get one reserved id and never come out of merges.

This module cannot learn merges (`basic.py` adds training) and treats text as one long chunk (`regex.py`
adds a pre-tokenizer). What it adds is the machinery the others build on: `pair_counts` and `merge_pair`
(the two steps of the BPE loop), encoding one chunk by merge rank with a cache, decoding ids back to bytes
and text, and saving to / loading from the book's own JSON format:

    {"format": "book-bpe", "version": 1, "kind": "RegexTokenizer",
     "pattern": "...",                      # the pre-tokenizer's regex (null for one-chunk tokenizers)
     "byte_ids": [0, 1, ..., 255],          # id of byte 0, byte 1, ...
     "merges": [[104, 101, 256], ...],      # [a, b, new_id], rank order
     "special_tokens": {"<|endoftext|>": 512}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

FORMAT, VERSION = "book-bpe", 1
CACHE_LIMIT = 100_000  # chunks remembered by encode before the cache is emptied


def pair_counts(
    ids: Sequence[int], counts: dict | None = None, weight: int = 1
) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in `ids`, added (times `weight`) into `counts` if given."""
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """`ids` with every occurrence of `pair`, scanned left to right, replaced by `new_id`."""
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def utf8(text: str) -> bytes:
    """The UTF-8 bytes of `text`, or a clear error for a surrogate (a str can hold one; UTF-8 cannot)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"the text holds U+{ord(text[error.start]):04X}, a surrogate (half of a UTF-16 pair, not a "
            "character), which UTF-8 cannot encode. Repair the text first, as tiktoken does: "
            "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace')"
        ) from error


class Tokenizer:
    """Byte-level BPE with fixed merges: encode text to ids and decode ids to text (no training here)."""

    kinds: ClassVar[dict[str, type[Tokenizer]]] = {}  # class name -> class, for `load`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Tokenizer.kinds[cls.__name__] = cls

    def __init__(
        self,
        merges: Iterable[tuple[int, int, int]] = (),
        byte_ids: Sequence[int] | None = None,
        special_tokens: dict[str, int] | None = None,
    ):
        self.set_vocabulary(merges, byte_ids, special_tokens)

    # --- the vocabulary -------------------------------------------------------------------------------

    def set_vocabulary(
        self,
        merges: Iterable[tuple[int, int, int]] = (),
        byte_ids: Sequence[int] | None = None,
        special_tokens: dict[str, int] | None = None,
    ) -> None:
        """Replace bytes, merges and special tokens, checking that they describe a consistent vocabulary."""
        byte_ids = list(range(256)) if byte_ids is None else [int(i) for i in byte_ids]
        if len(byte_ids) != 256 or len(set(byte_ids)) != 256:
            raise ValueError(f"byte_ids needs 256 distinct ids, one per byte; got {len(set(byte_ids))}")
        vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}
        checked = []
        for rank, merge in enumerate(merges):
            if len(merge) != 3:
                raise ValueError(f"merge {rank} should be (a, b, new_id), got {merge!r}")
            a, b, new = (int(x) for x in merge)
            if a not in vocab or b not in vocab:
                raise ValueError(f"merge {rank} {merge!r} joins an id that no earlier byte or merge defines")
            if new in vocab:
                raise ValueError(f"merge {rank} {merge!r} reuses id {new}, which is already taken")
            vocab[new] = vocab[a] + vocab[b]
            checked.append((a, b, new))
        specials = dict(special_tokens or {})
        for text, i in specials.items():
            if not isinstance(text, str) or not text:
                raise ValueError(f"special tokens are non-empty strings, got {text!r}")
            if int(i) in vocab:
                raise ValueError(f"special token {text!r} has id {i}, which is already taken")
            vocab[int(i)] = text.encode("utf-8")
        self.byte_ids = tuple(byte_ids)
        self.merges = checked
        self.special_tokens = {text: int(i) for text, i in specials.items()}
        self.vocab = vocab  # id -> the bytes it stands for
        self._ranks = {(a, b): (rank, new) for rank, (a, b, new) in enumerate(checked)}
        self._cache: dict[str, list[int]] = {}
        longest_first = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = (
            re.compile("(" + "|".join(map(re.escape, longest_first)) + ")") if specials else None
        )

    @property
    def vocab_size(self) -> int:
        """How many ids: 256 bytes + one per merge + the special tokens."""
        return len(self.vocab)

    def truncated(self, num_merges: int) -> Tokenizer:
        """A copy that knows only the first `num_merges` merges (what training had learned by then)."""
        if not 0 <= num_merges <= len(self.merges):
            raise ValueError(f"num_merges must be between 0 and {len(self.merges)}, got {num_merges}")
        return type(self).from_dict({**self.to_dict(), "merges": self.merges[:num_merges]})

    # --- encoding -------------------------------------------------------------------------------------

    def pre_tokenize(self, text: str) -> list[str]:
        """Cut text into chunks that merges may not cross. Here: the whole text is one chunk."""
        return [text] if text else []

    def encode_chunk(self, chunk: bytes) -> list[int]:
        """One chunk's bytes to ids: apply the lowest-ranked merge present, everywhere, until none applies."""
        ids = [self.byte_ids[b] for b in chunk]
        ranks = self._ranks
        while len(ids) > 1:
            pair = min(pairwise(ids), key=lambda p: ranks.get(p, (len(ranks),)))
            if pair not in ranks:
                break  # no pair in the chunk was ever merged
            ids = merge_pair(ids, pair, ranks[pair][1])
        return ids

    def split_special(self, text: str, allow_special: bool = True) -> list[tuple[str, bool]]:
        """[(piece, is_special)]: the text cut around special tokens (none when allow_special is False)."""
        if not allow_special or self._special_re is None:
            return [(text, False)] if text else []
        pieces = self._special_re.split(text)  # odd positions are the special tokens themselves
        return [(piece, k % 2 == 1) for k, piece in enumerate(pieces) if piece]

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Text to token ids. With allow_special=False a special token's text is encoded as ordinary text.

        A str holding a surrogate (U+D800 to U+DFFF) is refused with a ValueError: see `utf8`."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        ids: list[int] = []
        cache = self._cache
        for piece, special in self.split_special(text, allow_special):
            if special:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in self.pre_tokenize(piece):
                cached = cache.get(chunk)
                if cached is None:
                    if len(cache) >= CACHE_LIMIT:
                        cache.clear()
                    cached = cache[chunk] = self.encode_chunk(utf8(chunk))
                ids.extend(cached)
        return ids

    # --- decoding -------------------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids to the bytes they stand for, concatenated."""
        out = []
        for i in ids:
            piece = self.vocab.get(int(i))
            if piece is None:
                raise ValueError(f"token id {i} is not in the vocabulary (ids are 0..{max(self.vocab)})")
            out.append(piece)
        return b"".join(out)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Ids to text. Invalid UTF-8 (half a character) becomes U+FFFD, or an error if errors="strict"."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Each token on its own, as text (a token that holds part of a character shows as U+FFFD)."""
        return [self.decode([i]) for i in ids]

    # --- saving and loading ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, as plain JSON-ready data."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "kind": type(self).__name__,
            "pattern": None,
            "byte_ids": list(self.byte_ids),
            "merges": [list(m) for m in self.merges],
            "special_tokens": dict(self.special_tokens),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        """The tokenizer that `to_dict` described, of the class it names."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} tokenizer file (it has no 'format': '{FORMAT}')")
        if data.get("version") != VERSION:
            raise ValueError(f"{FORMAT} version {data.get('version')!r} is not supported (this is {VERSION})")
        kinds = {"Tokenizer": Tokenizer, **Tokenizer.kinds}
        kind = kinds.get(data.get("kind"))
        if kind is None:
            raise ValueError(f"unknown tokenizer kind {data.get('kind')!r}; known kinds are {sorted(kinds)}")
        if not issubclass(kind, cls):
            raise ValueError(f"the data describes a {kind.__name__}, which is not a {cls.__name__}")
        arguments = {key: data[key] for key in ("merges", "byte_ids", "special_tokens")}
        if data.get("pattern") is not None:
            arguments["pattern"] = data["pattern"]
        return kind(**arguments)

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer to `path` as JSON (the format in this module's docstring)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a tokenizer that `save` wrote."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{Path(path).name} is not valid JSON: {error}") from error
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={sorted(self.special_tokens)})"
        )
