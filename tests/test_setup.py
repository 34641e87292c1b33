"""The one setup call: same seed, same numbers; a device is chosen and reported."""

import random

import numpy as np
import pytest
import torch

from helpers import setup
from helpers.runtime import pick_device


def draw():
    return random.random(), float(np.random.rand())  # noqa: NPY002 - the global generator setup seeds, float(torch.rand(1))


def test_same_seed_same_numbers_different_seed_different_numbers():
    setup(seed=3, quiet=True)
    first = draw()
    setup(seed=3, quiet=True)
    assert draw() == first
    setup(seed=4, quiet=True)
    assert draw() != first


def test_threads_device_and_report(capsys, monkeypatch):
    monkeypatch.delenv("BOOK_DEVICE", raising=False)
    monkeypatch.delenv("BOOK_THREADS", raising=False)  # the default is what is under test
    cfg = setup(seed=0, threads=1)
    assert torch.get_num_threads() == 1
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert cfg.device.type == expected
    assert f"device {expected}" in capsys.readouterr().out
    setup(seed=0, quiet=True)
    assert torch.get_num_threads() == 2


def test_print_precision_is_set():
    setup(quiet=True)
    assert np.get_printoptions()["precision"] == 4


def test_device_override_and_clear_errors(monkeypatch):
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="non-negative"):
        setup(seed=-1)
    with pytest.raises(ValueError, match="at least 1"):
        setup(threads=0)
