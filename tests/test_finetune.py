"""Chapter 20's fine-tuning tools: LoRA against torch.autograd on its explicit formula, the classifier and
the instruction data against what they promise, and a headless run of the rank slider."""

import copy
import re
import string
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import nn

from helpers import finetune as ft
from helpers import instructions as ins
from helpers import lora as lo
from helpers.checkpoints import load_shipped_gpt
from helpers.corpus import CharVocab
from helpers.data import data_path
from helpers.gpt import GPT, GPTConfig
from helpers.train import trainable_parameters

warnings.filterwarnings("ignore", message=".*non-interactive.*")
SEEDS = range(6)
VOCAB = CharVocab.from_text("\n :-?,.()=>" + string.ascii_letters + string.digits)
TEXTS, LABELS = ["x = 1", "a b.", ">>> f()", "if y:"], [1, 0, 2, 1]  # a small labelled set


def tiny_gpt(seed=0, vocab_size=30, **overrides):
    torch.manual_seed(seed)
    sizes = {"vocab_size": vocab_size, "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 16}
    return GPT(GPTConfig(**{**sizes, **overrides})).eval()


# --- LoRA ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_lora_with_b_zero_is_the_base_layer(seed):
    gen = torch.Generator().manual_seed(seed)
    d_in, d_out = (int(v) for v in torch.randint(2, 20, (2,), generator=gen))
    base = nn.Linear(d_in, d_out, bias=seed % 2 == 0)
    x = torch.randn(3, 5, d_in, generator=gen)
    lora = lo.LoRALinear(copy.deepcopy(base), r=min(d_in, d_out, 3), alpha=7.0)
    assert torch.count_nonzero(lora.B) == 0 and torch.count_nonzero(lora.A) > 0
    torch.testing.assert_close(lora(x), base(x), rtol=0, atol=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_lora_forward_and_gradients_match_the_explicit_formula(seed):
    gen = torch.Generator().manual_seed(seed)
    d_in, d_out = (int(v) for v in torch.randint(3, 24, (2,), generator=gen))
    r = int(torch.randint(1, min(d_in, d_out) + 1, (1,), generator=gen))
    alpha = float(torch.rand(1, generator=gen) * 16 + 0.5)
    lora = lo.LoRALinear(nn.Linear(d_in, d_out).double(), r=r, alpha=alpha)
    with torch.no_grad():
        lora.A.copy_(torch.randn(r, d_in, generator=gen))
        lora.B.copy_(torch.randn(d_out, r, generator=gen))  # non-zero, as after some training
    x = torch.randn(4, 6, d_in, generator=gen, dtype=torch.float64)
    upstream = torch.randn(4, 6, d_out, generator=gen, dtype=torch.float64)
    # oracle: autograd on the formula written out, with its own leaf tensors
    W, b = lora.base.weight.detach(), lora.base.bias.detach()
    A = lora.A.detach().clone().requires_grad_(True)
    B = lora.B.detach().clone().requires_grad_(True)
    want = x @ W.T + b + (alpha / r) * x @ A.T @ B.T
    (want * upstream).sum().backward()
    got = lora(x)
    (got * upstream).sum().backward()
    torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lora.A.grad, A.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lora.B.grad, B.grad, rtol=1e-12, atol=1e-12)
    assert lora.base.weight.grad is None and not lora.base.weight.requires_grad  # W stays frozen


@pytest.mark.parametrize("seed", SEEDS)
def test_merged_weight_is_the_explicit_sum(seed):
    gen = torch.Generator().manual_seed(seed)
    lora = lo.LoRALinear(nn.Linear(12, 9).double(), r=3, alpha=6.0)
    with torch.no_grad():
        lora.B.copy_(torch.randn(9, 3, generator=gen))
    merged = lora.merged()
    want = lora.base.weight + 2.0 * lora.B @ lora.A  # alpha / r = 2
    torch.testing.assert_close(merged.weight, want, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(merged.bias, lora.base.bias, rtol=0, atol=0)
    x = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(merged(x), lora(x), rtol=1e-12, atol=1e-12)


def test_inject_then_merge_gives_the_same_gpt_outputs():
    model = tiny_gpt()
    names = lo.inject_lora(model, r=2, alpha=4.0)
    assert len(names) == 4 * model.config.n_layer and all(n.startswith("transformer.h.") for n in names)
    trainable, total = trainable_parameters(model)
    c, L = model.config.n_embd, model.config.n_layer
    assert trainable == L * sum(
        lo.lora_parameters(i, o, 2) for i, o in [(c, 3 * c), (c, c), (c, 4 * c), (4 * c, c)]
    )
    assert {n.split(".")[-1] for n, p in model.named_parameters() if p.requires_grad} == {"A", "B"}
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, lo.LoRALinear):
            nn.init.normal_(m.B, std=0.05)  # as if trained
    idx = torch.randint(0, 30, (3, 20))
    before, _ = model(idx)
    lo.merge_lora(model)
    assert not any(isinstance(m, lo.LoRALinear) for m in model.modules())
    after, _ = model(idx)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert trainable_parameters(model)[1] == total - trainable  # merging adds nothing to the model


def test_lora_model_starts_as_the_pretrained_one_and_works_with_the_kv_cache():
    model = tiny_gpt()
    original = copy.deepcopy(model)
    lo.inject_lora(model, r=4)
    idx = torch.randint(0, 30, (2, 10))
    torch.testing.assert_close(model(idx)[0], original(idx)[0], rtol=0, atol=0)
    from helpers.generate import generate

    a = generate(model, idx, 5, temperature=0.0, use_cache=True)
    b = generate(original, idx, 5, temperature=0.0, use_cache=False)
    assert torch.equal(a, b)


def mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), nn.GELU(), nn.Linear(10, 4, bias=False)).double()


