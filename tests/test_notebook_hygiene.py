"""Every stored notebook is clean: run in order from a fresh kernel, outputs kept, no errors, nothing
private, a python3 kernel, a bounded size, and the chapter structure every chapter shares."""

import json
import re

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, ROOT

MAX_BYTES = 3_000_000  # stored figures included; a notebook bigger than this has an oversized figure
PRIVATE = [
    re.compile(r"/(home|Users|root|work|tmp)/[\w.-]+"),  # absolute paths of this or a reader's machine
    re.compile(r"[A-Za-z]:\\\\"),  # Windows drive paths
    re.compile(r"site-packages"),  # a traceback or warning that shows where Python lives
]
HEADINGS = ["## What you will learn", "## Summary", "## Exercises"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_run_in_order_from_a_fresh_kernel_with_outputs_and_no_errors(path):
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in code_cells(nb)]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cells were never run"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: re-run it top to bottom (counts {counts})"
    )
    assert any(c.outputs for c in code_cells(nb)), f"{path.name}: stored without outputs"
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored with an error output: {errors[0].get('ename')}"
    stderr = [o.text for c in code_cells(nb) for o in c.outputs if o.get("name") == "stderr"]
    assert not any("Traceback" in t for t in stderr), f"{path.name}: a traceback is printed to stderr"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nothing_private_or_machine_specific(path):
    text = json.dumps([c.get("outputs", []) for c in nbformat.read(path, as_version=4).cells])
    for pattern in PRIVATE:
        found = pattern.search(text)
        assert not found, f"{path.name}: outputs contain {found.group(0)!r}; re-run without it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_size_and_format(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_structure(path):
    nb = nbformat.read(path, as_version=4)
    number = int(path.name[:2])
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {number}. "), (
        f"{path.name}: the first cell must be the title '# {number}. ...'"
    )
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in HEADINGS:
        assert heading in markdown, f"{path.name}: missing the section '{heading}'"
    setup_cell = code_cells(nb)[0].source
    assert "setup(" in setup_cell, f"{path.name}: the first code cell must call helpers.setup"
    checks = sum(c.source.count(f'check("{number}.') for c in code_cells(nb))
    assert checks >= 3, f"{path.name}: has {checks} auto-checked exercises, needs at least 3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_hint_shows_before_an_attempt(path):
    """The stored exercises are unanswered, so their verdicts must say so and give no hint away."""
    for cell in code_cells(nbformat.read(path, as_version=4)):
        if 'check("' in cell.source:
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "not attempted" in text, f"{path.name}: an exercise cell is stored answered: {text[:80]!r}"
            assert "Hint:" not in text, f"{path.name}: an unanswered exercise shows its hint"


def test_readme_links_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README.md does not link {path.name}"
