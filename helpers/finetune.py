"""Fine-tuning a pretrained GPT (chapter 20): a classification head, instruction tuning, and LoRA.

What this module adds over helpers.gpt (the model), helpers.pretrain (the pretrained checkpoint) and
helpers.generate (greedy decoding):

    block_kind, is_python,                     a 3-class text task made from the corpus: is a window of
    snippet_dataset(text, ...)                 characters prose, a code example (a paragraph that compiles),
                                               or a grammar rule? Test windows come from held-out paragraphs
    GPTClassifier(gpt, n_classes, pool)        the GPT body with its language-model head swapped for a
                                               small Linear class head on the last (or mean) hidden state
    freeze(module), count_parameters(model)    switch training off for a part of a model; count what trains
    corpus_words, split_words,                 a small instruction set the book generates itself: tasks on
    make_instructions, format_prompt           words ("last letter lambda" -> "a"), with train and test
                                               words that never overlap
    response_targets, encode_example,          the training targets: next-token ids on the response, -100
    pad_batch, instruction_batches             (ignored by the loss) on every prompt position and on padding
    tune(model, encoded, steps, lr, ...)       AdamW, warm-up + cosine, clipping: full fine-tuning, or LoRA
                                               when only the adapters have requires_grad
    complete, exact_match                      greedy answers (helpers.generate) and exact-match accuracy
    LoRALinear, inject_lora, merge_lora        low-rank adaptation from scratch: W x + (alpha / r) B A x with
                                               W frozen, then folded back into one plain Linear for inference
    lora_picture, load_sweep, rank_view        the numbers and the figure of the chapter's rank slider

The model's loss already ignores target -100 (helpers.gpt uses cross_entropy's ignore_index), which is
all that "masking the prompt" needs.
"""

from __future__ import annotations

import math
import random
import re
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.corpus import CharVocab
from helpers.decompositions import energy_kept
from helpers.generate import generate
from helpers.schedules import torch_scheduler, warmup_cosine
from helpers.train import History, fit

IGNORE = -100  # the target id that cross_entropy (and so the GPT's loss) skips

# --- a classification task from the corpus ------------------------------------------------------------------

CLASSES = ("prose", "code", "grammar")


HEADING_RULE = re.compile(r"^[*=~^-]{3,}$")  # the line of stars or equals signs under a heading