@pytest.mark.parametrize(
    ("make", "targets", "r", "alpha"),
    [
        (lambda: tiny_gpt(0).double(), lo.LORA_TARGETS, 2, 4.0),
        (lambda: tiny_gpt(1).double(), ("attn.c_attn", "mlp.c_proj"), 3, 1.5),
        (lambda: mlp(2), ("0", "2"), 4, 8.0),
    ],
)
def test_lora_matches_peft_outputs_gradients_and_merge(make, targets, r, alpha):
    """The oracle: peft's LoRA on the same layers, with the same A, B and scale alpha / r."""
    base = make()
    ours = copy.deepcopy(base)
    names = lo.inject_lora(ours, r=r, alpha=alpha, targets=targets)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0)
    theirs = get_peft_model(copy.deepcopy(base), config)
    model = theirs.base_model.model
    gen = torch.Generator().manual_seed(r)
    for name in names:
        mine, peft_layer = ours.get_submodule(name), model.get_submodule(name)
        assert peft_layer.scaling["default"] == mine.scale == alpha / r
        with torch.no_grad():  # peft's B starts at zero too: give both a random, "trained" B and peft's A
            mine.A.copy_(peft_layer.lora_A["default"].weight)  # (r, in)
            peft_layer.lora_B["default"].weight.copy_(torch.randn(mine.B.shape, generator=gen))  # (out, r)
            mine.B.copy_(peft_layer.lora_B["default"].weight)
    trainable = {n for n, p in theirs.named_parameters() if p.requires_grad}
    assert len(trainable) == 2 * len(names) and all(".lora_" in n for n in trainable)
    if isinstance(base, GPT):
        x = torch.randint(0, base.config.vocab_size, (3, 9))  # (B, T)
        y_ours, y_theirs = ours(x)[0], theirs(x)[0]  # (B, T, V)
    else:
        x = torch.randn(5, 6, dtype=torch.float64)  # (N, in)
        y_ours, y_theirs = ours(x), theirs(x)  # (N, out)
    assert not torch.allclose(y_ours, base(x)[0] if isinstance(base, GPT) else base(x))  # B != 0 counts
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-12, atol=1e-12)
    w = torch.randn(y_ours.shape, dtype=torch.float64, generator=gen)
    (y_ours * w).sum().backward()
    (y_theirs * w).sum().backward()
    for name in names:
        mine, peft_layer = ours.get_submodule(name), model.get_submodule(name)
        torch.testing.assert_close(
            mine.A.grad, peft_layer.lora_A["default"].weight.grad, rtol=1e-10, atol=1e-12
        )
        torch.testing.assert_close(
            mine.B.grad, peft_layer.lora_B["default"].weight.grad, rtol=1e-10, atol=1e-12
        )
    merged_ours = lo.merge_lora(ours).state_dict()
    merged_theirs = theirs.merge_and_unload().state_dict()
    assert merged_ours.keys() == merged_theirs.keys()
    for key, value in merged_ours.items():
        torch.testing.assert_close(value, merged_theirs[key], rtol=1e-12, atol=1e-12, msg=key)


