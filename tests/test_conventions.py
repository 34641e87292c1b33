"""The book's conventions, as tests: one-way imports by chapter, a light package root, no silent copies of
helpers in notebooks, and a table of contents that matches the notebooks on disk.

The chapter of every module is in helpers/contents.py (MODULES); the plan in prose is PLAN.md.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.contents import CHAPTERS, MODULES, chapter_of
from tests.conftest import NOTEBOOKS, ROOT

HELPERS = ROOT / "helpers"
MIRROR = re.compile(r"^# mirrors helpers(?:\.\w+)+\.(\w+)\s*$", re.MULTILINE)


def helper_files() -> list[Path]:
    return sorted(p for p in HELPERS.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def chapter_of_file(path: Path) -> int:
    """A file's chapter: its module's, except helpers/exercises/chNN.py, which belongs to chapter NN."""
    match = re.fullmatch(r"ch(\d\d)", path.stem)
    if path.parent.name == "exercises" and match:
        return int(match.group(1))
    if path == HELPERS / "__init__.py":
        return 0  # the package root re-exports chapter 0's names
    return chapter_of(module_name(path))


def helpers_imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(imported helpers module, line, inside a function?) for every import of helpers.* in a tree."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            local = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "helpers":
                if child.module == "helpers":  # from helpers import check, generative, ...
                    for alias in child.names:
                        target = alias.name if alias.name in MODULES else "exercises"
                        found.append((f"helpers.{target}", child.lineno, in_function))
                else:
                    found.append((child.module, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name, child.lineno, in_function) for a in child.names if a.name.startswith("helpers.")
                )
            visit(child, local)

    visit(tree, False)
    return found


def code_of(path: Path) -> str:
    """A notebook's code cells as one Python source (IPython magics dropped)."""
    cells = nbformat.read(path, as_version=4).cells
    lines = [c.source for c in cells if c.cell_type == "code"]
    return "\n\n".join(
        "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))) for src in lines
    )


# --- the module map --------------------------------------------------------------------------------------


def test_every_module_is_in_the_map_and_every_entry_exists():
    on_disk = {p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__"}
    on_disk |= {p.parent.name for p in HELPERS.glob("*/__init__.py")}
    missing = sorted(on_disk - set(MODULES))
    assert not missing, f"add these modules to helpers/contents.py MODULES with their chapter: {missing}"
    stale = sorted(set(MODULES) - on_disk)
    assert not stale, f"helpers/contents.py MODULES names modules that do not exist: {stale}"


@pytest.mark.parametrize("path", helper_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_module_imports_only_its_own_or_earlier_chapters(path):
    mine = chapter_of_file(path)
    for imported, line, _ in helpers_imports(ast.parse(path.read_text(encoding="utf-8"))):
        theirs = chapter_of(imported)
        assert theirs <= mine, (
            f"{path.relative_to(ROOT)}:{line} (chapter {mine}) imports {imported} from chapter {theirs}: "
            "move the shared code to the earlier chapter's module"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_imports_only_its_own_or_earlier_chapters(path):
    mine = int(path.name[:2])
    for imported, _, _ in helpers_imports(ast.parse(code_of(path))):
        assert chapter_of(imported) <= mine, (
            f"{path.name} uses {imported}, from chapter {chapter_of(imported)}"
        )


def test_the_layering_test_can_fail():
    tree = ast.parse("from helpers.weights import load_gpt2_folder\n")
    assert chapter_of(helpers_imports(tree)[0][0]) == 21 > chapter_of("helpers.linalg")


@pytest.mark.parametrize("path", helper_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_function_local_imports_of_helpers_say_why(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    for imported, line, in_function in helpers_imports(ast.parse("\n".join(lines))):
        if in_function:
            assert "#" in lines[line - 1], (
                f"{path.relative_to(ROOT)}:{line} imports {imported} inside a function: import it at the "
                "top, or write the reason in a comment on that line"
            )


# --- a light package root ---------------------------------------------------------------------------------


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_importing_a_light_module_does_not_load_torch_widgets_or_pyplot():
    loaded = loaded_after("import helpers.linalg")
    assert not loaded & {"torch", "ipywidgets", "matplotlib.pyplot"}


def test_the_notebook_names_load_on_first_use():
    loaded = loaded_after("from helpers import check, setup, slider_view, solution")
    assert {"torch", "ipywidgets"} <= loaded  # setup() seeds torch; slider_view is ipywidgets
    helpers = importlib.import_module("helpers")
    importlib.import_module("helpers.runtime")
    assert callable(helpers.setup) and helpers.setup.__module__ == "helpers.runtime"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = helpers.nothing


# --- notebooks do not quietly copy helpers ----------------------------------------------------------------


def helper_names() -> dict[str, str]:
    """Public top-level functions and classes of helpers (not the exercises): name -> module."""
    names = {}
    for path in helper_files():
        if "exercises" in path.parts:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                names.setdefault(node.name, module_name(path))
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_def_with_a_helpers_name_is_marked_as_its_mirror(path):
    names = helper_names()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!")))
        mirrored = set(MIRROR.findall(cell.source))
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names:
                assert node.name in mirrored, (
                    f"{path.name} defines {node.name}, the name of {names[node.name]}.{node.name}: mark the "
                    f"cell '# mirrors {names[node.name]}.{node.name}' (same code) or rename it"
                )


# --- the table of contents (the README links every notebook: tests/test_notebook_hygiene.py) -----------


def test_every_notebook_is_a_chapter_of_the_plan_with_its_title():
    planned = {c.notebook: c for c in CHAPTERS}
    assert [c.number for c in CHAPTERS] == list(range(1, len(CHAPTERS) + 1))
    for path in NOTEBOOKS:
        assert path.stem in planned, f"{path.name} is not in helpers/contents.py CHAPTERS"
        chapter = planned[path.stem]
        first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        assert first == f"# {chapter.number}. {chapter.title}", f"{path.name} starts with {first!r}"


def test_the_plan_lives_in_the_repository():
    plan = (ROOT / "PLAN.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"{chapter.number}. **{chapter.title}**" in plan, f"PLAN.md lacks chapter {chapter.number}"


def names_in_code(source: str) -> set[str]:
    """Every name the code refers to (variables, attributes, imported names): not strings or docstrings."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(alias.name for alias in node.names)
    return found


def test_every_public_helper_is_used_by_a_chapter_a_script_or_another_module():
    """Code nobody calls is code nobody checks by reading: a public function or class of helpers must be
    used somewhere besides the tests - in a notebook, a script, another module, or its own module's code
    (a mention in a docstring or a message does not count)."""
    used = {}
    for path in (*ROOT.glob("scripts/*.py"), *ROOT.glob("data/*.py"), *helper_files()):
        used[path] = names_in_code(path.read_text(encoding="utf-8"))
    for path in NOTEBOOKS:
        used[path] = names_in_code(code_of(path))
    unused = []
    for name, module in helper_names().items():
        if module == "helpers.contents":
            continue  # the book's map, read by the tests
        if not any(name in names for names in used.values()):
            unused.append(f"{module}.{name}")
    assert not unused, f"public helpers that nothing uses (use them or remove them): {unused}"
