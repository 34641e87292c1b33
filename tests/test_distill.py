"""helpers.distill: the loss against torch's KL divergence and soft-target cross-entropy, and the loop."""

import pytest
import torch
import torch.nn.functional as F

from helpers.distill import distillation_loss, soft_targets, train_student, window_pool
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig


def random_logits(seed, shape=(3, 5, 11)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * 3, torch.randn(shape, generator=g) * 3


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_pure_distillation_is_t_squared_times_torch_kl_div(temperature):
    s, t = random_logits(int(temperature * 10))
    V = s.shape[-1]
    ours = distillation_loss(s, t, temperature=temperature, alpha=1.0)
    kl = F.kl_div(
        F.log_softmax(s.reshape(-1, V) / temperature, -1),
        F.log_softmax(t.reshape(-1, V) / temperature, -1),
        reduction="batchmean",
        log_target=True,
    )
    torch.testing.assert_close(ours, temperature**2 * kl)
    # KL = cross-entropy with the teacher's probabilities as soft targets, minus the teacher's entropy
    p = F.softmax(t.reshape(-1, V) / temperature, -1)
    soft_ce = F.cross_entropy(s.reshape(-1, V) / temperature, p)
    entropy = -(p * p.log()).sum(-1).mean()
    torch.testing.assert_close(ours, temperature**2 * (soft_ce - entropy))


def test_the_mixture_adds_the_hard_cross_entropy():
    s, t = random_logits(7)
    y = torch.randint(11, (3, 5))
    ce = F.cross_entropy(s.reshape(-1, 11), y.reshape(-1))
    soft = distillation_loss(s, t, y, temperature=2.0, alpha=1.0)
    torch.testing.assert_close(distillation_loss(s, t, y, 2.0, 0.3), 0.3 * soft + 0.7 * ce)
    torch.testing.assert_close(distillation_loss(s, t, y, 2.0, 0.0), ce)
    assert distillation_loss(t, t, temperature=3.0, alpha=1.0).abs() < 1e-6  # a perfect copy loses nothing


def test_the_loss_gradient_pulls_the_student_to_the_teacher():
    s, t = random_logits(8)
    s.requires_grad_(True)
    optimizer = torch.optim.SGD([s], lr=30.0)  # the loss is a mean over 15 positions
    for _ in range(300):
        optimizer.zero_grad()
        distillation_loss(s, t, temperature=2.0, alpha=1.0).backward()
        optimizer.step()
    torch.testing.assert_close(F.softmax(s, -1), F.softmax(t, -1), atol=1e-3, rtol=0)


def tiny(seed, n_embd=16):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=1, n_head=2, n_embd=n_embd))


def test_soft_targets_are_the_teachers_logits_in_half_precision():
    teacher = tiny(0, 32).eval()
    data = torch.randint(13, (500,), generator=torch.Generator().manual_seed(0))
    windows = window_pool(data, 10, 8, torch.Generator().manual_seed(1))
    assert windows.shape == (10, 9)
    for row in windows:  # consecutive ids of the data
        starts = [i for i in range(len(data) - 8) if torch.equal(data[i : i + 9], row)]
        assert starts
    logits = soft_targets(teacher, windows, batch_size=3)
    assert logits.shape == (10, 8, 13) and logits.dtype == torch.float16
    with torch.no_grad():
        expected = teacher(windows[:, :-1])[0]
    torch.testing.assert_close(logits.float(), expected, atol=1e-2, rtol=1e-3)


def test_a_student_trained_on_the_teachers_targets_moves_towards_it_and_runs_are_repeatable():
    teacher = tiny(0, 32).eval()
    data = torch.randint(13, (2000,), generator=torch.Generator().manual_seed(0))
    windows = window_pool(data, 32, 16, torch.Generator().manual_seed(1))
    logits = soft_targets(teacher, windows)
    tc = TrainConfig(max_steps=40, batch_size=8, lr=3e-3, warmup_steps=2, seed=0)

    def gap(student):
        with torch.no_grad():
            return distillation_loss(student(windows[:, :-1])[0], logits, temperature=1.0, alpha=1.0)

    student = tiny(5)
    before = gap(student)
    losses = train_student(student, windows, tc, logits, temperature=1.0, alpha=1.0, progress=False)
    assert len(losses) == 40
    assert gap(student) < 0.5 * before
    again = tiny(5)
    assert train_student(again, windows, tc, logits, 1.0, 1.0, progress=False) == losses
    plain = tiny(5)
    plain_losses = train_student(plain, windows, tc, progress=False)
    assert plain_losses[0] == losses[0]  # same start, same first batch; the losses then differ
    assert plain_losses != losses


def test_bad_input_is_a_clear_error():
    s, t = random_logits(0)
    with pytest.raises(ValueError, match="differ"):
        distillation_loss(s, t[..., :5])
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, temperature=0.0, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, alpha=2.0)
    with pytest.raises(ValueError, match="targets"):
        distillation_loss(s, t, alpha=0.5)
    with pytest.raises(ValueError, match="windows"):
        train_student(tiny(0), torch.zeros(5, dtype=torch.long), TrainConfig(max_steps=2, warmup_steps=0))
    with pytest.raises(ValueError, match="teacher_logits"):
        train_student(
            tiny(0),
            torch.zeros(4, 9, dtype=torch.long),
            TrainConfig(max_steps=2, warmup_steps=0),
            torch.zeros(4, 7, 13),
        )
