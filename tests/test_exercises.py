"""Every exercise's checker accepts its reference solution and rejects its tempting wrong answer."""

import numpy as np
import pytest

from helpers.exercises import all_exercises, check, get, passes, solution
from helpers.exercises.core import by_hand, without_mirrors

EXERCISES = all_exercises()


def test_every_chapter_with_exercises_has_at_least_three():
    chapters = {e.chapter for e in EXERCISES}
    assert 1 in chapters
    for chapter in chapters:
        assert sum(e.chapter == chapter for e in EXERCISES) >= 3, f"chapter {chapter} has too few exercises"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_reference_solution_passes_and_wrong_answer_fails(exercise):
    assert passes(exercise.key, exercise.solution)
    assert not passes(exercise.key, exercise.wrong)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.key)
def test_check_prints_a_verdict_and_solution_prints_an_answer(exercise, capsys):
    check(exercise.key, exercise.solution)
    assert "✅" in capsys.readouterr().out
    check(exercise.key, exercise.wrong)
    out = capsys.readouterr().out
    assert "❌" in out and "Hint:" in out
    check(exercise.key, ...)
    out = capsys.readouterr().out
    assert "not attempted" in out and "Hint:" not in out  # no help before a first attempt
    solution(exercise.key)
    assert f"Solution to exercise {exercise.key}" in capsys.readouterr().out


def test_a_crashing_answer_is_reported_not_raised(capsys):
    def broken(U, c):
        return U[99]

    check("1.2", broken)
    assert "raised IndexError" in capsys.readouterr().out


def test_unfinished_function_counts_as_not_attempted(capsys):
    def stub(U, c):
        raise NotImplementedError

    check("1.2", stub)
    assert "not attempted" in capsys.readouterr().out


def test_value_checker_explains_shape_errors(capsys):
    check("1.1", np.eye(3))
    assert "shape (3, 3), expected (2, 2)" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["1.99", "x", "99.1", 1.1])
def test_unknown_keys_are_clear_errors(key):
    with pytest.raises(KeyError, match="exercise"):
        get(key)


def _solves(A, b):
    return np.linalg.solve(A, b)


def test_by_hand_refuses_a_library_shortcut_however_it_is_reached():
    from numpy.linalg import solve as imported_solve

    checker = by_hand(lambda f: f(np.eye(2), np.ones(2)), {"numpy.linalg.solve": "Eliminate by hand."})
    with pytest.raises(AssertionError, match="numpy.linalg.solve"):
        checker(_solves)  # called through the module: replaced during the check
    globals()["imported_solve"] = imported_solve
    try:
        with pytest.raises(AssertionError, match="calls numpy.linalg.solve"):
            checker(lambda A, b: imported_solve(A, b))  # a closure over the import
        with pytest.raises(AssertionError, match="calls numpy.linalg.solve"):
            checker(eval("lambda A, b: imported_solve(A, b)", globals()))  # a global name: caught before
    finally:
        del globals()["imported_solve"]
    checker(lambda A, b: b / np.diag(A))  # by hand: accepted
    assert np.linalg.solve(np.eye(2), np.ones(2)).tolist() == [1.0, 1.0]  # restored afterwards


def test_by_hand_rejects_a_name_that_does_not_exist():
    with pytest.raises(ValueError, match="has no attribute 'solvee'"):
        by_hand(lambda f: None, {"numpy.linalg.solvee": ""})


def test_without_mirrors_refuses_a_call_to_the_chapter_copy_even_inside_a_nested_function():
    checker = without_mirrors(lambda f: f(2), {"n_m_mask": "Sort each group yourself."})

    def direct(x):
        return n_m_mask(x)  # noqa: F821 - the notebook's copy, looked up by name only

    def nested(x):
        return (lambda y: n_m_mask(y))(x)  # noqa: F821

    for answer in (direct, nested):
        with pytest.raises(AssertionError, match="calls n_m_mask, the chapter's own code; Sort each"):
            checker(answer)
    checker(lambda x: x * 2)  # an answer that builds it: accepted
