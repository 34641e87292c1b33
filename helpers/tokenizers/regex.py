"""A pre-tokenizer in the style of GPT-2: merges stay inside words, numbers, punctuation and spaces.

Over `basic.BasicTokenizer` this adds one step before everything else: a regular expression cuts the text
into chunks, and BPE works inside each chunk. Without it the most frequent pairs soon glue words to the
spaces and punctuation around them ("e the", "s, "), spending the vocabulary on accidents of context
instead of reusable pieces. The pattern is GPT-2's; Hugging Face `tokenizers` uses the same one in its
`ByteLevel` pre-tokenizer (`use_regex=True`), which is what lets `gpt2.py` reproduce its ids exactly.

Reading the pattern left to right (the first alternative that matches wins):

    's|'t|'re|'ve|'m|'ll|'d      common English contractions, on their own
     ?\\p{L}+                     a run of letters, with at most one space in front
     ?\\p{N}+                     a run of digits (any script), with at most one space in front
     ?[^\\s\\p{L}\\p{N}]+           a run of punctuation and symbols, with at most one space in front
    \\s+(?!\\S)                    whitespace, leaving the last space to start the next word
    \\s+                          any other whitespace (at the end of the text)

`\\p{L}` and `\\p{N}` are Unicode classes that Python's `re` lacks, hence the `regex` package.

GPT-4's `cl100k_base` (loaded by `ranks.py`) cuts text with a refined pattern, `GPT4_SPLIT_PATTERN`:

    '(?i:[sdmt]|ll|ve|re)            contractions in any case ('S and 'LL as well as 's and 'll)
    [^\\r\\n\\p{L}\\p{N}]?+\\p{L}++       a run of letters, with at most one other character in front
                                     (a space, or the "_" or "(" before a name), never a line end
    \\p{N}{1,3}+                      one to three digits: long numbers are cut into groups of three
     ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+      punctuation and symbols, with at most one space in front
                                     and the line ends that follow them
    \\s++$                            whitespace that ends the text
    \\s*[\\r\\n]                        whitespace up to and including a line end
    \\s+(?!\\S)                        whitespace, leaving the last space to start the next word
    \\s                               any single whitespace character left over

`?+`, `++` and `*+` are *possessive*: what they match is never given back to let the rest of the pattern
match, which keeps the regex engine from backtracking. `regex` supports them; Python's `re` does since 3.11.
"""

from __future__ import annotations

import regex

from helpers.tokenizers.basic import BasicTokenizer

GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)


class RegexTokenizer(BasicTokenizer):
    """Byte-level BPE whose merges never cross the chunks a regex cuts the text into."""

    def __init__(self, pattern: str = GPT2_SPLIT_PATTERN, **vocabulary):
        try:
            self.compiled = regex.compile(pattern)
        except regex.error as error:
            raise ValueError(f"the pre-tokenizer pattern does not compile: {error}") from error
        self.pattern = pattern
        super().__init__(**vocabulary)

    def pre_tokenize(self, text: str) -> list[str]:
        """The chunks of `text`: every match of the pattern, in order (together they are the whole text)."""
        chunks = self.compiled.findall(text)
        if sum(map(len, chunks)) != len(text):
            raise ValueError(
                "the pre-tokenizer pattern skips some characters, so decode could not undo encode"
            )
        return chunks

    def to_dict(self) -> dict:
        return {**super().to_dict(), "pattern": self.pattern}
