"""Exercises for chapter 18: GPT from scratch, pretraining."""

import math

import numpy as np
import torch

from helpers.exercises.core import Exercise, by_hand, matches_function, matches_value, register
from helpers.gpt import GPT, GPTConfig

# 18.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="18.1",
        title="predict: the loss of a model that knows nothing",
        checker=matches_value(math.log(103), atol=0.1, what="your predicted loss"),
        hint="with every logit nearly equal, the softmax spreads its bet evenly over the 103 characters. The "
        "loss is -ln(the probability given to the right character), in nats.",
        solution=math.log(103),
        wrong=math.log2(103),  # bits, not nats
        explanation="A uniform guess gives each of the 103 characters probability 1/103, so the loss is "
        "-ln(1/103) = ln 103 = 4.63 nats, whatever the text. PyTorch's cross_entropy uses the natural "
        "log; in bits it would be log2(103) = 6.69. A first loss far above ln V means the initialisation "
        "is too confident, and the first steps are spent undoing it.",
    )
)


# 18.2 ---------------------------------------------------------------------------------------------------
def gpt_parameters(V, T, L, C):
    """Parameters of a GPT with no biases and a tied head: embeddings, L blocks, the final LayerNorm."""
    embeddings = V * C + T * C  # wte (shared with lm_head) and wpe
    block = 12 * C * C + 2 * C  # c_attn 3C^2, attn.c_proj C^2, c_fc 4C^2, mlp.c_proj 4C^2, ln_1 and ln_2
    return embeddings + L * block + C  # ln_f


def _untied(V, T, L, C):
    return gpt_parameters(V, T, L, C) + V * C  # counts lm_head as a second V x C matrix


def _sizes(rng: np.random.Generator) -> tuple:
    return tuple(
        np.array(int(v))
        for v in (rng.integers(2, 300), rng.integers(1, 512), rng.integers(1, 13), 16 * rng.integers(1, 17))
    )


register(
    Exercise(
        key="18.2",
        title="counting a GPT's parameters",
        checker=by_hand(
            matches_function(gpt_parameters, _sizes, trials=20, atol=0.5),
            {"helpers.gpt.GPT": "Count from the shapes; build a GPT only to check your count afterwards."},
        ),
        hint="add up wte (V x C), wpe (T x C), per block c_attn (C x 3C), attn.c_proj (C x C), "
        "c_fc (C x 4C), mlp.c_proj (4C x C) and two LayerNorm weights (C each), then ln_f (C). The head is "
        "tied to wte.",
        solution=gpt_parameters,
        wrong=_untied,
        explanation="Per block 3C^2 + C^2 + 4C^2 + 4C^2 = 12C^2 in matrices plus 2C in LayerNorm scales. "
        "The head costs nothing extra because it *is* wte. For the notebook's model (V=103, T=64, L=4, "
        "C=128) that is 13,184 + 8,192 + 4 x 196,864 + 128 = 808,960.",
    )
)


# 18.3 ---------------------------------------------------------------------------------------------------
def accumulate(model, x, y, micro_batches):
    """Gradients of the whole batch's mean loss, from `micro_batches` forward and backward passes."""
    total = 0.0
    for x_part, y_part in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
        _, loss = model(x_part, y_part)  # the mean over this micro-batch's B / k rows
        (loss / micro_batches).backward()  # .grad adds up: k of these make the whole batch's mean
        total += loss.item() / micro_batches
    return total


def _sums_the_means(model, x, y, micro_batches):  # forgets the 1/k: a step k times too long
    total = 0.0
    for x_part, y_part in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
        _, loss = model(x_part, y_part)
        loss.backward()
        total += loss.item() / micro_batches
    return total


_TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, bias=False)


