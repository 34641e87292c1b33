"""Where a notebook builds a function for teaching that also lives in helpers/, the two must be the same
code. A cell marks such a function with a first line `# mirrors helpers.module.name`."""

import ast
import importlib
import inspect
import re
import textwrap

import nbformat
import pytest

from tests.conftest import NOTEBOOKS

MARK = re.compile(r"^# mirrors (helpers(?:\.\w+)+)\.(\w+)\s*$", re.MULTILINE)


def mirrored_cells():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                for module, name in MARK.findall(cell.source):
                    yield pytest.param(cell.source, module, name, id=f"{path.name}:{name}")


def function_ast(source: str, name: str) -> str:
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            return ast.dump(node, include_attributes=False)
    raise AssertionError(f"no definition of {name} found")


CELLS = list(mirrored_cells())


def test_some_cells_are_mirrored():
    assert CELLS, "no notebook marks a teaching cell with '# mirrors helpers...'"


@pytest.mark.parametrize(("source", "module", "name"), CELLS)
def test_teaching_cell_is_the_helper(source, module, name):
    helper = getattr(importlib.import_module(module), name)
    assert function_ast(source, name) == function_ast(inspect.getsource(helper), name), (
        f"the notebook's {name} and {module}.{name} have drifted apart: make them the same code"
    )