def is_python(block: str) -> bool:
    """Whether a paragraph, dedented, is Python that compiles (for an interactive session: the lines after
    the ">>> " and "... " prompts, without the printed results). Prose never compiles."""
    lines = textwrap.dedent(block).rstrip("\n").split("\n")
    if any(line.startswith(">>>") for line in lines):
        lines = [line[4:] for line in lines if line.startswith((">>>", "..."))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "is" with a literal in an example
        try:
            compile("\n".join(lines) + "\n", "<corpus>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True


def block_kind(block: str) -> str | None:
    """The kind of one paragraph of the corpus (lines between blank lines), or None if it is none of them.

    grammar: a line holds a grammar rule ("::="). code: every line is indented (the docs indent their
    examples) and the paragraph compiles as Python (is_python) - the docs also indent plenty of prose (a
    method's description under its signature, "Changed in version ..."), which must not count as code.
    prose: no line is indented, no line underlines a heading, and it reads as a sentence: three lower-case
    words in a row, ending in "." or ":". Anything else (lists, tables, signatures, headings) is None.
    """
    lines = block.rstrip("\n").split("\n")
    if any("::=" in line for line in lines):
        return "grammar"
    if all(line.startswith("   ") for line in lines):
        return "code" if is_python(block) else None
    if (
        not any(line.startswith(" ") for line in lines)
        and not any(HEADING_RULE.match(line) for line in lines)
        and re.search("[a-z]+ [a-z]+ [a-z]+", block)
        and block.rstrip()[-1] in ".:"
    ):
        return "prose"
    return None


def snippet_dataset(
    text: str,
    length: int = 48,
    per_class: tuple[int, int] = (200, 100),
    test_fraction: float = 0.3,
    seed: int = 0,
) -> tuple[list[str], list[int], list[str], list[int]]:
    """Train and test snippets of `length` characters, labelled by CLASSES index, balanced per class.

    The paragraphs of `text` are labelled with `block_kind` (a paragraph that occurs twice is kept once) and
    shuffled with `seed`; a `test_fraction` of each class's paragraphs is held out, so a test snippet never
    shares a paragraph with a training one.
    Whitespace is collapsed to single spaces first, so the indentation of code cannot give the class away.
    Returns (train_texts, train_labels, test_texts, test_labels); per_class = (train, test) snippets.
    """
    if length < 1 or min(per_class) < 1 or not 0 < test_fraction < 1:
        raise ValueError(
            f"need length >= 1, per_class >= 1 and 0 < test_fraction < 1, got {length}, {per_class}"
        )
    rng = random.Random(seed)
    blocks: dict[str, list[str]] = {kind: [] for kind in CLASSES}
    seen: set[str] = set()
    for match in re.finditer(r"(?:[^\n]+\n?)+", text):  # paragraphs: runs of non-empty lines
        kind = block_kind(match.group())
        flat = " ".join(match.group().split())
        if kind is not None and len(flat) >= length and flat not in seen:  # a repeated paragraph once
            seen.add(flat)
            blocks[kind].append(flat)
    splits: tuple[list[str], list[int], list[str], list[int]] = ([], [], [], [])
    for label, kind in enumerate(CLASSES):
        paragraphs = blocks[kind]
        rng.shuffle(paragraphs)
        n_test = max(1, round(test_fraction * len(paragraphs)))
        if len(paragraphs) - n_test < 1:
            raise ValueError(f"too few {kind} paragraphs of >= {length} characters ({len(paragraphs)})")
        for part, (texts, labels), n in (
            (paragraphs[n_test:], (splits[0], splits[1]), per_class[0]),
            (paragraphs[:n_test], (splits[2], splits[3]), per_class[1]),
        ):
            for i in range(n):  # cycle through the paragraphs, a random window from each
                p = part[i % len(part)]
                start = rng.randrange(len(p) - length + 1)
                texts.append(p[start : start + length])
                labels.append(label)
    return splits


class GPTClassifier(nn.Module):
    """A pretrained GPT body with a classification head: token ids (B, T) -> class logits (B, n_classes).

    The language-model head (hidden state -> next-token logits) is replaced by nn.Identity, so the body
    returns its final hidden states (B, T, C); `pool` reduces them to one vector per sequence - "last": the
    hidden state at the last position (in a causal model the only one that has read the whole input), or
    "mean": the average over positions - and `head`, a fresh nn.Linear(C, n_classes), scores the classes.
    The GPT passed in is changed in place (its lm_head replaced): pass a copy to keep the original.
    """

    def __init__(self, gpt: nn.Module, n_classes: int, pool: str = "last"):
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
        if n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
        gpt.lm_head = nn.Identity()  # the body now outputs hidden states, not vocabulary logits
        self.body = gpt
        self.pool = pool
        self.head = nn.Linear(gpt.config.n_embd, n_classes)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """One vector per sequence: (B, T) ids -> (B, C)."""
        hidden, _ = self.body(idx)  # (B, T, C)
        return hidden[:, -1, :] if self.pool == "last" else hidden.mean(dim=1)  # (B, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(idx))  # (B, n_classes)


def freeze(module: nn.Module) -> nn.Module:
    """Stop training every parameter of `module` (requires_grad = False); returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied (shared) tensor counts once."""
    params = list(model.parameters())  # parameters() yields a shared tensor once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# --- an instruction set the book makes itself ---------------------------------------------------------------

TASKS: dict[str, Callable[[str], str]] = {
    "first letter": lambda word: word[0],
    "last letter": lambda word: word[-1],
    "length": lambda word: str(len(word)),
}
PROMPT = "Q: {task} {word}\nA: "  # the template every instruction is written in
END = "\n"  # the response ends with a newline; generation stops reading there


def corpus_words(text: str, min_len: int = 3, max_len: int = 7) -> list[str]:
    """The distinct lower-case words of `text` with min_len..max_len letters, sorted."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    return sorted({w for w in re.findall(r"\b[a-z]+\b", text) if min_len <= len(w) <= max_len})


def split_words(words: Sequence[str], n_test: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle the words with `seed` and hold out n_test of them: (train_words, test_words), disjoint."""
    if len(set(words)) != len(words):
        raise ValueError("the words must be distinct")
    if not 0 < n_test < len(words):
        raise ValueError(f"n_test must be between 1 and {len(words) - 1}, got {n_test}")
    shuffled = sorted(words)
    random.Random(seed).shuffle(shuffled)
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test])


