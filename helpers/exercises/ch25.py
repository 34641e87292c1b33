"""Exercises for chapter 25: multimodal learning."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_value, register
from helpers.multimodal import info_nce as _reference_info_nce


# 25.1 ---------------------------------------------------------------------------------------------------
def contrastive_loss(a, b, temperature):
    """Symmetric InfoNCE in NumPy: row i of a goes with row i of b. a, b: (B, d) arrays of unit rows."""
    S = a @ b.T / temperature  # (B, B) similarity matrix

    def log_softmax_rows(M):
        M = M - M.max(axis=1, keepdims=True)  # changes nothing, but exp can no longer overflow
        return M - np.log(np.exp(M).sum(axis=1, keepdims=True))

    a_to_b = -np.diag(log_softmax_rows(S)).mean()  # each row: which b is a_i's?
    b_to_a = -np.diag(log_softmax_rows(S.T)).mean()  # each column of S (a row of S.T): which a is b_j's?
    return float((a_to_b + b_to_a) / 2)


def _rows_twice(a, b, temperature):
    S = a @ b.T / temperature
    M = S - S.max(axis=1, keepdims=True)
    log_p = M - np.log(np.exp(M).sum(axis=1, keepdims=True))
    return float((-np.diag(log_p).mean() + -np.diag(log_p.T).mean()) / 2)  # transposed AFTER the softmax


def _lopsided_inputs(rng: np.random.Generator, temperature: float):
    """Unit rows a, b (float64 arrays) on which the row-only loss and the symmetric loss differ."""
    while True:
        B, d = int(rng.integers(3, 9)), int(rng.integers(2, 7))
        a = rng.normal(size=(B, d))
        b = rng.normal(size=(B, d))
        a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
        S = torch.as_tensor(a @ b.T / temperature)
        rows = -torch.log_softmax(S, dim=1).diagonal().mean()
        if abs(rows - _reference_info_nce(torch.as_tensor(a), torch.as_tensor(b), temperature)) > 1e-2:
            return a, b


def _contrastive_cases() -> list[tuple[np.ndarray, np.ndarray, float, float, float]]:
    """(a, b, temperature, loss of the rows alone, symmetric loss), worked out with torch before any check."""
    rng = np.random.default_rng(0)
    cases = []
    for temperature in [1.0, 0.2, 0.05, 1.0, 0.2, 0.05, 0.002, 0.002]:
        a, b = _lopsided_inputs(rng, temperature)
        S = torch.as_tensor(a @ b.T / temperature)  # (B, B)
        rows = float(-torch.log_softmax(S, dim=1).diagonal().mean())
        want = float(_reference_info_nce(torch.as_tensor(a), torch.as_tensor(b), temperature))
        cases.append((a, b, temperature, rows, want))
    return cases


_CONTRASTIVE_CASES = _contrastive_cases()


def _compare_contrastive_loss(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for a, b, temperature, rows, want in _CONTRASTIVE_CASES:
        got = answer(a.copy(), b.copy(), temperature)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = float(np.asarray(got).reshape(()))
        assert np.isfinite(got), (
            f"at temperature {temperature} your loss is {got}: exp overflowed or underflowed. Subtract "
            "each row's largest entry before exp (it cancels in the fraction)"
        )
        if abs(got - rows) < 1e-6:
            raise AssertionError(
                f"for a batch of {len(a)} you return {got:.4f}, the loss of the rows alone "
                f"(each image choosing its caption); the columns' direction is missing (answer {want:.4f})"
            )
        assert abs(got - want) < 1e-6 * max(1.0, abs(want)), (
            f"for a batch of {len(a)} at temperature {temperature} you return {got:.4f}, not {want:.4f}"
        )


_WRITE_IT = "Write the log-softmax yourself, with numpy: subtract the row's max, exp, sum, log."
_check_contrastive_loss = by_hand(
    _compare_contrastive_loss,
    {
        name: _WRITE_IT
        for name in (
            "torch.nn.functional.cross_entropy",
            "torch.nn.functional.nll_loss",
            "torch.nn.CrossEntropyLoss.forward",
            "torch.nn.functional.log_softmax",
            "torch.nn.functional.softmax",
            "torch.log_softmax",
            "torch.softmax",
            "torch.logsumexp",
            "torch.Tensor.log_softmax",
            "torch.Tensor.softmax",
            "torch.Tensor.logsumexp",
            "scipy.special.logsumexp",
            "scipy.special.softmax",
            "scipy.special.log_softmax",
            "helpers.multimodal.info_nce",
        )
    },
)


register(
    Exercise(
        key="25.1",
        title="the contrastive loss in NumPy",
        checker=_check_contrastive_loss,
        hint="S = a @ b.T / temperature. A log-softmax of each row is M - log(sum(exp(M))) along the row, "
        "after subtracting the row's max from M. Row i of S is image i choosing among the captions; the "
        "columns (the rows of S.T) are the captions choosing among the images - softmax S.T, not the "
        "transpose of S's softmax. Take the diagonal of each, negate, average, then average the two.",
        solution=contrastive_loss,
        wrong=_rows_twice,
        explanation="The rows ask 'which caption is this image's?', the columns 'which image is this "
        "caption's?'. They normalise over different sets (a caption can be the favourite of two images), "
        "so transposing after the softmax just reads the rows again. Subtracting each row's max keeps "
        "the numbers in range: at temperature 0.002 the scores reach +-500, and a ratio such as "
        "e^-400 / e^500 rounds to 0 in float64, whose log is -inf.",
    )
)

# 25.2 ---------------------------------------------------------------------------------------------------
S_PREDICT = [[0.9, 0.2, 0.4], [0.6, 0.3, 0.8], [0.5, 0.5, 0.1]]
register(
    Exercise(
        key="25.2",
        title="predict, then run: temperature -> 0",
        checker=matches_value(
            torch.softmax(torch.tensor(S_PREDICT, dtype=torch.float64) / 1e-4, dim=1).numpy(),
            atol=1e-3,
            what="your matrix",
        ),
        hint="dividing by a tiny temperature blows every gap between two scores of a row up to a huge gap. "
        "Look for the largest entry of each row - not the diagonal - and at what happens when two "
        "entries tie for largest.",
        solution=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]]),
        wrong=np.eye(3),  # "the right answers": but the softmax does not know which answer is right
        explanation="Each row becomes one-hot at its largest similarity, wherever that is: row 1's largest "
        "is column 2, so all its weight goes there, however wrong. A tie stays a tie (row 2 splits evenly "
        "between its two 0.5s). A cold softmax only sharpens the model's own ranking; it cannot fix it.",
    )
)

# 25.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="25.3",
        title="the loss of a collapsed model",
        checker=matches_value(math.log(256), atol=1e-3, what="the loss"),
        hint="if every embedding is the same unit vector, every entry of S is 1 / temperature. What does "
        "the softmax of a row of equal numbers give, and what is -log of one entry?",
        solution=math.log(256),
        wrong=0.0,  # "every pair has cosine 1, a perfect match": but so does every wrong pair
        explanation="All similarities are equal, so each row's softmax is uniform, 1/256 per caption, and "
        "each direction's loss is -log(1/256) = log 256 = 5.545, whatever the temperature. The loss rewards "
        "the right pair only relative to the wrong ones, which is why contrastive training cannot collapse "
        "to one vector - and why log(batch size) is the loss of a model that has learned nothing.",
    )
)

# 25.4 ---------------------------------------------------------------------------------------------------
S_RECALL = [[0.2, 0.9, 0.1], [0.1, 0.8, 0.3], [0.4, 0.3, 0.5]]
register(
    Exercise(
        key="25.4",
        title="recall@k by hand",
        checker=matches_value([2 / 3, 1.0], atol=1e-6, what="[recall@1, recall@2]"),
        hint="the rows are the queries (images). For each row, rank the columns from most to least similar "
        "and see where column i (the row's own caption) lands.",
        solution=[2 / 3, 1.0],
        wrong=[1 / 3, 1.0],  # read down the columns: caption -> image, the other direction
        explanation="Row 0 ranks column 1 first and its own column 0 second: a miss at k = 1, a hit at "
        "k = 2. Rows 1 and 2 rank their own column first. So recall@1 = 2/3 and recall@2 = 1. Reading the "
        "columns instead (caption -> image) gives 1/3 at k = 1: the two directions are different numbers.",
    )
)

# 25.5 ---------------------------------------------------------------------------------------------------
POOL_CHOICES = {
    "a": "both do about as well on the held-out pairings as on the seen ones: every digit and every corner "
    "was in training",
    "b": "the grid model drops hard on the held-out pairings, and what it gets wrong is the digit; the "
    "what-where model loses only a little",
    "c": "the grid model, which keeps more about where each feature is, does better on the held-out "
    "pairings than the what-where model",
    "d": "the grid model drops hard on the held-out pairings, and what it gets wrong is the corner",
}


def _check_pool(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in POOL_CHOICES, (
        f"answer with one of the letters {sorted(POOL_CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "b", f"not ({picked}): {POOL_CHOICES[picked]}. Run the next cells and read the bars."


register(
    Exercise(
        key="25.5",
        title="which tower generalises? (predict, then run)",
        checker=_check_pool,
        hint="in the grid model, which weights read a digit drawn in the bottom-right quarter, and did they "
        "ever see a 3 in training? In the what-where model, which weights read the digit, and where did they "
        "learn it?",
        solution="b",
        wrong="c",  # more spatial detail sounds like more information, so better generalisation
        explanation="The grid tower reads a digit in the bottom-right quarter with that quarter's own "
        "features, and those never saw the held-out digit there, so it misreads the digit while still "
        "finding the corner. The what-where tower reads the digit with one position-blind max over the "
        "whole canvas, learned from every corner at once, and the corner from a separate thumbnail; both "
        "parts transfer to a pairing they never saw together.",
    )
)
