"""Exercises for chapter 23: audio, the DFT and the FFT, spectrograms."""

from __future__ import annotations

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_value, register, without_mirrors

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
_DO_IT = "Write the transform yourself: the even/odd split for 23.2, the DFT matrix for 23.4."
_TRANSFORMS = {
    f"numpy.fft.{name}": _DO_IT for name in ("fft", "ifft", "rfft", "irfft", "fftn", "fft2", "ifftn")
}
_TRANSFORMS |= {
    f"torch.fft.{name}": _DO_IT for name in ("fft", "ifft", "rfft", "irfft", "fftn", "fft2", "ifftn")
}
_TRANSFORMS |= {"torch.stft": _DO_IT, "torch.istft": _DO_IT}
_TRANSFORMS |= {f"helpers.audio.{name}": _DO_IT for name in ("fft", "dft", "dft_matrix", "stft")}


def _fft_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """(signal, its DFT by np.fft) pairs, worked out once, before any check switches np.fft off."""
    rng = np.random.default_rng(23)
    cases = [np.array([1.0]), np.array([1.0, -1.0]), np.eye(8)[1]]
    cases += [rng.normal(size=2 ** int(rng.integers(0, 10))) for _ in range(12)]
    return [(x, np.fft.fft(x)) for x in cases]


_FFT_CASES = _fft_cases()


def _compare_fft(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for x, want in _FFT_CASES:
        got = answer(np.copy(x))
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=complex)
        assert got.shape == want.shape, f"for a signal of length {len(x)} you return shape {got.shape}"
        assert np.allclose(got, want, atol=1e-8), (
            f"for the length-{len(x)} signal {np.array2string(x[:8], precision=3)}..., your first values "
            f"are {np.array2string(got[:4], precision=3)}, the DFT's {np.array2string(want[:4], precision=3)}"
        )


_SPLIT_IT = "write the even/odd recursion yourself."
_check_fft = without_mirrors(by_hand(_compare_fft, _TRANSFORMS), {"dft": _SPLIT_IT, "dft_matrix": _SPLIT_IT})


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
        "with w = exp(-2 pi i / N). np.fft and torch.fft are off limits while the checker runs.",
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
def _inverse_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """(spectrum, the signal it came from) pairs, worked out once with np.fft before any check."""
    rng = np.random.default_rng(4)
    signals = []
    for _ in range(10):
        N = int(rng.integers(1, 40))
        signals.append(rng.normal(size=N) + 1j * rng.normal(size=N))
    return [(np.fft.fft(x), x) for x in signals]


_INVERSE_CASES = _inverse_cases()


def _compare_inverse(answer) -> None:
    assert callable(answer), f"expected a function, got {type(answer).__name__}"
    for X, x in _INVERSE_CASES:
        N = len(X)
        got = answer(np.copy(X))
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=complex)
        assert got.shape == x.shape, f"for a spectrum of length {N} you return shape {got.shape}"
        assert np.allclose(got, x, atol=1e-8), (
            f"for N = {N} you do not get the signal back: first values "
            f"{np.array2string(got[:3], precision=3)}, expected {np.array2string(x[:3], precision=3)}"
        )


_check_inverse = by_hand(_compare_inverse, _TRANSFORMS)


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
        "W^-1? (W is symmetric, so its transpose is itself.) np.fft and torch.fft are off limits while "
        "checking.",
        solution=_inverse_solution,
        wrong=_inverse_without_conjugate,
        explanation="The inverse DFT is the same matrix with the angles' sign flipped, divided by N: "
        "x = conj(W) X / N. It is chapter 1's inverse of a linear map, found without any elimination "
        "because the columns of W are orthogonal.",
    )
)


# 23.5 ---------------------------------------------------------------------------------------------------
def _stft_solution(x, n_fft, hop):
    x = np.asarray(x, dtype=float)
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # (n_fft,) the periodic Hann window
    starts = range(0, len(x) - n_fft + 1, hop)  # frame t starts at sample t * hop
    frames = np.stack([x[s : s + n_fft] * window for s in starts])  # (T, n_fft) windowed frames
    return np.fft.rfft(frames, axis=1).T  # (n_fft // 2 + 1, T): bins 0..n_fft/2 of each frame's DFT


def _stft_without_window(x, n_fft, hop):
    x = np.asarray(x, dtype=float)
    frames = np.stack([x[s : s + n_fft] for s in range(0, len(x) - n_fft + 1, hop)])  # (T, n_fft)
    return np.fft.rfft(frames, axis=1).T  # forgets the window: every frame's abrupt ends leak


def _stft_symmetric_window(x, n_fft, hop):
    x = np.asarray(x, dtype=float)
    frames = np.stack([x[s : s + n_fft] * np.hanning(n_fft) for s in range(0, len(x) - n_fft + 1, hop)])
    return np.fft.rfft(frames, axis=1).T  # np.hanning divides by n_fft - 1: the symmetric window


