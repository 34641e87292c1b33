"""Reading and writing GPT-2's tokenizer files: `vocab.json` and `merges.txt`.

Over `regex.RegexTokenizer` this adds nothing to the algorithm, only the file format that GPT-2 introduced
and Hugging Face `tokenizers` writes (`ByteLevelBPETokenizer.save_model`). Two facts make it work:

- **Tokens are stored as text, one character per byte.** `merges.txt` is a text file with one merge per
  line, "left right", so a token cannot contain a raw space or newline. GPT-2 maps each of the 256 bytes to
  a printable character: the 188 bytes that already print as themselves keep their character, and the
  other 68 (controls, space, a few Latin-1 ones) are moved to code points 256 and up, in order. So a space
  is stored as "Ġ" (U+0120) and a newline as "Ċ" (U+010A). `bytes_to_unicode` builds that table.
- **The line number of a merge is its rank**, and `vocab.json` gives every token string its id. So the
  merge "a b" on line k becomes the book's (id of a, id of b, id of ab) at rank k.

Tokens of vocab.json that are neither bytes nor merge results (such as "<|endoftext|>") are special tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.tokenizers.regex import GPT2_SPLIT_PATTERN, RegexTokenizer


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: byte -> a printable character standing for it (a byte prints as itself if it can)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    moved = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + moved)
            moved += 1
    return table


def token_to_text(token: bytes) -> str:
    """A token's bytes as they are written in vocab.json and merges.txt."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def load_gpt2(
    vocab_path: str | Path, merges_path: str | Path, pattern: str = GPT2_SPLIT_PATTERN
) -> RegexTokenizer:
    """A RegexTokenizer from GPT-2-format files: same chunks, same merges by rank, same ids."""
    try:
        vocab = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{Path(vocab_path).name} is not valid JSON: {error}") from error
    if not isinstance(vocab, dict):
        raise ValueError(f"{Path(vocab_path).name} should map token strings to ids")
    table = bytes_to_unicode()
    missing = [b for b in range(256) if table[b] not in vocab]
    if missing:
        raise ValueError(
            f"{Path(vocab_path).name} has no token for bytes {missing[:5]}: "
            "it is not a byte-level BPE vocabulary"
        )
    byte_ids = [vocab[table[b]] for b in range(256)]
    known = set(byte_ids)
    merges = []
    lines = Path(merges_path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("#version") or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{Path(merges_path).name}:{number}: expected 'left right', got {line!r}")
        left, right = parts
        for token in (left, right, left + right):
            if token not in vocab:
                raise ValueError(f"{Path(merges_path).name}:{number}: {token!r} is not in the vocabulary")
        merges.append((vocab[left], vocab[right], vocab[left + right]))
        known.add(vocab[left + right])
    specials = {text: i for text, i in vocab.items() if i not in known}
    return RegexTokenizer(pattern=pattern, merges=merges, byte_ids=byte_ids, special_tokens=specials)


def save_gpt2(tokenizer: RegexTokenizer, directory: str | Path, prefix: str = "") -> tuple[Path, Path]:
    """Write `vocab.json` and `merges.txt` in GPT-2's format; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    specials = {i: text for text, i in tokenizer.special_tokens.items()}
    vocab = {}
    for i, token in sorted(tokenizer.vocab.items()):
        text = specials.get(i) or token_to_text(token)
        if text in vocab:
            raise ValueError(
                f"ids {vocab[text]} and {i} both stand for {token!r}; GPT-2's format needs one id"
            )
        vocab[text] = i
    lines = ["#version: 0.2"]
    for a, b, _ in tokenizer.merges:
        lines.append(f"{token_to_text(tokenizer.vocab[a])} {token_to_text(tokenizer.vocab[b])}")
    vocab_path = directory / f"{prefix}vocab.json"
    merges_path = directory / f"{prefix}merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vocab_path, merges_path
