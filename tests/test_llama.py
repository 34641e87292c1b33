"""helpers.llama against transformers' LlamaForCausalLM / Qwen2ForCausalLM on small random checkpoints."""

import json
import subprocess
import sys

import pytest
import torch

from helpers.generate import generate
from helpers.llama import config_from_llama, half_to_interleaved, llama_to_gpt_state_dict, load_llama_folder

VOCAB = 101


def hf_model(kind="llama", seed=0, **fields):
    """A random transformers Llama/Qwen2 with every weight (norms included) drawn from N(0, 0.1^2)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    sizes = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    )
    torch.manual_seed(seed)
    model = model_cls(config_cls(**{**sizes, **fields})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def save(model, folder, shard: str | None = None):
    model.save_pretrained(folder, **({"max_shard_size": shard} if shard else {}))
    return folder


def ids(T=12, B=2, seed=0):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


CASES = {
    "mha": dict(num_key_value_heads=4),
    "gqa": dict(num_key_value_heads=2),
    "mqa": dict(num_key_value_heads=1),
    "tied": dict(num_key_value_heads=2, tie_word_embeddings=True),
    "theta": dict(num_key_value_heads=2, rope_parameters={"rope_type": "default", "rope_theta": 500.0}),
    "8 heads": dict(num_attention_heads=8, num_key_value_heads=2),
    "2 heads": dict(num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_logits_match_transformers_llama(case, tmp_path):
    hf = hf_model(**CASES[case])
    model = load_llama_folder(save(hf, tmp_path, shard="40KB"))  # small shards: the index.json path
    assert (tmp_path / "model.safetensors.index.json").is_file()
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], hf(x).logits, atol=1e-4, rtol=1e-4)
    assert model.config.tie_embeddings == hf.config.tie_word_embeddings
    assert (model.lm_head.weight is model.transformer.wte.weight) == hf.config.tie_word_embeddings


@pytest.mark.parametrize("case", ["gqa", "mqa", "theta"])
def test_kv_cache_and_greedy_generation_match_transformers(case, tmp_path):
    hf = hf_model(**CASES[case])
    model = load_llama_folder(save(hf, tmp_path))  # one model.safetensors
    x = ids(T=7, B=1, seed=1)
    with torch.no_grad():
        full = model(x)[0]
        first, _, cache = model(x[:, :4], use_cache=True)
        rest, _, cache = model(x[:, 4:], past_kv=cache, use_cache=True)  # positions continue at 4
    torch.testing.assert_close(torch.cat([first, rest], 1), full, atol=1e-5, rtol=1e-5)
    assert cache[0][0].shape == (1, model.config.n_kv_head, 7, 16)  # the cache holds n_kv_head heads only
    theirs = hf.generate(x, max_new_tokens=8, do_sample=False, pad_token_id=0)
    ours = generate(model, x, max_new_tokens=8, temperature=0, use_cache=True)
    assert torch.equal(ours, theirs)


def test_qwen2_biases_match_transformers(tmp_path):
    hf = hf_model("qwen2", num_key_value_heads=2)
    model = load_llama_folder(save(hf, tmp_path))
    assert model.config.qkv_bias and model.transformer.h[0].attn.c_proj.bias is None
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], hf(x).logits, atol=1e-4, rtol=1e-4)


# Each config field that changes the computation: honoured (logits match) or rejected naming the field.
FIELDS = [
    (
        "rope_parameters",
        dict(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}),
        "raise",
    ),
    ("attention_bias", dict(attention_bias=True), "raise"),
    ("mlp_bias", dict(mlp_bias=True), "raise"),
    ("hidden_act", dict(hidden_act="gelu"), "raise"),
    ("head_dim", dict(head_dim=32), "raise"),
    ("pretraining_tp", dict(pretraining_tp=2), "raise"),
    ("attention_dropout", dict(attention_dropout=0.1), "raise"),
    ("tie_word_embeddings", dict(tie_word_embeddings=True), "match"),
    ("rms_norm_eps", dict(rms_norm_eps=0.5), "match"),
    ("max_position_embeddings", dict(max_position_embeddings=16), "match"),
]


@pytest.mark.parametrize(("field", "change", "outcome"), FIELDS, ids=[f[0] for f in FIELDS])
def test_every_llama_config_field_is_honoured_or_rejected(field, change, outcome, tmp_path):
    hf = hf_model(num_key_value_heads=2, **change)
    save(hf, tmp_path)
    if outcome == "raise":
        with pytest.raises(ValueError, match=field):
            load_llama_folder(tmp_path)
        return
    model = load_llama_folder(tmp_path)
    x = ids(T=10)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], hf(x).logits, atol=1e-4, rtol=1e-4)


def test_qwen2_sliding_window_is_rejected(tmp_path):
    save(hf_model("qwen2", use_sliding_window=True, sliding_window=8, max_window_layers=0), tmp_path)
    with pytest.raises(ValueError, match="sliding_window"):
        load_llama_folder(tmp_path)


def test_old_style_config_fields_are_read():
    raw = {
        "model_type": "llama",
        "vocab_size": 50,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "rope_theta": 123.0,
        "rope_scaling": None,
    }
    c = config_from_llama(raw)
    assert (c.rope_theta, c.n_kv_head, c.tie_embeddings, c.norm, c.mlp, c.position) == (
        123.0,
        4,
        False,
        "rmsnorm",
        "swiglu",
        "rope",
    )
    with pytest.raises(ValueError, match="rope_scaling"):
        config_from_llama({**raw, "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    with pytest.raises(ValueError, match="model_type"):
        config_from_llama({**raw, "model_type": "mistral"})
    with pytest.raises(ValueError, match="intermediate_size"):
        config_from_llama({k: v for k, v in raw.items() if k != "intermediate_size"})
    with pytest.raises(TypeError, match="path, a dict"):
        config_from_llama(42)


def test_half_to_interleaved_turns_rotate_half_into_pairs():
    from transformers.models.llama.modeling_llama import rotate_half

    from helpers.transformer import apply_rope

    hs, n = 8, 3
    w = torch.randn(n * hs, 5)
    x = torch.randn(5)
    q = (w @ x).view(n, 1, hs)  # (heads, T=1, hs) in HF's layout
    pos, theta = 7, 10000.0
    inv = theta ** (-torch.arange(0, hs, 2).double() / hs)
    angle = torch.cat([inv, inv]) * pos  # (hs,): HF repeats the frequencies for the two halves
    theirs = (q.double() * angle.cos() + rotate_half(q.double()) * angle.sin()).float()
    ours = apply_rope((half_to_interleaved(w, n) @ x).view(n, 1, hs), offset=pos, base=theta)
    torch.testing.assert_close(ours, half_to_interleaved(theirs.reshape(n * hs), n).view(n, 1, hs))
    with pytest.raises(ValueError, match="even size"):
        half_to_interleaved(torch.randn(9, 2), 3)


def test_state_dict_mismatches_are_named(tmp_path):
    hf = hf_model(num_key_value_heads=2)
    config = config_from_llama(hf.config)
    sd = dict(hf.state_dict())
    with pytest.raises(ValueError, match="mlp.up_proj"):
        llama_to_gpt_state_dict({k: v for k, v in sd.items() if "layers.1.mlp.up_proj" not in k}, config)
    with pytest.raises(ValueError, match="unexpected"):
        llama_to_gpt_state_dict({**sd, "model.extra.weight": torch.zeros(1)}, config)
    with pytest.raises(ValueError, match="lm_head"):
        llama_to_gpt_state_dict({k: v for k, v in sd.items() if k != "lm_head.weight"}, config)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_llama_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(hf.config.to_dict()))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_llama_folder(tmp_path)


def test_bf16_stays_bf16_and_dtype_converts(tmp_path):
    hf = hf_model(num_key_value_heads=2).to(torch.bfloat16)
    save(hf, tmp_path)
    model = load_llama_folder(tmp_path)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0].float(), hf(x).logits.float(), atol=0.05, rtol=0.05)
    assert {p.dtype for p in load_llama_folder(tmp_path, dtype=torch.float32).parameters()} == {torch.float32}


MEMORY_PROBE = """
import sys, torch
from helpers.llama import load_llama_folder
def peak():  # VmHWM: this process's resident-memory high-water mark (ru_maxrss would include the parent's)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM"))
    return int(line.split()[1]) * 1024