def test_lora_a_comes_from_its_own_seeded_generator():
    a, b = tiny_gpt(), tiny_gpt()
    state = torch.get_rng_state()
    lo.inject_lora(a, r=2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # torch's global generator is not touched
    lo.inject_lora(b, r=2, seed=5)
    pairs = [
        (m.A, n.A) for m, n in zip(a.modules(), b.modules(), strict=True) if isinstance(m, lo.LoRALinear)
    ]
    assert len(pairs) == 8 and all(torch.equal(x, y) for x, y in pairs)
    c = tiny_gpt()
    lo.inject_lora(c, r=2, seed=6)
    first = next(m.A for m in c.modules() if isinstance(m, lo.LoRALinear))
    assert not torch.equal(first, pairs[0][0])
    # nn.Linear's initialisation: uniform on [-1/sqrt(in), 1/sqrt(in)]
    assert all(x.abs().max() <= 1 / np.sqrt(x.shape[1]) for x, _ in pairs)


def test_lora_errors():
    with pytest.raises(ValueError, match="wraps an nn.Linear"):
        lo.LoRALinear(nn.Conv1d(3, 3, 1), r=1)
    with pytest.raises(ValueError, match="r must be"):
        lo.LoRALinear(nn.Linear(4, 3), r=4)
    with pytest.raises(ValueError, match="r must be"):
        lo.LoRALinear(nn.Linear(4, 3), r=0)
    with pytest.raises(ValueError, match="r must be"):
        lo.LoRALinear(nn.Linear(4, 3), r=1.0)
    for alpha in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha must be"):
            lo.LoRALinear(nn.Linear(4, 3), r=1, alpha=alpha)
    model = tiny_gpt()
    with pytest.raises(ValueError, match="no LoRA layers"):
        lo.merge_lora(model)
    with pytest.raises(ValueError, match="no nn.Linear"):
        lo.inject_lora(model, r=1, targets=("nothing",))
    lo.inject_lora(model, r=1)
    with pytest.raises(ValueError, match="already has LoRA"):
        lo.inject_lora(model, r=1)


# --- the classifier -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_classifier_pools_the_gpt_hidden_states(pool):
    model = tiny_gpt()
    reference = copy.deepcopy(model)
    clf = ft.GPTClassifier(model, n_classes=3, pool=pool)
    idx = torch.randint(0, 30, (4, 12))
    # oracle: the hidden states are what the LM head would have turned into logits
    hidden = []
    hook = reference.transformer.ln_f.register_forward_hook(lambda m, i, o: hidden.append(o))
    logits, _ = reference(idx)
    hook.remove()
    torch.testing.assert_close(logits, hidden[0] @ reference.transformer.wte.weight.T, rtol=1e-5, atol=1e-5)
    pooled = hidden[0][:, -1] if pool == "last" else hidden[0].mean(dim=1)  # (B, C)
    torch.testing.assert_close(clf.features(idx), pooled, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        clf(idx), F.linear(pooled, clf.head.weight, clf.head.bias), rtol=1e-6, atol=1e-6
    )
    assert clf.body is model and isinstance(model.lm_head, nn.Identity)
    ft.freeze(clf.body)
    assert trainable_parameters(clf)[0] == clf.head.weight.numel() + clf.head.bias.numel()


def test_classifier_errors():
    with pytest.raises(ValueError, match="pool"):
        ft.GPTClassifier(tiny_gpt(), 3, pool="max")
    with pytest.raises(ValueError, match="at least 2"):
        ft.GPTClassifier(tiny_gpt(), 1)


def test_snippet_dataset_is_balanced_held_out_and_deterministic():
    text = data_path("python_docs_311_val.txt").read_text(encoding="utf-8")
    paragraphs = [m.group() for m in re.finditer(r"(?:[^\n]+\n?)+", text)]
    code = [p for p in paragraphs if ft.block_kind(p) in ("code", "session")]
    assert code and all(ft.is_python(p) for p in code)
    a = ft.snippet_dataset(text, length=40, per_class=(30, 10), seed=3)
    b = ft.snippet_dataset(text, length=40, per_class=(30, 10), seed=3)
    assert a == b
    train_x, train_y, test_x, test_y = a
    assert np.bincount(train_y).tolist() == [30, 30, 30] and np.bincount(test_y).tolist() == [10, 10, 10]
    assert all(len(s) == 40 and "\n" not in s and "  " not in s for s in train_x + test_x)
    # test snippets come from paragraphs no training snippet comes from (sessions excepted: the docs repeat
    # lines such as ">>> import os" in many of them, so a window can occur in a training paragraph too)
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    assert not set(test_x) & set(train_x)
    for s, y in zip(test_x, test_y, strict=True):
        home = [p for p in paragraphs if s in p]
        assert home and (ft.CLASSES[y] == "session" or not any(t in p for p in home for t in train_x))
    # every code or session snippet is a window of a paragraph of that kind, which compiles
    for kind in ("code", "session"):
        flat = [" ".join(p.split()) for p in code if ft.block_kind(p) == kind]
        snippets = zip(train_x + test_x, train_y + test_y, strict=True)
        assert all(any(s in p for p in flat) for s, y in snippets if ft.CLASSES[y] == kind)
    with pytest.raises(ValueError, match="length"):
        ft.snippet_dataset(text, length=0)


def test_token_windows_cut_every_text_to_one_length():
    _, tokenizer, _ = load_shipped_gpt("cpu")
    texts = ["for x in range(10): print(x)", "The module defines the following functions:"]
    X = ft.token_windows(tokenizer, texts, 5)
    assert X.shape == (2, 5) and X.dtype == torch.long
    assert [tokenizer.encode(t)[:5] for t in texts] == X.tolist()
    assert ft.token_windows(VOCAB, ["abc"], 3).tolist() == [VOCAB.encode("abc")]  # a CharVocab works too
    with pytest.raises(ValueError, match="fewer than n_tokens"):
        ft.token_windows(tokenizer, ["x"], 5)
    with pytest.raises(ValueError, match="n_tokens must be"):
        ft.token_windows(tokenizer, texts, 0)


def test_block_kinds():
    assert ft.block_kind("   x = 1\n   y = 2\n") == "code"
    assert ft.block_kind("   >>> x = [1, 2]\n   >>> len(x)\n   2\n") == "session"  # compiles: prompts only
    assert ft.block_kind("   >>> x = [1,\n   2\n") is None  # a session that does not compile
    assert ft.block_kind("Some words are here.\nMore words.\n") == "prose"
    # the docs indent prose too: a method's description, a version note - not code
    assert ft.block_kind("   Return the item of *d* with key *key*.  Raises a\n   KeyError.\n") is None
    assert ft.block_kind("   Changed in version 3.7: Dictionary order is guaranteed.\n") is None
    assert ft.block_kind("   sort(*, key=None, reverse=False)\n") is None  # a signature does not compile
    assert ft.block_kind("* a list\n  continued\n") is None
    assert ft.block_kind("With Statement Context Managers\n*******************************\n") is None
    assert ft.block_kind("object.__len__(self)\n") is None  # no sentence
    assert ft.is_python("   if x:\n       y = 1\n") and not ft.is_python("   if x\n")
    assert not ft.is_python("   This is a sentence.\n")


# --- instruction data ---------------------------------------------------------------------------------------


def test_instructions_and_masked_targets():
    assert ins.make_instructions(["x = 1", "Some words."], [1, 0]) == [
        ("code", "Q: prose, code or session? x = 1\nA:", " code"),
        ("prose", "Q: prose, code or session? Some words.\nA:", " prose"),
    ]
    _, bpe, _ = load_shipped_gpt("cpu")
    for tokenizer in (VOCAB, bpe):  # characters, or BPE tokens: the mask is on token positions
        prompt, response = "Q: prose, code or session? x = f(1)\nA:", " code"
        x, y = ins.encode_example(tokenizer, prompt, response)
        full = tokenizer.encode(prompt + response + ins.END)
        n_prompt = len(tokenizer.encode(prompt))
        assert x == full[:-1] and len(y) == len(x)
        kept = [(t, target) for t, target in enumerate(y) if target != ins.IGNORE]
        # exactly the response's tokens and END's are predicted, each from the position just before it
        assert [full[t + 1] for t, _ in kept] == [target for _, target in kept] == full[n_prompt:]
        assert kept[0][0] == n_prompt - 1 and tokenizer.decode(full[n_prompt:]) == response + ins.END
        # without the mask, every next token is a target, as in pretraining
        assert ins.encode_example(tokenizer, prompt, response, mask_prompt=False) == (full[:-1], full[1:])
    assert len(bpe.encode(" code")) == 1  # the BPE tokenizer: the answer is one token, END another
    # a response that merges with the end of the prompt into one token has no clean boundary
    with pytest.raises(ValueError, match="does not tokenize to a prefix"):
        ins.encode_example(bpe, "Q: x\nA: co", "de")


def test_masked_loss_is_the_mean_over_response_tokens_only():
    torch.manual_seed(0)
    vocab = VOCAB
    model = tiny_gpt(vocab_size=vocab.size)
    examples = [ins.encode_example(vocab, p, r) for _, p, r in ins.make_instructions(TEXTS[:2], LABELS[:2])]
    x, y = ins.pad_batch(examples, pad_id=3)
    assert x.shape == y.shape == (len(examples), max(len(e[0]) for e in examples))
    logits, loss = model(x, y)
    # oracle: per-token cross-entropy, averaged over the positions whose target is not ignored
    per_token = F.cross_entropy(logits.flatten(0, 1), y.flatten().clamp(min=0), reduction="none")
    mask = y.flatten() != ins.IGNORE
    torch.testing.assert_close(loss, per_token[mask].mean(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ins.lm_loss((logits, None), y), loss, rtol=1e-6, atol=1e-6)
    # padding does not change the earlier positions' logits (right padding, causal model)
    single, _ = model(torch.tensor([examples[0][0]]))
    torch.testing.assert_close(logits[0, : single.shape[1]], single[0], rtol=1e-5, atol=1e-5)


def test_batches_are_reproducible():
    vocab = VOCAB
    examples = [ins.encode_example(vocab, p, r) for _, p, r in ins.make_instructions(TEXTS[:3], LABELS[:3])]
    first = ins.instruction_batches(examples, batch_size=4, steps=3, seed=1)
    again = ins.instruction_batches(examples, batch_size=4, steps=3, seed=1)
    epoch1, epoch1_again = list(first()), list(again())
    assert len(epoch1) == 3
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch1, epoch1_again, strict=True)
    )
    epoch2 = list(first())  # the next call continues the stream: new batches
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(epoch1, epoch2, strict=True))


