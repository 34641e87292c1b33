"""helpers.pretrain: batches against plain slicing, the loss against F.cross_entropy, the AdamW groups,
gradient clipping and the schedule as used by the loop, checkpoints (safetensors, no pickle) and, above
all, that an interrupted and resumed run is bit-for-bit the run that never stopped."""

import copy
import json
import math
import struct
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from helpers import slider_view
from helpers.checkpoints import (
    SHIPPED,
    SHIPPED_CHAR,
    load_checkpoint,
    load_shipped_gpt,
    raw_safetensors_header,
    save_checkpoint,
)
from helpers.corpus import CharVocab, load_corpus, train_val_split
from helpers.data import data_path
from helpers.gpt import GPT, GPTConfig
from helpers.normalization import LayerNorm as BookLayerNorm
from helpers.pretrain import (
    TrainConfig,
    bits_per_byte,
    estimate_loss,
    evaluate_all,
    get_batch,
    make_adamw,
    param_groups,
    train,
    use_fused_layernorm,
)
from helpers.watch import draw_snapshot, sample, sample_text, snapshot

warnings.filterwarnings("ignore", message=".*non-interactive.*")

TINY = {"vocab_size": 11, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 16}


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **overrides}))


def toy_data(n=600, vocab=11, seed=0):
    """A repetitive sequence with some noise: learnable, but not trivially."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % 7
    noise = torch.randint(0, vocab, (n,), generator=g)
    keep = torch.rand(n, generator=g) < 0.8
    return torch.where(keep, base, noise)


# --- batches ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_get_batch_is_slices_of_the_data(seed):
    data = torch.randint(0, 50, (int(torch.randint(40, 200, (1,)).item()),))
    B, T = 5, 9
    x, y = get_batch(data, B, T, torch.Generator().manual_seed(seed))
    starts = torch.randint(len(data) - T, (B,), generator=torch.Generator().manual_seed(seed))
    assert x.shape == y.shape == (B, T) and x.dtype == torch.long
    for b, i in enumerate(starts.tolist()):
        assert torch.equal(x[b], data[i : i + T])
        assert torch.equal(y[b], data[i + 1 : i + T + 1])  # the next id after each input
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_get_batch_is_reproducible_and_reaches_the_last_window():
    data = torch.arange(12)
    a = get_batch(data, 8, 4, torch.Generator().manual_seed(1))
    b = get_batch(data, 8, 4, torch.Generator().manual_seed(1))
    c = get_batch(data, 8, 4, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    seen = {
        int(s) for _ in range(50) for s in get_batch(data, 8, 4, torch.Generator().manual_seed(_))[0][:, 0]
    }
    assert seen == set(range(len(data) - 4))  # every start 0 .. len - T - 1: the last y is data[-1]


@pytest.mark.parametrize(
    ("data", "B", "T", "message"),
    [
        (torch.zeros(3, 4, dtype=torch.long), 2, 2, "1-D"),
        (torch.arange(5), 2, 5, "too few"),
        (torch.arange(50), 0, 5, "positive"),
        (torch.arange(50), 2, 0, "positive"),
    ],
)
def test_get_batch_errors(data, B, T, message):
    with pytest.raises(ValueError, match=message):
        get_batch(data, B, T)


# --- loss ---------------------------------------------------------------------------------------------------


def test_estimate_loss_is_cross_entropy_on_a_fixed_subset():
    model, data = tiny_model(), toy_data()
    ours = estimate_loss(model, data, iters=3, batch_size=4, block_size=8, seed=5)
    g = torch.Generator().manual_seed(5)
    losses = []
    with torch.no_grad():
        for _ in range(3):
            x, y = get_batch(data, 4, 8, g)
            logits, _ = model(x)
            losses.append(F.cross_entropy(logits.reshape(-1, TINY["vocab_size"]), y.reshape(-1)).item())
    assert ours == pytest.approx(np.mean(losses), abs=1e-6)
    rng_before = torch.get_rng_state()
    model.train()
    assert estimate_loss(model, data, iters=3, batch_size=4, block_size=8, seed=5) == ours  # same windows
    assert model.training  # the mode is restored
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global generator is untouched


def test_evaluate_all_covers_every_position_once():
    model, data = tiny_model(), toy_data(103)
    ours = evaluate_all(model, data, block_size=16, batch_size=3)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data) - 1, 16):
            x = data[start : start + 16]
            y = data[start + 1 : start + 17]
            x = x[: len(y)]
            logits, _ = model(x[None])
            total += F.cross_entropy(logits[0], y, reduction="sum").item()
            count += len(y)
    assert count == len(data) - 1
    assert ours == pytest.approx(total / count, abs=1e-5)


def test_untrained_loss_is_log_vocab():
    model = tiny_model(vocab_size=97, block_size=32)
    loss = estimate_loss(model, torch.randint(0, 97, (500,)), iters=4, batch_size=8)
    assert abs(loss - math.log(97)) < 0.05  # N(0, 0.02) weights: nearly uniform predictions


# --- optimiser ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_param_groups_decay_exactly_the_linear_matrices(bias):
    model = tiny_model(bias=bias)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    every = decay["params"] + no_decay["params"]
    assert len({id(p) for p in every}) == len(every)  # nothing twice (the tied head is wte)
    assert sum(p.numel() for p in every) == model.num_parameters()
    expected = {
        n for n, _ in model.named_parameters() if n.startswith("transformer.h.") and n.endswith("weight")
    }
    expected = {n for n in expected if ".ln_" not in n}  # c_attn, attn.c_proj, c_fc, mlp.c_proj
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == expected
    assert all(p.dim() == 2 for p in decay["params"])
    assert "transformer.wte.weight" in {names[id(p)] for p in no_decay["params"]}
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(model, -1.0)


@pytest.mark.parametrize("bias", [True, False])
def test_decay_embeddings_decays_every_matrix_like_the_reference_recipe(bias):
    model = tiny_model(bias=bias)
    decay, no_decay = param_groups(model, 0.1, decay_embeddings=True)
    names = {id(p): n for n, p in model.named_parameters()}
    # the reference recipe's rule: every parameter with two or more dimensions decays, nothing else
    assert {names[id(p)] for p in decay["params"]} == {n for n, p in model.named_parameters() if p.dim() >= 2}
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= {names[id(p)] for p in decay["params"]}
    assert all(p.dim() == 1 for p in no_decay["params"])
    tc = TrainConfig(max_steps=2, warmup_steps=0, decay_embeddings=True)
    groups = make_adamw(model, tc).param_groups
    assert len(groups[0]["params"]) == len(decay["params"]) and groups[0]["weight_decay"] == tc.weight_decay


def test_train_sets_the_schedule_and_clips_like_torch():
    model, data = tiny_model(), toy_data()
    tc = TrainConfig(
        max_steps=12,
        batch_size=4,
        block_size=8,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=4,
        eval_interval=100,
        eval_iters=1,
        grad_clip=0.05,
    )
    optimizer = make_adamw(model, tc)
    state = train(model, optimizer, data, data, tc, until=7, progress=False)
    assert state.step == 7
    assert all(g["lr"] == tc.lr_at(6) for g in optimizer.param_groups)  # the lr of the last step taken

    # one more step by hand, clipping with torch's own function, must equal the loop's eighth step
    twin = tiny_model(seed=3)
    twin.load_state_dict(model.state_dict())
    twin_opt = make_adamw(twin, tc)
    twin_opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # a copy: load_state_dict aliases tensors
    x, y = get_batch(data, 4, 8, state.generator.clone_state())
    for g in twin_opt.param_groups:
        g["lr"] = tc.lr_at(7)
    twin.train()
    _, loss = twin(x, y)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.05)
    assert norm > 0.05  # the clipping really acted
    twin_opt.step()
    train(model, optimizer, data, data, tc, state=state, until=8, progress=False)
    assert state.history.step_loss[-1] == loss.item()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_train_config_errors():
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(max_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="positive"):
        TrainConfig(batch_size=0)
    assert TrainConfig().amp_dtype("cpu") is None
    assert TrainConfig().amp_dtype("cuda") == torch.bfloat16
    assert TrainConfig(amp="none").amp_dtype("cuda") is None


# --- the loop learns ----------------------------------------------------------------------------------------


def test_training_lowers_the_loss_and_records_history():
    model, data = tiny_model(), toy_data(2000)
    tc = TrainConfig(
        max_steps=60,
        batch_size=8,
        block_size=16,
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=5,
        eval_interval=20,
        eval_iters=2,
    )
    seen = []
    state = train(
        model,
        make_adamw(model, tc),
        data,
        data,
        tc,
        on_eval=lambda s, m: seen.append(s.step),
        progress=False,
    )
    h = state.history
    assert h.eval_step == seen == [0, 20, 40, 60]
    assert len(h.step_loss) == 60 and len(h.val_loss) == len(h.train_loss) == len(h.seconds) == 4
    assert abs(h.val_loss[0] - math.log(11)) < 0.1
    assert h.val_loss[-1] < h.val_loss[0] - 0.5  # 80% of the ids follow a cycle of 7
    assert not model.training


def test_on_eval_can_stop_training():
    model, data = tiny_model(), toy_data()
    tc = TrainConfig(max_steps=50, batch_size=4, block_size=8, warmup_steps=2, eval_interval=5, eval_iters=1)
    state = train(
        model, make_adamw(model, tc), data, data, tc, on_eval=lambda s, m: s.step >= 10, progress=False
    )
    assert state.step == 10


# --- checkpoints and exact resumption -----------------------------------------------------------------------


def run(tmp_path, interrupt: bool, dropout=0.1, steps=8):
    """Train `steps` steps straight, or steps/2, save, load into a fresh model and optimiser, steps/2 more."""
    data = toy_data(800)
    tc = TrainConfig(
        max_steps=steps,
        batch_size=4,
        block_size=12,
        lr=5e-3,
        min_lr=5e-4,
        warmup_steps=2,
        eval_interval=2,
        eval_iters=2,
        grad_clip=0.5,
    )
    model = tiny_model(dropout=dropout)
    optimizer = make_adamw(model, tc)
    if not interrupt:
        state = train(model, optimizer, data, data, tc, progress=False)
        return model, optimizer, state
    state = train(model, optimizer, data, data, tc, until=steps // 2, progress=False)
    path = save_checkpoint(tmp_path / "half.safetensors", model, optimizer, state, tc)
    del model, optimizer, state
    torch.manual_seed(1234)  # disturb the global generator: the checkpoint must restore it
    fresh = tiny_model(seed=99, dropout=dropout)  # different weights, which the checkpoint must replace
    fresh_opt = make_adamw(fresh, tc)
    ckpt = load_checkpoint(path, fresh, fresh_opt)
    assert ckpt.train_config == tc
    state = train(fresh, fresh_opt, data, data, ckpt.train_config, state=ckpt.state, progress=False)
    return fresh, fresh_opt, state


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_interrupted_and_resumed_run_is_bitwise_the_same(tmp_path, dropout):
    straight, straight_opt, a = run(tmp_path, interrupt=False, dropout=dropout)
    resumed, resumed_opt, b = run(tmp_path, interrupt=True, dropout=dropout)
    assert a.step == b.step == 8
    assert a.history.step_loss == b.history.step_loss  # exact float equality
    assert a.history.val_loss == b.history.val_loss and a.history.eval_step == b.history.eval_step
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    sa, sb = straight_opt.state_dict(), resumed_opt.state_dict()
    for i in sa["state"]:
        for key in sa["state"][i]:
            assert torch.equal(sa["state"][i][key], sb["state"][i][key]), (i, key)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_resuming_without_the_optimizer_state_is_not_the_same(tmp_path):
    """The test above can fail: lose AdamW's moments and the run changes."""
    data = toy_data(800)
    tc = TrainConfig(max_steps=8, batch_size=4, block_size=12, lr=5e-3, warmup_steps=2, eval_interval=100)
    model = tiny_model()
    opt = make_adamw(model, tc)
    straight = train(model, opt, data, data, tc, progress=False)
    model2 = tiny_model()
    state = train(model2, make_adamw(model2, tc), data, data, tc, until=4, progress=False)
    path = save_checkpoint(tmp_path / "c.safetensors", model2, None, state, tc)
    fresh = tiny_model(seed=5)
    ckpt = load_checkpoint(path, fresh)
    resumed = train(fresh, make_adamw(fresh, tc), data, data, tc, state=ckpt.state, progress=False)
    assert straight.history.step_loss[:4] == resumed.history.step_loss[:4]
    assert straight.history.step_loss[4:] != resumed.history.step_loss[4:]


