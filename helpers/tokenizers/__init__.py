"""Chapter 15: byte-level BPE tokenizers, built in layers, each module adding one idea to the one before.

    base.py    bytes, merges and special tokens; encode by merge rank, decode, save and load (no training)
    basic.py   training: the BPE loop with incremental pair counts (text as one chunk)
    regex.py   a GPT-2-style regex pre-tokenizer, so merges stay inside words
    gpt2.py    GPT-2's file format (vocab.json + merges.txt), to read and write Hugging Face's files
    ranks.py   tiktoken's format (token bytes -> rank), merges recovered from ranks: GPT-4's cl100k_base
    show.py    data and pictures for the notebook: tokens coloured, tokens per word as merges grow

Usage:

    tok = RegexTokenizer().train(text, vocab_size=512, special_tokens=["<|endoftext|>"])
    ids = tok.encode("Hello, world!")
    tok.decode(ids)               # 'Hello, world!'
    tok.save("tok.json"); Tokenizer.load("tok.json")
    gpt4 = load_cl100k()          # GPT-4's tokenizer in the book's code: the same ids as tiktoken
"""

from helpers.tokenizers.base import Tokenizer, merge_pair, pair_counts
from helpers.tokenizers.basic import BasicTokenizer, train_bpe
from helpers.tokenizers.gpt2 import bytes_to_unicode, load_gpt2, save_gpt2
from helpers.tokenizers.ranks import TiktokenTokenizer, load_cl100k, merges_from_ranks, read_ranks
from helpers.tokenizers.regex import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, RegexTokenizer

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "BasicTokenizer",
    "RegexTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "bytes_to_unicode",
    "load_cl100k",
    "load_gpt2",
    "merge_pair",
    "merges_from_ranks",
    "pair_counts",
    "read_ranks",
    "save_gpt2",
    "train_bpe",
]