def format_prompt(task: str, word: str) -> str:
    """The prompt of one instruction, e.g. format_prompt("length", "abc") == "Q: length abc\\nA: "."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {sorted(TASKS)}")
    return PROMPT.format(task=task, word=word)


def make_instructions(words: Sequence[str], tasks: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """Every (task, prompt, response) for every word and task, in a fixed order (no randomness)."""
    tasks = list(TASKS) if tasks is None else list(tasks)
    return [(task, format_prompt(task, word), TASKS[task](word)) for word in words for task in tasks]


def response_targets(ids: Sequence[int], prompt_len: int) -> list[int]:
    """Next-token targets for ids = prompt + response: ids[t + 1] where that is response, else -100.

    Position t predicts ids[t + 1]. Positions 0 .. prompt_len - 2 would predict prompt characters (which
    the model is given, not asked for), so they get IGNORE; from position prompt_len - 1 on, the target is
    the next response character. The list is one shorter than ids (the last id predicts nothing).
    """
    if not 1 <= prompt_len < len(ids):
        raise ValueError(f"need 1 <= prompt_len < len(ids) = {len(ids)}, got {prompt_len}")
    return [IGNORE] * (prompt_len - 1) + [int(i) for i in ids[prompt_len:]]


def encode_example(
    vocab: CharVocab, prompt: str, response: str, mask_prompt: bool = True
) -> tuple[list[int], list[int]]:
    """(inputs, targets) for one instruction: inputs = (prompt + response + END)[:-1], and as targets the
    next ids with the prompt masked (response_targets) - or, with mask_prompt=False, every next id, as in
    pretraining."""
    ids = vocab.encode(prompt + response + END)
    return ids[:-1], response_targets(ids, len(prompt)) if mask_prompt else ids[1:]


def pad_batch(
    examples: Sequence[tuple[list[int], list[int]]], pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (inputs, targets) pairs to one length: inputs with pad_id, targets with IGNORE.

    Padding goes on the right: in a causal model a position never attends to later ones, so the padding
    cannot change what comes before it, and its targets are ignored.
    """
    if not examples:
        raise ValueError("no examples to pad")
    T = max(len(x) for x, _ in examples)
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)  # (B, T)
    y = torch.full((len(examples), T), IGNORE, dtype=torch.long)  # (B, T)
    for b, (ids, targets) in enumerate(examples):
        if len(ids) != len(targets):
            raise ValueError(f"example {b}: {len(ids)} inputs but {len(targets)} targets")
        x[b, : len(ids)] = torch.tensor(ids)
        y[b, : len(targets)] = torch.tensor(targets)
    return x, y


