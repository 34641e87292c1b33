"""helpers.speculative: greedy output identical to plain greedy decoding, and the sampling rule exact."""

import pytest
import torch

from helpers.generate import generate
from helpers.gpt import GPT, GPTConfig
from helpers.speculative import accept_greedy, accept_or_resample, speculative_generate


def model(seed, n_layer, n_embd, vocab=17, block=96):
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=2, n_embd=n_embd)
    ).double()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_speculative_greedy_equals_plain_greedy_for_many_prompts(k):
    g = torch.Generator().manual_seed(k)
    for seed in range(8):
        target, draft = model(seed, 2, 32), model(100 + seed, 1, 8)
        prompt = torch.randint(17, (1, int(torch.randint(1, 20, (1,), generator=g))), generator=g)
        n = int(torch.randint(0, 60, (1,), generator=g))
        ours, stats = speculative_generate(target, draft, prompt, n, k=k)
        assert torch.equal(ours, generate(target, prompt, n, temperature=0))
        assert stats.rounds <= max(n, 1) and stats.accepted <= stats.drafted
        assert stats.rounds + stats.accepted == n  # every round adds its accepted drafts plus one token


def test_a_perfect_draft_is_always_accepted():
    target = model(0, 2, 32)
    prompt = torch.tensor([[1, 2, 3]])
    out, stats = speculative_generate(target, target, prompt, 40, k=4)
    assert stats.acceptance_rate == 1.0
    assert stats.rounds == 8  # 5 tokens per round: 4 drafts and the target's bonus token
    assert torch.equal(out, generate(target, prompt, 40, temperature=0))


def test_accept_greedy_stops_at_the_first_disagreement():
    logits = torch.eye(5)[[2, 4, 1, 0]]  # the target's argmax: 2, 4, 1, 0
    assert accept_greedy(logits, [2, 4, 3]) == (2, 1)
    assert accept_greedy(logits, [2, 4, 1]) == (3, 0)
    assert accept_greedy(logits, [0, 4, 1]) == (0, 2)


def test_the_sampling_rule_reproduces_the_target_distribution():
    """Whatever the draft proposes, each emitted token is distributed as the target's p."""
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.5, 0.2, 0.2, 0.1, 0.0], [0.1, 0.1, 0.1, 0.1, 0.6]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.5, 0.1, 0.1, 0.2]], dtype=torch.float64)
    trials, first, second = 20000, torch.zeros(5), torch.zeros(5)
    n_second = 0
    for _ in range(trials):
        x = int(torch.multinomial(q[0], 1, generator=g))
        n, nxt = accept_or_resample(p, q, [x], g)
        first[x if n == 1 else nxt] += 1
        if n == 1:
            second[nxt] += 1
            n_second += 1
    assert (first / trials - p[0].float()).abs().max() < 0.015  # q would be off by 0.4 on token 0
    assert (second / n_second - p[1].float()).abs().max() < 0.02  # after an acceptance: p's next row
    assert (
        abs(n_second / trials - torch.minimum(p[0], q[0]).sum().item()) < 0.015
    )  # P(accept) = sum min(p, q)


def test_speculative_sampling_is_seeded_and_its_first_token_has_the_targets_distribution():
    target, draft = model(1, 2, 32, vocab=5), model(2, 1, 8, vocab=5)
    prompt, T = torch.tensor([[0, 1]]), 0.3  # a low temperature: sharp, clearly different p and q
    a, _ = speculative_generate(
        target, draft, prompt, 30, k=3, temperature=T, generator=torch.Generator().manual_seed(3)
    )
    b, _ = speculative_generate(
        target, draft, prompt, 30, k=3, temperature=T, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(a, b) and a.shape == (1, 32)
    with torch.no_grad():
        p = torch.softmax(target(prompt)[0][0, -1] / T, -1).float()
        q = torch.softmax(draft(prompt)[0][0, -1] / T, -1).float()
    assert (p - q).abs().max() > 0.15  # so that drawing from the draft's q would fail the test
    counts, g, runs = torch.zeros(5), torch.Generator().manual_seed(4), 600
    for _ in range(runs):
        out, _ = speculative_generate(target, draft, prompt, 2, k=1, temperature=T, generator=g)
        counts[out[0, 2]] += 1
    assert (counts / runs - p).abs().max() < 0.06  # seeded: the same draws every run


def test_bad_input_is_a_clear_error():
    target, draft = model(0, 1, 8), model(1, 1, 8, vocab=9)
    prompt = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(target, draft, prompt, 5)
    with pytest.raises(ValueError, match="one prompt"):
        speculative_generate(target, target, torch.zeros(2, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="fit in the context"):
        speculative_generate(target, target, prompt, 200)
    with pytest.raises(ValueError, match="k must be"):
        speculative_generate(target, target, prompt, 5, k=0)
    with pytest.raises(ValueError, match="k \\+ 1"):
        accept_greedy(torch.zeros(2, 5), [1, 2])
    with pytest.raises(ValueError, match="need p"):
        accept_or_resample(torch.zeros(2, 5), torch.zeros(2, 5), [1])
