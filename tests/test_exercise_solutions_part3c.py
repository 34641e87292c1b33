"""The reference solutions of chapters 19-21's exercises, checked against the library or helper they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
transformers, torch or the book's helper that is itself tested against them (top-k and top-p with
transformers' logits warpers, full passes with the calls `generate` really makes, a KV-cache step with causal
attention over the whole sequence, the conversation mask with `response_targets`, a LoRA forward with
`LoRALinear` and its merged layer, the optimiser memory with `inject_lora` on a GPT-2-sized model, RoPE's
row permutation with transformers' rotate-half RoPE, parameter counts with models built on the meta device),
each predict-then-run answer with the measurement it predicts, and the build-it checkers are shown to refuse
the shortcuts they exist to refuse.
"""

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import helpers.attention
import helpers.generate
import helpers.llama
import helpers.lora
from helpers.exercises import check, get, passes
from helpers.exercises.ch19 import PROBS
from helpers.exercises.ch20 import _P, _p
from helpers.exercises.ch21 import GPT2_XL
from helpers.generate import full_passes, generate
from helpers.gpt import GPT, GPTConfig
from helpers.instructions import IGNORE, response_targets
from helpers.llama import config_from_llama, half_to_interleaved
from helpers.lora import LORA_TARGETS, LoRALinear, inject_lora
from helpers.transformer import apply_rope
from helpers.weights import gpt2_parameter_count, model_bytes


