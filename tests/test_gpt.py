"""helpers.gpt against Hugging Face's GPT2LMHeadModel (built locally from a random GPT2Config, no download):
same parameter names, same logits after copying the weights across; plus the causal property, the KV
cache, the loss of an untrained model, the initialisation and the parameter count."""

import functools
import math

import pytest
import torch

from helpers.gpt import GPT, GPTConfig, config_from_hf, load_hf_gpt2_state_dict
from tests.conftest import random_hf_gpt2

SMALL = {"vocab_size": 97, "block_size": 32, "n_layer": 3, "n_head": 4, "n_embd": 48}


@functools.cache
def hf_model(seed=0):
    model = random_hf_gpt2(**SMALL, seed=seed, bos_token_id=0, eos_token_id=0)
    with torch.no_grad():  # randomise LayerNorms and biases too (they start at 1 and 0)
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_logits_match_transformers_gpt2(seed, fused):
    hf = hf_model(seed)
    model = GPT(config_from_hf(hf.config, fused_attention=fused)).eval()
    load_hf_gpt2_state_dict(model, hf.state_dict())
    idx = torch.randint(0, SMALL["vocab_size"], (2, 20), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        theirs = hf(idx).logits
        ours, loss = model(idx)
    assert loss is None and ours.shape == (2, 20, SMALL["vocab_size"])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        their_loss = hf(idx, labels=idx).loss  # HF shifts labels inside; do the same shift by hand
        _, our_loss = model(idx[:, :-1], targets=idx[:, 1:])
    assert our_loss.item() == pytest.approx(their_loss.item(), rel=1e-5)


def test_parameter_names_are_gpt2s_and_the_head_is_tied():
    hf = hf_model()
    model = GPT(config_from_hf(hf.config))
    hf_names = {k for k in hf.state_dict() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    assert set(model.state_dict()) == hf_names
    assert model.lm_head.weight is model.transformer.wte.weight
    for name, p in model.state_dict().items():  # Conv1D stores (in, out): exactly the transposed four
        transposed = name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        assert p.shape == (hf.state_dict()[name].t().shape if transposed else hf.state_dict()[name].shape)


def test_loading_the_published_key_layout_without_prefix_or_head():
    hf = hf_model(1)
    bare = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    model = GPT(config_from_hf(hf.config)).eval()
    load_hf_gpt2_state_dict(model, bare)
    idx = torch.randint(0, SMALL["vocab_size"], (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], hf(idx).logits, atol=1e-5, rtol=1e-5)


def test_loading_reports_mismatches_clearly():
    hf = hf_model()
    with pytest.raises(ValueError, match="shape"):
        load_hf_gpt2_state_dict(GPT(GPTConfig(**{**SMALL, "vocab_size": 98})), hf.state_dict())
    with pytest.raises(ValueError, match="missing"):
        load_hf_gpt2_state_dict(GPT(GPTConfig(**{**SMALL, "n_layer": 4})), hf.state_dict())
    untied = dict(hf.state_dict())
    untied["lm_head.weight"] = untied["lm_head.weight"] + 1.0
    with pytest.raises(ValueError, match="tied"):
        load_hf_gpt2_state_dict(GPT(GPTConfig(**SMALL)), untied)


def test_changing_a_future_token_leaves_earlier_logits_unchanged():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL)).eval()
    idx = torch.randint(0, 97, (2, 16))
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 97
    with torch.no_grad():
        a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


