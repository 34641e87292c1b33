"""Write data/python_docs_311_train.txt and _val.txt: a larger English corpus, Python's documentation.

The reStructuredText sources of the Python 3.11 documentation (the library reference, tutorial, HOWTOs,
FAQs, language reference, "What's New" pages...) as plain text: about 8 MB of technical English written
by many hands over twenty years, under the PSF licence (the documentation's code examples under the
Zero-Clause BSD licence), which allows redistribution. Chapter 18's small models use data/python_docs.txt
(the 0.47 MB that `help()` shows); the book's shipped GPT is trained on this one.

The sources come from Debian's `python3.11-doc` package, pinned to one version and hash (the package keeps
the Sphinx sources under html/_sources). This machine has no internet but Debian's archive, so the script
runs `apt-get download` when no --deb is given; the text it writes is hashed in data/MANIFEST.sha256 and
shipped, so nobody needs to run this to read the book.

The conversion to plain text is deliberately small: directive lines become what a reader sees
(".. versionchanged:: 3.10" -> "Changed in version 3.10:", ".. function:: f(x)" -> "f(x)"), inline roles
lose their markup (":func:`~os.path.join`" -> "join"), section underlines and index entries go, code
blocks stay as they are. The changelog (a list of bug-tracker entries) and the licence are left out.

Held-out text. Whole documents are held out, never the tail of one: the documents are ordered by a hash
of their path and taken in that order until 5 % of the characters are held out. Any paragraph that shares
most of its word 8-grams with the validation split of data/python_docs.txt (the text chapter 18's
character model never trained on) is dropped from both files, so that both models can be scored on that
text without having seen it.

    python data/make_docs_corpus.py                  # apt-get download the pinned package, then convert
    python data/make_docs_corpus.py --deb FILE.deb   # use a copy already on disk
    python data/make_docs_corpus.py --sources DIR    # convert a folder of .rst/.rst.txt files (tests)

Then update data/MANIFEST.sha256 with the two new hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "python3.11-doc"
VERSION = "3.11.2-6+deb12u9"
DEB_SHA256 = "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be"
SOURCES_IN_DEB = "usr/share/doc/python3.11/html/_sources"
LEFT_OUT = {"whatsnew/changelog", "license", "copyright", "bugs", "about", "contents"}
PYTHON_VERSION = "3.11"
VAL_FRACTION = 0.05
OLD_VAL_FRACTION = 0.1  # helpers.corpus.train_val_split's default: the last 10 % of python_docs.txt

# directives whose whole block is dropped (index entries, tables of contents, metadata, includes, tables)
DROPPED = {
    "index", "toctree", "module", "sectionauthor", "moduleauthor", "highlight", "include", "currentmodule",
    "literalinclude", "tabularcolumns", "image", "figure", "contents", "audit-event", "audit-event-table",
    "testsetup", "testcleanup", "program", "miscnews", "limited-api-list", "raw", "list-table", "csv-table",
    "table", "opcode-table", "c:namespace", "default-role", "role", "epigraph",
}  # fmt: skip
# directives whose argument is a signature, shown as it is
SIGNATURES = {
    "function", "method", "data", "class", "attribute", "exception", "opcode", "cmdoption", "option",
    "envvar", "describe", "object", "pdbcommand", "coroutinemethod", "coroutinefunction", "classmethod",
    "staticmethod", "awaitablefunction", "awaitablemethod", "abstractmethod", "property", "decorator",
    "decoratormethod", "productionlist", "c:function", "c:member", "c:type", "c:var", "c:macro",
    "c:struct", "c:enum", "c:enumerator", "c:union",
}  # fmt: skip
# directives that become a heading word; the code ones keep their content and lose only the directive
HEADINGS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "important": "Important:",
    "caution": "Caution:", "impl-detail": "CPython implementation detail:", "attention": "Attention:",
    "hint": "Hint:", "tip": "Tip:", "danger": "Danger:",
}  # fmt: skip
CODE = {"code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "parsed-literal"}

DIRECTIVE = re.compile(r"^(\s*)\.\. ([\w:-]+)::\s*(.*)$")
COMMENT = re.compile(r"^(\s*)\.\.(\s|$)")
FOOTNOTE = re.compile(r"^(\s*)\.\. \[[^\]]*\]\s*(.*)$")
ADORNMENT = re.compile(r"""^\s*([=\-~^"'*+#`:.])\1{2,}\s*$""")
OPTION = re.compile(r"^\s+:[\w -]+:(\s|$)")
ROLE = re.compile(r":[\w:.+-]+:`((?:[^`\\]|\\.)+)`")
LINK = re.compile(r"`([^`<]*?)\s*<[^>`]*>`__?")
REFERENCE = re.compile(r"`([^`]+)`__?")
LITERAL = re.compile(r"``([^`]+?)``")
STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
EMPHASIS = re.compile(r"(?<![\w*\\])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
FOOTNOTE_REF = re.compile(r"\s?\[(?:#\w*|\d+|\*)\]_")
SUBSTITUTIONS = {"|version|": PYTHON_VERSION, "|release|": PYTHON_VERSION, "|today|": "", "|---|": "---"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _role_text(match: re.Match) -> str:
    """The text a reader sees for :role:`target`, :role:`title <target>`, :role:`~a.b.c`, :role:`!x`."""
    inner = match.group(1)
    titled = re.match(r"^(.*?)\s*<([^>]*)>$", inner, re.S)
    if titled:
        return titled.group(1) or titled.group(2)
    if inner.startswith("~"):
        return inner[1:].rsplit(".", 1)[-1]
    return inner.lstrip("!")


def inline(text: str) -> str:
    """Strip inline reST markup from one line of prose."""
    text = ROLE.sub(_role_text, text)
    text = LITERAL.sub(r"\1", text)
    text = LINK.sub(r"\1", text)
    text = REFERENCE.sub(r"\1", text)
    text = FOOTNOTE_REF.sub("", text)
    text = STRONG.sub(r"\1", text)
    text = EMPHASIS.sub(r"\1", text)
    for name, value in SUBSTITUTIONS.items():
        text = text.replace(name, value)
    return text.replace("\\ ", "").replace("\\*", "*").replace("\\`", "`").replace("\\\\", "\\")


def _skip_block(lines: list[str], i: int, indent: int) -> int:
    """The index of the first line after the block that starts below line i (blank or deeper lines)."""
    i += 1
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    return i


def rst_to_text(source: str) -> str:
    """One reST document as plain text (see the module docstring for what changes)."""
    lines = source.expandtabs(8).splitlines()
    out: list[str] = []
    literal_above: int | None = None  # the indentation of the paragraph that opened a literal block
    code_indent: int | None = None  # the indentation of a code directive whose content we are in
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        stripped = line.strip()
        indent = _indent(line)
        # inside a literal block (after "::" or a code directive): copy lines as they are
        for opener in (literal_above, code_indent):
            if opener is not None and stripped and indent <= opener:
                literal_above = code_indent = None
        if (literal_above is not None or code_indent is not None) and (not stripped or indent > 0):
            if not OPTION.match(line) or out and out[-1].strip():
                out.append(line)
            i += 1
            continue
        directive = DIRECTIVE.match(line)
        if directive:
            name, argument = directive.group(2), inline(directive.group(3).strip())
            if name in DROPPED:
                i = _skip_block(lines, i, indent)
                continue
            i += 1
            while i < len(lines) and OPTION.match(lines[i]):  # ":noindex:", ":synopsis: ..." and the like
                i += 1
            pad = " " * indent
            if name in SIGNATURES:
                prefix = "@" if name.startswith("decorator") else ""
                if argument:
                    out.append(pad + prefix + argument)
                while i < len(lines) and lines[i].strip() and _indent(lines[i]) > indent:  # more signatures
                    if name == "productionlist":
                        break
                    out.append(pad + prefix + inline(lines[i].strip()))
                    i += 1
                if name == "productionlist":
                    code_indent = indent
            elif name in HEADINGS:
                out.append(pad + " ".join(filter(None, [HEADINGS[name], argument])))
            elif name == "versionadded":
                out.append(pad + f"New in version {argument}.")
            elif name == "versionchanged":
                version, _, rest = argument.partition(" ")
                out.append(pad + f"Changed in version {version}: {rest}".rstrip())
            elif name == "deprecated":
                version, _, rest = argument.partition(" ")
                out.append(pad + f"Deprecated since version {version}: {rest}".rstrip())
            elif name == "deprecated-removed":
                versions = argument.split()
                if len(versions) >= 2:
                    deprecated, removed, rest = versions[0], versions[1], " ".join(versions[2:])
                    out.append(
                        pad + f"Deprecated since version {deprecated}, removed in version {removed}: {rest}"
                    )
            elif name == "availability":
                out.append(pad + f"Availability: {argument}")
            elif name in CODE:
                code_indent = indent
            elif argument:  # rubric, topic, sidebar, glossary, only, ... : keep the title and the content
                out.append(pad + argument)
            continue
        footnote = FOOTNOTE.match(line)
        if footnote:
            out.append(footnote.group(1) + inline(footnote.group(2)))
            i += 1
            continue
        if COMMENT.match(line):  # a label (".. _name:"), a substitution definition or a comment
            i = _skip_block(lines, i, indent)
            continue
        if ADORNMENT.match(line):
            i += 1
            continue
        if stripped.endswith("::"):
            literal_above = indent
            if stripped == "::":
                i += 1
                continue
            line = line[:-2].rstrip() + ("" if line[:-2].endswith(" ") else ":")
        out.append(inline(line) if stripped else "")
        i += 1
    text = "\n".join(line.rstrip() for line in out)
    text = LITERAL.sub(r"\1", LINK.sub(r"\1", ROLE.sub(_role_text, text)))  # markup broken over two lines
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    """The set of word n-grams of a text (lower case, punctuation kept on the words)."""
    words = text.lower().split()
    return {tuple(words[k : k + n]) for k in range(len(words) - n + 1)}


def drop_overlap(text: str, held_out: set[tuple[str, ...]], share: float = 0.5) -> tuple[str, int]:
    """Remove the paragraphs of which more than `share` of the 8-grams occur in `held_out`."""
    kept, dropped = [], 0
    for paragraph in re.split(r"\n\s*\n", text):
        grams = shingles(paragraph)
        if grams and len(grams & held_out) > share * len(grams):
            dropped += 1
            continue
        kept.append(paragraph)
    return "\n\n".join(kept).strip("\n") + "\n", dropped


def read_sources(folder: Path) -> dict[str, str]:
    """{"library/bisect": text} for every .rst.txt / .rst file under `folder`, minus LEFT_OUT."""
    documents = {}
    for path in sorted(folder.rglob("*.rst*")):
        name = path.relative_to(folder).as_posix().removesuffix(".txt").removesuffix(".rst")
        if name not in LEFT_OUT:
            documents[name] = path.read_text(encoding="utf-8")
    if not documents:
        raise SystemExit(f"no .rst or .rst.txt files under {folder}")
    return documents


def extract_deb(deb: Path, into: Path) -> Path:
    """Unpack the documentation sources of the pinned .deb (after checking its hash) into `into`."""
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    if digest != DEB_SHA256:
        raise SystemExit(f"{deb} has sha256 {digest}, but {PACKAGE} {VERSION} has {DEB_SHA256}")
    subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, stdout=open(into / "data.tar", "wb"))
    with tarfile.open(into / "data.tar") as archive:
        members = [m for m in archive.getmembers() if SOURCES_IN_DEB in m.name and m.isfile()]
        archive.extractall(into, members=members, filter="data")
    return into / SOURCES_IN_DEB


def download_deb(into: Path) -> Path:
    """apt-get download the pinned package version into `into` (Debian's archive is reachable offline)."""
    try:
        subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=into, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(
            f"could not download {PACKAGE}={VERSION} with apt-get ({error}); download the .deb by hand "
            "and pass it with --deb"
        ) from error
    return next(into.glob(f"{PACKAGE}_*.deb"))


def split_documents(documents: dict[str, str], fraction: float) -> tuple[list[str], list[str]]:
    """(train names in path order, held-out names): whole documents, in order of a hash of their name."""
    total = sum(len(t) for t in documents.values())
    by_hash = sorted(documents, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    held_out, size = [], 0
    for name in by_hash:
        if size >= fraction * total:
            break
        held_out.append(name)
        size += len(documents[name])
    return [n for n in sorted(documents) if n not in held_out], sorted(held_out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE}_{VERSION}_all.deb")
    source.add_argument("--sources", type=Path, help="a folder of .rst/.rst.txt files instead of the package")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="the folder to write into")
    parser.add_argument(
        "--old", type=Path, default=Path(__file__).with_name("python_docs.txt"), help="the small corpus"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.sources
        if folder is None:
            deb = args.deb or download_deb(Path(scratch))
            folder = extract_deb(deb, Path(scratch))
        documents = {name: rst_to_text(text) for name, text in read_sources(folder).items()}
    old = args.old.read_text(encoding="utf-8")
    old_val = shingles(old[int(len(old) * (1 - OLD_VAL_FRACTION)) :])
    train_names, val_names = split_documents(documents, VAL_FRACTION)
    dropped = 0
    for kind, names in (("train", train_names), ("val", val_names)):
        parts = []
        for name in names:
            text, gone = drop_overlap(documents[name], old_val)
            dropped += gone
            parts.append(text)
        text = "\n\n".join(parts)
        path = args.out / f"python_docs_311_{kind}.txt"
        path.write_text(text, encoding="utf-8")
        print(
            f"wrote {path.name}: {len(names)} documents, {len(text):,} characters, "
            f"{len(text.encode()):,} bytes"
        )
    print(f"dropped {dropped} paragraphs that overlap the held-out part of {args.old.name}")


if __name__ == "__main__":
    sys.exit(main())
