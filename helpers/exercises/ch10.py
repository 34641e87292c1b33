"""Exercises for chapter 10: PyTorch fundamentals."""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

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
        explanation="Right-aligned: (7, 1, 5) and (1, 4, 1). Column by column: 7 vs 1 -> 7, 1 vs 4 -> 4, 5 "
        "vs 1 -> 5. So (7, 4, 5): every size-1 axis is stretched to match the other tensor.",
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
        hint="bfloat16 keeps 7 mantissa bits plus the implicit leading 1: 8 significant bits. Integers up "
        "to 2 to the power (significant bits) are exact. Try torch.arange(0, 300, "
        "dtype=torch.float32).to(torch.bfloat16).",
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
        hint="forward (the model's logits), loss (F.cross_entropy), clear the old gradients, backward, "
        "step. Return loss.item(). The checker runs three steps in a row.",
        solution=_train_step,
        wrong=_forgets_zero_grad,
        explanation="PyTorch adds each backward() into .grad, so without zero_grad() the second step moves "
        "by the sum of two batches' gradients, the third by three. The first step is right and the bug only "
        "shows later - which is why the checker runs three steps.",
    )
)


# 10.5 ---------------------------------------------------------------------------------------------------
def _check_grad_dtype(answer) -> None:
    names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
    if isinstance(answer, torch.dtype):
        answer = names.get(answer, str(answer))
    assert isinstance(answer, str), f"answer with a dtype such as torch.float16, got {type(answer).__name__}"
    answer = answer.removeprefix("torch.")
    assert answer in names.values(), f"{answer!r} is not one of float32, bfloat16, float16"
    assert answer == "float32", f"not {answer}: think about what dtype the parameters themselves have"


register(
    Exercise(
        key="10.5",
        title="predict: the dtype of a gradient under autocast",
        checker=_check_grad_dtype,
        hint="autocast changes the dtype of the *operations* it runs (a matmul's inputs are cast down); it "
        "never touches the parameters. A gradient has the dtype of the tensor it belongs to.",
        solution=torch.float32,
        wrong=torch.bfloat16,  # "everything under autocast is bf16"
        explanation="The parameters stay float32: autocast casts copies of them down to bfloat16 for each "
        "matmul, so the logits come out in bfloat16, but the backward pass brings the gradient back through "
        "the cast, and p.grad has p's dtype, float32. The optimiser then updates float32 weights, where "
        "small steps are not rounded away (the 1 + small = 1 problem of 10.3).",
    )
)


# 10.6 ---------------------------------------------------------------------------------------------------
class _Windows(Dataset):
    """Item i: the `block` values starting at i, and the value right after them (a next-step target)."""

    def __init__(self, series, block: int):
        self.series, self.block = torch.as_tensor(series), block

    def __len__(self) -> int:
        return len(self.series) - self.block  # the last window still has a value after it

    def __getitem__(self, i: int):
        return self.series[i : i + self.block], self.series[i + self.block]  # (block,), ()


class _WindowsOffByOne(_Windows):
    def __len__(self) -> int:
        return len(self.series) - self.block + 1  # one window too many: its target is past the end


def _check_windows(answer) -> None:
    assert isinstance(answer, type), f"pass the class itself (not an instance), got {type(answer).__name__}"
    series = torch.arange(100, 120)  # (20,): each value shows its position + 100
    for block in (1, 4, 19):
        data = answer(series, block)
        assert isinstance(data, Dataset), "your class should subclass torch.utils.data.Dataset"
        n = len(series) - block
        assert len(data) == n, (
            f"with 20 values and block={block} there are {n} (window, next value) pairs, you say {len(data)}"
        )
        for i in (0, n - 1):
            x, y = data[i]
            assert torch.equal(torch.as_tensor(x), series[i : i + block]), (
                f"item {i} (block={block}) should start with value {100 + i} and hold {block} values"
            )
            assert torch.as_tensor(y).item() == 100 + i + block, (
                f"item {i}'s target should be the value right after its window, {100 + i + block}"
            )
    X, y = next(iter(DataLoader(answer(series, 4), batch_size=8, shuffle=False)))
    assert X.shape == (8, 4) and y.shape == (8,), "a DataLoader should stack your items into (8, 4) and (8,)"


register(
    Exercise(
        key="10.6",
        title="a Dataset of windows",
        checker=_check_windows,
        hint="__len__ is the number of starting points whose window AND next value fit in the series: "
        "len(series) - block. __getitem__(i) returns series[i : i + block] and series[i + block].",
        solution=_Windows,
        wrong=_WindowsOffByOne,
        explanation="A window of `block` values needs one more value after it as its target, so the last "
        "valid start is len - block - 1 and there are len - block items. Nothing is copied: each item is a "
        "view (a slice) of the one series, and the DataLoader stacks them into batches. Chapter 13's "
        "character model and chapter 18's GPT train on exactly such windows of text, with block the context "
        "length.",
    )
)
