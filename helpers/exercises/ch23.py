"""Exercises for chapter 23: audio, the DFT and the FFT, spectrograms."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from helpers import audio
from helpers.exercises.core import Exercise, matches_value, register

# 23.1 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="23.1",
        title="a 5 kHz tone at 8 kHz",
        checker=matches_value(3000.0, atol=1.0, what="the frequency you hear (Hz)"),
        hint="a cosine at f and one at f - 8000 Hz give the same samples at 8000 samples per second, and a "
        "cosine at -f is the same wave as one at +f. Which frequency between 0 and 4000 Hz is left?",
        solution=3000.0,
        wrong=5000.0,  # as if sampling kept every frequency
        explanation="At 8 kHz the highest frequency that survives is 4 kHz (the Nyquist frequency). 5 kHz "
        "takes 5/8 of a turn between samples, which the samples cannot tell from -3/8 of a turn: they are "
        "exactly the samples of a 3 kHz cosine, so the speaker plays 3 kHz. 5 kHz folds about 4 kHz.",
    )
)


# 23.2 ---------------------------------------------------------------------------------------------------
def _refuse(*args, **kwargs):
    raise RuntimeError("np.fft / torch.fft / helpers.audio's transforms are switched off while checking")


@contextlib.contextmanager
def _no_shortcuts():
    """np.fft's and torch.fft's transforms, and the chapter's own dft / fft / stft, all raise inside."""
    targets = [(np.fft, name) for name in ("fft", "ifft", "rfft", "irfft", "fftn", "fft2")]
    targets += [(torch.fft, name) for name in ("fft", "ifft", "rfft", "irfft", "fftn", "fft2")]
    targets += [(torch, "stft"), (audio, "fft"), (audio, "dft"), (audio, "dft_matrix"), (audio, "stft")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    try:
        for owner, name in targets:
            setattr(owner, name, _refuse)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _check_fft(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(23)
    cases = [np.array([1.0]), np.array([1.0, -1.0]), np.eye(8)[1]]
    cases += [rng.normal(size=2 ** int(rng.integers(0, 10))) for _ in range(12)]
    for x in cases:
        want = np.fft.fft(x)
        with _no_shortcuts():
            got = answer(np.copy(x))
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=complex)
        assert got.shape == want.shape, f"for a signal of length {len(x)} you return shape {got.shape}"
        assert np.allclose(got, want, atol=1e-8), (
            f"for the length-{len(x)} signal {np.array2string(x[:8], precision=3)}..., your first values "
            f"are {np.array2string(got[:4], precision=3)}, the DFT's {np.array2string(want[:4], precision=3)}"
        )


def _fft_solution(x):
    x = np.asarray(x, dtype=complex)
    N = len(x)
    if N == 1:
        return x
    E = _fft_solution(x[0::2])  # transform of the even samples
    O = _fft_solution(x[1::2])  # transform of the odd samples
    w = np.exp(-2j * np.pi * np.arange(N // 2) / N)  # the twiddle factors
    return np.concatenate([E + w * O, E - w * O])


def _fft_by_numpy(x):
    return np.fft.fft(x)  # right numbers, but it skips the whole point


register(
    Exercise(
        key="23.2",
        title="write the FFT",
        checker=_check_fft,
        hint="recursion: if N == 1 the transform is the sample itself. Otherwise transform x[0::2] and "
        "x[1::2] (each half as long), then combine: X[k] = E[k] + w^k O[k] and X[k + N/2] = E[k] - w^k O[k] "
        "with w = exp(-2 pi i / N). np.fft and torch.fft are switched off while the checker runs.",
        solution=_fft_solution,
        wrong=_fft_by_numpy,
        explanation="Each level of the recursion does N/2 multiplications by twiddle factors, and there are "
        "log2 N levels: O(N log N) work instead of the matrix's N^2.",
    )
)


# 23.3 ---------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="23.3",
        title="how many frames?",
        checker=matches_value(51, atol=0, what="the number of frames"),
        hint="with center=True the signal is first padded by n_fft // 2 = 128 samples at each end, so a "
        "frame starts at every multiple of hop from 0 up to the last sample of the original clip.",
        solution=51,
        wrong=49,  # (8000 - 256) // 160 + 1: the count without the centring pad
        explanation="Centring pads 8000 samples to 8256, and frames of 256 fit at 0, 160, ..., 8000: that is "
        "8000 // 160 + 1 = 51 frames, one centred on every 160th sample. Without centring only "
        "(8000 - 256) // 160 + 1 = 49 fit.",
    )
)


# 23.4 ---------------------------------------------------------------------------------------------------
def _check_inverse(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng(4)
    for _ in range(10):
        N = int(rng.integers(1, 40))
        x = rng.normal(size=N) + 1j * rng.normal(size=N)
        X = np.fft.fft(x)
        with _no_shortcuts():
            got = answer(np.copy(X))
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=complex)
        assert got.shape == x.shape, f"for a spectrum of length {N} you return shape {got.shape}"
        assert np.allclose(got, x, atol=1e-8), (
            f"for N = {N} you do not get the signal back: first values "
            f"{np.array2string(got[:3], precision=3)}, expected {np.array2string(x[:3], precision=3)}"
        )


def _inverse_solution(X):
    X = np.asarray(X, dtype=complex)
    N = len(X)
    n = np.arange(N)
    W = np.exp(-2j * np.pi * np.outer(n, n) / N)  # the DFT matrix
    return W.conj() @ X / N  # W^H W = N I, so W^-1 = conj(W) / N (W is symmetric)


def _inverse_without_conjugate(X):
    N = len(X)
    n = np.arange(N)
    W = np.exp(-2j * np.pi * np.outer(n, n) / N)
    return W.T @ X / N  # transposes but forgets to conjugate


register(
    Exercise(
        key="23.4",
        title="undo the DFT",
        checker=_check_inverse,
        hint="the rows of W are orthogonal: W^H W = N I, where W^H is the conjugate transpose. So what is "
        "W^-1? (W is symmetric, so its transpose is itself.) np.fft and torch.fft are switched off while "
        "checking.",
        solution=_inverse_solution,
        wrong=_inverse_without_conjugate,
        explanation="The inverse DFT is the same matrix with the angles' sign flipped, divided by N: "
        "x = conj(W) X / N. It is chapter 1's inverse of a linear map, found without any elimination "
        "because the columns of W are orthogonal.",
    )
)