def instruction_batches(
    encoded: Sequence[tuple[list[int], list[int]]], batch_size: int, steps: int, seed: int = 0
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """A function that yields `steps` padded batches of random examples each time it is called.

    The examples are drawn with one generator seeded once with `seed`, so successive calls (the epochs of
    helpers.train.fit) continue one reproducible stream instead of repeating the same batches.
    """
    if batch_size < 1 or steps < 1 or not encoded:
        raise ValueError(
            f"need examples, batch_size >= 1 and steps >= 1, got {len(encoded)}, {batch_size}, {steps}"
        )
    generator = torch.Generator().manual_seed(seed)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(steps):
            picks = torch.randint(len(encoded), (batch_size,), generator=generator).tolist()
            yield pad_batch([encoded[i] for i in picks])

    return batches


def lm_loss(output: tuple[torch.Tensor, torch.Tensor | None], targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a GPT's output (logits (B, T, V), _) against targets (B, T), skipping IGNORE."""
    logits = output[0]  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def tune(
    model: nn.Module,
    encoded: Sequence[tuple[list[int], list[int]]],
    steps: int,
    lr: float,
    batch_size: int = 32,
    warmup_steps: int | None = None,
    grad_clip: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    rounds: int = 10,
) -> History:
    """Fine-tune the trainable parameters of a GPT on encoded instructions; returns helpers.train's History.

    AdamW (no weight decay) on the parameters with requires_grad - all of them for full fine-tuning, only
    A and B after inject_lora - with a linear warm-up (default: a tenth of the steps) and a cosine decay
    (helpers.schedules), the gradient's norm clipped at `grad_clip` before each step (0: no clipping), on
    `steps` batches from instruction_batches, through helpers.train.fit in `rounds` "epochs" of
    steps / rounds batches each (so the progress bar moves).
    """
    if steps < 1 or rounds < 1 or steps % rounds:
        raise ValueError(f"steps ({steps}) must be a positive multiple of rounds ({rounds})")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10) if warmup_steps is None else warmup_steps
    scheduler = torch_scheduler(optimizer, warmup_cosine, peak_lr=lr, warmup_steps=warmup, total_steps=steps)
    batches = instruction_batches(encoded, batch_size, steps // rounds, seed)
    device = next(model.parameters()).device
    return fit(
        model,
        batches,
        lm_loss,
        optimizer,
        rounds,
        scheduler=scheduler,
        device=device,
        progress=progress,
        grad_clip=grad_clip,
    )


@torch.no_grad()
def complete(
    model: nn.Module, vocab: CharVocab, prompts: Sequence[str], max_new_tokens: int = 16
) -> list[str]:
    """Greedy answers to `prompts`: generate, then cut at the first END; equal lengths share a batch."""
    device = next(model.parameters()).device
    answers: dict[int, str] = {}
    by_length: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(i)
    for members in by_length.values():
        idx = torch.stack([vocab.tensor(prompts[i]) for i in members]).to(device)  # (B, T)
        out = generate(model, idx, max_new_tokens, temperature=0.0, use_cache=True)  # (B, T + new)
        for i, row in zip(members, out[:, idx.shape[1] :].tolist(), strict=True):
            answers[i] = vocab.decode(row).split(END)[0]
    return [answers[i] for i in range(len(prompts))]


def exact_match(
    model: nn.Module,
    vocab: CharVocab,
    examples: Sequence[tuple[str, str, str]],
    max_new_tokens: int | None = None,
) -> dict[str, float]:
    """Fraction of (task, prompt, response) examples answered exactly right, per task and "all".

    An answer is right when the greedy continuation is the response followed by END. Generating the longest
    response's length plus one characters (the default) is enough to tell: any longer answer is wrong anyway.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    if max_new_tokens is None:
        max_new_tokens = max(len(response) for _, _, response in examples) + len(END)
    answers = complete(model, vocab, [prompt for _, prompt, _ in examples], max_new_tokens)
    hits: dict[str, list[bool]] = {}
    for (task, _, response), answer in zip(examples, answers, strict=True):
        hits.setdefault(task, []).append(answer == response)
    scores = {task: float(np.mean(h)) for task, h in hits.items()}
    scores["all"] = float(np.mean([a == r for (_, _, r), a in zip(examples, answers, strict=True)]))
    return scores


# --- LoRA ---------------------------------------------------------------------------------------------------

LORA_TARGETS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # every Linear inside the blocks


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = x W^T + b + (alpha / r) x A^T B^T.

    A is (r, in) and B is (out, r), so B A is an (out, in) matrix of rank at most r - the change to W -
    stored in r (in + out) numbers instead of in x out. B starts at zero, so at step 0 the layer is exactly
    the pretrained one; A starts random (as nn.Linear initialises its weight), so B's first gradient is not
    zero. The scale alpha / r keeps the size of the update roughly independent of the rank chosen
    (alpha defaults to r: scale 1). A is drawn on the CPU from `generator` (default: torch's global one)
    and then moved to W's device, so a seeded generator gives the same A on every device.
    """

    def __init__(
        self, base: nn.Linear, r: int, alpha: float | None = None, generator: torch.Generator | None = None
    ):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if (
            not isinstance(r, int)
            or isinstance(r, bool)
            or not 1 <= r <= min(base.in_features, base.out_features)
        ):
            raise ValueError(
                f"r must be an int from 1 to {min(base.in_features, base.out_features)}, got {r!r}"
            )
        if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        self.base = freeze(base)
        self.r = r
        self.alpha = float(r if alpha is None else alpha)
        self.scale = self.alpha / r
        w = base.weight
        A = torch.empty(r, base.in_features, dtype=w.dtype)  # (r, in), on the CPU
        nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)  # nn.Linear's own initialisation
        self.A = nn.Parameter(A.to(w.device))  # (r, in)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))  # (out, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = (x @ self.A.T) @ self.B.T  # (..., r) then (..., out): r (in + out) multiply-adds per row
        return self.base(x) + self.scale * update  # (..., out)

    def delta_weight(self) -> torch.Tensor:
        """The change LoRA makes to W: scale * B A, (out, in)."""
        return self.scale * (self.B @ self.A)  # (out, r) (r, in) -> (out, in)

    def merged(self) -> nn.Linear:
        """A plain nn.Linear with weight W + scale * B A: the same function, no extra cost at inference."""
        base, w = self.base, self.base.weight
        shape = (base.in_features, base.out_features)
        # skip_init: no random initialisation to overwrite, so torch's global generator is left alone
        out = nn.utils.skip_init(
            nn.Linear, *shape, bias=base.bias is not None, device=w.device, dtype=w.dtype
        )
        with torch.no_grad():
            out.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                out.bias.copy_(base.bias)
        return out

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def _modules_named(model: nn.Module, cls: type, suffixes: Sequence[str]) -> list[tuple[nn.Module, str, str]]:
    found = []
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, cls) and full.endswith(tuple(suffixes)):
                found.append((module, child_name, full))
    return found