def test_checkpoint_is_safetensors_with_json_metadata_and_gives_identical_logits(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = save_checkpoint(tmp_path / "m.safetensors", model, extra={"vocab": list("abcdefghijk")})
    raw = path.read_bytes()
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]  # neither pickle nor torch.save's zip
    header = raw_safetensors_header(path)
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(header) - {"__metadata__"}
        meta = f.metadata()
        for key in f.keys():  # noqa: SIM118
            t = f.get_tensor(key)
            assert list(t.shape) == header[key]["shape"]
            start, end = header[key]["data_offsets"]
            assert end - start == t.numel() * t.element_size()
    assert header["__metadata__"] == meta
    assert json.loads(meta["gpt_config"])["n_layer"] == TINY["n_layer"]
    assert "model.lm_head.weight" not in header  # tied: stored once, as wte
    loaded = load_checkpoint(path).model
    assert loaded.lm_head.weight is loaded.transformer.wte.weight  # still tied after loading
    idx = torch.randint(0, TINY["vocab_size"], (2, 16))
    assert torch.equal(model.eval()(idx)[0], loaded.eval()(idx)[0])
    assert load_checkpoint(path).extra == {"vocab": list("abcdefghijk")}


def test_read_safetensors_header_by_hand(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_model())
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert raw_safetensors_header(path) == json.loads(raw[8 : 8 + n])


