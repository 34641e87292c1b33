"""Data, offline first: files shipped in `data/` checked against a manifest of sha256 hashes, and real
download code for the optional larger data sets, each pinned to one URL and one hash.

Nothing downloads unless asked: `fetch(name)` uses a verified copy on disk, and only `fetch(name,
download=True)` goes to the network. A download is written to a temporary file, hashed as it streams,
and renamed into place only when the hash matches, so a failure never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: The book's data folder; $BOOK_DATA_DIR overrides it (for a copy of helpers installed elsewhere).
DATA_DIR = Path(os.environ.get("BOOK_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))
MANIFEST_NAME = "MANIFEST.sha256"
DOWNLOADS = "downloads"  # under DATA_DIR, ignored by git


class DataError(RuntimeError):
    """A data file is missing, altered, or could not be downloaded; the message says which and what to do."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(data_dir: Path | None = None) -> dict[str, str]:
    """{relative path: sha256} from `data/MANIFEST.sha256` (the format `sha256sum -c` reads)."""
    data_dir = Path(data_dir or DATA_DIR)
    manifest = data_dir / MANIFEST_NAME
    if not manifest.exists():
        raise DataError(f"no manifest at {manifest}")
    entries = {}
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{manifest}:{number}: expected '<sha256>  <path>', got {line!r}")
        entries[name.strip()] = digest
    return entries


def data_path(name: str, data_dir: Path | None = None) -> Path:
    """The path of a shipped data file, after checking its hash against the manifest."""
    data_dir = Path(data_dir or DATA_DIR)
    entries = read_manifest(data_dir)
    if name not in entries:
        raise DataError(f"{name!r} is not in {data_dir / MANIFEST_NAME}; shipped files are {sorted(entries)}")
    path = data_dir / name
    if not path.exists():
        raise DataError(f"{path} is listed in the manifest but missing; restore it with git checkout")
    actual = sha256_of(path)
    if actual != entries[name]:
        raise DataError(
            f"{path} has sha256 {actual}, but the manifest says {entries[name]}: the file was changed. "
            "Restore it (git checkout), or regenerate it with its script and update the manifest."
        )
    return path


@dataclass(frozen=True)
class Remote:
    """An optional data set that is downloaded, never shipped: one pinned URL and one pinned hash."""

    name: str
    url: str
    sha256: str
    filename: str
    about: str


REMOTES = {
    "tinyshakespeare": Remote(
        name="tinyshakespeare",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        filename="tinyshakespeare.txt",
        about="1.1 MB of Shakespeare's plays (public domain), the usual character-level benchmark",
    ),
}


def _remote(name: str) -> Remote:
    if name not in REMOTES:
        raise DataError(f"unknown data set {name!r}; the book knows {sorted(REMOTES)}")
    return REMOTES[name]


def download(name: str, url: str | None = None, data_dir: Path | None = None, timeout: float = 30.0) -> Path:
    """Download data set `name` (from its pinned URL, or `url`: a mirror or a local file), check its hash,
    and move it into `data/downloads/`. On any failure nothing is left behind and DataError says why."""
    remote = _remote(name)
    url = url or remote.url
    if "://" not in url:  # a plain local path
        url = Path(url).resolve().as_uri()
    target = Path(data_dir or DATA_DIR) / DOWNLOADS / remote.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != remote.sha256:
            raise DataError(
                f"downloaded {name} from {url}, but its sha256 is {digest.hexdigest()}, not the pinned "
                f"{remote.sha256}: the file is not the one the book expects, so it was not kept."
            )
        os.replace(partial, target)
    except urllib.error.HTTPError as error:
        raise DataError(
            f"could not download {name}: {url} answered HTTP {error.code} {error.reason}"
        ) from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            f"could not download {name} from {url} ({reason}). Are you offline? On a machine with a network, "
            f"download {remote.url} and put it at {target} (sha256 {remote.sha256})."
        ) from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def fetch(
    name: str, download_if_missing: bool = False, url: str | None = None, data_dir: Path | None = None
) -> Path:
    """The verified local copy of optional data set `name`.

    Offline by default: if no verified copy is on disk this raises DataError with instructions, unless
    `download_if_missing=True`, which downloads it (from `url` if given)."""
    remote = _remote(name)
    target = Path(data_dir or DATA_DIR) / DOWNLOADS / remote.filename
    if target.exists():
        if sha256_of(target) == remote.sha256:
            return target
        broken = target.with_name(target.name + ".bad")
        shutil.move(target, broken)
        if not download_if_missing:
            raise DataError(f"{target} did not match its pinned sha256; it was moved to {broken}")
    if not download_if_missing:
        raise DataError(
            f"{name} ({remote.about}) is not on this machine. Call fetch({name!r}, download_if_missing=True) "
            f"on a machine with a network, or put a copy of {remote.url} at {target}."
        )
    return download(name, url=url, data_dir=data_dir)
