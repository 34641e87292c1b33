"""Exercises for chapter 28: faster attention and its alternatives."""

import contextlib
import math
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from helpers.exercises.core import Exercise, by_hand, matches_value, register, without_mirrors
from helpers.fast_attention import score_bytes
from helpers.ssm import scan_parallel

# 28.1 ---------------------------------------------------------------------------------------------------
SHORTCUTS = {
    torch: ["softmax", "logsumexp", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "row_stack"],
    torch.Tensor: ["softmax", "logsumexp"],
    F: ["softmax", "log_softmax", "scaled_dot_product_attention"],
    np: ["concatenate", "hstack", "vstack", "stack"],
}


def _refuse(name):
    def refused(*args, **kwargs):
        raise AssertionError(f"{name} was called: the point is to do without it (one block at a time)")

    return refused


def _check_stream(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        d, d_v = int(torch.randint(1, 9, (1,), generator=g)), int(torch.randint(1, 6, (1,), generator=g))
        sizes = torch.randint(1, 7, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g).tolist()
        q = torch.randn(d, generator=g, dtype=torch.float64) * (30 if trial % 2 else 1)  # sharp or soft
        blocks = [
            (
                torch.randn(n, d, generator=g, dtype=torch.float64),
                torch.randn(n, d_v, generator=g, dtype=torch.float64),
            )
            for n in sizes
        ]
        K = torch.cat([k for k, _ in blocks])  # (T, d), for the expected answer only
        V = torch.cat([v for _, v in blocks])  # (T, d_v)
        want = torch.softmax(K @ q / math.sqrt(d), dim=0) @ V  # (d_v,)

        def once(blocks=blocks):
            yield from blocks  # a generator: it can be read once, block by block

        with contextlib.ExitStack() as stack:
            for owner, names in SHORTCUTS.items():
                for name in names:
                    stack.enter_context(mock.patch.object(owner, name, _refuse(f"{owner.__name__}.{name}")))
            got = answer(q, once())
        assert got is not None, "your function returned None: did you forget `return`?"
        got = torch.as_tensor(got, dtype=torch.float64)
        assert got.shape == want.shape, (
            f"the output should have shape {tuple(want.shape)}, got {tuple(got.shape)}"
        )
        assert torch.allclose(got, want, atol=1e-9), (
            f"with {len(sizes)} blocks of {sizes} keys the output is off by {(got - want).abs().max():.3g}: "
            "is everything you carry (sum and accumulator) rescaled when the max grows?"
        )


def stream_attention(q, blocks):
    d = q.shape[-1]
    m, l, acc = -math.inf, 0.0, 0.0
    for K, V in blocks:
        s = K @ q / math.sqrt(d)  # (n,): this block's scores
        m_new = max(m, s.max().item())
        alpha = math.exp(m - m_new)  # shrinks what was summed against the old max
        p = torch.exp(s - m_new)  # (n,)
        l = l * alpha + p.sum()
        acc = acc * alpha + p @ V  # (d_v,)
        m = m_new
    return acc / l


def _forgets_the_accumulator(q, blocks):
    d = q.shape[-1]
    m, l, acc = -math.inf, 0.0, 0.0
    for K, V in blocks:
        s = K @ q / math.sqrt(d)
        m_new = max(m, s.max().item())
        p = torch.exp(s - m_new)
        l = l * math.exp(m - m_new) + p.sum()
        acc = acc + p @ V  # the old weighted sum still uses the old max
        m = m_new
    return acc / l


register(
    Exercise(
        key="28.1",
        title="one query, streamed",
        checker=without_mirrors(
            by_hand(
                _check_stream,
                {
                    "helpers.fast_attention.tiled_attention": "carry m, l and acc yourself.",
                    "helpers.fast_attention.online_softmax_stats": "keep the running max and sum yourself.",
                    "helpers.fast_attention.online_softmax": "keep the running max and sum yourself.",
                },
            ),
            {
                "tiled_attention": "carry m, l and acc across the blocks yourself.",
                "online_softmax_stats": "keep the running max and sum yourself.",
            },
        ),
        hint="carry three things across blocks: the running max m, the running sum l of exp(s - m), and the "
        "running weighted sum acc of exp(s - m) * v. When a block raises the max to m_new, multiply BOTH l "
        "and acc by exp(m - m_new) before adding the block's own terms. Divide acc by l at the end.",
        solution=stream_attention,
        wrong=_forgets_the_accumulator,
        explanation="This is FlashAttention for a single query, and also how 'flash decoding' splits a long "
        "KV cache into blocks: each block's contribution is measured against the max seen so far, and one "
        "multiplication by exp(m - m_new) brings everything carried so far up to date.",
    )
)

# 28.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="28.2",
        title="the score matrix at 8k tokens",
        checker=matches_value(score_bytes(8192, 8192, n_head=12) / 2**30, atol=0.05, what="your GiB"),
        hint="one head's score matrix is T x T numbers of 4 bytes each, and every head has its own.",
        solution=3.0,
        wrong=0.25,  # one head only
        explanation="8192 x 8192 = 67,108,864 scores, 4 bytes each = 256 MiB per head; 12 heads make "
        "3 GiB, for one layer and one sequence, before the softmax makes a second matrix of the same size.",
    )
)

