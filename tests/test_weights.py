"""Tests for helpers.weights: a GPT-2-format folder loaded into the book's GPT agrees with transformers.

The folder is built here, offline: a byte-level BPE trained by Hugging Face `tokenizers` on the book's
corpus and a small randomly initialised transformers.GPT2LMHeadModel saved with save_pretrained.
"""

import json
import shutil
import struct
from collections.abc import Mapping

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
    assert HOW_TO_GET_GPT2 in str(info.value) and "fetch_model('gpt2', download_if_missing=True)" in str(
        info.value
    )


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "vocab.json", "merges.txt"])
def test_missing_file_is_named(folder, tmp_path, missing):
    path, _, _ = folder
    copy = shutil.copytree(path, tmp_path / "release")
    (copy / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"has no {missing}") as info:
        load_gpt2_folder(copy)
    assert "hf download openai-community/gpt2 --revision" in str(info.value)  # how to get it, pinned


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


# --- chapter 21's real models and their stand-ins --------------------------------------------------------


def test_tokenizer_from_the_files_matches_the_book_on_validation_text(folder):
    """The notebook's oracle: `tokenizers` reading vocab.json + merges.txt (as it would GPT-2's own files)."""
    from helpers.corpus import train_val_split

    path, _, _ = folder
    _, tok = load_gpt2_folder(path)
    library = ByteLevelBPETokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    _, val_text = train_val_split(load_corpus())
    passage = val_text[:6000]
    assert tok.encode(passage) == library.encode(passage).ids


def test_corpus_loss_matches_transformers(folder):
    path, hf, _ = folder
    model, tok = load_gpt2_folder(path)
    ids = torch.tensor(tok.encode(load_corpus()[-3000:])[: 4 * 64 + 1])  # (4 T + 1,)
    x, y = ids[:-1].view(4, 64), ids[1:].view(4, 64)  # (B, T): inputs and next tokens
    with torch.no_grad():
        _, loss = model(x, y)
        reference = torch.nn.functional.cross_entropy(hf(x).logits.flatten(0, 1), y.flatten())
    assert abs(loss.item() - reference.item()) < 1e-5


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory):
    from helpers.stand_ins import make_chat_stand_in

    return make_chat_stand_in(tmp_path_factory.mktemp("chat") / "tiny-chat")


MESSAGES = [
    [{"role": "user", "content": "What does a list comprehension do?"}],
    [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Bonjour ! naïve café"},
        {"role": "assistant", "content": "Salut."},
        {"role": "user", "content": "Et alors ?"},
    ],
]


def test_chat_stand_in_has_the_layout_of_an_instruct_release(chat_folder):
    from tokenizers import Tokenizer

    from helpers.stand_ins import SPECIAL_TOKENS

    names = {p.name for p in chat_folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((chat_folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["tie_word_embeddings"]
    assert config["num_key_value_heads"] < config["num_attention_heads"]  # grouped-query attention
    tok = Tokenizer.from_file(str(chat_folder / "tokenizer.json"))
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2]  # SmolLM2's order
    for marker in SPECIAL_TOKENS:  # each marker is one token, never split into bytes
        assert tok.encode(f"a{marker}b", add_special_tokens=False).ids.count(tok.token_to_id(marker)) == 1


def test_chat_stand_in_prompt_matches_transformers_apply_chat_template(chat_folder):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from helpers.chat import load_chat_template

    template = load_chat_template(chat_folder)
    assert template.special_tokens["eos_token"] == "<|im_end|>"
    tok = Tokenizer.from_file(str(chat_folder / "tokenizer.json"))
    hf_tok = AutoTokenizer.from_pretrained(chat_folder)
    for messages in MESSAGES:
        for opening in (True, False):
            text = template.render(messages, add_generation_prompt=opening)
            assert text == hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=opening)
            ids = hf_tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=opening)
            ids = ids["input_ids"] if isinstance(ids, Mapping) else ids
            assert tok.encode(text, add_special_tokens=False).ids == list(ids)