def test_exact_match_scores_a_model_that_knows_the_answers():
    vocab = VOCAB
    examples = [("upper", "Q: up ab\nA: ", "AB"), ("upper", "Q: up cde\nA: ", "CDE")]

    class Oracle(nn.Module):  # puts all its mass on the right next character, from a lookup table
        def __init__(self):
            super().__init__()
            self.config = GPTConfig(vocab_size=vocab.size, block_size=64, n_layer=1, n_head=1, n_embd=4)
            self.dummy = nn.Parameter(torch.zeros(1))
            self.table = {p + r + ins.END: None for _, p, r in examples}

        def forward(self, idx, targets=None, past_kv=None, use_cache=False):
            logits = torch.full((*idx.shape, vocab.size), -1e9)
            for b, row in enumerate(idx.tolist()):
                seen = vocab.decode(row)
                full = next((f for f in self.table if f.startswith(seen)), seen + ins.END)
                nxt = full[len(seen)] if len(full) > len(seen) else ins.END
                logits[b, -1, vocab.encode(nxt)[0]] = 0.0
            return (logits, None, None) if use_cache else (logits, None)

    oracle = Oracle()
    assert ins.complete(oracle, vocab, [p for _, p, _ in examples], max_new_tokens=6) == ["AB", "CDE"]
    assert ins.exact_match(oracle, vocab, examples, max_new_tokens=6) == {"upper": 1.0, "all": 1.0}
    assert ins.exact_match(oracle, vocab, examples) == {"upper": 1.0, "all": 1.0}  # default: longest + END
    too_long = [("upper", "Q: up ab\nA: ", "A")]  # the model says "AB": a longer answer must not pass
    assert ins.exact_match(oracle, vocab, too_long) == {"upper": 0.0, "all": 0.0}
    wrong = [("reverse", "Q: up ab\nA: ", "ba")]
    assert ins.exact_match(oracle, vocab, wrong, max_new_tokens=6) == {"reverse": 0.0, "all": 0.0}