# 28.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="28.3",
        title="the KV cache of GPT-2 small",
        checker=matches_value(2 * 12 * 8192 * 768 * 4 / 2**30, atol=0.01, what="your GiB"),
        hint="every layer keeps a key AND a value vector of 768 numbers (all heads together) per token; "
        "multiply by the tokens, the layers and 4 bytes.",
        solution=0.5625,
        wrong=0.28125,  # keys only
        explanation="Per token and layer: a key and a value of 768 floats = 2 x 768 x 4 = 6,144 bytes; x 12 "
        "layers = 73,728 bytes per token; x 8192 tokens = 0.5625 GiB for one sequence. A server running 32 "
        "such sequences holds 18 GiB of cache, which is why long-context serving is limited by memory.",
    )
)


# 28.4 ---------------------------------------------------------------------------------------------------
def resume_scan(a, b, h0):
    A = torch.cumprod(a, dim=1)  # (B, T, ...): the decay from the start up to each step
    return A * h0[:, None] + scan_parallel(a, b)  # what h0 has become, plus what the inputs added


def _forgets_the_decay(a, b, h0):
    return h0[:, None] + scan_parallel(a, b)  # h0 never fades


def _check_resume(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(0)
    for T in (1, 2, 5, 16, 23):
        a = torch.rand(3, T, 4, generator=g, dtype=torch.float64)
        b = torch.randn(3, T, 4, generator=g, dtype=torch.float64)
        h = torch.randn(3, 4, generator=g, dtype=torch.float64)
        h0, hs = h.clone(), []
        for t in range(T):
            h = a[:, t] * h + b[:, t]
            hs.append(h)
        want = torch.stack(hs, dim=1)
        got = answer(a.clone(), b.clone(), h0.clone())
        assert got is not None, "your function returned None: did you forget `return`?"
        assert got.shape == want.shape, f"h should have shape {tuple(want.shape)}, got {tuple(got.shape)}"
        assert torch.allclose(got, want), f"with T = {T} your h differs from the step-by-step loop"


register(
    Exercise(
        key="28.4",
        title="resume a scan from a state",
        checker=_check_resume,
        hint="by linearity, h_t = (what h0 has decayed to by step t) + (what the scan from zero gives). "
        "h0 is multiplied by a_0, then a_1, ..., then a_t: a running product (torch.cumprod).",
        solution=resume_scan,
        wrong=_forgets_the_decay,
        explanation="The recurrence is linear in (h0, b), so the two contributions add. The first is "
        "h0 times the product a_0 a_1 ... a_t - exactly the 'a' half of the composed pair after the scan. "
        "This is how a chunked scan carries the state from one chunk to the next, and how generation "
        "continues from a prompt's final state.",
    )
)

# 28.5 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="28.5",
        title="how far back can a stack of windows see",
        checker=matches_value(9, what="your number of positions"),
        hint="one layer with window w lets position t read positions t - (w - 1) .. t. A second layer reads "
        "the first layer's outputs, each of which already summarises w positions.",
        solution=9,
        wrong=4,
        explanation="Each layer reaches w - 1 = 3 positions further back, so 3 layers reach 3 x 3 = 9 "
        "positions back (10 positions including itself). Mistral used this: a window of 4096 over 32 layers "
        "reaches about 131k tokens back in principle, with attention that costs O(T w).",
    )
)