def test_checkpoint_errors(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_model())
    with pytest.raises(ValueError, match="differs"):
        load_checkpoint(path, tiny_model(n_embd=32))
    with pytest.raises(ValueError, match="no optimizer state"):
        m = tiny_model()
        load_checkpoint(path, m, make_adamw(m, TrainConfig()))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a"):
        load_checkpoint(tmp_path / "other.safetensors")


# --- speed and sampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_fused_layernorm_keeps_names_and_numbers(bias):
    model = tiny_model(bias=bias)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or "ln_f" in name:
                p.add_(0.2 * torch.randn_like(p))
    idx = torch.randint(0, TINY["vocab_size"], (3, 16))
    before, keys = model(idx)[0], list(model.state_dict())
    use_fused_layernorm(model)
    assert not any(isinstance(m, BookLayerNorm) for m in model.modules())
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(model(idx)[0], before, atol=1e-5, rtol=1e-5)


def test_sample_is_seeded_and_crops_to_the_context():
    model = tiny_model()
    start = torch.zeros(2, 3, dtype=torch.long)
    a = sample(model, start, 30, generator=torch.Generator().manual_seed(0))  # 33 > block_size 16
    b = sample(model, start, 30, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 33) and torch.equal(a, b) and torch.equal(a[:, :3], start)
    assert int(a.max()) < TINY["vocab_size"]
    cold = sample(model, start, 5, temperature=1e-4, generator=torch.Generator().manual_seed(1))
    greedy = start
    for _ in range(5):
        greedy = torch.cat([greedy, model(greedy)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(cold, greedy)  # temperature -> 0 is greedy
    with pytest.raises(ValueError, match="temperature"):
        sample(model, start, 1, temperature=0.0)
    vocab = CharVocab(tuple("abcdefghijk"))
    text = sample_text(model, vocab, "abc", 10, seed=3)
    assert text.startswith("abc") and len(text) == 13 and text == sample_text(model, vocab, "abc", 10, seed=3)


def test_snapshot_slider_moves_through_training():
    model, data = tiny_model(), toy_data(2000)
    tc = TrainConfig(
        max_steps=40, batch_size=8, block_size=16, lr=1e-2, warmup_steps=2, eval_interval=20, eval_iters=1
    )
    vocab = CharVocab(tuple("abcdefghijk"))
    samples = {}

    def keep_sample(state, m):
        samples[state.step] = sample_text(m, vocab, "abc", 20, seed=0)

    h = train(model, make_adamw(model, tc), data, data, tc, on_eval=keep_sample, progress=False).history
    first, last = snapshot(h, samples, 0), snapshot(h, samples, 40)
    assert first["step"] == 0 and last["step"] == 40
    assert first["val_loss"] == h.val_loss[0] and last["text"] == samples[40]
    assert snapshot(h, samples, 27)["step"] == 20  # the latest evaluation at or before the step
    view = slider_view(lambda step: draw_snapshot(h, samples, step), step=(0, 40, 20, 0))
    before = view.image
    view.set(step=40)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    plt.close("all")


# --- the shipped model --------------------------------------------------------------------------------------


def test_the_first_shipped_model_matches_its_json():
    model, vocab, info = load_shipped_gpt("cpu", name=SHIPPED_CHAR)
    text = load_corpus()
    assert vocab == CharVocab.from_text(text)  # the ids chapter 18 uses
    shipped = {k: model.config.__dict__[k] for k in info["config"]}
    assert info["config"] == shipped  # the sizes it was trained with
    defaults = GPTConfig(**info["config"]).__dict__
    assert model.config.__dict__ == defaults  # fields added since (RoPE, GQA, ...) keep GPT-2's behaviour
    assert model.num_parameters() == info["parameters"]
    assert info["steps"] == info["train_config"]["max_steps"]
    val = vocab.tensor(train_val_split(text, 0.9)[1])
    check = evaluate_all(model, val[: info["val_loss_check_chars"]])
    assert check == pytest.approx(info["val_loss_check"], abs=1e-4)
    assert info["val_loss"] < 1.7  # far below the notebook's short run
    assert data_path(f"{SHIPPED_CHAR}.safetensors").stat().st_size < 5.5e6


def test_the_books_model_matches_its_json_and_beats_the_first_by_a_quarter():
    model, tokenizer, info = load_shipped_gpt("cpu")
    assert info["recipe"] == "bpe" and "PROVISIONAL" not in info["about"]
    assert model.config == GPTConfig(**info["config"]) and 10e6 < model.num_parameters() < 30e6
    assert tokenizer.vocab_size == model.config.vocab_size == 4096
    assert info["steps"] == info["train_config"]["max_steps"] and info["seconds"] < 2 * 3600
    header = raw_safetensors_header(data_path(f"{SHIPPED}.safetensors"))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}  # stored in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # returned in float32
    val = data_path(info["val_text"]).read_text(encoding="utf-8")
    ids = torch.tensor(tokenizer.encode(val[:40_000]))
    check = evaluate_all(model, ids[: info["val_loss_check_tokens"]])
    assert check == pytest.approx(info["val_loss_check"], abs=1e-3)
    # the bar, on text neither model trained on: bits per byte at least 25 % below the first model's
    held_out = train_val_split(load_corpus(), 0.9)[1]
    n_bytes = len(held_out.encode("utf-8"))
    old, old_vocab, _ = load_shipped_gpt("cpu", name=SHIPPED_CHAR)
    old_ids = old_vocab.tensor(held_out)
    old_bpb = bits_per_byte(evaluate_all(old, old_ids), len(old_ids) - 1, n_bytes)
    new_ids = torch.tensor(tokenizer.encode(held_out))
    new_bpb = bits_per_byte(evaluate_all(model, new_ids), len(new_ids) - 1, n_bytes)
    assert new_bpb == pytest.approx(info["bits_per_byte"]["python_docs_val"], abs=1e-3)
    assert new_bpb <= 0.75 * old_bpb, (new_bpb, old_bpb)


def test_bits_per_byte_counts_the_whole_texts_information():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)  # one bit per one-byte token
    assert bits_per_byte(2 * math.log(2), 5, 10) == pytest.approx(1.0)  # two bits per two-byte token
    with pytest.raises(ValueError, match="positive"):
        bits_per_byte(1.0, 0, 10)


def test_load_shipped_gpt_names_the_models_it_knows():
    with pytest.raises(ValueError, match="gpt_bpe_python_docs"):
        load_shipped_gpt("cpu", name="gpt_huge")
