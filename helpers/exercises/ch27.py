"""Exercises for chapter 27: making models cheaper."""

import torch

from helpers.exercises.core import Exercise, by_hand, matches_value, register, without_mirrors
from helpers.sparsity import n_m_mask


# 27.1 ---------------------------------------------------------------------------------------------------
def absmax_rows(W):
    scale = W.abs().amax(dim=1, keepdim=True) / 127  # (out, 1): one scale per row
    q = torch.round(W / scale).to(torch.int8)  # (out, in) in -127..127
    return q, scale


def _max_not_absmax(W):
    scale = W.amax(dim=1, keepdim=True) / 127  # the largest value, not the largest magnitude
    return torch.round(W / scale).clamp(-127, 127).to(torch.int8), scale


def _check_absmax_rows(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(0)
    for trial in range(10):
        W = torch.randn(6, 10, generator=g) * torch.rand(6, 1, generator=g)
        W[trial % 6, trial % 10] = -3.0  # a row whose largest magnitude is negative
        got = answer(W.clone())
        assert isinstance(got, tuple) and len(got) == 2, "return a pair (q, scale)"
        q, scale = (torch.as_tensor(t) for t in got)
        want_q, want_scale = absmax_rows(W)
        assert scale.shape == (6, 1), (
            f"scale should be one number per row, shape (6, 1), got {tuple(scale.shape)}"
        )
        assert torch.allclose(scale.float(), want_scale), "the scales are off: which number maps to 127?"
        assert q.shape == W.shape, f"q should have W's shape {tuple(W.shape)}, got {tuple(q.shape)}"
        assert not q.is_floating_point(), f"q should hold integers, got {q.dtype}"
        assert torch.equal(q.long(), want_q.long()), "q differs: round W / scale to the nearest integer"


register(
    Exercise(
        key="27.1",
        title="absmax int8, one scale per row",
        checker=without_mirrors(
            by_hand(
                _check_absmax_rows,
                {
                    "helpers.quantize.quantize_absmax": "find each row's largest |w| and divide by 127.",
                    "helpers.quantize.fake_quantize": "compute the scale and the integers yourself.",
                    "torch.quantize_per_channel": "compute the integers yourself: round(W / scale).",
                },
            ),
            {"quantize_absmax": "write the per-row scale and the rounding yourself."},
        ),
        hint="a row's scale is its largest MAGNITUDE divided by 127, so that the entry of largest |w| - "
        "positive or negative - lands on +127 or -127. Then q = round(W / scale) as int8.",
        solution=absmax_rows,
        wrong=_max_not_absmax,
        explanation="Per-row (per-channel) scales are what PyTorch's and most libraries' int8 weights use: "
        "each output row gets the full -127..127 range. A row whose largest magnitude is negative exposes "
        "W.amax: the scale is too small, the negative entries clip at -127 and their error is unbounded.",
    )
)


# 27.2 ---------------------------------------------------------------------------------------------------
def prune_2_4(W):
    groups = W.reshape(-1, 4)  # (G, 4): four consecutive inputs of a row
    keep = groups.abs().topk(2, dim=-1).indices  # (G, 2): the two largest magnitudes
    mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
    return (groups * mask).reshape(W.shape)


def _largest_values(W):
    groups = W.reshape(-1, 4)
    keep = groups.topk(2, dim=-1).indices  # the two largest values, so negative weights always go
    return (groups * torch.zeros_like(groups).scatter_(-1, keep, 1.0)).reshape(W.shape)


def _check_2_4(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(1)
    for rows, cols in ((1, 4), (3, 8), (8, 16), (5, 32)):
        W = torch.randn(rows, cols, generator=g)
        got = answer(W.clone())
        assert got is not None, "your function returned None: did you forget `return`?"
        got = torch.as_tensor(got)
        assert got.shape == W.shape, f"return W's shape {tuple(W.shape)}, got {tuple(got.shape)}"
        nonzero = (got != 0).reshape(-1, 4).sum(-1)
        assert (nonzero == 2).all(), "every group of four consecutive entries must keep exactly two"
        assert torch.allclose(got, W * n_m_mask(W, 2, 4)), (
            f"on a {rows}x{cols} matrix you keep the wrong two: the largest by magnitude |w| should stay"
        )


register(
    Exercise(
        key="27.2",
        title="2:4 pruning",
        checker=without_mirrors(
            by_hand(
                _check_2_4,
                {
                    "helpers.sparsity.n_m_mask": "find the two largest |w| of each group of four yourself.",
                    "helpers.sparsity.prune_linears": "prune the matrix yourself.",
                    "helpers.sparsity.magnitude_mask": "keep the two largest |w| of every group of four.",
                },
            ),
            {"n_m_mask": "build the mask from topk yourself.", "magnitude_mask": "work group by group."},
        ),
        hint="reshape to (-1, 4) so each row is one group; topk(2) of the ABSOLUTE values gives the two to "
        "keep; scatter ones at those positions into a zero mask and multiply.",
        solution=prune_2_4,
        wrong=_largest_values,
        explanation="The 2:4 pattern is what NVIDIA's sparse tensor cores (Ampere and later) accelerate: "
        "the hardware stores the two kept values and a 2-bit index for each, and skips the zeros. "
        "Magnitude, not sign, is what makes a weight matter: -2 contributes as much as +2.",
    )
)

# 27.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="27.3",
        title="a 7B model at 4 bits",
        checker=matches_value(7e9 * (4 + 16 / 128) / 8 / 1e9, atol=0.02, what="your GB"),
        hint="each weight costs 4 bits, and each group of 128 weights also stores one 16-bit scale.",
        solution=7e9 * (4 + 16 / 128) / 8 / 1e9,
        wrong=3.5,  # the 4 bits alone
        explanation="4 + 16 / 128 = 4.125 bits per weight; 7e9 x 4.125 / 8 = 3.61e9 bytes = 3.61 GB, "
        "against 14 GB in fp16. The scales add 3 %: small groups buy accuracy with memory.",
    )
)

