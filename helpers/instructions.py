"""Instruction tuning (chapter 20): a small instruction set the book makes itself, and the loop.

What this module adds over helpers.finetune (freezing, counting) and helpers.generate (greedy decoding):

    make_instructions                          chapter 20.2's question asked in words: "prose, code or
                                               session? <a window of the docs>" -> " code"; test windows come
                                               from paragraphs the tuning never saw
    response_targets, encode_example,          the training targets: next-token ids on the response, -100
    pad_batch, instruction_batches             (ignored by the loss) on every prompt position and on padding
    tune(model, encoded, steps, lr, ...)       AdamW, warm-up + cosine, clipping (helpers.train.fit), bf16
                                               autocast if asked: full fine-tuning, or LoRA when only the
                                               adapters have requires_grad
    complete, exact_match                      greedy answers and exact-match accuracy

Any tokenizer with encode(str) -> list[int] and decode(ids) -> str works: the book's BPE tokenizer
(helpers.tokenizers) or a CharVocab. The end of a response is the string END, encoded as whatever tokens
the tokenizer makes of it; the loss mask is on token positions. The model's loss already ignores target
-100 (helpers.gpt uses cross_entropy's ignore_index), which is all that "masking the prompt" needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.finetune import CLASSES
from helpers.generate import generate
from helpers.pretrain import autocast
from helpers.schedules import torch_scheduler, warmup_cosine
from helpers.train import History, fit

IGNORE = -100  # the target id that cross_entropy (and so the GPT's loss) skips


class TextTokenizer(Protocol):
    """What this module needs of a tokenizer (a helpers.tokenizers Tokenizer or a CharVocab both have it)."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


PROMPT = "Q: prose, code or session? {text}\nA:"  # the template every instruction is written in


END = "\n"  # the response ends with a newline; generation stops reading there


def make_instructions(
    texts: Sequence[str], labels: Sequence[int], classes: Sequence[str] = CLASSES
) -> list[tuple[str, str, str]]:
    """(task, prompt, response) for every labelled text, in order: the question "prose, code or session?"
    about the text, answered in words (" code"). The task is the right answer's class name, so that
    exact_match scores each class on its own.

    The response starts with a space: after "A:" that is how text continues, and a BPE tokenizer makes
    " code" one token. Labelled windows of the documentation come from helpers.finetune.snippet_dataset.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not all(0 <= y < len(classes) for y in labels):
        raise ValueError(f"labels must be class indices 0 .. {len(classes) - 1}")
    return [(classes[y], PROMPT.format(text=t), " " + classes[y]) for t, y in zip(texts, labels, strict=True)]


def response_targets(ids: Sequence[int], prompt_len: int) -> list[int]:
    """Next-token targets for ids = prompt + response: ids[t + 1] where that is response, else -100.

    Position t predicts ids[t + 1]. Positions 0 .. prompt_len - 2 would predict prompt tokens (which the
    model is given, not asked for), so they get IGNORE; from position prompt_len - 1 on, the target is the
    next response token. The list is one shorter than ids (the last id predicts nothing).
    """
    if not 1 <= prompt_len < len(ids):
        raise ValueError(f"need 1 <= prompt_len < len(ids) = {len(ids)}, got {prompt_len}")
    return [IGNORE] * (prompt_len - 1) + [int(i) for i in ids[prompt_len:]]


def encode_example(
    tokenizer: TextTokenizer, prompt: str, response: str, mask_prompt: bool = True
) -> tuple[list[int], list[int]]:
    """(inputs, targets) for one instruction: ids = encode(prompt + response + END), inputs = ids[:-1], and
    as targets the next ids with the prompt's token positions masked (response_targets) - or, with
    mask_prompt=False, every next id, as in pretraining.

    The prompt's own tokens must be the first tokens of the whole (a BPE merge across the boundary would
    blur where the response starts): a clear error says so if they are not.
    """
    ids = tokenizer.encode(prompt + response + END)
    prompt_ids = tokenizer.encode(prompt)
    if ids[: len(prompt_ids)] != prompt_ids or len(ids) <= len(prompt_ids):
        raise ValueError(
            f"the prompt {prompt!r} does not tokenize to a prefix of prompt + response {prompt + response!r}"
        )
    return ids[:-1], response_targets(ids, len(prompt_ids)) if mask_prompt else ids[1:]


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


class _Autocast(nn.Module):
    """Runs the wrapped model's forward pass under autocast (the backward pass follows it by itself)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, *args, **kwargs):
        with autocast(next(self.model.parameters()).device, self.dtype):
            return self.model(*args, **kwargs)


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
    amp_dtype: torch.dtype | None = None,
) -> History:
    """Fine-tune the trainable parameters of a GPT on encoded instructions; returns helpers.train's History.

    AdamW (no weight decay) on the parameters with requires_grad - all of them for full fine-tuning, only
    A and B after inject_lora - with a linear warm-up (default: a tenth of the steps) and a cosine decay
    (helpers.schedules), the gradient's norm clipped at `grad_clip` before each step (0: no clipping), on
    `steps` batches from instruction_batches, through helpers.train.fit in `rounds` "epochs" of
    steps / rounds batches each (so the progress bar moves). amp_dtype=torch.bfloat16 runs the forward pass
    under autocast (chapter 18's mixed precision): the weights, gradients and AdamW stay float32.
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
        model if amp_dtype is None else _Autocast(model, amp_dtype),
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
    model: nn.Module, tokenizer: TextTokenizer, prompts: Sequence[str], max_new_tokens: int = 16
) -> list[str]:
    """Greedy answers to `prompts`: generate, then cut the text at the first END. Prompts with the same
    number of tokens share a batch (no padding needed)."""
    device = next(model.parameters()).device
    answers: dict[int, str] = {}
    by_length: dict[int, list[int]] = {}
    encoded = [tokenizer.encode(prompt) for prompt in prompts]
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    for members in by_length.values():
        idx = torch.tensor([encoded[i] for i in members], device=device)  # (B, T)
        out = generate(model, idx, max_new_tokens, temperature=0.0, use_cache=True)  # (B, T + new)
        for i, row in zip(members, out[:, idx.shape[1] :].tolist(), strict=True):
            answers[i] = tokenizer.decode(row).split(END)[0]
    return [answers[i] for i in range(len(prompts))]


def exact_match(
    model: nn.Module,
    tokenizer: TextTokenizer,
    examples: Sequence[tuple[str, str, str]],
    max_new_tokens: int | None = None,
) -> dict[str, float]:
    """Fraction of (task, prompt, response) examples answered exactly right, per task and "all".

    An answer is right when the greedy continuation is the response followed by END. Generating as many
    tokens as the longest response + END takes (the default) is enough to tell: a longer answer is wrong.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    if max_new_tokens is None:
        max_new_tokens = max(
            len(tokenizer.encode(p + r + END)) - len(tokenizer.encode(p)) for _, p, r in examples
        )
    answers = complete(model, tokenizer, [prompt for _, prompt, _ in examples], max_new_tokens)
    hits: dict[str, list[bool]] = {}
    for (task, _, response), answer in zip(examples, answers, strict=True):
        hits.setdefault(task, []).append(answer == response)
    scores = {task: float(np.mean(h)) for task, h in hits.items()}
    scores["all"] = float(np.mean([a == r for (_, _, r), a in zip(examples, answers, strict=True)]))
    return scores
