"""The reference solutions of chapter 15's exercises, checked against the tokenizers they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
here each reference is compared with the chapter's tokenizer code (itself checked against Hugging Face and
tiktoken in tests/test_tokenizer.py) on text and random ids: 15.3's encoder with `Tokenizer.encode`, 15.4's
decoder with `Tokenizer.decode`, 15.5's last merge with `merges_from_ranks`, 15.6's training step with the
first merge `BasicTokenizer.train` learns. The build-it checkers are shown to refuse the helpers they exist
to refuse. (15.7 is a prediction; the notebook asserts the measurement its answer rests on.)
"""

import random

from helpers import tokenizers as toks
from helpers.exercises import check, get, passes
from helpers.tokenizers import BasicTokenizer, RegexTokenizer, Tokenizer, merge_pair, pair_counts
from helpers.tokenizers.ranks import bpe_below, merges_from_ranks

TEXT = (
    "the tokenizer tokenizes tokens; tokenizers learn the tokens that their training text repeats. "
    "naïve cafés serve crème brûlée, 👋 and 🇫🇷 too"
)


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a helper it exists to refuse."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it" in out)


def test_15_1_counts_utf8_bytes():
    assert get("15.1").solution == len("naïve café 👋".encode()) == 17


def test_15_2_reference_is_merge_pair_on_random_ids():
    rng = random.Random(0)
    for _ in range(300):
        ids = [rng.randint(0, 3) for _ in range(rng.randint(0, 25))]
        pair = (rng.randint(0, 3), rng.randint(0, 3))
        assert get("15.2").solution(ids, pair, 99) == merge_pair(ids, pair, 99)


def _merge_with_the_helper(ids, pair, new_id):
    return toks.merge_pair(ids, pair, new_id)


def test_15_2_refuses_merge_pair(capsys):
    assert refused("15.2", _merge_with_the_helper, capsys)
    assert refused("15.2", merge_pair, capsys)
    assert toks.merge_pair is merge_pair  # restored after the check


def test_15_3_reference_is_tokenizer_encode():
    tok = BasicTokenizer().train(TEXT, 330)
    for text in [TEXT, "tokens 👋", "", "crème", "the theory of tokens"]:
        assert (
            get("15.3").solution(text, tok.merges) == Tokenizer(tok.merges).encode(text) == tok.encode(text)
        )


def _encode_with_the_tokenizer(text, merges):
    return Tokenizer(merges).encode(text)


def test_15_3_refuses_the_tokenizers_encode(capsys):
    assert refused("15.3", _encode_with_the_tokenizer, capsys)
    assert Tokenizer([]).encode("ab") == [97, 98]  # restored after the check


def test_15_4_reference_is_tokenizer_decode():
    tok = RegexTokenizer().train(TEXT, 320)
    rng = random.Random(1)
    for _ in range(100):
        ids = [rng.randrange(tok.vocab_size) for _ in range(rng.randint(0, 12))]  # often splits a character
        assert get("15.4").solution(ids, tok.vocab) == tok.decode(ids)


def test_15_5_reference_is_merges_from_ranks():
    tok = RegexTokenizer().train(TEXT, 330)
    ranks = {token: i for i, token in tok.vocab.items()}
    _, merges = merges_from_ranks(ranks)
    for left, right, new in merges:
        token = tok.vocab[new]
        assert get("15.5").solution(token, ranks) == [tok.vocab[left], tok.vocab[right]]
        assert get("15.5").solution(token, ranks) == bpe_below(token, ranks, ranks[token])


def test_15_5_refuses_bpe_below(capsys):
    def with_the_helper(token, ranks):
        return bpe_below(token, ranks, ranks[token])

    assert refused("15.5", with_the_helper, capsys)


def test_15_6_reference_is_the_first_merge_training_learns():
    rng = random.Random(2)
    texts = [TEXT, "tokens token tokenize tokenizer", "aaaa", "abab"] + [
        "".join(rng.choice("abc ") for _ in range(rng.randint(2, 40))) for _ in range(100)
    ]
    for text in texts:
        ids = list(text.encode("utf-8"))
        a, b, new = BasicTokenizer().train(text, 257).merges[0]  # the trainer's first merge
        assert get("15.6").solution(ids, 256) == merge_pair(ids, (a, b), new)


def test_15_6_tie_rule_is_the_chapters_and_the_first_seen_rule_fails():
    ids = list(b"tokens token tokenize tokenizer")  # to, ok, ke, en all occur 4 times
    counts = pair_counts(ids)
    assert sorted(n for n in counts.values())[-4:] == [4, 4, 4, 4]
    assert 256 in get("15.6").solution(ids, 256) and get("15.6").solution(ids, 256).count(256) == 4
    assert merge_pair(ids, (101, 110), 256) == get("15.6").solution(ids, 256)  # 'en', the smallest pair
    assert not passes("15.6", get("15.6").wrong)  # Counter.most_common: 'to', the first seen


def test_15_6_refuses_pair_counts_and_the_trainers(capsys):
    def with_pair_counts(ids, new_id):
        counts = toks.pair_counts(ids)
        if not counts:
            return list(ids)
        best = max(counts.values())
        return merge_pair(ids, min(p for p, n in counts.items() if n == best), new_id)

    def with_the_trainer(ids, new_id):
        if len(ids) < 2:
            return list(ids)
        a, b, _ = BasicTokenizer().train(bytes(ids).decode("latin-1"), 257).merges[0]
        return merge_pair(ids, (a, b), new_id)

    assert refused("15.6", with_pair_counts, capsys)
    assert refused("15.6", with_the_trainer, capsys)
    assert toks.pair_counts is pair_counts  # restored after the check