def _accumulation_case(seed: int) -> tuple[GPT, torch.Tensor, torch.Tensor]:
    """A tiny float64 GPT and a batch of 8 windows, without touching torch's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(_TINY).double()
        x = torch.randint(0, _TINY.vocab_size, (8, _TINY.block_size))  # (B, T) inputs
        y = torch.randint(0, _TINY.vocab_size, (8, _TINY.block_size))  # (B, T) targets
    return model, x, y


def _whole_batch(model: GPT, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    _, loss = model(x, y)
    loss.backward()  # one backward of the whole batch: what accumulation must reproduce
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return loss.item(), grads


def _check_one_batch(answer, seed: int, k: int) -> None:
    model, x, y = _accumulation_case(seed)
    want_loss, want = _whole_batch(model, x, y)
    rows: list[int] = []  # the batch size of every forward pass the answer makes
    hook = model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    try:
        got_loss = answer(model, x.clone(), y.clone(), k)
    finally:
        hook.remove()
    assert rows == [len(x) // k] * k, (
        f"with micro_batches={k} the model should run {k} times on {len(x) // k} windows each; it ran on "
        f"batches of {rows} windows"
    )
    got = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in got.items() if g is None]
    assert not missing, f"{missing[0]} has no gradient: call backward() after each micro-batch"

    def close(scale: float) -> bool:
        return all(torch.allclose(got[n], scale * want[n], rtol=1e-6, atol=1e-12) for n in want)

    if not close(1.0):
        if k > 1 and close(k):
            raise AssertionError(
                f"your gradients are {k} times too large: each micro-batch's loss is already a mean over "
                "its windows, so the k of them must be averaged, not added"
            )
        raise AssertionError(
            f"with micro_batches={k} your gradients differ from one backward of the whole batch's mean loss "
            "(is anything zeroing the gradients between micro-batches?)"
        )
    assert got_loss is not None, "return the whole batch's mean loss, as a float"
    assert abs(float(got_loss) - want_loss) < 1e-9, (
        f"you returned {float(got_loss):.6f}; the whole batch's mean loss is {want_loss:.6f}"
    )


def _check_accumulation(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for seed, k in [(0, 2), (1, 4), (2, 8), (3, 1)]:
        _check_one_batch(answer, seed, k)


register(
    Exercise(
        key="18.3",
        title="gradient accumulation",
        checker=_check_accumulation,
        hint="split x and y into micro_batches equal parts (x.chunk(k)); for each, `_, loss = model(xp, yp)` "
        "is the mean over that part's windows. The whole batch's mean is the average of the k means, and "
        "backward() adds into .grad: so call backward() on loss / k each time, and zero nothing in between.",
        solution=accumulate,
        wrong=_sums_the_means,
        explanation="backward() adds into .grad, so k backward passes sum their gradients. Each "
        "micro-batch's loss is a mean over B / k windows; the whole batch's mean is the average of the k "
        "means, so each must be divided by k before its backward. Then one optimiser step sees exactly the "
        "gradient of a batch k times larger than the memory holds at once, at the price of k smaller passes. "
        "Chapter 29 meets the same 1 / k when it splits a batch over processes.",
    )
)

# 18.4 ---------------------------------------------------------------------------------------------------
_DECAYED = 4 * 12 * 128 * 128  # the four Linear matrices of each of the 4 blocks
register(
    Exercise(
        key="18.4",
        title="what weight decay acts on",
        checker=matches_value(_DECAYED, what="the number of decayed parameters"),
        hint="param_groups decays only the weight matrices of Linear layers: c_attn, attn.c_proj, c_fc and "
        "mlp.c_proj in every block. Not wte (even though lm_head shares it), not wpe, not the LayerNorms.",
        solution=_DECAYED,
        wrong=_DECAYED + 103 * 128 + 64 * 128,  # every 2-D tensor, embeddings included
        explanation="Each block has 12 C^2 = 196,608 parameters in its four matrices, so 4 blocks give "
        "786,432 - 97% of the model. The embeddings are 2-D too, but decaying them shrinks the rows of rare "
        "characters towards zero just because they are rarely seen; LayerNorm scales are meant to sit near "
        "1, not 0.",
    )
)
