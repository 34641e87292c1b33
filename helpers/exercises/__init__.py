"""End-of-chapter exercises that check themselves.

The reader writes a value or a function in a cell and calls `check("1.2", answer)`, which prints a pass,
or what was wrong and a hint. `solution("1.2")` prints a worked answer. Each chapter keeps its exercises,
with reference solutions and a plausible wrong answer, in `helpers/exercises/chNN.py`; the tests run every
checker against both, so a checker that accepts anything, or rejects the right answer, fails the suite.
"""

from helpers.exercises.core import (
    Exercise,
    all_exercises,
    check,
    get,
    matches_function,
    matches_value,
    passes,
    register,
    solution,
)

__all__ = [
    "Exercise",
    "all_exercises",
    "check",
    "get",
    "matches_function",
    "matches_value",
    "passes",
    "register",
    "solution",
]
