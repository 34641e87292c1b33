"""Write data/python_docs.txt: the book's offline English corpus, made from Python's own documentation.

CPython ships the text of its language reference's topics (`pydoc_data.topics`, the pages that `help()`
shows) under the PSF licence, which allows redistribution. It is about 465,000 characters of careful
technical English with code examples in it: enough for a character-level model to learn words, syntax
and layout, small enough to train on in a notebook. The text differs a little between Python versions,
so the book ships one copy (made with Python 3.11.7) and checks its hash, instead of reading the
installed one. Run `python data/make_corpus.py`, then update data/MANIFEST.sha256.
"""

import argparse
import pydoc_data.topics
import sys
from pathlib import Path

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("python_docs.txt"), help="the file"
    )
    out = parser.parse_args().out
    topics = pydoc_data.topics.topics
    text = "\n\n".join(topics[name].strip("\n") for name in sorted(topics)) + "\n"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out.name}: {len(text):,} characters from Python {sys.version.split()[0]}")
