"""Shipped data is verified against the manifest; downloads are tested against a server on 127.0.0.1."""

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from helpers import data
from helpers.data import DataError, Remote, data_path, download, fetch, read_manifest, sha256_of

PAYLOAD = b"To be, or not to be, that is the question.\n" * 1000


def test_every_manifest_entry_is_present_and_verified():
    entries = read_manifest()
    assert entries, "the manifest lists no files"
    for name in entries:
        assert data_path(name).exists()


def test_every_file_in_data_is_in_the_manifest():
    shipped = {p.relative_to(data.DATA_DIR).as_posix() for p in data.DATA_DIR.rglob("*") if p.is_file()}
    unlisted = {
        p
        for p in shipped
        if p != data.MANIFEST_NAME and not p.endswith(".py") and not p.startswith(data.DOWNLOADS + "/")
    }
    assert unlisted <= set(read_manifest()), f"files in data/ missing from the manifest: {unlisted}"


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "greeting.txt").write_text("hello\n")
    digest = sha256_of(tmp_path / "greeting.txt")
    (tmp_path / data.MANIFEST_NAME).write_text(f"# a comment\n{digest}  greeting.txt\n")
    return tmp_path


def test_altered_missing_and_unknown_files_are_refused(data_dir):
    assert data_path("greeting.txt", data_dir).read_text() == "hello\n"
    (data_dir / "greeting.txt").write_text("hullo\n")
    with pytest.raises(DataError, match="was changed"):
        data_path("greeting.txt", data_dir)
    (data_dir / "greeting.txt").unlink()
    with pytest.raises(DataError, match="missing"):
        data_path("greeting.txt", data_dir)
    with pytest.raises(DataError, match="not in"):
        data_path("nope.txt", data_dir)


def test_malformed_manifest_is_refused(tmp_path):
    (tmp_path / data.MANIFEST_NAME).write_text("abc greeting.txt\n")
    with pytest.raises(DataError, match="expected '<sha256>  <path>'"):
        read_manifest(tmp_path)


# --- downloads, against a real HTTP server on the loopback interface ---------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "corpus.txt").write_bytes(PAYLOAD)
    (root / "tampered.txt").write_bytes(PAYLOAD + b"!")
    handler = lambda *a, **k: QuietHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def remote(monkeypatch):
    pinned = Remote(
        "corpus",
        "http://127.0.0.1:9/corpus.txt",
        hashlib.sha256(PAYLOAD).hexdigest(),
        "corpus.txt",
        "a test corpus",
    )
    monkeypatch.setitem(data.REMOTES, "corpus", pinned)
    return pinned


def leftovers(directory: Path):
    return sorted(p.name for p in (directory / data.DOWNLOADS).glob("*")) if directory.exists() else []


def test_download_verifies_and_keeps_the_file(server, remote, tmp_path):
    target = download("corpus", url=f"{server}/corpus.txt", data_dir=tmp_path / "d")
    assert target.read_bytes() == PAYLOAD
    assert leftovers(tmp_path / "d") == ["corpus.txt"]
    assert fetch("corpus", data_dir=tmp_path / "d") == target  # now offline use works


def test_wrong_hash_leaves_nothing_behind(server, remote, tmp_path):
    with pytest.raises(DataError, match="not the pinned"):
        download("corpus", url=f"{server}/tampered.txt", data_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_http_error_is_reported(server, remote, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        download("corpus", url=f"{server}/missing.txt", data_dir=tmp_path)
    assert leftovers(tmp_path) == []


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_gives_a_clear_message_and_leaves_nothing(remote, tmp_path):
    with pytest.raises(DataError, match="Are you offline"):
        download("corpus", url=f"http://127.0.0.1:{closed_port()}/corpus.txt", data_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_fetch_is_offline_unless_asked(server, remote, tmp_path):
    with pytest.raises(DataError, match="download_if_missing=True"):
        fetch("corpus", data_dir=tmp_path)
    path = fetch("corpus", download_if_missing=True, url=f"{server}/corpus.txt", data_dir=tmp_path)
    assert sha256_of(path) == remote.sha256


def test_corrupt_cached_copy_is_set_aside(server, remote, tmp_path):
    fetch("corpus", download_if_missing=True, url=f"{server}/corpus.txt", data_dir=tmp_path)
    (tmp_path / data.DOWNLOADS / "corpus.txt").write_bytes(b"garbage")
    with pytest.raises(DataError, match="did not match"):
        fetch("corpus", data_dir=tmp_path)
    assert (tmp_path / data.DOWNLOADS / "corpus.txt.bad").exists()


def test_a_local_file_can_stand_in_for_the_url(remote, tmp_path):
    source = tmp_path / "copy.txt"
    source.write_bytes(PAYLOAD)
    assert download("corpus", url=str(source), data_dir=tmp_path / "d").read_bytes() == PAYLOAD


def test_unknown_data_set_is_a_clear_error():
    with pytest.raises(DataError, match="unknown data set"):
        fetch("imagenet")


def test_tinyshakespeare_is_pinned():
    pinned = data.REMOTES["tinyshakespeare"]
    assert pinned.url.startswith("https://") and len(pinned.sha256) == 64
    bench = Path(__file__).resolve().parents[2] / "shared" / "bench" / "tinyshakespeare.txt"
    if bench.exists():  # this machine has a copy: the pinned hash must be the real file's
        assert sha256_of(bench) == pinned.sha256