@pytest.mark.parametrize("fused", [True, False])
def test_kv_cache_gives_the_same_logits(fused):
    torch.manual_seed(1)
    model = GPT(GPTConfig(**SMALL, fused_attention=fused)).eval()
    idx = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        full, _ = model(idx)
        logits, loss, past = model(idx[:, :7], use_cache=True)
        steps = [logits]
        for t in range(7, 12):  # then one token at a time, as generation does
            logits, _, past = model(idx[:, t : t + 1], past_kv=past, use_cache=True)
            steps.append(logits)
    assert loss is None and len(past) == SMALL["n_layer"] and past[0][0].shape == (2, 4, 12, 12)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_untrained_loss_is_about_ln_vocab_size():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config).eval()
    idx = torch.randint(0, 500, (4, 64))
    targets = torch.randint(0, 500, (4, 64))
    with torch.no_grad():
        _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(500), abs=0.05)  # near-uniform guesses
    targets[:, :32] = -100  # ignored positions do not count
    with torch.no_grad():
        _, half = model(idx, targets)
        logits, _ = model(idx)
    manual = torch.nn.functional.cross_entropy(logits[:, 32:].reshape(-1, 500), targets[:, 32:].reshape(-1))
    assert half.item() == pytest.approx(manual.item(), rel=1e-6)


def test_initialisation_and_parameter_count():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=1000, block_size=128, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config)
    C, L = config.n_embd, config.n_layer
    per_block = 12 * C * C + 13 * C  # attn 4C^2 + 4C, mlp 8C^2 + 5C, two LayerNorms 4C
    embeddings = config.vocab_size * C + config.block_size * C
    assert model.num_parameters() == L * per_block + embeddings + 2 * C  # + ln_f
    assert model.num_parameters(exclude_embeddings=True) == L * per_block + 2 * C
    assert model.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.transformer.h[0].attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
    scaled = 0.02 / math.sqrt(2 * L)
    assert model.transformer.h[0].attn.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.05)
    assert model.transformer.h[1].mlp.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.05)
    assert torch.all(model.transformer.h[0].mlp.c_fc.bias == 0)
    assert torch.all(model.transformer.ln_f.weight == 1)


def test_gpt2_small_has_124m_parameters():
    with torch.device("meta"):  # sizes only, no memory
        model = GPT(GPTConfig())
    assert model.num_parameters() == 124_439_808


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL, dropout=0.1))
    idx = torch.randint(0, 97, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: GPTConfig(n_embd=50, n_head=4), "multiple of n_head"),
        (lambda: GPTConfig(n_layer=0), "positive"),
        (lambda: GPTConfig(dropout=1.0), "dropout"),
        (lambda: GPT(GPTConfig(**SMALL))(torch.zeros(2, 40, dtype=torch.long)), "block_size"),
        (lambda: GPT(GPTConfig(**SMALL))(torch.zeros(5, dtype=torch.long)), r"\(B, T\)"),
        (lambda: GPT(GPTConfig(**SMALL))(torch.zeros(1, 5, dtype=torch.long), torch.zeros(5)), "targets"),
    ],
)
def test_bad_inputs_get_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- chapter 17's modern choices --------------------------------------------------------------------------

MODERN = dict(
    SMALL, norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=2, tie_embeddings=False, bias=False
)


@pytest.mark.parametrize("fused", [True, False])
def test_modern_gpt_kv_cache_continues_rope_positions(fused):
    torch.manual_seed(0)
    model = GPT(GPTConfig(**MODERN, fused_attention=fused)).eval()
    assert "transformer.wpe.weight" not in model.state_dict()  # RoPE: no position table
    assert model.lm_head.weight is not model.transformer.wte.weight
    idx = torch.randint(0, SMALL["vocab_size"], (2, 15))
    with torch.no_grad():
        full, _ = model(idx)
        a, _, cache = model(idx[:, :9], use_cache=True)
        b, _, cache = model(idx[:, 9:], past_kv=cache, use_cache=True)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=1e-5)
    assert cache[0][0].shape == (2, 2, 15, 12)  # n_kv_head = 2 heads cached, not 4


