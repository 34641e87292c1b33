"""The exercise mechanism: a registry, two kinds of checker, and the `check` / `solution` calls."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Checker = Callable[[Any], None]  # raises AssertionError("what is wrong") when the answer is wrong


@dataclass(frozen=True)
class Exercise:
    """One exercise: how to check an answer, a hint, a reference solution and a plausible wrong answer."""

    key: str  # "chapter.number", e.g. "1.2"
    title: str
    checker: Checker
    hint: str
    solution: Any  # a value, or a function whose source `solution()` prints
    wrong: Any  # a tempting wrong answer; the tests make sure the checker rejects it
    explanation: str = ""  # printed with the solution

    @property
    def chapter(self) -> int:
        return int(self.key.split(".")[0])


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (a chapter's module calls this once per exercise)."""
    if exercise.key in _REGISTRY and _REGISTRY[exercise.key] is not exercise:
        raise ValueError(f"exercise {exercise.key} is registered twice")
    _REGISTRY[exercise.key] = exercise
    return exercise


def _load_chapter(chapter: int) -> None:
    try:
        importlib.import_module(f"helpers.exercises.ch{chapter:02d}")
    except ModuleNotFoundError as error:
        if error.name != f"helpers.exercises.ch{chapter:02d}":
            raise


def get(key: str) -> Exercise:
    """The exercise called `key` ("1.2"), loading its chapter's module on first use."""
    if not isinstance(key, str) or not key.partition(".")[0].isdigit():
        raise KeyError(f"exercise keys look like '1.2' (chapter.number), got {key!r}")
    _load_chapter(int(key.partition(".")[0]))
    if key not in _REGISTRY:
        known = sorted(k for k in _REGISTRY if k.partition(".")[0] == key.partition(".")[0])
        raise KeyError(f"there is no exercise {key}; this chapter has {known}")
    return _REGISTRY[key]


def all_exercises() -> list[Exercise]:
    """Every exercise of every chapter, in order."""
    package = importlib.import_module("helpers.exercises")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("ch"):
            importlib.import_module(f"helpers.exercises.{module.name}")
    return sorted(_REGISTRY.values(), key=lambda e: tuple(int(p) for p in e.key.split(".")))


def _verdict(key: str, answer: Any) -> tuple[bool | None, str]:
    """(True, "") when right, (False, why) when wrong, (None, why) when not attempted."""
    exercise = get(key)
    if answer is None or answer is Ellipsis:
        return None, "not attempted yet: replace the `...` with your answer."
    try:
        exercise.checker(answer)
    except NotImplementedError:
        return None, "not attempted yet: your function still raises NotImplementedError."
    except AssertionError as error:
        return False, str(error) or "the answer is not right."
    except Exception as error:  # the reader's code raised: say what, do not crash the notebook
        return False, f"your answer raised {type(error).__name__}: {error}"
    return True, ""


def passes(key: str, answer: Any) -> bool:
    """True if `answer` solves exercise `key`; prints nothing (for tests)."""
    return _verdict(key, answer)[0] is True


def check(key: str, answer: Any) -> None:
    """Print whether `answer` solves exercise `key`; the hint appears only after a wrong attempt.

    An exercise not yet attempted shows no hint, so that a reader (and every stored notebook) sees the
    question first and has a go before any help.
    """
    exercise = get(key)
    ok, why = _verdict(key, answer)
    if ok:
        print(f"✅ Exercise {key} ({exercise.title}): correct.")
    elif ok is None:
        print(f"⏳ Exercise {key} ({exercise.title}): {why}")
    else:
        print(f"❌ Exercise {key} ({exercise.title}): {why}\n   Hint: {exercise.hint}")


def solution(key: str) -> None:
    """Print a worked solution to exercise `key`."""
    exercise = get(key)
    answer = exercise.solution
    body = textwrap.dedent(inspect.getsource(answer)) if callable(answer) else repr(answer)
    print(f"Solution to exercise {key} ({exercise.title}):\n\n{body.rstrip()}")
    if exercise.explanation:
        print("\n" + textwrap.fill(exercise.explanation, 100))


# --- checkers ------------------------------------------------------------------------------------------


def matches_value(expected: Any, atol: float = 1e-8, what: str = "your answer") -> Checker:
    """A checker for a number or an array: same shape, and every entry within `atol`."""
    expected = np.asarray(expected, dtype=float)

    def checker(answer: Any) -> None:
        try:
            got = np.asarray(answer, dtype=float)
        except (TypeError, ValueError) as error:
            raise AssertionError(f"{what} should be numbers, got {type(answer).__name__}") from error
        assert got.shape == expected.shape, f"{what} has shape {got.shape}, expected {expected.shape}"
        assert np.all(np.isfinite(got)), f"{what} contains inf or nan"
        assert np.allclose(got, expected, rtol=0, atol=atol), f"{what} has the right shape but wrong entries"

    return checker