from helpers.gpt import GPT, GPTConfig
tiny = GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=2, n_embd=8, norm="rmsnorm", mlp="swiglu")
with torch.device("meta"):  # warm up: the first meta-device model loads code worth ~60 MB, once
    GPT(tiny)
with torch.no_grad():
    GPT(tiny).to(torch.bfloat16)(torch.zeros(1, 2, dtype=torch.long))
before = peak()
model = load_llama_folder(sys.argv[1])
x = torch.randint(0, 1000, (1, 4))
with torch.no_grad():
    model(x)
print(before, peak(), {p.dtype for p in model.parameters()} == {torch.bfloat16})
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status (Linux only)")
def test_loading_a_300mb_bf16_checkpoint_needs_about_one_copy_of_memory(tmp_path):
    """Peak RSS (Linux VmHWM) of a fresh process: at most 1.3 x the file size above its baseline."""
    from safetensors.torch import save_file

    C, I, L, V = 1024, 2816, 12, 1000  # about 150M parameters = 300 MB in bf16
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)

    tensors = {
        "model.embed_tokens.weight": rand(V, C),
        "model.norm.weight": rand(C),
        "lm_head.weight": rand(V, C),
    }
    for i in range(L):
        p = f"model.layers.{i}."
        tensors |= {p + "input_layernorm.weight": rand(C), p + "post_attention_layernorm.weight": rand(C)}
        tensors |= {p + f"self_attn.{n}_proj.weight": rand(C, C) for n in "qo"}
        tensors |= {p + f"self_attn.{n}_proj.weight": rand(C // 4, C) for n in "kv"}  # GQA: 16 heads, 4 kv
        tensors |= {p + "mlp.gate_proj.weight": rand(I, C), p + "mlp.up_proj.weight": rand(I, C)}
        tensors |= {p + "mlp.down_proj.weight": rand(C, I)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    del tensors
    config = {
        "model_type": "llama",
        "vocab_size": V,
        "hidden_size": C,
        "intermediate_size": I,
        "num_hidden_layers": L,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "max_position_embeddings": 64,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    size = (tmp_path / "model.safetensors").stat().st_size
    assert 250e6 < size < 400e6
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    before, after, bf16 = out.stdout.split()
    assert bf16 == "True"
    grown = int(after) - int(before)
    print(f"file {size / 1e6:.0f} MB, peak RSS grew {grown / 1e6:.0f} MB ({grown / size:.2f} x)")
    assert grown <= 1.3 * size