def refused(key, answer, capsys) -> bool:
    """True when exercise `key` rejects `answer` because it calls a library shortcut."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and ("off limits" in out or "build it" in out)


def tiny_gpt(block_size=8) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=13, block_size=block_size, n_layer=1, n_head=2, n_embd=8)).eval()


# chapter 19 ---------------------------------------------------------------------------------------------
def test_19_1_top_2_matches_transformers():
    logits = torch.log(torch.as_tensor(PROBS, dtype=torch.float64))[None]  # (1, 5)
    want = torch.softmax(TopKLogitsWarper(2)(None, logits.clone()), dim=-1)[0].numpy()
    assert np.allclose(get("19.1").solution, want, atol=1e-12)


def test_19_2_nucleus_matches_transformers_top_p():
    rng = np.random.default_rng(0)
    for _ in range(50):
        probs = rng.dirichlet(np.full(int(rng.integers(2, 30)), rng.choice([0.2, 1.0, 3.0])))
        p = float(rng.choice([0.1, 0.5, 0.8, 0.95]))
        logits = torch.log(torch.as_tensor(probs))[None]  # (1, V)
        want = torch.softmax(TopPLogitsWarper(p)(None, logits.clone()), dim=-1)[0].numpy()
        assert np.allclose(get("19.2").solution(probs, p), want, atol=1e-12)


def test_19_2_refuses_the_helper_and_transformers(capsys):
    def with_helper(probs, p):
        logits = torch.log(torch.as_tensor(probs))
        return torch.softmax(helpers.generate.top_p_filter(logits, p), -1).numpy()

    def with_transformers(probs, p):
        logits = torch.log(torch.as_tensor(probs))[None]
        return torch.softmax(TopPLogitsWarper(p)(None, logits), -1)[0].numpy()

    assert refused("19.2", with_helper, capsys) and refused("19.2", with_transformers, capsys)
    assert passes("19.2", get("19.2").solution)


@pytest.mark.parametrize(("prompt_len", "new_tokens"), [(1, 12), (5, 3), (6, 9), (8, 4), (12, 5), (3, 1)])
def test_19_3_passes_counts_the_full_passes_generate_makes(prompt_len, new_tokens):
    model, full = tiny_gpt(block_size=8), []

    def count(module, args, kwargs):
        full.append(kwargs.get("past_kv") is None)  # no cache handed in: a whole window is run

    hook = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        generate(model, torch.zeros(1, prompt_len, dtype=torch.long), new_tokens, temperature=0)
    finally:
        hook.remove()
    assert len(full) == new_tokens
    assert (
        get("19.3").solution(prompt_len, new_tokens, 8) == sum(full) == full_passes(prompt_len, new_tokens, 8)
    )


def test_19_3_refuses_full_passes(capsys):
    assert refused(
        "19.3", lambda prompt_len, new_tokens, block: full_passes(prompt_len, new_tokens, block), capsys
    )
    assert refused("19.3", full_passes, capsys)


def test_19_4_kv_steps_equal_the_books_causal_attention():
    rng = np.random.default_rng(1)
    for T, d in [(1, 4), (6, 8), (11, 2)]:
        Q, K, V = (rng.normal(size=(T, d)) for _ in range(3))
        want = helpers.attention.scaled_dot_product_attention(
            *(torch.as_tensor(a) for a in (Q, K, V)), is_causal=True
        ).numpy()  # (T, d): the uncached forward
        cache_k, cache_v = np.zeros((0, d)), np.zeros((0, d))
        for t in range(T):
            out, cache_k, cache_v = get("19.4").solution(cache_k, cache_v, Q[t], K[t], V[t])
            assert np.allclose(out, want[t], atol=1e-12)
        assert np.array_equal(cache_k, K) and np.array_equal(cache_v, V)


def test_19_4_refuses_torch_attention(capsys):
    def with_torch(cache_k, cache_v, q, k, v):
        cache_k, cache_v = np.vstack([cache_k, k[None]]), np.vstack([cache_v, v[None]])
        out = F.scaled_dot_product_attention(*(torch.as_tensor(a)[None] for a in (q[None], cache_k, cache_v)))
        return out[0, 0].numpy(), cache_k, cache_v

    def with_helper(cache_k, cache_v, q, k, v):
        cache_k, cache_v = np.vstack([cache_k, k[None]]), np.vstack([cache_v, v[None]])
        out = helpers.attention.scaled_dot_product_attention(
            *(torch.as_tensor(a) for a in (q[None], cache_k, cache_v))
        )
        return out[0].numpy(), cache_k, cache_v

    assert refused("19.4", with_torch, capsys) and refused("19.4", with_helper, capsys)
    assert callable(F.scaled_dot_product_attention) and passes("19.4", get("19.4").solution)  # restored


def test_19_5_the_cache_saves_far_less_time_than_tokens():
    model = tiny_gpt(block_size=64)
    one = torch.zeros(1, 1, dtype=torch.long)
    fed = sum(range(1, 49)) / 48  # 48 steps from one token: tokens fed without the cache / with it
    seconds = {}
    for use_cache in (False, True):
        generate(model, one, 4, temperature=0, use_cache=use_cache)  # warm-up
        start = time.perf_counter()
        generate(model, one, 48, temperature=0, use_cache=use_cache)
        seconds[use_cache] = time.perf_counter() - start
    assert seconds[False] / seconds[True] < fed / 2  # (b): a few times at most, not the 24.5x fewer tokens
    assert get("19.5").solution == "b" and sum(range(1, 129)) / 128 == 64.5  # the figures in the question


# chapter 20 ---------------------------------------------------------------------------------------------
def test_20_1_only_b_gets_a_gradient_at_step_0():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16))
    inject_lora(model, r=2, targets=("attn.c_attn", "attn.c_proj"), seed=0)
    idx = torch.randint(0, 17, (3, 8))
    _, loss = model(idx, idx)
    loss.backward()
    adapters = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert adapters and all(torch.all(m.A.grad == 0) and m.B.grad.abs().sum() > 0 for m in adapters)
    assert get("20.1").solution == "b"


def test_20_2_one_turn_is_response_targets_and_the_loss_counts_responses_only():
    rng = np.random.default_rng(2)
    solve = get("20.2").solution
    for _ in range(30):
        prompt_len, response_len = (int(n) for n in rng.integers(1, 7, size=2))
        ids = rng.integers(0, 50, size=prompt_len + response_len)
        assert list(solve(ids, np.array([prompt_len, response_len]))) == response_targets(
            list(ids), prompt_len
        )
    ids, lengths = rng.integers(0, 50, size=14), np.array([3, 2, 4, 5])  # two turns
    targets = torch.tensor(solve(ids, lengths))
    logits = torch.randn(13, 50, dtype=torch.float64)
    response_next = np.array([False] * 3 + [True] * 2 + [False] * 4 + [True] * 5)[
        1:
    ]  # is token t + 1 answer?
    want = F.cross_entropy(logits[response_next], torch.as_tensor(ids[1:][response_next]))
    assert torch.allclose(F.cross_entropy(logits, targets, ignore_index=IGNORE), want)


def test_20_3_lora_forward_matches_lora_linear_and_its_merged_layer():
    rng = np.random.default_rng(3)
    for d_in, d_out, r, alpha in [(5, 7, 2, 4.0), (8, 3, 3, 16.0), (4, 4, 1, 1.0)]:
        layer = LoRALinear(torch.nn.Linear(d_in, d_out).double(), r=r, alpha=alpha)
        with torch.no_grad():
            layer.B.copy_(torch.as_tensor(rng.normal(size=(d_out, r))))
        x = rng.normal(size=(6, d_in))
        W, b = layer.base.weight.detach().numpy(), layer.base.bias.detach().numpy()
        A, B = layer.A.detach().numpy(), layer.B.detach().numpy()
        got = get("20.3").solution(x, W, b, A, B, alpha)
        with torch.no_grad():
            assert np.allclose(got, layer(torch.as_tensor(x)).numpy(), atol=1e-12)
            assert np.allclose(got, layer.merged()(torch.as_tensor(x)).numpy(), atol=1e-12)


def test_20_3_refuses_lora_linear(capsys):
    def with_helper(x, W, b, A, B, alpha):
        layer = helpers.lora.LoRALinear(torch.nn.Linear(W.shape[1], W.shape[0]).double(), r=A.shape[0])
        return layer(torch.as_tensor(x)).detach().numpy()

    assert refused("20.3", with_helper, capsys)
    assert not passes("20.3", get("20.3").wrong)


def test_20_4_counts_match_inject_lora_on_a_gpt2_small():
    with torch.device("meta"):
        model = GPT(GPTConfig())  # GPT-2 small, shapes only
    assert model.num_parameters() == _P
    inject_lora(model, r=8, targets=LORA_TARGETS, seed=0)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == _p
    assert math.isclose(get("20.4").solution, 4 * _P / (_P + 4 * trainable))


# chapter 21 ---------------------------------------------------------------------------------------------
def test_21_1_permutation_matches_the_helper():
    rng = np.random.default_rng(4)
    for n_heads, hs, C in [(1, 2, 3), (3, 4, 5), (4, 8, 2)]:
        w = rng.normal(size=(n_heads * hs, C))
        want = half_to_interleaved(torch.as_tensor(w), n_heads).numpy()
        assert np.array_equal(get("21.1").solution(w, n_heads), want)


def test_21_1_permuted_rows_turn_transformers_rotate_half_rope_into_apply_rope():
    rng = np.random.default_rng(5)
    n_heads, hs, C, T = 3, 8, 6, 5
    W = rng.normal(size=(n_heads * hs, C))  # a q_proj weight in Hugging Face's layout
    x = torch.as_tensor(rng.normal(size=(T, C)))  # (T, C)
    q_hf = (x @ torch.as_tensor(W).T).view(T, n_heads, hs).transpose(0, 1)  # (heads, T, hs)
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs)  # (hs/2,)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq  # (T, hs/2)
    emb = torch.cat([angles, angles], dim=-1)  # (T, hs): transformers' layout of the angles
    rotated_hf, _ = apply_rotary_pos_emb(q_hf[None], q_hf[None], emb.cos()[None], emb.sin()[None])
    W_ours = torch.as_tensor(get("21.1").solution(W, n_heads))
    q_ours = (x @ W_ours.T).view(T, n_heads, hs).transpose(0, 1)  # (heads, T, hs)
    rotated_ours = apply_rope(q_ours)  # (heads, T, hs): chapter 17's pairs (2i, 2i + 1)
    # the same numbers, in the book's channel order: HF channel i at 2i, channel i + hs/2 at 2i + 1
    back = torch.as_tensor(
        get("21.1").solution(rotated_hf[0].transpose(1, 2).reshape(-1, T).numpy(), n_heads)
    )
    assert torch.allclose(rotated_ours, back.reshape(n_heads, hs, T).transpose(1, 2), atol=1e-12)


def test_21_1_refuses_the_helper(capsys):
    def with_helper(w, n_heads):
        return helpers.llama.half_to_interleaved(torch.as_tensor(w), int(n_heads)).numpy()

    assert refused("21.1", with_helper, capsys)
    assert refused("21.1", half_to_interleaved, capsys)


def test_21_2_bf16_round_trip_changes_a_weight_by_at_most_2_to_the_minus_8():
    w = torch.randn(200_000, generator=torch.Generator().manual_seed(6)) * 0.1
    change = (w.bfloat16().float() - w).abs() / w.abs()
    assert change.max() <= 2**-8 and abs(change.max().item() - get("21.2").solution) < 2**-12
    assert not passes("21.2", 2**-16)  # "16 bits dropped" is not the relative error


def test_21_3_gib_match_the_model_built_on_the_meta_device():
    with torch.device("meta"):
        xl = GPT(GPT2_XL)
    assert xl.num_parameters() == gpt2_parameter_count(GPT2_XL)
    assert math.isclose(get("21.3").solution, model_bytes(GPT2_XL, torch.bfloat16) / 2**30)


@pytest.mark.parametrize(
    "sizes",
    [(49152, 32, 960, 15, 5, 2560), (100, 2, 64, 4, 2, 96), (300, 3, 48, 6, 1, 80), (50, 1, 32, 2, 2, 16)],
)
def test_21_4_llama_count_matches_the_books_gpt_and_transformers(sizes):
    vocab_size, n_layer, n_embd, n_head, n_kv_head, mlp_hidden = sizes
    raw = {
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": n_embd,
        "intermediate_size": mlp_hidden,
        "num_hidden_layers": n_layer,
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv_head,
        "tie_word_embeddings": True,
    }
    with torch.device("meta"):
        ours = GPT(config_from_llama(raw)).num_parameters()
        theirs = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in raw.items() if k != "model_type"}))
    want = get("21.4").solution(*sizes)
    assert ours == want == theirs.num_parameters()


def test_21_4_refuses_building_the_model(capsys):
    def by_building(vocab_size, n_layer, n_embd, n_head, n_kv_head, mlp_hidden):
        raw = {
            "model_type": "llama",
            "vocab_size": int(vocab_size),
            "hidden_size": int(n_embd),
            "intermediate_size": int(mlp_hidden),
            "num_hidden_layers": int(n_layer),
            "num_attention_heads": int(n_head),
            "num_key_value_heads": int(n_kv_head),
            "tie_word_embeddings": True,
        }
        with torch.device("meta"):
            return helpers.llama.GPT(config_from_llama(raw)).num_parameters()

    assert refused("21.4", by_building, capsys)
