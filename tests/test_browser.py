"""A reader's first session, in a real browser: JupyterLab on a free loopback port, driven by Playwright
with Debian's Chromium. Open chapter 1, run every cell, move a slider, and check that the figure changed
and that every widget rendered. A screenshot is saved in build/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT

CHAPTER = "01_linear_maps.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    path = os.environ.get("BOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "no Chromium found: the book's test command installs Debian's chromium; or set BOOK_CHROMIUM"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a scratch copy of notebooks/ (so autosave never touches the real ones)."""
    book = tmp_path / "book"
    shutil.copytree(ROOT / "notebooks", book)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
    )
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={book}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=book, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_chapter1_runs_and_its_slider_redraws_the_figure(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

            page.click(".jp-NotebookPanel .jp-Cell")  # focus the notebook
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            # every code cell gets an execution count; none is left queued or running
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                        .map(p => p.textContent.trim());
                    return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
                }""",
                timeout=600_000,  # generous: an oversubscribed machine ran chapter 1 for over 240 s
            )
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            tracebacks = [t for t in errors.all_inner_texts() if "Error" in t]
            assert not tracebacks, f"a cell failed in the browser: {tracebacks[0][:500]}"

            slider = page.locator(".widget-slider").first
            slider.scroll_into_view_if_needed()
            figure = page.locator(".widget-output img").first
            figure.wait_for(timeout=60_000)
            before = figure.get_attribute("src")
            handle = slider.locator(".noUi-handle")
            handle.focus()
            for _ in range(6):
                handle.press("ArrowRight")  # as a reader would, one step at a time
            page.wait_for_function(
                "before => { const img = document.querySelector('.widget-output img');"
                " return img && img.getAttribute('src') !== before; }",
                arg=before,
                timeout=60_000,
            )
            readout = slider.locator(".widget-readout").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "chapter01_slider.png"), full_page=False)

            body = page.locator("body").inner_text()
            assert "Error displaying widget" not in body
            assert "Loading widget" not in body
            assert figure.get_attribute("src") != before
            assert readout.strip() != "1.00", f"the slider did not move (readout {readout!r})"
            assert not problems, problems
        finally:
            page.screenshot(path=str(SCREENSHOTS / "chapter01_last.png"))
            browser.close()
