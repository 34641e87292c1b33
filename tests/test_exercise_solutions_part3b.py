"""The reference solutions of chapters 16-18's exercises, checked against the library they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
torch (or with the book's helper that is itself tested against torch) on random inputs, each
predict-then-run answer with the experiment it predicts, and the build-it checkers are shown to refuse the
shortcuts they exist to refuse (the library call, the chapter's helper, and the torch code the chapter
shows, which a reader could wrap).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.attention import causal_mask, scaled_dot_product_attention
from helpers.exercises import check, get, passes
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import param_groups
from helpers.transformer import Block, apply_rope, gelu, sinusoidal_encoding


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a library shortcut."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it yourself" in out)


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


# chapter 16 ---------------------------------------------------------------------------------------------
def test_16_1_prediction_matches_the_measured_largest_weight():
    g = torch.Generator().manual_seed(1)
    d, n_keys = 1024, 16
    q, k = torch.randn(2000, 1, d, generator=g), torch.randn(2000, n_keys, d, generator=g)
    raw = (q @ k.transpose(1, 2))[:, 0]  # (N, 16): unscaled scores
    largest = torch.softmax(raw, -1).max(-1).values.mean().item()
    assert abs(largest - get("16.1").solution) < 0.03
    assert not passes("16.1", 1 / n_keys) and passes("16.1", largest)
    scaled = torch.softmax(raw / math.sqrt(d), -1).max(-1).values.mean().item()
    assert 0.2 < scaled < 0.3  # the explanation's "near 0.25 at every width"
    gap = raw.sort(-1).values  # the hint's "about half a standard deviation, some 15 points"
    assert 10 < (gap[:, -1] - gap[:, -2]).mean().item() < 20


def test_16_2_a_zero_query_spreads_its_weight_evenly():
    T, position = 10, 7
    q, k, v = torch.randn(T, 8, dtype=torch.float64), torch.randn(T, 8), torch.randn(T, 8)
    q[position] = 0.0  # looks for nothing
    _, weights = scaled_dot_product_attention(q, k.double(), v.double(), is_causal=True, return_weights=True)
    assert torch.allclose(
        weights[position, : position + 1],
        torch.full((position + 1,), get("16.2").solution, dtype=torch.float64),
    )


@pytest.mark.parametrize(("T_q", "T_k"), [(1, 1), (5, 5), (1, 6), (3, 8)])
def test_16_3_reference_matches_torch_and_the_helper(T_q, T_k):
    rng = np.random.default_rng(T_q * 10 + T_k)
    Q, K, V = rng.normal(size=(T_q, 6)), rng.normal(size=(T_k, 6)), rng.normal(size=(T_k, 4))
    ours = get("16.3").solution(Q, K, V)
    mask = causal_mask(T_q, T_k)
    want = F.scaled_dot_product_attention(t64(Q), t64(K), t64(V), attn_mask=mask)
    assert np.allclose(ours, want.numpy(), atol=1e-12)
    assert np.allclose(ours, scaled_dot_product_attention(t64(Q), t64(K), t64(V), attn_mask=mask), atol=1e-12)
    if T_q == T_k:  # nn.MultiheadAttention with identity projections is the bare formula
        mha = nn.MultiheadAttention(6, 1, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(torch.eye(6, dtype=torch.float64).repeat(3, 1))
            mha.in_proj_bias.zero_(), mha.out_proj.bias.zero_()
            nn.init.eye_(mha.out_proj.weight)
        V6 = rng.normal(size=(T_k, 6))  # the values pass through the same width here
        theirs, _ = mha(t64(Q)[None], t64(K)[None], t64(V6)[None], attn_mask=~mask, need_weights=False)
        assert np.allclose(get("16.3").solution(Q, K, V6), theirs[0].detach().numpy(), atol=1e-12)


def test_16_3_refuses_torch_the_helper_and_the_chapters_torch_code(capsys):
    def by_torch(Q, K, V):
        mask = np.tril(np.ones((len(Q), len(K)), dtype=bool), k=len(K) - len(Q))
        return F.scaled_dot_product_attention(
            t64(Q), t64(K), t64(V), attn_mask=torch.from_numpy(mask)
        ).numpy()

    def by_helper(Q, K, V):
        return scaled_dot_product_attention(t64(Q), t64(K), t64(V), is_causal=True).numpy()

    def like_the_chapter(Q, K, V):  # the notebook's torch formula, with the mask added by hand
        scores = t64(Q) @ t64(K).T / math.sqrt(Q.shape[1])
        mask = torch.from_numpy(np.tril(np.ones(scores.shape, dtype=bool), k=len(K) - len(Q)))
        return (torch.softmax(scores.masked_fill(~mask, -math.inf), dim=-1) @ t64(V)).numpy()

    for answer in (by_torch, by_helper, like_the_chapter):
        assert refused("16.3", answer, capsys), answer.__name__
    assert passes("16.3", get("16.3").solution)
    assert torch.softmax(torch.zeros(2), 0)[0] == 0.5  # restored after the check
    assert F.scaled_dot_product_attention(*(torch.ones(1, 1, 1),) * 3).item() == 1.0


def test_16_4_kept_weights_are_what_autograd_saves():
    L, n_head, B, T, C = 3, 2, 2, 16, 8
    blocks = [Block(C, n_head, fused=False) for _ in range(L)]  # the from-scratch formula
    kept = {}

    def pack(t):
        if t.dim() == 4 and t.shape[-2:] == (T, T) and t.is_floating_point():
            kept[(t.data_ptr(), tuple(t.shape))] = t.numel() * t.element_size()
        return t

    x = torch.randn(B, T, C, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        h = x
        for block in blocks:
            h = block(h)
    assert sum(kept.values()) == L * n_head * B * T * T * 4  # one float32 T x T per head, sequence, layer
    assert get("16.4").solution == 12 * 12 * 8 * 1024**2 * 4 / 2**30


# chapter 17 ---------------------------------------------------------------------------------------------
def test_17_1_prediction_matches_a_stack_without_residuals():
    torch.manual_seed(0)
    C, T = 64, 32
    blocks = [Block(C, 4) for _ in range(24)]
    h = torch.randn(4, T, C)
    with torch.no_grad():
        for b in blocks:
            h = b.mlp(b.ln_2(b.attn(b.ln_1(h))))  # no residual additions
    unit = F.normalize(h, dim=-1)
    similarity = (((unit @ unit.transpose(1, 2)).sum((1, 2)) - T) / (T * (T - 1))).mean().item()
    assert abs(similarity - get("17.1").solution) < 0.05
    assert not passes("17.1", get("17.1").wrong)


def test_17_2_gelu_and_its_wrong_answer_are_torchs_two_forms():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    ours = get("17.2").solution(x.numpy())
    assert np.allclose(ours, F.gelu(x, approximate="tanh").numpy(), atol=1e-12)
    assert np.allclose(ours, gelu(x).numpy(), atol=1e-12)
    exact = get("17.2").wrong(x.numpy())  # the erf form the exercise rejects
    assert np.allclose(exact, F.gelu(x).numpy(), atol=1e-12)
    assert 1e-4 < np.abs(ours - exact).max() < 1e-3  # "up to about 0.0005"


def test_17_2_refuses_torch_and_the_chapters_gelu(capsys):
    def chapter_gelu(x):  # the notebook's torch cell, wrapped
        t = t64(x)
        return (0.5 * t * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (t + 0.044715 * t**3)))).numpy()

    assert refused("17.2", lambda x: F.gelu(t64(x), approximate="tanh").numpy(), capsys)
    assert refused("17.2", lambda x: gelu(t64(x)).numpy(), capsys)
    assert refused("17.2", chapter_gelu, capsys)


def test_17_3_and_17_4_references_match_the_helpers():
    rng = np.random.default_rng(3)
    for T, d in [(1, 2), (7, 6), (40, 32)]:
        assert np.allclose(get("17.3").solution(T, d), sinusoidal_encoding(T, d).double().numpy(), atol=1e-6)
        x, offset = rng.normal(size=(T, d)), int(rng.integers(0, 1000))
        assert np.allclose(
            get("17.4").solution(x, offset), apply_rope(t64(x), offset=offset).numpy(), atol=1e-9
        )


def test_17_3_and_17_4_refuse_the_helpers_and_torch(capsys):
    def chapter_rope(x, offset):  # the notebook's apply_rope, in torch
        t = t64(x)
        T, d = t.shape
        angles = (offset + torch.arange(T, dtype=torch.float64))[:, None] * 10000.0 ** (
            -torch.arange(0, d, 2, dtype=torch.float64) / d
        )
        out = torch.stack([t[:, 0::2] * torch.cos(angles) - t[:, 1::2] * torch.sin(angles),
                           t[:, 0::2] * torch.sin(angles) + t[:, 1::2] * torch.cos(angles)], -1)  # fmt: skip
        return out.flatten(-2).numpy()

    assert refused("17.3", lambda T, d: sinusoidal_encoding(T, d).numpy(), capsys)
    assert refused("17.4", lambda x, offset: apply_rope(t64(x), offset=int(offset)).numpy(), capsys)
    assert refused("17.4", chapter_rope, capsys)
    assert passes("17.4", get("17.4").solution)


@pytest.mark.parametrize(("T", "C"), [(1, 4), (6, 8), (9, 16)])
def test_17_5_block_and_its_wrong_answer_match_torchs_pre_and_post_ln_layers(T, C):
    torch.manual_seed(T)
    block = Block(C, 1).double().eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(std=0.5)
    x = torch.randn(T, C, dtype=torch.float64)
    params = {name: t.numpy() for name, t in block.state_dict().items()}
    with torch.no_grad():
        assert np.allclose(get("17.5").solution(x.numpy(), params), block(x[None])[0].numpy(), atol=1e-10)
        for norm_first, answer in [(True, get("17.5").solution), (False, get("17.5").wrong)]:
            layer = nn.TransformerEncoderLayer(
                C, 1, 4 * C, dropout=0.0, activation=lambda z: F.gelu(z, approximate="tanh"),
                batch_first=True, norm_first=norm_first, dtype=torch.float64,
            )  # fmt: skip
            layer.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)
            layer.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
            layer.self_attn.out_proj.load_state_dict(block.attn.c_proj.state_dict())
            layer.linear1.load_state_dict(block.mlp.c_fc.state_dict())
            layer.linear2.load_state_dict(block.mlp.c_proj.state_dict())
            layer.norm1.load_state_dict(block.ln_1.state_dict())
            layer.norm2.load_state_dict(block.ln_2.state_dict())
            theirs = layer.eval()(x[None], src_mask=~causal_mask(T), is_causal=True)[0]
            assert np.allclose(answer(x.numpy(), params), theirs.numpy(), atol=1e-10), norm_first


def test_17_5_refuses_torchs_layers_and_the_helpers(capsys):
    def with_the_helper(x, p):
        block = Block(x.shape[1], 1).double()
        block.load_state_dict({name: t64(a) for name, a in p.items()})
        with torch.no_grad():
            return block(t64(x)[None])[0].numpy()

    def with_torch_layer_norm(x, p):
        sol = get("17.5").solution
        layer_norm = F.layer_norm(t64(x), x.shape[1:], t64(p["ln_1.weight"]), t64(p["ln_1.bias"]))
        return sol(x, p) + 0 * layer_norm.numpy()

    assert refused("17.5", with_the_helper, capsys)
    assert refused("17.5", with_torch_layer_norm, capsys)
    assert passes("17.5", get("17.5").solution)


# chapter 18 ---------------------------------------------------------------------------------------------
def test_18_1_prediction_matches_an_untrained_gpt():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=96, bias=False)).eval()
    ids = torch.randint(0, 103, (16, 65), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, loss = model(ids[:, :-1], ids[:, 1:])
    assert abs(loss.item() - get("18.1").solution) < 0.05 and passes("18.1", loss.item())


@pytest.mark.parametrize(
    ("V", "T", "L", "C"), [(103, 64, 4, 128), (65, 256, 6, 384), (2, 1, 1, 16), (512, 64, 4, 96)]
)
def test_18_2_count_matches_num_parameters(V, T, L, C):
    model = GPT(
        GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=4 if C % 4 == 0 else 1, n_embd=C, bias=False)
    )
    assert get("18.2").solution(V, T, L, C) == model.num_parameters()
    assert (
        get("18.2").wrong(V, T, L, C) == model.num_parameters() + V * C
    )  # the untied head the checker rejects


def test_18_2_refuses_counting_a_built_model(capsys):
    def by_building(V, T, L, C):
        config = GPTConfig(
            vocab_size=int(V), block_size=int(T), n_layer=int(L), n_head=1, n_embd=int(C), bias=False
        )
        return GPT(config).num_parameters()

    assert refused("18.2", by_building, capsys)


@pytest.mark.parametrize("micro_batches", [1, 3, 6])
def test_18_3_accumulated_gradients_equal_one_backward_of_the_whole_batch(micro_batches):
    config = GPTConfig(
        vocab_size=17,
        block_size=12,
        n_layer=2,
        n_head=2,
        n_embd=24,
        bias=False,
        norm="rmsnorm",
        position="rope",
    )
    torch.manual_seed(micro_batches)
    model = GPT(config).double()
    x, y = torch.randint(0, 17, (6, 12)), torch.randint(0, 17, (6, 12))  # (B, T)
    _, loss = model(x, y)
    whole = torch.autograd.grad(loss, list(model.parameters()))  # torch's gradient of the whole batch's mean
    returned = get("18.3").solution(model, x, y, micro_batches)
    assert math.isclose(returned, loss.item(), rel_tol=1e-12)
    for p, g in zip(model.parameters(), whole, strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-9, atol=1e-13)


def test_18_3_refuses_one_whole_batch_pass_and_zeroing_between_micro_batches(capsys):
    def whole_batch(model, x, y, micro_batches):  # right gradients, but no accumulation
        _, loss = model(x, y)
        loss.backward()
        return loss.item()

    def zeroes_in_between(model, x, y, micro_batches):
        total = 0.0
        for xp, yp in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
            model.zero_grad()
            _, loss = model(xp, yp)
            (loss / micro_batches).backward()
            total += loss.item() / micro_batches
        return total

    check("18.3", whole_batch)
    assert "should run 2 times on 4 windows each" in capsys.readouterr().out
    check("18.3", zeroes_in_between)
    assert "differ from one backward of the whole batch" in capsys.readouterr().out
    check("18.3", get("18.3").wrong)
    assert "2 times too large" in capsys.readouterr().out


def test_18_3_check_leaves_torchs_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert passes("18.3", get("18.3").solution)
    assert torch.equal(torch.rand(3), expected)


def test_18_4_count_matches_param_groups():
    model = GPT(GPTConfig(vocab_size=103, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False))
    decay, _ = param_groups(model, weight_decay=0.1)
    assert sum(p.numel() for p in decay["params"]) == get("18.4").solution
    everything_2d = sum(p.numel() for p in model.parameters() if p.dim() == 2)
    assert everything_2d == get("18.4").wrong  # the tempting answer: every matrix, embeddings included