def test_instruction_errors():
    with pytest.raises(ValueError, match="labels must be"):
        ins.make_instructions(["x"], [3])
    with pytest.raises(ValueError, match="1 texts but 2 labels"):
        ins.make_instructions(["x"], [0, 1])
    with pytest.raises(ValueError, match="prompt_len"):
        ins.response_targets([1, 2, 3], 3)
    with pytest.raises(ValueError, match="no examples"):
        ins.pad_batch([])
    with pytest.raises(ValueError, match="no examples"):
        ins.exact_match(tiny_gpt(), VOCAB, [])


# --- the rank slider ----------------------------------------------------------------------------------------


def test_lora_picture_matches_numpy_svd():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(12, 4)) @ rng.normal(size=(4, 20)) + 0.01 * rng.normal(size=(12, 20))
    s = np.linalg.svd(delta, compute_uv=False)
    for r in (1, 4, 12):
        pic = lo.lora_picture(s, r, delta.shape)
        U, S, Vt = np.linalg.svd(delta, full_matrices=False)
        best = (U[:, :r] * S[:r]) @ Vt[:r]
        want = 1 - np.sum((delta - best) ** 2) / np.sum(delta**2)  # Eckart-Young, from the matrices
        assert pic["energy_kept"] == pytest.approx(want, abs=1e-10)
        assert pic["numbers_ratio"] == pytest.approx(r * 32 / 240)
    assert lo.lora_picture(s, 4, delta.shape)["energy_kept"] > 0.99  # a rank-4 update plus a little noise
    with pytest.raises(ValueError, match="r must be"):
        lo.lora_picture(s, 0, delta.shape)
    with pytest.raises(ValueError, match="singular values"):
        lo.lora_picture(s[:3], 1, delta.shape)


