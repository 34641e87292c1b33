"""Open weights from the Hugging Face Hub (chapter 21), pinned to one commit each and checked byte for byte.

What this module adds over helpers.weights (which loads a GPT-2 folder that is already on disk):

    MODELS                               the book's models: a repository, a pinned commit, the files it needs
    fetch_model(name, download_if_missing=False)
                                         -> the local folder of that commit's files; offline by default
    verify_snapshot(folder)              every file's bytes against the hash the Hub named it by

Downloading is huggingface_hub's job: snapshot_download with revision = the pinned commit (a commit never
changes, unlike the branch "main"), allow_patterns = only the files the book reads (no ONNX, TFLite or
Flax copies), its cache (~/.cache/huggingface/hub, or $HF_HUB_CACHE), resumption of a dropped connection
with an HTTP Range request, and the size check. What it does not check is the content: a file whose bytes
changed in transit but kept their length is accepted. The Hub names every file by a hash, its ETag - the
sha256 of the content for large (LFS) files, the git blob id sha1("blob <size>\\0" + content) for small
ones - and the cache stores each file as blobs/<ETag>. verify_snapshot recomputes that hash for every file;
a mismatch deletes the bad copy (so a retry fetches it again) and raises HubError naming the file.

Nothing downloads unless asked: without download_if_missing=True, a model that is not in the cache raises
HubError with the one command that fetches it. tests/test_hub.py runs the whole path against a local HTTP
server that stands in for the Hub: a normal download, a connection dropped mid-file, corrupted bytes, offline.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: a connection lost mid-file surfaces as its TransportError
from huggingface_hub import snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError


class HubError(RuntimeError):
    """A model is not on this machine, could not be downloaded, or arrived corrupted; the message says how
    to get it."""


@dataclass(frozen=True)
class Pinned:
    """One model of the book: where it lives on the Hub, the commit we use, and what to fetch."""

    repo_id: str
    revision: str  # a full 40-hex commit hash, never a branch: the files can never change under us
    patterns: tuple[str, ...]  # huggingface_hub allow_patterns (fnmatch)
    needs: tuple[str, ...]  # files that must be in the folder for the book to use it
    about: str


# The files the book reads: sizes, weights (one file, or shards and their index), tokenizer, generation
# defaults. Patterns match whole paths, so ONNX / TFLite / Flax copies in other folders are left alone.
WEIGHT_PATTERNS = ("config.json", "generation_config.json", "model.safetensors", "model-*.safetensors")
WEIGHT_PATTERNS += ("model.safetensors.index.json",)
TOKENIZER_PATTERNS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TOKENIZER_PATTERNS += ("vocab.json", "merges.txt")

MODELS: dict[str, Pinned] = {
    "gpt2": Pinned(
        repo_id="openai-community/gpt2",
        revision="607a30d783dfa663caf39e06633721c8d4cfcd7e",
        patterns=WEIGHT_PATTERNS + TOKENIZER_PATTERNS,
        needs=("config.json", "model.safetensors", "vocab.json", "merges.txt"),
        about="GPT-2 small (124M parameters, OpenAI 2019, MIT licence), about 550 MB",
    ),
    "smollm2-360m-instruct": Pinned(
        repo_id="HuggingFaceTB/SmolLM2-360M-Instruct",
        revision="a10cc1512eabd3dde888204e902eca88bddb4951",
        patterns=WEIGHT_PATTERNS + TOKENIZER_PATTERNS,
        needs=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"),
        about="SmolLM2-360M-Instruct (a Llama-architecture chat model, Hugging Face 2024, Apache 2.0), "
        "about 730 MB",
    ),
}

SHA256 = re.compile(r"[0-9a-f]{64}")
GIT_SHA1 = re.compile(r"[0-9a-f]{40}")


def _pinned(name: str) -> Pinned:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the book knows {sorted(MODELS)}")
    return MODELS[name]


def how_to_fetch(name: str) -> str:
    """The commands that put model `name` into the cache, for a machine with a network."""
    model = _pinned(name)
    includes = " ".join(f"--include '{p}'" for p in model.patterns)
    return (
        f"On a machine with a network, run once:\n"
        f'    python -c "from helpers.hub import fetch_model; '
        f'fetch_model({name!r}, download_if_missing=True)"\n'
        f"or, with huggingface_hub's command line:\n"
        f"    hf download {model.repo_id} --revision {model.revision} {includes}\n"
        f"(files go to the Hugging Face cache, ~/.cache/huggingface/hub or $HF_HUB_CACHE; copy that folder "
        f"to a machine without a network.)"
    )


def _content_hash(path: Path, etag: str) -> str:
    """The hash the Hub would give this content, in the same form as `etag` (sha256, or git's blob sha1)."""
    digest = hashlib.sha256() if SHA256.fullmatch(etag) else hashlib.sha1()
    if not SHA256.fullmatch(etag):
        digest.update(f"blob {path.stat().st_size}\0".encode())  # git hashes a header, then the content
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_snapshot(folder: str | Path) -> list[str]:
    """Check every file of a cached snapshot against its ETag; return the names checked.

    In the cache, snapshots/<commit>/<file> is a link to blobs/<ETag>. A file whose content does not hash
    to its ETag is deleted (link and blob, so the next fetch downloads it again) and HubError names it.
    A file that is not such a link (a cache on a file system without symlinks) cannot be checked: it is
    left out of the returned list.
    """
    folder = Path(folder)
    checked = []
    for link in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = Path(os.path.realpath(link))
        etag = blob.name
        if blob.parent.name != "blobs" or not (SHA256.fullmatch(etag) or GIT_SHA1.fullmatch(etag)):
            continue
        actual = _content_hash(blob, etag)
        if actual != etag:
            link.unlink()
            blob.unlink()
            raise HubError(
                f"{link.relative_to(folder)} is corrupted: its content hashes to {actual}, but the Hub "
                f"named it {etag}. The bad copy was deleted; fetch the model again."
            )
        checked.append(link.relative_to(folder).as_posix())
    return checked


def _missing(folder: Path, model: Pinned) -> list[str]:
    return [name for name in model.needs if not (folder / name).is_file()]


def fetch_model(
    name: str,
    download_if_missing: bool = False,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
    verify: bool = False,
) -> Path:
    """The local folder holding model `name` at its pinned commit.

    Offline by default: the folder comes from the Hugging Face cache, or HubError says how to fetch it.
    download_if_missing=True downloads what is missing (from `endpoint`, default the Hub or $HF_ENDPOINT)
    and then verifies every file (verify_snapshot). verify=True verifies a cached copy too (it reads every
    byte: about a second per 500 MB).
    """
    model = _pinned(name)
    kwargs = {
        "repo_id": model.repo_id,
        "revision": model.revision,
        "allow_patterns": list(model.patterns),
        "cache_dir": None if cache_dir is None else str(cache_dir),
    }
    try:
        folder = Path(snapshot_download(local_files_only=True, **kwargs))
        if not _missing(folder, model):
            if verify:
                verify_snapshot(folder)
            return folder
    except LocalEntryNotFoundError:  # not in the cache, or only part of it (IncompleteSnapshotError)
        pass
    if not download_if_missing:
        raise HubError(
            f"{name} ({model.about}) is not in the Hugging Face cache at commit {model.revision[:12]}.\n"
            + how_to_fetch(name)
        )
    try:
        folder = Path(snapshot_download(endpoint=endpoint, **kwargs))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, httpx2.TransportError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HubError(
            f"could not download {name} from {endpoint or 'the Hugging Face Hub'} ({reason}). Are you "
            f"offline? Run it again when you have a network; the files that arrived whole are kept.\n"
            + how_to_fetch(name)
        ) from None
    verify_snapshot(folder)
    missing = _missing(folder, model)
    if missing:
        raise HubError(f"{model.repo_id} at {model.revision[:12]} has no {', '.join(missing)}")
    return folder
