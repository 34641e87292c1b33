"""helpers.hub: pinned downloads through huggingface_hub, against a local HTTP server standing in for the Hub
(127.0.0.1 only): a normal download into a temporary cache, a connection dropped mid-file and resumed with
an HTTP Range request, corrupted bytes detected and deleted, the offline messages; the pinned table itself;
and, when the real files are in this machine's cache, the real GPT-2 and SmolLM2 folders."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import huggingface_hub.file_download
import huggingface_hub.utils._http
import pytest
from huggingface_hub.utils.sha import git_hash

from helpers.hub import MODELS, HubError, fetch_model, how_to_fetch, verify_snapshot

pytestmark = pytest.mark.timeout(60)

GPT2 = MODELS["gpt2"]


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fake_repo() -> dict[str, bytes]:
    """The GPT-2 file names with small made-up contents, plus files the patterns must leave out."""
    weights = bytes(range(256)) * 40  # 10 kB: big enough to cut in the middle
    return {
        "config.json": json.dumps({"model_type": "gpt2", "n_layer": 1}).encode(),
        "generation_config.json": b'{"eos_token_id": 50256}',
        "model.safetensors": weights,
        "vocab.json": b'{"a": 0}',
        "merges.txt": b"#version: 0.2\n",
        "tokenizer.json": b"{}",
        "README.md": b"# not needed",
        "onnx/decoder_model.onnx": b"not needed either",
        "64-8bits.tflite": b"nor this",
    }


LFS = {"model.safetensors"}  # served as large files: ETag = sha256 of the content


class FakeHub:
    """The three routes huggingface_hub uses for a pinned commit: the tree listing, a HEAD for each file's
    metadata (ETag, X-Repo-Commit, size) and the file itself (with Range). Knobs: drop the connection after
    `drop_after` bytes of the first GET of a file, or serve `corrupt` files with one byte changed."""

    def __init__(self, files: dict[str, bytes], commit: str):
        self.files, self.commit = files, commit
        self.drop_after: dict[str, int] = {}  # file -> bytes sent before the connection is cut (once)
        self.corrupt: set[str] = set()
        self.outage: dict[str, int] = {}  # file -> how many GETs to hang up on before sending a byte
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_GET(self):
                hub.serve(self, body=True)

            def do_HEAD(self):
                hub.serve(self, body=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def etag(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if name in LFS else git_blob_id(data)

    def tree(self) -> list[dict]:
        entries = []
        for name, data in self.files.items():
            entry = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
            if name in LFS:
                entry["lfs"] = {"oid": self.etag(name), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries

    def send(self, handler, status: int, body: bytes, headers: dict, with_body: bool, cut: int | None = None):
        handler.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if with_body:
            handler.wfile.write(body if cut is None else body[:cut])
            handler.wfile.flush()
        if cut is not None:
            handler.close_connection = True

    def serve(self, handler, body: bool):
        path = handler.path.split("?")[0]
        self.log.append((handler.command, path, handler.headers.get("Range")))
        tree = f"/api/models/{GPT2.repo_id}/tree/{self.commit}"
        resolve = f"/{GPT2.repo_id}/resolve/{self.commit}/"
        if path.rstrip("/") == tree:
            self.send(
                handler, 200, json.dumps(self.tree()).encode(), {"Content-Type": "application/json"}, body
            )
        elif path.startswith(resolve) and path[len(resolve) :] in self.files:
            name = path[len(resolve) :]
            data = self.files[name]
            if name in self.corrupt:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])  # same length, one byte flipped
            headers = {"ETag": f'"{self.etag(name)}"', "X-Repo-Commit": self.commit, "Accept-Ranges": "bytes"}
            status, start = 200, 0
            if (wanted := handler.headers.get("Range")) is not None:
                start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            cut = self.drop_after.pop(name, None) if body else None
            if body and self.outage.get(name, 0) > 0:
                self.outage[name] -= 1
                cut = 0
            if cut is not None:  # promise the whole file, send part of it, hang up
                self.send(handler, status, data[start:], headers, body, cut=cut)
            else:
                self.send(handler, status, data[start:], headers, body)
        else:
            self.send(handler, 404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hub():
    with FakeHub(fake_repo(), GPT2.revision) as server:
        yield server


def gets(hub, name):
    return [rng for method, path, rng in hub.log if method == "GET" and path.endswith("/" + name)]


# --- downloads --------------------------------------------------------------------------------------------


def test_a_download_fetches_exactly_the_pinned_files_and_verifies_them(hub, tmp_path):
    folder = fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    wanted = {"config.json", "generation_config.json", "model.safetensors", "vocab.json", "merges.txt"}
    wanted.add("tokenizer.json")
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == wanted  # README, ONNX and TFLite were left on the server
    assert folder.name == GPT2.revision  # the pinned commit's snapshot
    for name in wanted:
        assert (folder / name).read_bytes() == hub.files[name]
    assert sorted(verify_snapshot(folder)) == sorted(wanted)  # every file could be checked
    # the second call is offline: no new request reaches the server
    requests = len(hub.log)
    assert fetch_model("gpt2", cache_dir=tmp_path) == folder
    assert fetch_model("gpt2", cache_dir=tmp_path, verify=True) == folder
    assert len(hub.log) == requests


def test_a_dropped_connection_is_resumed_with_a_range_request(hub, tmp_path, monkeypatch):
    # huggingface_hub writes what arrived in chunks of DOWNLOAD_CHUNK_SIZE (10 MB); shrink them so that the
    # 10 kB file spans several and the bytes before the cut reach the disk, as they do for a real 500 MB file
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 1000)
    size = len(hub.files["model.safetensors"])
    hub.drop_after["model.safetensors"] = 4000
    folder = fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"]
    ranges = gets(hub, "model.safetensors")
    assert ranges == [None, "bytes=4000-"], ranges  # the retry asked only for the bytes that were missing
    assert size > 4000


def test_a_download_that_fails_midway_completes_on_the_next_call(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.file_download.time, "sleep", lambda s: None)  # its 1 s retry waits
    hub.outage["model.safetensors"] = 100  # the server hangs up on every request for the weights
    with pytest.raises(HubError, match="could not download gpt2") as caught:
        fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert "download_if_missing=True" in str(caught.value)
    assert len(gets(hub, "model.safetensors")) == 6  # one try and huggingface_hub's five retries
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        fetch_model("gpt2", cache_dir=tmp_path)  # half a model is not a model
    hub.outage.clear()
    hub.log.clear()
    folder = fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"]
    fetched = {
        path.rsplit("/", 1)[1] for method, path, _ in hub.log if method == "GET" and "/resolve/" in path
    }
    assert fetched == {"model.safetensors"}  # the files that had arrived were kept, not fetched again


def test_corrupted_bytes_are_detected_reported_and_not_kept(hub, tmp_path):
    hub.corrupt.add("model.safetensors")
    with pytest.raises(HubError, match=r"model\.safetensors is corrupted") as caught:
        fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert hub.etag("model.safetensors") in str(caught.value)
    blobs = list(tmp_path.rglob("blobs/*"))
    assert hub.etag("model.safetensors") not in {b.name for b in blobs}  # the bad copy is gone
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        fetch_model("gpt2", cache_dir=tmp_path)  # so it is never used
    hub.corrupt.clear()  # the server is repaired: the next try fetches the file again and succeeds
    folder = fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"]


def test_a_corrupted_small_file_is_caught_by_its_git_blob_id(hub, tmp_path):
    hub.corrupt.add("config.json")
    with pytest.raises(HubError, match=r"config\.json is corrupted"):
        fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)


def test_a_file_changed_in_the_cache_is_caught_by_verify(hub, tmp_path):
    folder = fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    blob = (folder / "vocab.json").resolve()
    blob.write_bytes(b'{"b": 0}')  # same length, other content
    assert fetch_model("gpt2", cache_dir=tmp_path) == folder  # not re-read by default
    with pytest.raises(HubError, match=r"vocab\.json is corrupted"):
        fetch_model("gpt2", cache_dir=tmp_path, verify=True)
    assert not blob.exists()


# --- offline ----------------------------------------------------------------------------------------------


def test_offline_and_not_cached_says_the_exact_command(tmp_path):
    with pytest.raises(HubError) as caught:
        fetch_model("gpt2", cache_dir=tmp_path)
    message = str(caught.value)
    assert "fetch_model('gpt2', download_if_missing=True)" in message
    assert f"hf download {GPT2.repo_id} --revision {GPT2.revision}" in message
    assert "Traceback" not in message and caught.value.__cause__ is None


def test_no_network_while_downloading_gives_a_clear_message(tmp_path, monkeypatch):
    waits = []  # huggingface_hub retries with waits of 1, 2, 4, 8, 8 s: record them instead of sleeping
    monkeypatch.setattr(huggingface_hub.utils._http, "time", types.SimpleNamespace(sleep=waits.append))
    with FakeHub({}, GPT2.revision) as closed:
        url = closed.url  # a port that nobody listens on once the server has stopped
    with pytest.raises(HubError, match="could not download gpt2 .*Are you offline") as caught:
        fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=url)
    assert "download_if_missing=True" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert waits  # it did retry before giving up


def test_huggingface_offline_mode_gives_the_same_clear_message(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets
    with pytest.raises(HubError, match="could not download gpt2 .*Are you offline"):
        fetch_model("gpt2", download_if_missing=True, cache_dir=tmp_path, endpoint=hub.url)
    assert hub.log == []  # not one request left the machine


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'gpt5'.*gpt2"):
        fetch_model("gpt5")
    with pytest.raises(ValueError, match="unknown model"):
        how_to_fetch("gpt5")


# --- the hashes the Hub names files by ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100, 5000])
def test_our_git_blob_id_is_gits_and_huggingface_hubs(tmp_path, size):
    data = bytes(random.Random(size).getrandbits(8) for _ in range(size))
    assert git_blob_id(data) == git_hash(data)  # huggingface_hub's own implementation
    (tmp_path / "f").write_bytes(data)
    out = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True)
    if out.returncode == 0:  # and git's, when git is installed
        assert out.stdout.strip() == git_blob_id(data)


# --- the pinned table -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_is_pinned_to_a_full_commit_hash(name):
    model = MODELS[name]
    assert re.fullmatch(r"[0-9a-f]{40}", model.revision), "a branch name could change under the book"
    assert "/" in model.repo_id
    for needed in model.needs:  # everything the book needs is among what is downloaded
        assert any(Path(needed).match(p) for p in model.patterns), needed


# --- the real files, when this machine has them -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_real_files_when_they_are_in_the_cache(name):
    try:
        folder = fetch_model(name)
    except HubError:
        pytest.skip(
            f"{name} is not in this machine's Hugging Face cache ({how_to_fetch(name).splitlines()[1]})"
        )
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == {"gpt2": "gpt2", "smollm2-360m-instruct": "llama"}[name]
    assert (folder / "model.safetensors").stat().st_size > 100e6
