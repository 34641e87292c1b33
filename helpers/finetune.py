"""Fine-tuning a pretrained GPT (chapter 20), part 1: a classification head.

What this module adds over helpers.gpt (the model) and helpers.checkpoints (the pretrained model):

    block_kind, is_python,                     a 3-class text task made from the corpus: is a window of
    snippet_dataset(text, ...)                 characters prose, a code example (a paragraph that compiles),
                                               or an interactive session (">>>")? Test windows come from
                                               held-out paragraphs
    token_windows(tokenizer, texts, n)         the first n tokens of each text, as one (N, n) tensor
    GPTClassifier(gpt, n_classes, pool)        the GPT body with its language-model head swapped for a
                                               small Linear class head on the last (or mean) hidden state
    freeze(module)                             switch training off for a part of a model (count what still
                                               trains with helpers.train.trainable_parameters)

Instruction tuning is helpers.instructions; low-rank adapters are helpers.lora.
"""

from __future__ import annotations

import random
import re
import textwrap
import warnings
from collections.abc import Sequence

import torch
from torch import nn

CLASSES = ("prose", "code", "session")


HEADING_RULE = re.compile(r"^[*=~^-]{3,}$")  # the line of stars or equals signs under a heading


def is_python(block: str) -> bool:
    """Whether a paragraph, dedented, is Python that compiles (for an interactive session: the lines after
    the ">>> " and "... " prompts, without the printed results). Prose never compiles."""
    lines = textwrap.dedent(block).rstrip("\n").split("\n")
    if any(line.startswith(">>>") for line in lines):
        lines = [line[4:] for line in lines if line.startswith((">>>", "..."))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "is" with a literal in an example
        try:
            compile("\n".join(lines) + "\n", "<corpus>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def block_kind(block: str) -> str | None:
    """The kind of one paragraph of the corpus (lines between blank lines), or None if it is none of them.

    code and session: every line is indented (the docs indent their examples) and the paragraph compiles
    as Python (is_python) - "session" if it is an interactive session (">>> " prompts), "code" if not. The
    docs also indent plenty of prose (a method's description under its signature, "Changed in version
    ..."), which must not count as code. prose: no line is indented, no line underlines a heading, and it
    reads as a sentence: three lower-case words in a row, ending in "." or ":". Anything else (lists,
    tables, signatures, headings) is None.
    """
    lines = block.rstrip("\n").split("\n")
    if all(line.startswith("   ") for line in lines):
        if not is_python(block):
            return None
        return "session" if textwrap.dedent(block).startswith(">>>") else "code"
    if (
        not any(line.startswith(" ") for line in lines)
        and not any(HEADING_RULE.match(line) for line in lines)
        and re.search("[a-z]+ [a-z]+ [a-z]+", block)
        and block.rstrip()[-1] in ".:"
    ):
        return "prose"
    return None


def snippet_dataset(
    text: str,
    length: int = 48,
    per_class: tuple[int, int] = (200, 100),
    test_fraction: float = 0.3,
    seed: int = 0,
) -> tuple[list[str], list[int], list[str], list[int]]:
    """Train and test snippets of `length` characters, labelled by CLASSES index, balanced per class.

    The paragraphs of `text` are labelled with `block_kind` (a paragraph that occurs twice is kept once) and
    shuffled with `seed`; a `test_fraction` of each class's paragraphs is held out, so a test snippet never
    shares a paragraph with a training one.
    Whitespace is collapsed to single spaces first, so the indentation of code cannot give the class away.
    Returns (train_texts, train_labels, test_texts, test_labels); per_class = (train, test) snippets.
    """
    if length < 1 or min(per_class) < 1 or not 0 < test_fraction < 1:
        raise ValueError(
            f"need length >= 1, per_class >= 1 and 0 < test_fraction < 1, got {length}, {per_class}"
        )
    rng = random.Random(seed)
    blocks: dict[str, list[str]] = {kind: [] for kind in CLASSES}
    seen: set[str] = set()
    for match in re.finditer(r"(?:[^\n]+\n?)+", text):  # paragraphs: runs of non-empty lines
        kind = block_kind(match.group())
        flat = " ".join(match.group().split())
        if kind is not None and len(flat) >= length and flat not in seen:  # a repeated paragraph once
            seen.add(flat)
            blocks[kind].append(flat)
    splits: tuple[list[str], list[int], list[str], list[int]] = ([], [], [], [])
    for label, kind in enumerate(CLASSES):
        paragraphs = blocks[kind]
        rng.shuffle(paragraphs)
        n_test = max(1, round(test_fraction * len(paragraphs)))
        if len(paragraphs) - n_test < 1:
            raise ValueError(f"too few {kind} paragraphs of >= {length} characters ({len(paragraphs)})")
        for part, (texts, labels), n in (
            (paragraphs[n_test:], (splits[0], splits[1]), per_class[0]),
            (paragraphs[:n_test], (splits[2], splits[3]), per_class[1]),
        ):
            for i in range(n):  # cycle through the paragraphs, a random window from each
                p = part[i % len(part)]
                start = rng.randrange(len(p) - length + 1)
                texts.append(p[start : start + length])
                labels.append(label)
    return splits


class GPTClassifier(nn.Module):
    """A pretrained GPT body with a classification head: token ids (B, T) -> class logits (B, n_classes).

    The language-model head (hidden state -> next-token logits) is replaced by nn.Identity, so the body
    returns its final hidden states (B, T, C); `pool` reduces them to one vector per sequence - "last": the
    hidden state at the last position (in a causal model the only one that has read the whole input), or
    "mean": the average over positions - and `head`, a fresh nn.Linear(C, n_classes), scores the classes.
    The GPT passed in is changed in place (its lm_head replaced): pass a copy to keep the original.
    """

    def __init__(self, gpt: nn.Module, n_classes: int, pool: str = "last"):
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
        gpt.lm_head = nn.Identity()  # the body now outputs hidden states, not vocabulary logits
        self.body = gpt
        self.pool = pool
        self.head = nn.Linear(gpt.config.n_embd, n_classes)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """One vector per sequence: (B, T) ids -> (B, C)."""
        hidden, _ = self.body(idx)  # (B, T, C)
        return hidden[:, -1, :] if self.pool == "last" else hidden.mean(dim=1)  # (B, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(idx))  # (B, n_classes)


def token_windows(tokenizer, texts: Sequence[str], n_tokens: int) -> torch.Tensor:
    """The first n_tokens token ids of each text, stacked: (N, n_tokens). A BPE tokenizer makes a different
    number of tokens from each window of characters; cutting them to one length makes a batch without
    padding. Raises ValueError naming a text that has fewer tokens."""
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be at least 1, got {n_tokens}")
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        if len(ids) < n_tokens:
            raise ValueError(f"{text!r} has {len(ids)} tokens, fewer than n_tokens = {n_tokens}")
        rows.append(ids[:n_tokens])
    return torch.tensor(rows, dtype=torch.long)  # (N, n_tokens)


def freeze(module: nn.Module) -> nn.Module:
    """Stop training every parameter of `module` (requires_grad = False); returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module