STFT_CASES = [(64, 16, 4), (300, 32, 8), (1000, 256, 100), (777, 64, 7), (256, 256, 1), (500, 16, 16)]


def _check_stft(answer) -> None:
    assert callable(answer), f"expected a function my_stft(x, n_fft, hop), got {type(answer).__name__}"
    rng = np.random.default_rng(5)
    for L, n_fft, hop in STFT_CASES:
        x = rng.normal(size=L)
        want = _stft_solution(x, n_fft, hop)  # (n_fft // 2 + 1, T)
        got = answer(np.copy(x), n_fft, hop)
        if got is None:
            raise AssertionError("your function returned None: did you forget `return`?")
        got = np.asarray(got, dtype=complex)
        case = f"a signal of {L} samples with n_fft={n_fft}, hop={hop}"
        assert got.shape == want.shape, (
            f"for {case} you return shape {got.shape}; expected {want.shape}: rows are the "
            "n_fft // 2 + 1 bins, columns the (L - n_fft) // hop + 1 frames"
        )
        if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
            why = ""
            if np.allclose(got, _stft_without_window(x, n_fft, hop), atol=1e-9):
                why = ": you left out the window; multiply each frame by the Hann window first"
            elif np.allclose(got, _stft_symmetric_window(x, n_fft, hop), atol=1e-9):
                why = (
                    ": np.hanning is the symmetric window (it divides by n_fft - 1); the STFT uses the "
                    "periodic one, 0.5 - 0.5 cos(2 pi n / n_fft)"
                )
            raise AssertionError(f"for {case} the shape is right but the numbers are not{why}")


_CUT_FRAMES = "Cut the frames with slicing, window them, and take each one's DFT (np.fft is allowed here)."
register(
    Exercise(
        key="23.5",
        title="write the STFT",
        checker=without_mirrors(
            by_hand(
                _check_stft,
                {
                    "torch.stft": _CUT_FRAMES,
                    "scipy.signal.stft": _CUT_FRAMES,
                    "scipy.signal.spectrogram": _CUT_FRAMES,
                    "scipy.signal.ShortTimeFFT": _CUT_FRAMES,
                    "helpers.audio.stft": _CUT_FRAMES,
                    "helpers.audio.frames": _CUT_FRAMES,
                    "helpers.audio.power_spectrogram": _CUT_FRAMES,
                },
            ),
            {"stft": _CUT_FRAMES, "frames": _CUT_FRAMES, "power_spectrogram": _CUT_FRAMES},
        ),
        hint="frame t is x[t * hop : t * hop + n_fft], for every t whose frame fits inside the signal. "
        "Multiply it by the periodic Hann window 0.5 - 0.5 cos(2 pi n / n_fft), n = 0..n_fft-1, take its "
        "DFT with np.fft.rfft (which keeps bins 0..n_fft/2), and stack the frames as columns.",
        solution=_stft_solution,
        wrong=_stft_without_window,
        explanation="The STFT is three steps: cut overlapping frames every hop samples, fade each one's ends "
        "with the window, and take the DFT of each. Without centring, (L - n_fft) // hop + 1 frames fit. "
        "The window is the periodic Hann (torch.hann_window's default, dividing by n_fft), not numpy's "
        "symmetric np.hanning (dividing by n_fft - 1); the two give slightly different spectra. torch.stft "
        "with center=False and that window gives these numbers.",
    )
)

# 23.6 ---------------------------------------------------------------------------------------------------
SPEAKER_CHOICES = {
    "a": "about what they score on the official split, above 90%: a spoken digit is a spoken digit",
    "b": "far lower than on the official split but well above chance: between 25% and 80%",
    "c": "about chance, 10%: they learned the five voices, not the digits",
}


def _check_speaker(answer) -> None:
    assert isinstance(answer, str) and answer.strip().lower() in SPEAKER_CHOICES, (
        f"answer with one of the letters {sorted(SPEAKER_CHOICES)}"
    )
    picked = answer.strip().lower()
    assert picked == "b", f"not ({picked}): {SPEAKER_CHOICES[picked]}. Run the next cell and compare."


register(
    Exercise(
        key="23.6",
        title="a voice never heard (predict, then run)",
        checker=_check_speaker,
        hint="on the official split every test voice was in the training set. What could a model of five "
        "voices carry over to a sixth, and what could it not?",
        solution="b",
        wrong="a",  # the official split's figure, taken as the model's accuracy for anyone
        explanation="Both models fall far below their official-split figure on george, yet stay well above "
        "the 10% of guessing: the digits' sounds carry over in part, the quirks of five particular voices, "
        "accents and microphones do not. The official split measures new takes from known speakers; a "
        "held-out speaker measures what a user of the model would get.",
    )
)