def inject_lora(
    model: nn.Module,
    r: int,
    alpha: float | None = None,
    targets: Sequence[str] = LORA_TARGETS,
    seed: int | None = None,
) -> list[str]:
    """Freeze all of `model`, then wrap each nn.Linear whose name ends with one of `targets` in a LoRALinear.

    Afterwards only the A and B matrices train. The A matrices are drawn in the order of the layers from
    one CPU generator seeded with `seed` (None: torch's global generator), so a seed fixes them on any
    device. Returns the names of the wrapped layers; the model is changed in place.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("the model already has LoRA layers; merge_lora first to add new ones")
    found = _modules_named(model, nn.Linear, targets)
    if not found:
        raise ValueError(f"no nn.Linear layer's name ends with any of {tuple(targets)}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    freeze(model)
    for parent, child_name, _ in found:
        setattr(parent, child_name, LoRALinear(getattr(parent, child_name), r, alpha, generator))
    return [full for _, _, full in found]


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear in `model` by its merged nn.Linear (in place; returns the model)."""
    found = _modules_named(model, LoRALinear, ("",))
    if not found:
        raise ValueError("the model has no LoRA layers to merge")
    for parent, child_name, _ in found:
        setattr(parent, child_name, getattr(parent, child_name).merged())
    return model


