"""Tests for helpers.weights: a GPT-2-format folder loaded into the book's GPT agrees with transformers.

The folder is built here, offline: a byte-level BPE trained by Hugging Face `tokenizers` on the book's
corpus and a small randomly initialised transformers.GPT2LMHeadModel saved with save_pretrained.
"""

import json
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

from helpers.corpus import load_corpus
from helpers.generate import generate
from helpers.gpt import GPT, GPTConfig, config_from_hf
from helpers.weights import (
    HOW_TO_GET_GPT2,
    gpt2_parameter_count,
    load_gpt2_folder,
    model_bytes,
    read_safetensors_header,
    read_tensor_by_hand,
)

EOT = "<|endoftext|>"
TEXTS = [
    "def load(path):\n    return open(path).read()",
    "Hello, world! 1234  spaces\tand tabs",
    "naïve café",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """(folder, hf_model, hf_tokenizer): a small random GPT-2 release in Hugging Face's layout."""
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        [load_corpus()[:60_000]], vocab_size=400, special_tokens=[EOT], show_progress=False
    )
    torch.manual_seed(0)
    hf_config = GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=48, n_layer=2, n_head=4, initializer_range=0.1
    )
    hf = GPT2LMHeadModel(hf_config).eval()
    path = tmp_path_factory.mktemp("gpt2_small_random")
    hf.save_pretrained(path, safe_serialization=True)
    tok.save_model(str(path))  # vocab.json + merges.txt
    return path, hf, tok


# --- the safetensors header, by hand -------------------------------------------------------------------


def test_header_parsed_by_hand_matches_safe_open(folder):
    path, _, _ = folder
    file = path / "model.safetensors"
    header = read_safetensors_header(file)
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    with safe_open(str(file), framework="pt") as f:
        assert set(header["tensors"]) == set(f.keys())
        for name, entry in header["tensors"].items():
            tensor = f.get_tensor(name)
            assert entry["shape"] == list(tensor.shape)
            assert entry["dtype"] == dtypes[tensor.dtype]
            assert torch.equal(read_tensor_by_hand(file, name), tensor)
    ends = sorted(e["data_offsets"] for e in header["tensors"].values())
    assert ends[0][0] == 0 and all(
        a[1] == b[0] for a, b in zip(ends[:-1], ends[1:], strict=True)
    )  # packed, no gaps
    assert header["data_start"] + ends[-1][1] == file.stat().st_size


def test_header_by_hand_on_mixed_dtypes(tmp_path):
    g = torch.Generator().manual_seed(1)
    tensors = {
        "a": torch.randn(3, 5, generator=g),
        "b": torch.randn(7, generator=g).to(torch.bfloat16),
        "c": torch.randn(2, 2, 2, generator=g).half(),
        "d": torch.randint(-9, 9, (4,), generator=g),
        "e": torch.randn(2, generator=g).double(),
    }
    file = tmp_path / "mixed.safetensors"
    save_file(tensors, str(file), metadata={"format": "pt"})
    header = read_safetensors_header(file)
    assert header["metadata"] == {"format": "pt"}
    (n,) = struct.unpack("<Q", file.read_bytes()[:8])
    assert header["header_bytes"] == n
    for name, tensor in tensors.items():
        mine = read_tensor_by_hand(file, name)
        assert mine.dtype == tensor.dtype and torch.equal(mine, tensor)


# --- config and sizes -------------------------------------------------------------------------------------


def test_config_from_a_file_a_dict_and_transformers_agree(folder):
    path, hf, _ = folder
    from_file = config_from_hf(path / "config.json")
    assert from_file == config_from_hf(GPT2Config.from_json_file(path / "config.json"))
    assert from_file == config_from_hf(hf.config) == config_from_hf(hf.config.to_dict())
    assert (from_file.n_layer, from_file.n_embd, from_file.block_size) == (
        hf.config.n_layer,
        hf.config.n_embd,
        hf.config.n_positions,
    )


@pytest.mark.parametrize("seed", range(4))
def test_count_parameters_matches_the_models(seed):
    g = torch.Generator().manual_seed(seed)
    n_head = int(torch.randint(1, 4, (1,), generator=g))
    config = GPTConfig(
        vocab_size=int(torch.randint(10, 300, (1,), generator=g)),
        block_size=int(torch.randint(4, 40, (1,), generator=g)),
        n_layer=int(torch.randint(1, 4, (1,), generator=g)),
        n_head=n_head,
        n_embd=n_head * int(torch.randint(2, 9, (1,), generator=g)),
    )
    model = GPT(config)
    assert gpt2_parameter_count(config) == model.num_parameters()
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.block_size,
            n_embd=config.n_embd,
            n_layer=config.n_layer,
            n_head=config.n_head,
        )
    )
    assert gpt2_parameter_count(config) == hf.num_parameters()
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        measured = sum(p.numel() * p.element_size() for p in model.to(dtype).parameters())
        assert model_bytes(config, dtype) == measured


def test_count_parameters_gpt2_small_without_allocating():
    with torch.device("meta"):  # shapes only, no memory
        model = GPT(GPTConfig())
    assert gpt2_parameter_count(GPTConfig()) == model.num_parameters()
    assert 495e6 < model_bytes(GPTConfig(), torch.float32) < 500e6
    assert model_bytes(GPTConfig(), torch.bfloat16) * 2 == model_bytes(GPTConfig(), torch.float32)


# --- the whole folder: same logits, tokens and continuations as transformers --------------------------------


