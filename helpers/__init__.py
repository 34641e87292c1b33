"""The executable textbook's reusable code. Chapters import from here; nothing here imports a notebook.

The names every notebook uses are re-exported: `setup`, `check`, `solution`, `slider_view`.
"""

from helpers.exercises import check, solution
from helpers.setup import setup
from helpers.widgets import slider_view

__all__ = ["check", "setup", "slider_view", "solution"]
