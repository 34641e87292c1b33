"""The `book` script's test command: no arguments run everything, arguments run only what they select."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT


def selects_browser(*args: str) -> bool:
    """Run the script's own `selects_browser_test` on `args` (the function alone, nothing installed)."""
    script = f'source <(sed -n "/^selects_browser_test()/,/^}}/p" {ROOT / "book"}); selects_browser_test "$@"'
    return subprocess.run(["bash", "-c", script, "bash", *args], check=False).returncode == 0


@pytest.mark.parametrize(
    ("args", "browser"),
    [
        ((), True),  # pytest then collects tests/, the browser test included
        (("tests", "notebooks"), True),  # the full suite
        (("tests/test_browser.py",), True),
        (("tests/test_browser.py::test_chapter_1",), True),
        (("-k", "slider"), True),  # no path: all of tests/ is collected, then filtered
        (("tests/test_setup.py",), False),
        (("tests/test_notebook_hygiene.py", "-k", "tests"), False),  # -k's value is not a path
        (("notebooks/01_linear_maps.ipynb",), False),
    ],
)
def test_chromium_is_installed_only_when_the_browser_test_is_selected(args, browser):
    assert selects_browser(*args) is browser


def test_book_test_with_a_path_collects_only_that_file():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = subprocess.run(
        ["bash", str(ROOT / "book"), "test", "tests/test_setup.py", "--collect-only", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert collected, run.stdout
    assert all(line.startswith("tests/test_setup.py::") for line in collected), run.stdout
