"""Learning merges: byte pair encoding trained from scratch, fast enough for a megabyte of text.

Over `base.Tokenizer` this adds *training*. `train_bpe` is the BPE loop - count adjacent pairs, merge the
most frequent one into a new id, repeat - without its usual cost. The straightforward loop recounts every
pair of the whole text after every merge; here:

- the text arrives as distinct chunks with their frequencies, so a chunk seen 5,000 times is counted once
  (weighted by 5,000);
- a table `counts` (pair -> occurrences) and an index `where` (pair -> the chunks that contain it) are kept
  up to date, so a merge only touches the chunks that hold the merged pair;
- the most frequent pair comes off a heap whose stale entries are skipped (or, `strategy="max"`, from a
  scan of the table). Ties go to the smallest pair, so the result is deterministic.

`BasicTokenizer` trains on text as it is: the whole text is one chunk, so merges are free to cross spaces
and punctuation (`regex.py` fixes that).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

from tqdm.auto import tqdm

from helpers.tokenizers.base import Tokenizer, merge_pair, utf8

Pair = tuple[int, int]


def most_frequent(counts: dict[Pair, int], heap: list | None) -> tuple[Pair | None, int]:
    """(pair, count) with the highest count, ties to the smallest pair; (None, 0) when no pair is left.

    With a heap of (-count, pair) entries, an entry is trusted only if it still holds the pair's count;
    a stale one is pushed back with the current count. Without a heap, scan the whole table."""
    if heap is None:
        if not counts:
            return None, 0
        best = max(counts.values())
        return min(pair for pair, n in counts.items() if n == best), best
    while heap:
        negative, pair = heapq.heappop(heap)
        n = counts.get(pair, 0)
        if n == -negative:
            return pair, n
        if n:
            heapq.heappush(heap, (-n, pair))  # counts only fall, so the true count is lower: re-file it
    return None, 0


def train_bpe(
    chunk_counts: dict[bytes, int],
    num_merges: int,
    first_id: int = 256,
    strategy: str = "heap",
    progress: bool = False,
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Learn up to `num_merges` merges from {chunk bytes: frequency}; returns (merges, count of each merge).

    Merges never cross chunk boundaries. Fewer merges come back if the chunks run out of pairs."""
    if num_merges < 0:
        raise ValueError(f"num_merges must be at least 0, got {num_merges}")
    if strategy not in ("heap", "max"):
        raise ValueError(f"strategy must be 'heap' or 'max', got {strategy!r}")
    words = [list(chunk) for chunk in chunk_counts]  # each distinct chunk as a list of ids
    freqs = list(chunk_counts.values())
    counts: dict[Pair, int] = {}  # pair -> occurrences in the whole text
    where: dict[Pair, set[int]] = {}  # pair -> indices of the words that contain it
    for w, word in enumerate(words):
        for pair in pairwise(word):
            counts[pair] = counts.get(pair, 0) + freqs[w]
            where.setdefault(pair, set()).add(w)
    heap = [(-n, pair) for pair, n in counts.items()] if strategy == "heap" else None
    if heap is not None:
        heapq.heapify(heap)
    merges, merged_counts = [], []
    for new_id in tqdm(range(first_id, first_id + num_merges), desc="merges", disable=not progress):
        pair, n = most_frequent(counts, heap)
        if pair is None:
            break
        merges.append((pair[0], pair[1], new_id))
        merged_counts.append(n)
        new_pairs = set()
        for w in where.pop(pair):
            word, f = words[w], freqs[w]
            merged = merge_pair(word, pair, new_id)
            if len(merged) == len(word):
                continue  # an earlier merge already took this pair out of the word
            for old in pairwise(word):  # take the word's old pairs out of the table ...
                left = counts[old] - f
                if left:
                    counts[old] = left
                else:
                    del counts[old]
            for new in pairwise(merged):  # ... and put its new pairs in
                counts[new] = counts.get(new, 0) + f
                if new_id in new:
                    where.setdefault(new, set()).add(w)
                    new_pairs.add(new)
            words[w] = merged
        if heap is not None:
            for new in new_pairs:
                heapq.heappush(heap, (-counts[new], new))
    return merges, merged_counts


class BasicTokenizer(Tokenizer):
    """Byte-level BPE that learns its merges from text treated as one long chunk."""

    merge_counts: tuple[int, ...] | list[int] = ()  # after `train`: how often each merged pair occurred

    def train(
        self,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = (),
        strategy: str = "heap",
        progress: bool = False,
    ) -> BasicTokenizer:
        """Learn `vocab_size - 256` merges from `text`, then give each special token the next free id.

        Special tokens in the text are cut out before counting, so no merge crosses them."""
        if not isinstance(text, str):
            raise TypeError(f"train takes a str, got {type(text).__name__}")
        if vocab_size < 256:
            raise ValueError(f"vocab_size must be at least 256 (one id per byte), got {vocab_size}")
        special_tokens = list(dict.fromkeys(special_tokens))
        self.set_vocabulary(special_tokens={s: i for i, s in enumerate(special_tokens, start=256)})
        chunks: Counter[str] = Counter()
        for piece, special in self.split_special(text):
            if not special:
                chunks.update(self.pre_tokenize(piece))
        chunk_counts = {utf8(chunk): n for chunk, n in chunks.items()}
        merges, self.merge_counts = train_bpe(chunk_counts, vocab_size - 256, 256, strategy, progress)
        next_id = 256 + len(merges)
        self.set_vocabulary(merges, special_tokens={s: next_id + i for i, s in enumerate(special_tokens)})
        return self
