"""Pictures of tokenization for chapter 15: text cut into coloured tokens, and what more merges buy.

Over the tokenizers this adds only presentation, with the numbers kept apart from the drawing so a test
can check them: `split_with_merges` says how a text splits when training is stopped after k merges,
`token_layout` places tokens in rows of character cells, and `draw_tokens` draws that layout.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from helpers.tokenizers.base import Tokenizer

VISIBLE = {" ": "·", "\n": "↵", "\t": "→"}  # whitespace drawn so that it can be seen
PALETTE = [plt.cm.tab20(k) for k in range(1, 20, 2) if k != 15]  # the light half of tab20, minus grey


def visible(piece: str) -> str:
    """A token's text with spaces, tabs and newlines made visible."""
    return "".join(VISIBLE.get(c, c) for c in piece)


def count_words(text: str) -> int:
    """Words, for 'tokens per word': runs of non-space characters."""
    return len(text.split())


def split_with_merges(tokenizer: Tokenizer, text: str, num_merges: int) -> dict:
    """How `text` splits using only the first `num_merges` merges: ids, pieces and tokens per word."""
    truncated = tokenizer.truncated(num_merges)
    ids = truncated.encode(text)
    words = count_words(text)
    return {
        "ids": ids,
        "pieces": truncated.pieces(ids),
        "tokens": len(ids),
        "tokens_per_word": len(ids) / words if words else 0.0,
        "bytes_per_token": len(text.encode("utf-8")) / len(ids) if ids else 0.0,
    }


def token_layout(pieces: list[str], width: int = 60) -> list[tuple[int, int, int, str]]:
    """(row, column, cells, label) for each token, filling rows of `width` character cells.

    A token that contains a newline ends its row; a token never straddles two rows."""
    if width < 1:
        raise ValueError(f"width must be at least 1 cell, got {width}")
    layout, row, column = [], 0, 0
    for piece in pieces:
        label = visible(piece)
        cells = max(1, len(label))
        if column and column + cells > width:
            row, column = row + 1, 0
        layout.append((row, column, cells, label))
        column += cells
        if "\n" in piece:
            row, column = row + 1, 0
    return layout


def draw_tokens(
    ax: plt.Axes, pieces: list[str], ids: list[int] | None = None, width: int = 60, rows: int = 1
) -> None:
    """Draw tokens as coloured boxes of character cells (the colour follows the token id when given).

    `rows` is the least number of rows to make room for, so boxes keep their size as a slider moves."""
    layout = token_layout(pieces, width)
    rows = max(rows, 1 + max((row for row, *_ in layout), default=0))
    for k, (row, column, cells, label) in enumerate(layout):
        colour = PALETTE[(ids[k] if ids is not None else k) % len(PALETTE)]
        ax.add_patch(
            plt.Rectangle(
                (column, -row - 0.9), cells, 0.8, facecolor=colour, edgecolor="white", linewidth=1.5
            )
        )
        ax.text(
            column + cells / 2, -row - 0.5, label, ha="center", va="center", family="monospace", fontsize=11
        )
    ax.set(xlim=(0, width), ylim=(-rows - 0.1, 0.1), xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
