"""Instruction tuning (chapter 20): a small instruction set the book makes itself, and the loop.

What this module adds over helpers.finetune (freezing, counting) and helpers.generate (greedy decoding):

    corpus_words, split_words,                 tasks on words ("last letter lambda" -> "a"), with train and
    make_instructions, format_prompt           test words that never overlap
    response_targets, encode_example,          the training targets: next-token ids on the response, -100
    pad_batch, instruction_batches             (ignored by the loss) on every prompt position and on padding
    tune(model, encoded, steps, lr, ...)       AdamW, warm-up + cosine, clipping (helpers.train.fit): full
                                               fine-tuning, or LoRA when only the adapters have requires_grad
    complete, exact_match                      greedy answers and exact-match accuracy

The model's loss already ignores target -100 (helpers.gpt uses cross_entropy's ignore_index), which is
all that "masking the prompt" needs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.corpus import CharVocab
from helpers.generate import generate
from helpers.schedules import torch_scheduler, warmup_cosine
from helpers.train import History, fit

IGNORE = -100  # the target id that cross_entropy (and so the GPT's loss) skips


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