def test_tune_trains_only_the_trainable_parameters():
    vocab = VOCAB
    model = tiny_gpt(vocab_size=vocab.size)
    lo.inject_lora(model, r=2)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    examples = [ins.encode_example(vocab, p, r) for _, p, r in ins.make_instructions(TEXTS, LABELS)]
    history = ins.tune(model, examples, steps=40, lr=1e-2, batch_size=8, progress=False, rounds=4)
    assert len(history.step_loss) == 40
    assert np.mean(history.step_loss[-5:]) < np.mean(history.step_loss[:5]) - 0.05
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} is frozen but changed"
    assert all(torch.count_nonzero(m.B) > 0 for m in model.modules() if isinstance(m, lo.LoRALinear))
    full = tiny_gpt(vocab_size=vocab.size)  # full fine-tuning: every parameter moves, the loss drops fast
    history = ins.tune(full, examples, steps=40, lr=1e-2, batch_size=8, progress=False, rounds=4)
    assert np.mean(history.step_loss[-5:]) < 0.7 * np.mean(history.step_loss[:5])
    bf16 = tiny_gpt(vocab_size=vocab.size)  # the forward pass under bf16 autocast: it learns too
    history = ins.tune(
        bf16, examples, steps=40, lr=1e-2, batch_size=8, progress=False, rounds=4, amp_dtype=torch.bfloat16
    )
    assert np.mean(history.step_loss[-5:]) < 0.7 * np.mean(history.step_loss[:5])
    assert all(p.dtype == torch.float32 for p in bf16.parameters())  # the weights stay float32
    with pytest.raises(ValueError, match="grad_clip"):
        ins.tune(model, examples, steps=10, lr=1e-3, grad_clip=-1.0)
    with pytest.raises(ValueError, match="multiple of rounds"):
        ins.tune(model, examples, steps=15, lr=1e-3, rounds=10)
    with pytest.raises(ValueError, match="no trainable"):
        ins.tune(ft.freeze(model), examples, steps=10, lr=1e-3)


