"""One call at the top of every notebook: seeds, threads, device, print precision and plot style.

Two runs of a notebook on one machine must print the same numbers, so everything random is seeded here
and the number of CPU threads is fixed (the order of a parallel sum changes its last bits).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

#: Thread count used when BOOK_THREADS is not set: enough to be quick, few enough to be the same everywhere.
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Setup:
    """What `setup` chose, so a notebook can use it (`cfg.device`) and print it."""

    seed: int
    device: torch.device
    threads: int

    def __str__(self) -> str:
        report = f"seed {self.seed} | device {self.device} | {self.threads} CPU threads"
        return report + f" | torch {torch.__version__}"


def pick_device(preferred: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU. `preferred` (or $BOOK_DEVICE) overrides the choice."""
    choice = preferred or os.environ.get("BOOK_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but torch sees no CUDA GPU")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but torch sees no Apple MPS device")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global generator, for readers' own code
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def plot_style() -> None:
    """A quiet, readable matplotlib style shared by every figure in the book."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.0, 4.0),
            "figure.dpi": 80,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "image.cmap": "viridis",
        }
    )


def setup(seed: int = 0, threads: int | None = None, device: str | None = None, quiet: bool = False) -> Setup:
    """Seed everything, fix the thread count, pick the device, set print precision and plot style.

    threads: CPU threads for torch and for numpy's BLAS (default $BOOK_THREADS, else 2).
    device:  force a device ("cpu", "cuda", "mps"); default $BOOK_DEVICE, else the best one present.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if threads is None:
        threads = int(os.environ.get("BOOK_THREADS", DEFAULT_THREADS))
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy's BLAS too: same sums in the same order, and no oversubscription
    seed_everything(seed)
    chosen = pick_device(device)
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=110)
    plot_style()
    result = Setup(seed=seed, device=chosen, threads=threads)
    if not quiet:
        print(result)
    return result