def test_chat_stand_in_answers_like_transformers(chat_folder):
    """The notebook's whole chat path - template, ids, the book's GPT, generate with EOS - against
    transformers' LlamaForCausalLM.generate, including a run where the end-of-turn id does stop it."""
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    from helpers.chat import load_chat_template
    from helpers.llama import load_llama_folder

    template = load_chat_template(chat_folder)
    tok = Tokenizer.from_file(str(chat_folder / "tokenizer.json"))
    model = load_llama_folder(chat_folder)
    hf = LlamaForCausalLM.from_pretrained(chat_folder).eval()
    prompt = torch.tensor([tok.encode(template.render(MESSAGES[1]), add_special_tokens=False).ids])  # (1, T)
    with torch.no_grad():
        torch.testing.assert_close(model(prompt)[0], hf(prompt).logits, atol=1e-4, rtol=1e-4)
    free = generate(model, prompt, 30, temperature=0)  # (1, T + 30)
    # the stand-in never writes <|im_end|>, so pretend a token it does write ends the turn
    stop = int(free[0, prompt.shape[1] + 5])
    first = prompt.shape[1] + (free[0, prompt.shape[1] :] == stop).nonzero()[0].item()  # its first position
    for eos in (tok.token_to_id("<|im_end|>"), stop):
        ours = generate(model, prompt, 30, temperature=0, eos_token_id=eos)
        theirs = hf.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=30,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos,
        )
        assert ours.tolist() == theirs.tolist()
    assert ours.shape[1] == first + 1 and int(ours[0, -1]) == stop  # stopped right after the first `stop`


def test_chat_stand_in_rejects_bad_sizes(tmp_path):
    from helpers.stand_ins import make_chat_stand_in

    with pytest.raises(ValueError, match="vocab_size must be at least 300"):
        make_chat_stand_in(tmp_path, vocab_size=100)
    with pytest.raises(ValueError, match="n_kv_head"):
        make_chat_stand_in(tmp_path, n_head=4, n_kv_head=3)
    with pytest.raises(ValueError, match="even size"):
        make_chat_stand_in(tmp_path, n_embd=60, n_head=4, n_kv_head=2)  # head size 15
    assert not any(tmp_path.iterdir())  # nothing written before the check


def real_folder(name):
    """The cached folder of a real model, or skip with the command that fetches it."""
    from helpers.hub import HubError, fetch_model, how_to_fetch

    try:
        return fetch_model(name)
    except HubError:
        pytest.skip(f"{name} is not in the Hugging Face cache on this machine. {how_to_fetch(name)}")


def test_real_gpt2_matches_transformers_and_tokenizers():
    path = real_folder("gpt2")
    model, tok = load_gpt2_folder(path)
    assert model.num_parameters() == gpt2_parameter_count(model.config) == 124_439_808
    library = ByteLevelBPETokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    text = load_corpus()[-2000:]
    ids = tok.encode(text)
    assert ids == library.encode(text).ids
    hf = GPT2LMHeadModel.from_pretrained(path).eval()
    x, y = torch.tensor([ids[:128]]), torch.tensor([ids[1:129]])  # (1, 128)
    with torch.no_grad():
        logits, loss = model(x, y)
        torch.testing.assert_close(logits, hf(x).logits, atol=1e-3, rtol=1e-4)
    assert loss.item() < 0.6 * torch.log(torch.tensor(50257.0)).item()  # a trained model beats chance


def test_real_smollm2_instruct_answers_like_transformers():
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    from helpers.chat import load_chat_template
    from helpers.llama import load_llama_folder

    path = real_folder("smollm2-360m-instruct")
    template = load_chat_template(path)
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    model = load_llama_folder(path, dtype=torch.float32)
    assert model.num_parameters() == 361_821_120
    prompt = torch.tensor([tok.encode(template.render(MESSAGES[0]), add_special_tokens=False).ids])
    eos = tok.token_to_id(template.special_tokens["eos_token"])
    ours = generate(model, prompt, 24, temperature=0, eos_token_id=eos)
    hf = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    theirs = hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=24,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    assert ours.tolist() == theirs.tolist()


def test_smollm2_360m_parameter_count_from_its_config():
    """The chapter's figure for SmolLM2-360M, 361,821,120, from its config.json's sizes (meta device)."""
    from helpers.llama import config_from_llama

    smollm2_360m = {
        "model_type": "llama",
        "vocab_size": 49152,
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "max_position_embeddings": 8192,
        "rope_theta": 100000,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    }
    with torch.device("meta"):
        model = GPT(config_from_llama(smollm2_360m))
    assert model.num_parameters() == 361_821_120