# 27.4 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="27.4",
        title="tokens per target pass",
        checker=matches_value((1 - 0.8**5) / (1 - 0.8), atol=0.01, what="your expected number of tokens"),
        hint="the round keeps draft i only if drafts 1..i were all kept: i drafts survive with probability "
        "0.8^i. Add the target's own token, always produced. Sum 1 + 0.8 + 0.8^2 + ... + 0.8^4.",
        solution=(1 - 0.8**5) / (1 - 0.8),
        wrong=1 + 4 * 0.8,  # as if a rejected draft did not end the round
        explanation="1 + a + a^2 + ... + a^k = (1 - a^(k+1)) / (1 - a) = 3.36 for a = 0.8, k = 4: the "
        "first rejection ends the round, so later drafts count only when all earlier ones were kept. "
        "If a target pass costs the same as 5 draft steps, the round costs 1 + 4/5 passes: a 1.87x speed-up.",
    )
)


# 27.5 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="27.5",
        title="predict: the shipped GPT at 4 bits",
        checker=matches_value(0.24, atol=0.05, what="your fraction of the fp32 size"),
        hint="only the Linear layers are quantized (4 bits, plus one float32 scale per row); the token "
        "embedding, tied to the head, stays in fp32. How big is that matrix next to the rest?",
        solution=0.24,
        wrong=0.125,  # "4 bits is an eighth of 32"
        explanation="The Linear weights shrink eightfold, but the 4096 x 384 embedding (6 MiB, an eighth of "
        "the model) stays in fp32, so the file is 11.2 of 46.5 MiB: 24 %, not 12.5 %. On a 7B model the "
        "embedding is a few percent of the weights, and 4 bits come much closer to an eighth; on a small "
        "model what is not quantized decides the size.",
    )
)


# 27.6 ---------------------------------------------------------------------------------------------------
def _slower_or_faster(answer) -> None:
    assert isinstance(answer, str), f"answer 'faster' or 'slower', got {type(answer).__name__}"
    answer = answer.strip().lower()
    assert answer in ("faster", "slower"), f"answer 'faster' or 'slower', got {answer!r}"
    assert answer == "slower", "not faster: count what one round costs against the tokens it yields"


register(
    Exercise(
        key="27.6",
        title="predict: speculative decoding with a poor draft",
        checker=_slower_or_faster,
        hint="a round costs k draft steps plus one target pass over k + 1 tokens, and yields 1 + (accepted "
        "drafts) tokens. With 10 % acceptance, how many tokens does a round yield?",
        solution="slower",
        wrong="faster",  # "fewer target passes must be faster"
        explanation="At 10 % acceptance a round of k = 4 yields about 1.1 tokens, for 4 draft steps (each an "
        "eighth of a target step here) plus a target pass over 5 tokens (1.7 single-token passes): about "
        "2.2 target steps of time for 1.1 tokens, so roughly half the target's own speed. Fewer target "
        "passes pay off only when the draft agrees often: at 80 % acceptance (exercise 27.4) a round yields "
        "3.4 tokens for the same cost.",
    )
)
