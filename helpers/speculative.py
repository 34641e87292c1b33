"""Speculative decoding (chapter 27): a small draft model guesses k tokens, the big model checks them at once.

What this module adds over helpers.generate (one model, one token per forward pass):

    accept_greedy(target_logits, drafts)          how many drafted tokens the target's argmax agrees with,
                                                  and the target's own token after them
    accept_or_resample(p, q, drafts, generator)   the sampling rule: keep draft x with probability
                                                  min(1, p(x) / q(x)); at the first rejection draw from
                                                  max(0, p - q), renormalised. The tokens that come out are
                                                  distributed exactly as the target alone would draw them
    speculative_generate(target, draft, idx, n, k, temperature)
                                                  the loop, both models with a KV cache that is cut back to
                                                  the accepted tokens after every round; returns the tokens
                                                  and SpeculativeStats (rounds, drafted, accepted)

One round costs k cheap draft steps and ONE target forward pass over k + 1 positions, and yields between 1
and k + 1 tokens. Greedy output is identical to the target's own greedy output (tests check it token for
token); the speed-up depends on how often the draft agrees and how much cheaper it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from helpers.generate import sample_from


@dataclass
class SpeculativeStats:
    """What happened: target forward passes (rounds), tokens the draft proposed and the target kept."""

    rounds: int = 0
    drafted: int = 0
    accepted: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else float("nan")


def accept_greedy(target_logits: torch.Tensor, drafts: list[int]) -> tuple[int, int]:
    """target_logits: (k + 1, V), row i = the target's logits after the i-th draft (row 0: before any).

    Returns (n accepted, next token): drafts are kept while each equals the target's argmax, and the
    next token is the target's argmax at the first disagreement (or after all k: a free extra token).
    """
    if target_logits.dim() != 2 or target_logits.shape[0] != len(drafts) + 1:
        raise ValueError(
            f"need (k + 1, V) target logits for k={len(drafts)} drafts, got {tuple(target_logits.shape)}"
        )
    best = target_logits.argmax(dim=-1).tolist()  # (k + 1,)
    n = 0
    while n < len(drafts) and drafts[n] == best[n]:
        n += 1
    return n, best[n]


def accept_or_resample(
    p: torch.Tensor, q: torch.Tensor, drafts: list[int], generator: torch.Generator | None = None
) -> tuple[int, int]:
    """The sampling rule. p: (k + 1, V) target probabilities, q: (k, V) draft probabilities, drafts: the k
    tokens drawn from q. Returns (n accepted, next token).

    Draft x_i is kept with probability min(1, p_i(x_i) / q_i(x_i)). At the first rejection the next token
    is drawn from max(0, p_i - q_i) / its sum; if all k are kept, from p_k. Kept-or-resampled, each token
    is distributed exactly as p_i: P(x) = q(x) min(1, p(x)/q(x)) + (1 - sum_y min(p(y), q(y))) *
    max(0, p(x) - q(x)) / sum_y max(0, p(y) - q(y)) = min(p, q) + max(0, p - q) = p(x).
    """
    k = len(drafts)
    if p.dim() != 2 or q.dim() != 2 or p.shape[0] != k + 1 or q.shape[0] != k or p.shape[1] != q.shape[1]:
        raise ValueError(
            f"need p (k + 1, V) and q (k, V) for k={k}, got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    for i, x in enumerate(drafts):
        u = torch.rand(1, generator=generator, dtype=torch.float64).item()
        if u < min(1.0, p[i, x].item() / q[i, x].item()):
            continue  # kept
        residual = (p[i] - q[i]).clamp_min(0)  # (V,) where the target wants more than the draft gave
        return i, int(sample_from(residual[None], generator)[0])
    return k, int(sample_from(p[k][None], generator)[0])


class _Cached:
    """A model and its KV cache over the first `length` tokens of the sequence."""

    def __init__(self, model: nn.Module):
        self.model, self.past, self.length = model, None, 0

    def feed(self, seq: list[int]) -> torch.Tensor:
        """Run the tokens of seq not yet cached; returns their logits (n_new, V)."""
        device = next(self.model.parameters()).device
        new = torch.tensor(seq[self.length :], dtype=torch.long, device=device)[None]  # (1, n_new)
        logits, _, self.past = self.model(new, past_kv=self.past, use_cache=True)  # (1, n_new, V)
        self.length = len(seq)
        return logits[0]  # (n_new, V)

    def cut(self, length: int) -> None:
        """Forget every cached position from `length` on (the rejected drafts)."""
        if length < self.length:
            self.past = [(k[:, :, :length], v[:, :, :length]) for k, v in self.past]
            self.length = length


@torch.inference_mode()
def speculative_generate(
    target: nn.Module,
    draft: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    k: int = 4,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, SpeculativeStats]:
    """Continue one prompt idx (1, T) by max_new_tokens tokens; returns ((1, T + new), stats).

    Each round the draft proposes up to k tokens one by one (greedy, or sampled at `temperature`), the
    target runs once over all of them, and accept_greedy / accept_or_resample decides how many stay; the
    target's token after them is always added. Both models must share the vocabulary, and the whole
    sequence must fit in both context windows (no cropping here).
    """
    if idx.dim() != 2 or idx.shape[0] != 1 or idx.shape[1] < 1 or idx.dtype != torch.long:
        raise ValueError(f"idx must be one prompt, a (1, T) long tensor with T >= 1, got {tuple(idx.shape)}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if target.config.vocab_size != draft.config.vocab_size:
        raise ValueError(
            f"the draft's vocabulary ({draft.config.vocab_size}) differs from the target's "
            f"({target.config.vocab_size})"
        )
    end = idx.shape[1] + max_new_tokens
    room = min(target.config.block_size, draft.config.block_size)
    if end > room:
        raise ValueError(f"prompt + new tokens ({end}) must fit in the context of both models ({room})")
    was = target.training, draft.training
    target.eval(), draft.eval()
    seq = idx[0].tolist()
    t_cache, d_cache = _Cached(target), _Cached(draft)
    stats = SpeculativeStats()
    while len(seq) < end:
        k_now = min(k, end - len(seq) - 1)  # the round adds one target token after the drafts
        drafts, q_rows = [], []
        for _ in range(k_now):
            logits = d_cache.feed(seq + drafts)[-1]  # (V,)
            if temperature == 0:
                drafts.append(int(logits.argmax()))
            else:
                q_rows.append(torch.softmax(logits.double() / temperature, dim=-1))  # (V,)
                drafts.append(int(sample_from(q_rows[-1][None], generator)[0]))
        target_logits = t_cache.feed(seq + drafts)[-(k_now + 1) :]  # (k_now + 1, V)
        if temperature == 0:
            n, nxt = accept_greedy(target_logits, drafts)
        else:
            p = torch.softmax(target_logits.double() / temperature, dim=-1)  # (k_now + 1, V)
            q = torch.stack(q_rows) if q_rows else p[:0]  # (k_now, V)
            n, nxt = accept_or_resample(p, q, drafts, generator)
        seq += drafts[:n] + [nxt]
        t_cache.cut(len(seq) - 1)
        d_cache.cut(len(seq) - 1)
        stats.rounds += 1
        stats.drafted += k_now
        stats.accepted += n
    target.train(was[0]), draft.train(was[1])
    return torch.tensor(seq, dtype=torch.long, device=idx.device)[None], stats
