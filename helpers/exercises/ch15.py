"""Exercises for chapter 15: text to tokens."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

from helpers.exercises.core import Exercise, by_hand, matches_value, register
from helpers.tokenizers import BasicTokenizer, RegexTokenizer, merge_pair, pair_counts
from helpers.tokenizers.basic import most_frequent
from helpers.tokenizers.ranks import bpe_below


def _agrees_with(reference, cases, describe):
    """A checker for a function: on every case (a tuple of arguments) it must return what `reference` does."""

    def checker(answer):
        assert callable(answer), f"expected a function, got {type(answer).__name__}"
        for args in cases():
            want = reference(*args)
            got = answer(*[list(a) if isinstance(a, list) else a for a in args])
            if got is None:
                raise AssertionError("your function returned None: did you forget `return`?")
            got = list(got) if not isinstance(got, str) else got
            assert got == want, f"on {describe(*args)}\nyou return {got!r}\nbut the answer is {want!r}"

    return checker


# 15.1 ---------------------------------------------------------------------------------------------------
SENTENCE = "naïve café 👋"
register(
    Exercise(
        key="15.1",
        title="bytes, not characters",
        checker=matches_value(len(SENTENCE.encode("utf-8")), what="the number of bytes"),
        hint="ASCII letters and spaces take 1 byte each in UTF-8. Accented Latin letters take 2, and an "
        "emoji takes 4. Check with len(text.encode('utf-8')).",
        solution=len(SENTENCE.encode("utf-8")),
        wrong=len(SENTENCE),  # counts characters
        explanation="'naïve' is 6 bytes (ï takes 2), the spaces 1 each, 'café' 5 (é takes 2) and 👋 4: "
        "6 + 1 + 5 + 1 + 4 = 17 bytes for 12 characters. A byte-level tokenizer starts from these 17.",
    )
)


# 15.2 ---------------------------------------------------------------------------------------------------
def _merge_cases():
    rng = random.Random(15)
    fixed = [([1, 1, 1], (1, 1), 9), ([1, 2, 1, 2, 3], (1, 2), 9), ([], (1, 2), 9), ([2, 1], (1, 2), 9)]
    randoms = [
        ([rng.randint(0, 3) for _ in range(rng.randint(0, 15))], (rng.randint(0, 3), rng.randint(0, 3)), 7)
        for _ in range(40)
    ]
    return fixed + randoms


def _merge_from_the_right(ids, pair, new_id):
    out, i = [], len(ids) - 1
    while i >= 0:
        if i >= 1 and (ids[i - 1], ids[i]) == pair:
            out.append(new_id)
            i -= 2
        else:
            out.append(ids[i])
            i -= 1
    return out[::-1]


def _merge_solution(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)  # the pair becomes one new id ...
            i += 2  # ... and both of its elements are used up
        else:
            out.append(ids[i])
            i += 1
    return out


_MERGE_BY_HAND = "walk through the list with an index yourself."
register(
    Exercise(
        key="15.2",
        title="merge a pair",
        checker=by_hand(
            _agrees_with(merge_pair, _merge_cases, lambda ids, pair, new: f"ids={ids}, pair={pair}"),
            {
                "helpers.tokenizers.merge_pair": _MERGE_BY_HAND,
                "helpers.tokenizers.base.merge_pair": _MERGE_BY_HAND,
                "helpers.tokenizers.basic.merge_pair": _MERGE_BY_HAND,
            },
        ),
        hint="walk left to right with an index i. If ids[i], ids[i+1] is the pair, emit new_id and jump by "
        "2; otherwise emit ids[i] and step by 1. Try [1, 1, 1] with the pair (1, 1): the answer is [new, 1].",
        solution=_merge_solution,
        wrong=_merge_from_the_right,
        explanation="Scanning left to right and jumping past a merged pair means overlapping runs such as "
        "1 1 1 merge as (1 1) 1. Scanning from the right gives 1 (1 1) instead: a different tokenization, "
        "and training and encoding must agree on the rule.",
    )
)


# 15.3 ---------------------------------------------------------------------------------------------------
def _encode_cases():
    handmade = [("abcd", [(98, 99, 256), (97, 98, 257)]), ("abab cab", [(98, 99, 256), (97, 98, 257)])]
    tok = BasicTokenizer().train("the theme of the thesis is there, then the other theory", 290)
    learned = [(text, tok.merges) for text in ["the theorist", "then there", "", "other themes", "ééé"]]
    return handmade + learned


def _greedy_longest_match(text, merges):
    vocab = {bytes([b]): b for b in range(256)}
    for a, b, new in merges:
        pieces = {i: t for t, i in vocab.items()}
        vocab[pieces[a] + pieces[b]] = new
    data, ids, i = text.encode("utf-8"), [], 0
    while i < len(data):
        j = max(k for k in range(i + 1, len(data) + 1) if data[i:k] in vocab)
        ids.append(vocab[data[i:j]])
        i = j
    return ids


def _encode_solution(text, merges):
    ids = list(text.encode("utf-8"))
    for a, b, new_id in merges:  # in rank order: exactly the order training learned them
        ids = merge_pair(ids, (a, b), new_id)
    return ids


_ENCODE_BY_HAND = "replay the merges on the bytes yourself; merge_pair is allowed."
register(
    Exercise(
        key="15.3",
        title="encode with ranked merges",
        checker=by_hand(
            _agrees_with(_encode_solution, _encode_cases, lambda text, merges: f"text={text!r}"),
            {
                "helpers.tokenizers.base.Tokenizer.encode": _ENCODE_BY_HAND,
                "helpers.tokenizers.base.Tokenizer.encode_chunk": _ENCODE_BY_HAND,
            },
        ),
        hint="start from the UTF-8 bytes, then replay the merges in the order they were learned, each one "
        "everywhere it applies (merge_pair is in helpers.tokenizers). Do not look for the longest token.",
        solution=_encode_solution,
        wrong=_greedy_longest_match,
        explanation="Replaying the merges in rank order reproduces what training did, so equal text always "
        "gets equal tokens. Greedy longest match (what WordPiece does) often agrees but not always: with the "
        "merges 'b c' (rank 0) and 'a b' (rank 1), BPE turns 'abcd' into a|bc|d, while longest match takes "
        "ab|c|d.",
    )
)


# 15.4 ---------------------------------------------------------------------------------------------------
def _decode_cases():
    emoji = "👋".encode()
    vocab = {i: bytes([i]) for i in range(256)}
    vocab |= {256: emoji[:2], 257: emoji[2:], 258: "é".encode()[:1], 259: b" caf", 260: "é".encode()[1:]}
    return [
        ([104, 105, 32, 256, 257], vocab),
        ([259, 258, 260], vocab),
        ([256], vocab),
        ([], vocab),
        (list("Привет 👋".encode()), vocab),
    ]


def _decode_reference(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def _decode_each_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def _decode_solution(ids, vocab):
    data = b"".join(vocab[i] for i in ids)  # join the bytes first ...
    return data.decode("utf-8", errors="replace")  # ... then decode, so split characters join up again


register(
    Exercise(
        key="15.4",
        title="decode ids to text",
        checker=_agrees_with(_decode_reference, _decode_cases, lambda ids, vocab: f"ids={ids}"),
        hint="a token can hold part of a character. Join all the tokens' bytes, then decode once, with "
        "errors='replace' for bytes that really are broken.",
        solution=_decode_solution,
        wrong=_decode_each_token,
        explanation="UTF-8 spreads a character over up to 4 bytes, and BPE may put them in different tokens. "
        "Decoding token by token turns each half into U+FFFD; joining the bytes first restores the "
        "character.",
    )
)


# 15.5 ---------------------------------------------------------------------------------------------------
def _last_merge_cases():
    tiny = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"bc": 257, b"abc": 258, b"abcd": 259}
    text = "the tokenizer tokenizes tokens; tokenizers learn the tokens that their training text repeats"
    tok = RegexTokenizer().train(text, 300)
    trained = {token: i for i, token in tok.vocab.items()}
    longer = [tok.vocab[new] for *_, new in tok.merges if len(tok.vocab[new]) > 2]
    return [(b"abc", tiny), (b"abcd", tiny)] + [(token, trained) for token in longer]


def _last_merge_reference(token, ranks):
    return bpe_below(token, ranks, ranks[token])


def _first_possible_cut(token, ranks):
    r = ranks[token]
    for k in range(1, len(token)):
        if ranks.get(token[:k], r) < r and ranks.get(token[k:], r) < r:
            return [token[:k], token[k:]]
    return [token]


def _last_merge_solution(token, ranks):
    limit = ranks[token]
    pieces = [bytes([b]) for b in token]
    while True:
        joined = [ranks.get(pieces[i] + pieces[i + 1], limit) for i in range(len(pieces) - 1)]
        if not joined or min(joined) >= limit:
            return pieces  # BPE with the lower ranks stops here: two pieces for a real BPE token
        i = joined.index(min(joined))  # the lowest-ranked pair, the leftmost if it occurs twice
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]


_LAST_MERGE_BY_HAND = "run the lowest-rank-first merging on the token's bytes yourself."
register(
    Exercise(
        key="15.5",
        title="which merge made this token?",
        checker=by_hand(
            _agrees_with(_last_merge_reference, _last_merge_cases, lambda token, ranks: f"token={token!r}"),
            {
                "helpers.tokenizers.ranks.bpe_below": _LAST_MERGE_BY_HAND,
                "helpers.tokenizers.ranks.merges_from_ranks": _LAST_MERGE_BY_HAND,
            },
        ),
        hint="run BPE on the token's bytes as tiktoken does - repeatedly join the adjacent pair whose joined "
        "bytes have the lowest rank - but only with ranks below the token's own. Where it stops, two pieces "
        "are left.",
        solution=_last_merge_solution,
        wrong=_first_possible_cut,
        explanation="A token can often be cut into two lower-ranked tokens in several ways (GPT-4's "
        "' tokens' as ' tok'+'ens' or ' token'+'s'); only replaying BPE with the lower ranks finds the merge "
        "that training made. With 'ab' (256) and 'bc' (257), 'abc' was made from 'ab' and 'c', although "
        "'a'+'bc' is the first cut.",
    )
)


# 15.6 ---------------------------------------------------------------------------------------------------
def _step_cases():
    rng = random.Random(156)
    texts = ["tokens token tokenize tokenizer", "abab", "aaaa", "ba ab ab ba", "a", "", "él é él"]
    fixed = [(list(text.encode("utf-8")), 256) for text in texts]
    randoms = [([rng.randint(0, 4) for _ in range(rng.randint(0, 20))], 300) for _ in range(60)]
    return fixed + randoms


def _bpe_step_helpers(ids, new_id):
    """One merge of the chapter's training loop: pair_counts, the most frequent pair (ties: the smallest),
    merge_pair."""
    pair, _ = most_frequent(pair_counts(ids), None)
    return list(ids) if pair is None else merge_pair(ids, pair, new_id)


def _bpe_step(ids, new_id):
    counts = {}
    for a, b in pairwise(ids):  # every adjacent pair, overlapping ones included
        counts[(a, b)] = counts.get((a, b), 0) + 1
    if not counts:
        return list(ids)  # fewer than two ids: nothing to merge
    best = max(counts.values())
    pair = min(p for p, n in counts.items() if n == best)  # ties go to the smallest pair
    return merge_pair(ids, pair, new_id)


def _bpe_step_first_seen(ids, new_id):
    counts = Counter(pairwise(ids))
    if not counts:
        return list(ids)
    pair = counts.most_common(1)[0][0]  # ties go to the pair seen first: not the chapter's rule
    return merge_pair(ids, pair, new_id)


_COUNT_BY_HAND = "count the adjacent pairs yourself (a dict and a loop over zip(ids, ids[1:]))."
register(
    Exercise(
        key="15.6",
        title="one step of BPE training",
        checker=by_hand(
            _agrees_with(_bpe_step_helpers, _step_cases, lambda ids, new_id: f"ids={ids}"),
            {
                "helpers.tokenizers.pair_counts": _COUNT_BY_HAND,
                "helpers.tokenizers.base.pair_counts": _COUNT_BY_HAND,
                "helpers.tokenizers.basic.most_frequent": "pick the most frequent pair yourself.",
                "helpers.tokenizers.basic.train_bpe": _COUNT_BY_HAND,
                "helpers.tokenizers.basic.BasicTokenizer.train": _COUNT_BY_HAND,
            },
        ),
        hint="count every adjacent pair (zip(ids, ids[1:])), find the highest count, and among the pairs "
        "with that count take the smallest, min(...): the chapter's tie rule. Then merge it with merge_pair. "
        "Try 'tokens token tokenize tokenizer': four pairs tie at 4, and the rule picks (101, 110), 'en'.",
        solution=_bpe_step,
        wrong=_bpe_step_first_seen,
        explanation="Counting, then merging the winner, is one iteration of the training loop in 15.5. The "
        "tie rule matters more than it looks: Counter.most_common breaks ties by the order pairs were first "
        "seen, which depends on the text, so two runs on reordered text could learn different merges. Any "
        "fixed rule works; training and its tests must share it (section 15.11 shows Hugging Face's).",
    )
)


# 15.7 ---------------------------------------------------------------------------------------------------
VOCAB_CHOICES = {
    "a": "about 2 times shorter: a doubled vocabulary halves the text",
    "b": "about 1.5 times shorter",
    "c": "about 1.2 times shorter",
    "d": "no shorter at all: the common words are single tokens already",
}


def _check_vocab_choice(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in VOCAB_CHOICES, (
        f"answer with one of the letters {sorted(VOCAB_CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "c", (
        f"not ({picked}): {VOCAB_CHOICES[picked]}. Run the next cell and read the doublings."
    )


register(
    Exercise(
        key="15.7",
        title="the last doubling of the vocabulary (predict, then run)",
        checker=_check_vocab_choice,
        hint="the first merges take the most frequent pairs, each occurring thousands of times. What are the "
        "merges between 1,024 and 2,048 made of, and how often does each one occur?",
        solution="c",
        wrong="a",
        explanation="Going from 1,024 to 2,048 tokens shortens the validation text only about 1.2 times, "
        "against 2.3 times for 256 to 512. Merges are learned in order of frequency, so each later one "
        "replaces fewer pairs: the returns diminish, while the embedding table doubles at every step.",
    )
)