def test_loaded_model_gives_transformers_logits(folder):
    path, hf, _ = folder
    model, _ = load_gpt2_folder(path, device="cpu")
    assert not model.training
    g = torch.Generator().manual_seed(0)
    for B, T in [(1, 1), (2, 17), (3, 64)]:
        idx = torch.randint(0, hf.config.vocab_size, (B, T), generator=g)
        with torch.no_grad():
            ours, _ = model(idx)
            theirs = hf(idx).logits
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() < 1e-4


def test_loaded_tokenizer_gives_hugging_face_ids(folder):
    path, _, hf_tok = folder
    _, tok = load_gpt2_folder(path)
    assert tok.vocab_size == hf_tok.get_vocab_size()
    for text in [*TEXTS, load_corpus()[100_000:103_000]]:
        ids = tok.encode(text)
        assert ids == hf_tok.encode(text).ids
        assert tok.decode(ids) == text


def test_greedy_continuations_match_transformers(folder):
    path, hf, _ = folder
    model, tok = load_gpt2_folder(path)
    for text in TEXTS:
        idx = torch.tensor([tok.encode(text)])
        ours = generate(model, idx, max_new_tokens=20, temperature=0)
        theirs = hf.generate(
            idx,
            attention_mask=torch.ones_like(idx),
            max_new_tokens=20,
            do_sample=False,
            pad_token_id=tok.special_tokens[EOT],
        )
        assert ours.tolist() == theirs.tolist()


def test_bf16_release_loads(folder, tmp_path):
    path, hf, _ = folder
    shutil.copytree(path, tmp_path / "bf16", dirs_exist_ok=True)
    hf16 = GPT2LMHeadModel(hf.config).eval()
    hf16.load_state_dict(hf.state_dict())
    hf16.to(torch.bfloat16).save_pretrained(tmp_path / "bf16", safe_serialization=True)
    header = read_safetensors_header(tmp_path / "bf16" / "model.safetensors")
    assert {e["dtype"] for e in header["tensors"].values()} == {"BF16"}
    model, _ = load_gpt2_folder(tmp_path / "bf16")
    idx = torch.randint(0, hf.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        theirs = hf16.float()(idx).logits  # transformers on the same bf16 weights, computed in fp32
        ours, _ = model(idx)
    assert (ours - theirs).abs().max() < 1e-4


# --- clear errors ----------------------------------------------------------------------------------------


def test_missing_folder_says_how_to_get_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder 'nowhere'") as info:
        load_gpt2_folder(tmp_path / "nowhere")
    assert HOW_TO_GET_GPT2 in str(info.value) and "huggingface-cli download gpt2" in str(info.value)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "vocab.json", "merges.txt"])
def test_missing_file_is_named(folder, tmp_path, missing):
    path, _, _ = folder
    copy = shutil.copytree(path, tmp_path / "release")
    (copy / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"has no {missing}") as info:
        load_gpt2_folder(copy)
    assert "save_pretrained" in str(info.value)


def test_tokenizer_files_optional_when_not_asked_for(folder, tmp_path):
    path, _, _ = folder
    copy = shutil.copytree(path, tmp_path / "release")
    (copy / "vocab.json").unlink()
    model, tok = load_gpt2_folder(copy, tokenizer=False)
    assert tok is None and isinstance(model, GPT)


def test_mismatched_shapes_raise(folder, tmp_path):
    path, _, _ = folder
    copy = shutil.copytree(path, tmp_path / "release")
    config = json.loads((copy / "config.json").read_text())
    config["n_embd"] = 64
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="the checkpoint has shape"):
        load_gpt2_folder(copy)


def test_bad_config_and_bad_header_raise(folder, tmp_path):
    path, _, _ = folder
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="not GPT-2"):
        config_from_hf(bad)
    bad.write_text(json.dumps({"n_layer": 2}))
    with pytest.raises(ValueError, match="has no vocab_size"):
        config_from_hf(bad)
    with pytest.raises(ValueError, match="activation_function 'relu'"):
        config_from_hf({**GPT2Config().to_dict(), "activation_function": "relu"})
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        config_from_hf(bad)
    with pytest.raises(TypeError, match="expected a path"):
        config_from_hf(42)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(ValueError, match="claims 1000000 bytes"):
        read_safetensors_header(broken)
    data = (path / "model.safetensors").read_bytes()
    lying = tmp_path / "lying.safetensors"
    lying.write_bytes(data[:-4])  # the last tensor lost its last 4 bytes
    with pytest.raises(ValueError, match="past the"):
        read_safetensors_header(lying)
    with pytest.raises(ValueError, match="no tensor"):
        read_tensor_by_hand(path / "model.safetensors", "not.a.tensor")


# --- the slider ------------------------------------------------------------------------------------------


def test_weight_memory_slider_redraws_and_numbers_match():
    import warnings

    import numpy as np

    from helpers import slider_view
    from helpers.weights import draw_weight_memory, weight_memory

    warnings.filterwarnings("ignore", message=".*non-interactive.*")
    view = slider_view(
        draw_weight_memory,
        n_layer=(1, 48, 1, 12),
        n_embd=(64, 2048, 64, 768),
        device_gib=(1.0, 80.0, 1.0, 8.0),
    )
    before = view.image
    view.set(n_layer=48, n_embd=1600)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    moved = view.image
    view.set(device_gib=2.0)  # the bars that no longer fit turn red
    assert np.abs(view.image.astype(int) - moved.astype(int)).sum() > 0
    with torch.device("meta"):
        model = GPT(GPTConfig(n_layer=3, n_head=1, n_embd=128))
    gib = weight_memory(3, 128)
    assert gib["fp32"] == pytest.approx(model.num_parameters() * 4 / 2**30)
    assert gib["fp32"] == pytest.approx(2 * gib["bf16"]) == pytest.approx(4 * gib["int8"])
    with pytest.raises(ValueError, match="must be >= 1"):
        weight_memory(0, 768)