def test_modern_choices_change_the_parameter_count_as_expected():
    C, V, L = SMALL["n_embd"], SMALL["vocab_size"], SMALL["n_layer"]
    gpt2 = GPT(GPTConfig(**SMALL))
    untied = GPT(GPTConfig(**SMALL, tie_embeddings=False))
    assert untied.num_parameters() - gpt2.num_parameters() == V * C
    no_wpe = GPT(GPTConfig(**SMALL, position="rope"))
    assert gpt2.num_parameters() - no_wpe.num_parameters() == SMALL["block_size"] * C
    gqa = GPT(GPTConfig(**SMALL, n_kv_head=1))
    assert gpt2.num_parameters() - gqa.num_parameters() == L * 2 * (C - C // 4) * (
        C + 1
    )  # k, v rows + biases
    assert no_wpe.num_parameters(exclude_embeddings=True) == gpt2.num_parameters(exclude_embeddings=True)


def test_a_checkpoint_config_without_the_new_fields_still_loads():
    old = {"vocab_size": 65, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 8, "dropout": 0.0,
           "bias": True, "fused_attention": True, "layer_norm_eps": 1e-5}  # fmt: skip
    config = GPTConfig(**old)
    assert (config.norm, config.mlp, config.position, config.tie_embeddings) == (
        "layernorm",
        "gelu",
        "learned",
        True,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(n_kv_head=3), "n_kv_head"),
        (dict(n_kv_head=0), "n_kv_head"),
        (dict(norm="batchnorm"), "norm must be one of"),
        (dict(mlp="relu"), "mlp must be one of"),
        (dict(position="sinusoidal"), "position must be one of"),
        (dict(mlp_hidden=0), "mlp_hidden"),
        (dict(n_head=16, n_embd=48, position="rope"), "head size"),  # 3 channels per head: no pairs
        (dict(position="rope", rope_theta=1.0), "rope_theta"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps"),
    ],
)
def test_bad_config_combinations_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**SMALL, **fields})


# GPT-2 config fields that change the computation: honoured (same logits) or rejected naming the field.
GPT2_FIELDS = [
    ("scale_attn_weights", dict(scale_attn_weights=False), "raise"),
    ("scale_attn_by_inverse_layer_idx", dict(scale_attn_by_inverse_layer_idx=True), "raise"),
    ("reorder_and_upcast_attn", dict(reorder_and_upcast_attn=True), "raise"),
    ("add_cross_attention", dict(add_cross_attention=True), "raise"),
    ("tie_word_embeddings", dict(tie_word_embeddings=False), "raise"),
    ("activation_function", dict(activation_function="relu"), "raise"),
    ("n_inner", dict(n_inner=40), "match"),
    ("layer_norm_epsilon", dict(layer_norm_epsilon=0.3), "match"),
]


@pytest.mark.parametrize(("field", "change", "outcome"), GPT2_FIELDS, ids=[f[0] for f in GPT2_FIELDS])
def test_every_gpt2_config_field_is_honoured_or_rejected(field, change, outcome):
    if outcome == "raise":  # only the config is read before the error
        config = random_hf_gpt2(**SMALL).config.to_dict()
        with pytest.raises(ValueError, match=field):
            config_from_hf({**config, **change})
        return
    hf = random_hf_gpt2(**SMALL, **change)
    model = GPT(config_from_hf(hf.config)).eval()
    load_hf_gpt2_state_dict(model, hf.state_dict())
    idx = torch.randint(0, SMALL["vocab_size"], (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], hf(idx).logits, atol=1e-5, rtol=1e-5)


def test_ablate_blocks_script_runs_a_tiny_job(tmp_path):
    """Smoke test of scripts/ablate_blocks.py (the result it ships is re-read by chapter 17)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "ablate_blocks.py"
    out = tmp_path / "ablation.json"
    args = ["--steps", "2", "--seeds", "0", "--eval-iters", "1", "--threads", "1", "--out", str(out)]
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    sizes = [v["parameters"] for v in report["variants"].values()]
    assert set(report["variants"]) == {"gpt2", "rmsnorm", "swiglu", "rope", "gqa", "modern"}
    assert max(sizes) / min(sizes) < 1.02  # equal parameter counts
