"""Knowledge distillation (chapter 27): a small student learns from a big teacher's whole distribution.

What this module adds over helpers.pretrain (batches, AdamW's groups, the learning-rate schedule):

    distillation_loss(student_logits, teacher_logits, targets, temperature, alpha)
        alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross-entropy(targets)
    window_pool(data, n, block_size, generator)    n fixed windows of block_size + 1 ids (the training set)
    soft_targets(teacher, windows)                 the teacher's logits on every window, once, in float16
    train_student(student, windows, tc, ...)       the loop over that pool; with teacher logits it
                                                   distils, without them it learns from the data alone -
                                                   same batches, same steps, only the loss differs

The teacher's probabilities say more than the one right answer: after "retur" the data says "n", the
teacher also says how likely "n" was and what else was plausible. The temperature T > 1 flattens both
distributions so that those small probabilities carry weight; the T^2 keeps the gradient's size
independent of T (Hinton, Vinyals and Dean, 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.pretrain import TrainConfig, get_batch, make_adamw


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """The mean over positions of alpha * T^2 * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE.

    student_logits, teacher_logits: (..., V); targets: (...) ids, needed when alpha < 1. KL is in nats.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} logits differ"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha < 1 and targets is None:
        raise ValueError("alpha < 1 mixes in the data's cross-entropy: give the targets")
    V = student_logits.shape[-1]
    log_q = F.log_softmax(student_logits.float().reshape(-1, V) / temperature, dim=-1)  # (N, V) student
    log_p = F.log_softmax(teacher_logits.float().reshape(-1, V) / temperature, dim=-1)  # (N, V) teacher
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()  # KL(p || q), mean over the N positions
    loss = alpha * temperature**2 * kl
    if alpha < 1:
        ce = F.cross_entropy(student_logits.float().reshape(-1, V), targets.reshape(-1))
        loss = loss + (1 - alpha) * ce
    return loss


def window_pool(
    data: torch.Tensor, n: int, block_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n random windows of block_size + 1 consecutive ids from `data`: (n, block_size + 1)."""
    x, y = get_batch(data, n, block_size, generator)  # (n, T), (n, T)
    return torch.cat([x, y[:, -1:]], dim=1)  # (n, T + 1)


@torch.inference_mode()
def soft_targets(teacher: nn.Module, windows: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The teacher's logits at every input position of every window: (n, T, V) in float16 (half the memory
    of float32; a logit is off by at most about 0.01, far below what matters to a softmax at T >= 1)."""
    if windows.dim() != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (n, T + 1) ids with T >= 1, got {tuple(windows.shape)}")
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    chunks = [
        teacher(windows[i : i + batch_size, :-1].to(device))[0].half().cpu()  # (b, T, V)
        for i in range(0, len(windows), batch_size)
    ]
    teacher.train(was_training)
    return torch.cat(chunks)  # (n, T, V)


def train_student(
    student: nn.Module,
    windows: torch.Tensor,
    tc: TrainConfig,
    teacher_logits: torch.Tensor | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    progress: bool = True,
) -> list[float]:
    """Train `student` for tc.max_steps steps on batches drawn from the fixed pool `windows` (n, T + 1).

    With teacher_logits (n, T, V) the loss is distillation_loss; without, the plain cross-entropy on the
    next ids. The batches come from a generator seeded with tc.seed, so two students with the same tc see
    the same windows in the same order. AdamW with the book's groups, tc's warm-up + cosine schedule and
    gradient clipping. Returns the cross-entropy on the data of every step (comparable between the two).
    """
    if windows.dim() != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be (n, T + 1) ids with T >= 1, got {tuple(windows.shape)}")
    if teacher_logits is not None and teacher_logits.shape[:2] != (windows.shape[0], windows.shape[1] - 1):
        raise ValueError(
            f"teacher_logits {tuple(teacher_logits.shape)} must be (n, T, V) "
            f"for windows {tuple(windows.shape)}"
        )
    device = next(student.parameters()).device
    optimizer = make_adamw(student, tc)
    generator = torch.Generator().manual_seed(tc.seed)
    losses = []
    student.train()
    for step in tqdm(
        range(tc.max_steps),
        desc="distilling" if teacher_logits is not None else "training",
        disable=not progress,
        leave=False,
    ):
        for group in optimizer.param_groups:
            group["lr"] = tc.lr_at(step)
        rows = torch.randint(len(windows), (tc.batch_size,), generator=generator)  # (B,)
        x, y = windows[rows, :-1].to(device), windows[rows, 1:].to(device)  # (B, T), (B, T)
        logits, ce = student(x, y)  # (B, T, V), the data's cross-entropy
        if teacher_logits is None:
            loss = ce
        else:
            loss = distillation_loss(logits, teacher_logits[rows].to(device), y, temperature, alpha)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            nn.utils.clip_grad_norm_(student.parameters(), tc.grad_clip)
        optimizer.step()
        losses.append(ce.item())
    student.eval()
    return losses