def lora_parameters(in_features: int, out_features: int, r: int) -> int:
    """Trainable numbers of one LoRA update: A (r x in) plus B (out x r)."""
    if min(in_features, out_features, r) < 1:
        raise ValueError("sizes and rank must be positive")
    return r * (in_features + out_features)


def lora_picture(singular_values: np.ndarray, r: int, shape: tuple[int, int]) -> dict[str, float]:
    """The rank slider's numbers for one weight update dW of `shape` (out, in) with these singular values:
    the fraction of its energy a rank-r matrix can hold (chapter 3's energy kept), and the fraction of the
    numbers a rank-r LoRA update stores (r (in + out) out of in x out)."""
    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or len(s) != min(shape):
        raise ValueError(f"expected {min(shape)} singular values for shape {shape}, got {s.shape}")
    if not 1 <= r <= len(s):
        raise ValueError(f"r must be between 1 and {len(s)}, got {r}")
    return {
        "energy_kept": float(energy_kept(s)[r - 1]),
        "numbers_ratio": lora_parameters(shape[1], shape[0], r) / (shape[0] * shape[1]),
    }


# --- the rank slider ----------------------------------------------------------------------------------------


def load_sweep(path) -> dict:
    """The LoRA rank sweep that data/make_lora_sweep.py writes (JSON), checked for the fields it must have."""
    import json
    from pathlib import Path

    sweep = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = {"total_params", "lora_params_per_rank", "runs", "full"} - set(sweep)
    if missing:
        raise ValueError(f"{path}: not a LoRA sweep, missing {sorted(missing)}")
    return sweep


def rank_view(
    singular_values: np.ndarray, shape: tuple[int, int], sweep: dict, layer: str = "", max_rank: int = 32
):
    """A slider over the LoRA rank r: left, the singular values of a full fine-tuning update dW with the
    first r highlighted and the energy they hold; right, LoRA's trainable share of the model against r, and
    the exact match each swept rank reached (sweep from load_sweep), the current r marked."""
    import matplotlib.pyplot as plt

    from helpers.widgets import slider_view

    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or len(s) != min(shape):
        raise ValueError(f"expected {min(shape)} singular values for shape {shape}, got {s.shape}")
    if not 1 <= max_rank <= len(s):
        raise ValueError(f"max_rank must be between 1 and {len(s)}, got {max_rank}")
    ranks = np.arange(1, max_rank + 1)
    share = 100 * sweep["lora_params_per_rank"] * ranks / sweep["total_params"]  # (max_rank,)
    runs = sorted(sweep["runs"], key=lambda run: run["r"])

    def draw(r):
        picture = lora_picture(s, r, shape)
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
        shown = min(len(s), 2 * max_rank)
        left.bar(
            np.arange(1, shown + 1), s[:shown], color=["C1" if i < r else "lightgray" for i in range(shown)]
        )
        left.set(yscale="log", xlabel="singular value index", ylabel="singular value")
        left.set_title(
            f"full fine-tuning's update to {layer}\nrank {r} holds {picture['energy_kept']:.0%} of its energy"
        )
        right.plot(ranks, share, color="C0")
        right.set(xscale="log", xlabel="LoRA rank r", ylabel="trainable parameters (% of model)")
        right.axvline(r, color="gray", ls=":")
        right.tick_params(axis="y", colors="C0")
        twin = right.twinx()
        twin.plot([run["r"] for run in runs], [100 * run["exact_match"] for run in runs], "o-", color="C2")
        twin.axhline(100 * sweep["full"]["exact_match"], color="C1", ls="--", label="full fine-tuning")
        twin.set(ylabel="exact match, unseen words (%)", ylim=(0, 105))
        twin.tick_params(axis="y", colors="C2")
        twin.legend(loc="lower right")
        trained = sweep["lora_params_per_rank"] * r
        right.set_title(
            f"r = {r}: {trained:,} trainable ({100 * trained / sweep['total_params']:.1f}% of the model)"
        )
        fig.tight_layout()

    return slider_view(draw, r=(1, max_rank, 1, 1))
