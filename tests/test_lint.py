"""ruff keeps helpers/, tests/, scripts/ and the notebooks' code linted and formatted."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def ruff(*args):
    exe = shutil.which("ruff") or str(__import__("pathlib").Path(sys.executable).parent / "ruff")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(command):
    result = ruff(*command, ".")
    assert result.returncode == 0, f"ruff {' '.join(command)} found problems:\n{result.stdout}{result.stderr}"
