"""Benchmark chapter 15's byte-level BPE: training time and encoding speed, against Hugging Face `tokenizers`
and against the straightforward training loop that recounts every pair after every merge.

    python scripts/bench_tokenizer.py --text tinyshakespeare.txt   # the reference figure is on this text
    python scripts/bench_tokenizer.py                              # the book's corpus, repeated to 1 MB

The text is the first --chars characters (1,000,000) of --text; without --text, the book's corpus
(Python's documentation, shipped in data/) repeated until it is that long. The goal: training a vocabulary
of 512 on that text takes at most 7 s in pure Python on a 2-core machine.

The straightforward loop costs (text length) x (merges), so by default it is timed on the first
--naive-chars characters and scaled up linearly to the full text (the table says so); --naive-full times it
on the whole text instead (about a minute or more). Its merges are checked to be the same as ours.
Timings are the best of --repeat runs; other work on the machine inflates them (the load average is shown).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

from tokenizers import ByteLevelBPETokenizer

from helpers.corpus import load_corpus
from helpers.tokenizers import RegexTokenizer, merge_pair

GOAL_S = 7.0


def naive_train(text: str, vocab_size: int) -> list[tuple[int, int, int]]:
    """The straightforward loop: after every merge, recount every pair in every chunk of the text."""
    chunks = [list(chunk.encode("utf-8")) for chunk in RegexTokenizer().pre_tokenize(text)]
    merges = []
    for new_id in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for ids in chunks:
            for pair in pairwise(ids):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))  # ties to the smallest pair, like ours
        merges.append((pair[0], pair[1], new_id))
        chunks = [merge_pair(ids, pair, new_id) for ids in chunks]
    return merges


def best_time(function, repeat: int) -> tuple[float, float, object]:
    """(shortest wall time, shortest CPU time of this process, the last result) over `repeat` calls.

    CPU time is what a single-threaded run costs whatever else the machine is doing, so on a busy machine
    it is the better guess at the wall time on an idle one (for multi-threaded code it adds up the threads).
    """
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, help="a UTF-8 text file (default: the book's corpus, repeated)")
    parser.add_argument("--chars", type=int, default=1_000_000, help="characters of text to use")
    parser.add_argument("--vocab", type=int, default=512, help="vocabulary size to train to")
    parser.add_argument("--naive-chars", type=int, default=100_000, help="text for the straightforward loop")
    parser.add_argument("--naive-full", action="store_true", help="time the straightforward loop on all text")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is reported")
    args = parser.parse_args()

    if args.text:
        source = args.text.name
        text = args.text.read_text(encoding="utf-8")[: args.chars]
    else:
        source = "the book's corpus (repeated)"
        corpus = load_corpus()
        text = (corpus * (args.chars // len(corpus) + 1))[: args.chars]
    megabytes = len(text.encode("utf-8")) / 1e6
    cpus, load_before = os.cpu_count(), os.getloadavg()[0]
    print(f"text: {source}, {len(text):,} characters ({megabytes:.2f} MB), vocabulary {args.vocab}")
    print(
        f"machine: {cpus} CPUs, load average {load_before:.2f} at the start, Python {sys.version.split()[0]}"
    )

    rows = []  # (what, wall seconds, CPU seconds, note)
    heap_s, heap_cpu, ours = best_time(lambda: RegexTokenizer().train(text, args.vocab), args.repeat)
    rows.append(("train: ours, pure Python (heap)", heap_s, heap_cpu, f"best of {args.repeat}"))
    max_s, max_cpu, ours_max = best_time(
        lambda: RegexTokenizer().train(text, args.vocab, strategy="max"), args.repeat
    )
    assert ours_max.merges == ours.merges
    rows.append(("train: ours, pure Python (max over the table)", max_s, max_cpu, f"best of {args.repeat}"))

    def train_hf():
        hf = ByteLevelBPETokenizer()
        hf.train_from_iterator([text], vocab_size=args.vocab, min_frequency=2, show_progress=False)
        return hf

    hf_s, hf_cpu, hf = best_time(train_hf, args.repeat)
    rows.append(
        ("train: Hugging Face tokenizers (Rust)", hf_s, hf_cpu, f"best of {args.repeat}, all threads")
    )

    naive_text = text if args.naive_full else text[: args.naive_chars]
    naive_wall, naive_cpu, naive_merges = best_time(lambda: naive_train(naive_text, args.vocab), 1)
    same = naive_merges == RegexTokenizer().train(naive_text, args.vocab).merges
    scale = len(text) / len(naive_text)
    note = f"measured {naive_wall:.1f} s wall, {naive_cpu:.1f} s CPU on {len(naive_text):,} characters"
    note += "" if scale == 1 else f", times {scale:.1f} (its cost is linear in the length of the text)"
    note += "; same merges as ours" if same else "; MERGES DIFFER FROM OURS"
    rows.append(
        ("train: straightforward recount-every-pair loop", naive_wall * scale, naive_cpu * scale, note)
    )

    print(f"\n{'training to vocabulary ' + str(args.vocab):<48} {'wall s':>8} {'CPU s':>8}  note")
    for what, wall, cpu, note in rows:
        print(f"{what:<48} {wall:8.2f} {cpu:8.2f}  {note}")
    speedup = (naive_wall * scale / heap_s, naive_cpu * scale / heap_cpu)
    print(f"{'speed-up of ours (heap) over the straightforward':<48} {speedup[0]:7.0f}x {speedup[1]:7.0f}x")

    fresh = RegexTokenizer(merges=ours.merges)
    cold, _, ids = best_time(lambda: fresh.encode(text), 1)
    warm, _, _ = best_time(lambda: fresh.encode(text), args.repeat)
    hf_one, _, hf_ids = best_time(lambda: hf.encode(text).ids, args.repeat)
    lines = text.splitlines(keepends=True)
    hf_batch, _, batch = best_time(lambda: hf.encode_batch(lines), args.repeat)
    batch_tokens = sum(len(encoding.ids) for encoding in batch)  # lines cut a few chunks differently
    assert fresh.decode(ids) == text
    heading = f"encoding {len(text):,} characters (wall time)"
    print(f"\n{heading:<48} {'MB/s':>8} {'tokens/s':>12}")
    for what, seconds, count in [
        ("ours, empty cache", cold, len(ids)),
        ("ours, cache warm", warm, len(ids)),
        ("Hugging Face, one string", hf_one, len(hf_ids)),
        ("Hugging Face, encode_batch of lines", hf_batch, batch_tokens),
    ]:
        print(f"{what:<48} {megabytes / seconds:8.2f} {count / seconds:12,.0f}")

    load_after = os.getloadavg()[0]
    print(
        f"\nload average {load_before:.2f} before, {load_after:.2f} after ({cpus} CPUs: more is contention)"
    )
    verdict = "met" if heap_s <= GOAL_S else "NOT met"
    print(
        f"goal: train vocabulary {args.vocab} on {len(text):,} characters in <= {GOAL_S:.0f} s (wall) "
        f"in pure Python: {verdict} ({heap_s:.2f} s wall, {heap_cpu:.2f} s CPU)"
    )


if __name__ == "__main__":
    main()