def fake_sweep():
    return {
        "total_params": 10_000,
        "lora_params_per_rank": 50,
        "full": {"exact_match": 0.9},
        "runs": [{"r": r, "exact_match": 0.5 + 0.1 * i} for i, r in enumerate((1, 2, 4, 8))],
    }


def test_rank_slider_redraws_headless(tmp_path):
    import json

    rng = np.random.default_rng(1)
    delta = rng.normal(size=(24, 8)) @ np.diag(0.5 ** np.arange(8)) @ rng.normal(size=(8, 8))
    s = np.linalg.svd(delta, compute_uv=False)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(fake_sweep()))
    view = lo.rank_view(s, delta.shape, lo.load_sweep(path), layer="a layer", max_rank=8)
    assert view.redraws == 1 and view.values == {"r": 1}
    first = view.image
    view.set(r=4)
    assert view.redraws == 2 and view.values == {"r": 4}
    assert np.abs(view.image.astype(int) - first.astype(int)).sum() > 0
    energies = [lo.lora_picture(s, r, delta.shape)["energy_kept"] for r in range(1, 9)]
    assert np.all(np.diff(energies) > 0) and energies[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="max_rank"):
        lo.rank_view(s, delta.shape, lo.load_sweep(path), max_rank=9)
    path.write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="not a LoRA sweep"):
        lo.load_sweep(path)


@pytest.mark.parametrize("grad_clip", [0.0, 0.05])
def test_tune_clips_the_gradient_before_every_step(grad_clip, monkeypatch):
    vocab = VOCAB
    model = tiny_gpt(vocab_size=vocab.size)
    examples = [ins.encode_example(vocab, p, r) for _, p, r in ins.make_instructions(TEXTS[:3], LABELS[:3])]
    norms, original = [], torch.optim.AdamW.step

    def spy(self, *args, **kwargs):  # the gradient as AdamW sees it, after the pre-step hooks
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.sqrt(sum((g**2).sum() for g in grads))))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    ins.tune(model, examples, steps=6, lr=1e-3, batch_size=4, grad_clip=grad_clip, progress=False, rounds=2)
    assert len(norms) == 6
    if grad_clip:
        assert max(norms) <= grad_clip * (1 + 1e-5)
    else:
        assert min(norms) > 0.05  # unclipped, the gradients of an untrained model are larger than that


def test_shipped_sweep_matches_its_script_and_the_model():
    import importlib.util
    import json

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_lora_sweep", root / "data" / "make_lora_sweep.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sweep = lo.load_sweep(data_path("lora_rank_sweep.json"))  # the manifest's hash is checked here
    assert {k: sweep["settings"][k] for k in script.SETTINGS} == script.SETTINGS
    assert [run["r"] for run in sweep["runs"]] == list(script.RANKS)
    assert all(run["trainable"] == run["r"] * sweep["lora_params_per_rank"] for run in sweep["runs"])
    config = {**json.loads(data_path("gpt_bpe_python_docs.json").read_text())["config"], "n_layer": 1}
    model = GPT(GPTConfig(**config))  # one block of the shipped model's shape: its LoRA count per block
    lo.inject_lora(model, r=1, targets=script.SETTINGS["lora_targets"])
    per_block = trainable_parameters(model)[0]
    assert sweep["lora_params_per_rank"] == 6 * per_block  # the shipped GPT has 6 blocks
    assert sweep["model"] == "data/gpt_bpe_python_docs.safetensors"
    assert sweep["full"]["r"] is None and sweep["lora_short"]["steps"] == script.SETTINGS["full_steps"]
    assert all(
        0 <= run["exact_match"] <= 1 for run in [*sweep["runs"], sweep["full"], sweep["full_unmasked"]]
    )
    assert (
        sweep["settings"]["amp"] == "bf16" and sweep["settings"]["threads"] == 1
    )  # as the script's doc says
