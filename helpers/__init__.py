"""The executable textbook's reusable code. Chapters import from here; nothing here imports a notebook.

The names every notebook uses are re-exported: `setup` (from helpers.runtime), `check` and `solution`
(from helpers.exercises) and `slider_view` (from helpers.widgets). They load on first use, so that
importing one light module (say `helpers.linalg`) does not also load torch, ipywidgets and pyplot.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check": "helpers.exercises",
    "setup": "helpers.runtime",
    "slider_view": "helpers.widgets",
    "solution": "helpers.exercises",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
