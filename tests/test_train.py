"""The shared training loop and the digits split."""

import numpy as np
import pytest
import torch

from helpers.digits import load_digits_split
from helpers.nn_numpy import smooth
from helpers.train import History, accuracy, fit, plot_history


def test_digits_split_is_fixed_stratified_and_scaled():
    a, b = load_digits_split(), load_digits_split()
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.X_train.shape[1] == 64 and len(a.X_train) + len(a.X_test) == 1797
    assert 0.0 <= a.X_train.min() and a.X_train.max() <= 1.0
    counts = np.bincount(a.y_test, minlength=10) / len(a.y_test)
    assert np.allclose(counts, 0.1, atol=0.01)
    X_train, _, y_train, _ = a.tensors(images=True)
    assert X_train.shape == (len(a.X_train), 1, 8, 8) and y_train.dtype == torch.long
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_digits_split(test_fraction=1.5)


def test_fit_learns_a_linear_classifier_on_digits():
    torch.manual_seed(0)
    X_train, X_test, y_train, y_test = load_digits_split().tensors()
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batches = lambda: zip(X_train.split(64), y_train.split(64), strict=True)  # noqa: E731
    evaluate = lambda m: {"val_accuracy": accuracy(m, X_test, y_test)}  # noqa: E731
    history = fit(model, batches, torch.nn.functional.cross_entropy, optimizer, 10, evaluate, progress=False)
    assert len(history.step_loss) == 10 * len(X_train.split(64))
    assert np.mean(history.step_loss[-10:]) < np.mean(history.step_loss[:10]) / 4
    assert history.last("val_accuracy") > 0.9
    assert plot_history(history) is not None
    with pytest.raises(KeyError, match="no epoch metric"):
        history.last("bleu")
    with pytest.raises(ValueError, match="at least 1"):
        fit(model, batches, torch.nn.functional.cross_entropy, optimizer, epochs=0)


@pytest.mark.parametrize("grad_clip", [0.0, 0.01])
def test_fit_clips_the_gradient_like_a_hand_written_loop(grad_clip):
    X, y = torch.randn(32, 5, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 3
    batches = lambda: zip(X.split(8), y.split(8), strict=True)  # noqa: E731
    loss_fn = torch.nn.functional.cross_entropy

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 3)
        return model, torch.optim.SGD(model.parameters(), lr=0.5)

    model, optimizer = fresh()
    fit(model, batches, loss_fn, optimizer, 2, progress=False, grad_clip=grad_clip)
    by_hand, optimizer = fresh()
    norms = []
    for _ in range(2):
        for inputs, targets in batches():
            optimizer.zero_grad()
            loss_fn(by_hand(inputs), targets).backward()
            grads = [p.grad for p in by_hand.parameters()]
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            norms.append(norm.item())
            if grad_clip:
                for g in grads:
                    g.mul_(min(1.0, grad_clip / (norm.item() + 1e-6)))
            optimizer.step()
    assert min(norms) > 0.01  # so that clipping at 0.01 does something at every step
    assert torch.allclose(model.weight, by_hand.weight, atol=1e-6) and torch.allclose(
        model.bias, by_hand.bias
    )
    with pytest.raises(ValueError, match="grad_clip"):
        fit(model, batches, loss_fn, optimizer, 1, grad_clip=-1.0)


def test_accuracy_and_smooth():
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    X, y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])
    assert accuracy(model, X, y) == pytest.approx(2 / 3)
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    assert History().step_loss == []
    with pytest.raises(ValueError, match="rows"):
        accuracy(model, X, y[:2])