def matches_function(
    reference: Callable[..., Any],
    make_inputs: Callable[[np.random.Generator], tuple],
    trials: int = 25,
    atol: float = 1e-8,
    seed: int = 0,
) -> Checker:
    """A checker for a function: called on `trials` random inputs, it must agree with `reference`."""

    def checker(answer: Any) -> None:
        assert callable(answer), f"expected a function, got {type(answer).__name__}"
        rng = np.random.default_rng(seed)
        for _ in range(trials):
            args = make_inputs(rng)
            want = np.asarray(reference(*[np.copy(a) for a in args]), dtype=float)
            got = answer(*[np.copy(a) for a in args])
            if got is None:
                raise AssertionError("your function returned None: did you forget `return`?")
            got = np.asarray(got, dtype=float)
            shown = ", ".join(np.array2string(np.asarray(a), precision=3) for a in args)
            assert got.shape == want.shape, f"on input {shown} you return shape {got.shape}, not {want.shape}"
            assert np.allclose(got, want, rtol=1e-6, atol=atol), (
                f"on input {shown}\nyou return {np.array2string(got, precision=4)}"
                f"\nbut the answer is {np.array2string(want, precision=4)}"
            )

    return checker


def _resolve(dotted: str) -> tuple[Any, str, Any]:
    """("numpy.linalg.solve") -> (the numpy.linalg module, "solve", the function itself)."""
    owner_path, _, attribute = dotted.rpartition(".")
    parts = owner_path.split(".")
    owner = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        try:
            owner = getattr(owner, part)
        except AttributeError:
            owner = importlib.import_module(".".join(parts[: i + 1]))
    if not hasattr(owner, attribute):
        raise ValueError(f"{dotted!r} names nothing: {owner_path} has no attribute {attribute!r}")
    return owner, attribute, getattr(owner, attribute)


def _global_references(function: Callable[..., Any]) -> set[int]:
    """ids of the objects a function refers to by a global name (nested code included) or by closure."""
    code_objects, seen = [getattr(function, "__code__", None)], set()
    namespace = getattr(function, "__globals__", {})
    for cell in getattr(function, "__closure__", None) or ():  # names captured from an enclosing scope
        try:
            seen.add(id(cell.cell_contents))
        except ValueError:  # an empty cell
            pass
    while code_objects:
        code = code_objects.pop()
        if code is None:
            continue
        seen.update(id(namespace[name]) for name in code.co_names if name in namespace)
        code_objects.extend(c for c in code.co_consts if inspect.iscode(c))
    return seen


def by_hand(checker: Checker, forbidden: dict[str, str]) -> Checker:
    """A checker for a build-it exercise: `checker`, and the answer may not call the library shortcuts.

    `forbidden` maps a dotted name ("numpy.linalg.solve") to what the exercise wants instead ("do the
    back substitution yourself"). During the check each one is replaced by a function that fails the
    answer, and a name imported straight into the notebook (`from numpy.linalg import solve`) is caught
    too. The reference solution may call other helpers; only these shortcuts are refused.
    """
    targets = {dotted: _resolve(dotted) for dotted in forbidden}  # fails now, not mid-check, on a typo

    def refuse(dotted: str) -> Callable[..., Any]:
        def shortcut(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(
                f"this exercise is to build it yourself: {dotted} is off limits. {forbidden[dotted]}"
            )

        return shortcut

    def checker_by_hand(answer: Any) -> None:
        for dotted, (_, _, original) in targets.items():
            if answer is original:  # the shortcut itself, handed in as the answer (check("1.2", solve))
                raise AssertionError(
                    f"your answer is {dotted} itself; this exercise is to build it yourself. "
                    f"{forbidden[dotted]}"
                )
        if callable(answer):
            used = _global_references(answer)
            for dotted, (_, _, original) in targets.items():
                if id(original) in used:
                    raise AssertionError(
                        f"your function calls {dotted}; this exercise is to build it yourself. "
                        f"{forbidden[dotted]}"
                    )
        saved = [(owner, attribute, original) for owner, attribute, original in targets.values()]
        try:
            for dotted, (owner, attribute, _) in targets.items():
                setattr(owner, attribute, refuse(dotted))
            checker(answer)
        finally:
            for owner, attribute, original in saved:
                setattr(owner, attribute, original)

    return checker_by_hand


def _names_called(function: Callable[..., Any]) -> set[str]:
    """Every global or attribute name the code of `function` (and of functions inside it) looks up."""
    code = getattr(function, "__code__", None)
    names: set[str] = set()
    code_objects = [code] if code is not None else []
    while code_objects:
        code = code_objects.pop()
        names.update(code.co_names)
        code_objects.extend(c for c in code.co_consts if inspect.iscode(c))
    return names


def without_mirrors(checker: Checker, names: dict[str, str]) -> Checker:
    """`checker`, refusing an answer that calls one of the chapter's own teaching cells by name.

    A notebook's `# mirrors` cell defines its own copy of a helper, a different object from the helper, so
    by_hand (which refuses the helper) does not see it: an answer that calls the chapter's `n_m_mask` has
    had the exercise done by the text above. `names` maps each such name to what to do instead.
    """

    def checker_without_mirrors(answer: Any) -> None:
        called = _names_called(answer) if callable(answer) else set()
        for name, instead in names.items():
            if name in called:
                raise AssertionError(f"your function calls {name}, the chapter's own code; {instead}")
        checker(answer)

    return checker_without_mirrors
