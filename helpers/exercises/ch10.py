"""Exercises for chapter 10: PyTorch fundamentals."""

import torch
import torch.nn.functional as F

from helpers.exercises.core import Exercise, matches_value, register

# 10.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="10.1",
        title="a broadcast shape",
        checker=matches_value([7, 4, 5], what="the shape"),
        hint="line the two shapes up from the right: (7, 1, 5) over (4, 1). Pad the shorter one with 1s on "
        "the left; in each column the sizes must be equal or one of them 1, and the result takes the larger.",
        solution=(7, 4, 5),
        wrong=(7, 1, 5),  # treats the size-1 axis of the first tensor as fixed
        explanation="Right-aligned: (7, 1, 5) and (1, 4, 1). Column by column: 7 vs 1 -> 7, 1 vs 4 -> 4, "
        "5 vs 1 -> 5. So (7, 4, 5): every size-1 axis is stretched to match the other tensor.",
    )
)

# 10.2 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="10.2",
        title="the strides of a transpose",
        checker=matches_value([1, 6], what="the strides"),
        hint="a contiguous (4, 6) tensor has strides (6, 1): one step down a column jumps a whole row of 6. "
        "Transposing swaps the roles of the two axes without moving any data.",
        solution=(1, 6),
        wrong=(4, 1),  # the strides of a fresh contiguous (6, 4) tensor, i.e. a copy, not the view
        explanation="x = torch.zeros(4, 6) has strides (6, 1). x.T is a view of the same memory, axes "
        "swapped, so its strides are swapped too: (1, 6). A contiguous copy of shape (6, 4) would have "
        "strides (4, 1) - that is what .contiguous() would make.",
    )
)

# 10.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="10.3",
        title="counting in bfloat16",
        checker=matches_value(256, what="your number"),
        hint="bfloat16 keeps 7 mantissa bits plus the implicit leading 1: 8 significant bits. Integers up to "
        "2 to the power (significant bits) are exact. Try torch.arange(0, 300, dtype=torch.float32)"
        ".to(torch.bfloat16).",
        solution=256,
        wrong=2048,  # float16's answer (11 significant bits)
        explanation="With 8 significant bits every integer up to 2**8 = 256 is exact; 257 needs 9 bits and "
        "rounds to 256 (ties go to the even neighbour). float16, with 11 significant bits, counts to 2048, "
        "and float32 to 16,777,216. A bfloat16 counter or accumulator stalls early: keep those in fp32.",
    )
)


# 10.4 ---------------------------------------------------------------------------------------------------
def _train_step(model, optimizer, X, y):
    loss = F.cross_entropy(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _forgets_zero_grad(model, optimizer, X, y):
    loss = F.cross_entropy(model(X), y)
    loss.backward()  # gradients pile up on top of the previous step's
    optimizer.step()
    return loss.item()


def _check_train_step(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(3, 8, 5, generator=g), torch.randint(0, 4, (3, 8), generator=g)  # three batches
    models = []
    for step in (_train_step, answer):
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 4)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        losses = [step(model, optimizer, X[i], y[i]) for i in range(3)]
        models.append((model, losses))
    (want, want_losses), (got, got_losses) = models
    assert all(isinstance(v, float) for v in got_losses), "return the loss as a Python float (loss.item())"
    close = [abs(a - b) < 1e-5 for a, b in zip(want_losses, got_losses, strict=True)]
    if close[0] and not all(close):
        raise AssertionError(
            "your first step matches the reference but the later ones drift away: are the old gradients "
            "cleared before each backward()?"
        )
    assert all(close), (
        f"the losses you return, {[round(v, 4) for v in got_losses]}, should be "
        f"{[round(v, 4) for v in want_losses]}: the loss of each batch before its update"
    )
    assert torch.allclose(got.weight, want.weight, atol=1e-6) and torch.allclose(
        got.bias, want.bias, atol=1e-6
    ), "the losses are right but after three steps your weights differ from the reference's"


register(
    Exercise(
        key="10.4",
        title="one training step",
        checker=_check_train_step,
        hint="forward (the model's logits), loss (F.cross_entropy), clear the old gradients, backward, step. "
        "Return loss.item(). The checker runs three steps in a row.",
        solution=_train_step,
        wrong=_forgets_zero_grad,
        explanation="PyTorch adds each backward() into .grad, so without zero_grad() the second step moves "
        "by the sum of two batches' gradients, the third by three. The first step is right and the bug only "
        "shows later - which is why the checker runs three steps.",
    )
)
