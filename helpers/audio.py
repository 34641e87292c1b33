"""Chapter 23: sound as a sequence of numbers, and the Fourier tools that turn it into an image.

What this adds to chapter 1's linear maps: the discrete Fourier transform is one N x N matrix (`dft_matrix`,
`dft`); the fast Fourier transform (`fft`) computes the same product in O(N log N) by splitting the signal
into its even and odd samples. The short-time Fourier transform (`stft`) applies that matrix to
overlapping windowed frames, a mel filterbank (`mel_filterbank`, another matrix) pools the frequencies
the way hearing does, and `log_mel_spectrogram` is the picture of speech that chapter 12's convolutions
and chapter 17's transformer blocks classify. tests/test_audio.py checks everything against numpy.fft
and torch.fft / torch.stft on random inputs.

Also: sampling and aliasing (`tone`, `alias_frequency`, `sampling_demo`), the Free Spoken Digit Dataset
(`load_fsdd`, shipped in data/fsdd_digits.npz: "Free Spoken Digit Dataset, Zohar Jackson et al.",
CC BY-SA 4.0) with its official and held-out-speaker splits, features for all of it at once
(`fsdd_features`), and two small classifiers (`SpectrogramCNN`, `FrameTransformer`).

Waves are 1-D (L,) or batched (..., L) float tensors or arrays in [-1, 1]; spectrograms are
(..., freq, frames), as torch.stft returns them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from helpers.cnn import DigitCNN
from helpers.data import data_path
from helpers.normalization import LayerNorm
from helpers.train import accuracy, fit
from helpers.transformer import Block, sinusoidal_encoding

SAMPLE_RATE = 8000  # Hz: the Free Spoken Digit Dataset's rate
FSDD_FILE = "fsdd_digits.npz"
FSDD_CREDIT = "Free Spoken Digit Dataset, Zohar Jackson et al. (CC BY-SA 4.0)"


# --- checks -----------------------------------------------------------------------------------------------
def as_wave(x, name: str = "wave", dtype: torch.dtype | None = None) -> torch.Tensor:
    """x as a real float tensor with at least one sample on its last axis, or a clear ValueError."""
    x = torch.as_tensor(x)
    if x.is_complex():
        raise ValueError(f"{name} must be real samples, got a complex tensor")
    if x.ndim == 0:
        raise ValueError(f"{name} must be a 1-D signal (L,) or a batch (..., L), got a scalar")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): there are no samples to analyse")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    return x if dtype is None else x.to(dtype)


def check_sample_rate(sample_rate, expected: int | None = None) -> int:
    """A positive integer sample rate (equal to `expected` if given), or a clear ValueError."""
    if isinstance(sample_rate, bool) or not float(sample_rate).is_integer() or sample_rate <= 0:
        raise ValueError(
            f"sample_rate must be a positive whole number of samples per second, got {sample_rate}"
        )
    if expected is not None and int(sample_rate) != expected:
        raise ValueError(f"expected audio sampled at {expected} Hz, got sample_rate={sample_rate}")
    return int(sample_rate)


# --- sampling and aliasing --------------------------------------------------------------------------------
def tone(frequency: float, sample_rate: float, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """Samples of amplitude * cos(2 pi f t) at t = n / sample_rate, for `duration` seconds: (L,) float64."""
    if sample_rate <= 0 or duration <= 0:
        raise ValueError(f"sample_rate and duration must be positive, got {sample_rate} and {duration}")
    if frequency < 0:
        raise ValueError(f"frequency must be >= 0 Hz, got {frequency}")
    t = np.arange(int(round(duration * sample_rate))) / sample_rate  # (L,) seconds
    return amplitude * np.cos(2 * np.pi * frequency * t)


def alias_frequency(frequency: float, sample_rate: float) -> float:
    """The frequency in [0, sample_rate / 2] whose samples equal those of a cosine at `frequency`.

    Sampling cannot tell f from f + k * sample_rate (whole extra turns between samples) nor from -f
    (a cosine is even), so f folds back into the band below the Nyquist frequency sample_rate / 2.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    r = math.fmod(abs(frequency), sample_rate)
    return min(r, sample_rate - r)


def sampling_demo(frequency: float, sample_rate: float, duration: float = 0.005, fine: int = 2000) -> dict:
    """What the sampling slider draws: the continuous cosine, its samples, and the alias through them.

    Returns t (fine,), x (fine,), t_n (L,), x_n (L,), alias (Hz) and x_alias (fine,), the lowest-frequency
    cosine through the same samples; x_alias and x coincide when frequency < sample_rate / 2.
    """
    t = np.linspace(0.0, duration, fine)  # (fine,)
    t_n = np.arange(int(duration * sample_rate) + 1) / sample_rate  # (L,)
    alias = alias_frequency(frequency, sample_rate)
    return {
        "t": t,
        "x": np.cos(2 * np.pi * frequency * t),
        "t_n": t_n,
        "x_n": np.cos(2 * np.pi * frequency * t_n),
        "alias": alias,
        "x_alias": np.cos(2 * np.pi * alias * t),
        "nyquist": sample_rate / 2,
    }


# --- the DFT as a matrix, and the FFT -----------------------------------------------------------------------
def dft_matrix(N: int, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """W with W[k, n] = exp(-2 pi i k n / N): row k correlates the signal with a wave of k turns. (N, N)"""
    if not isinstance(N, int) or N < 1:
        raise ValueError(f"N must be a positive int, got {N!r}")
    n = torch.arange(N, dtype=torch.float64)  # (N,)
    angle = -2 * math.pi * torch.outer(n, n).remainder(N) / N  # (N, N): k n mod N keeps the angles small
    return torch.polar(torch.ones_like(angle), angle).to(dtype)  # (N, N)


def dft(x) -> torch.Tensor:
    """X = W x along the last axis, by the O(N^2) matrix product: (..., N) -> (..., N) complex."""
    x = torch.as_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"dft needs a signal with at least one sample on its last axis, got {tuple(x.shape)}"
        )
    x = x.to(torch.complex128)
    W = dft_matrix(x.shape[-1])  # (N, N)
    return x @ W.T  # (..., N)


def fft(x) -> torch.Tensor:
    """The radix-2 FFT along the last axis (length a power of 2): same result as dft(x) in O(N log N).

    X[k] = E[k] + w^k O[k] and X[k + N/2] = E[k] - w^k O[k], where E and O are the half-length
    transforms of the even and odd samples and w = exp(-2 pi i / N). E and O come from one recursive
    call on the two halves stacked as a batch, so there are only log2(N) levels of Python calls.
    """
    x = torch.as_tensor(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"fft needs a signal with at least one sample on its last axis, got {tuple(x.shape)}"
        )
    N = x.shape[-1]
    if N & (N - 1):
        raise ValueError(f"this radix-2 FFT needs a length that is a power of 2, got {N}; pad with zeros")
    x = x.to(torch.complex128)
    if N == 1:
        return x  # the DFT of one sample is that sample
    halves = fft(torch.stack([x[..., 0::2], x[..., 1::2]], dim=-2))  # (..., 2, N/2): both halves at once
    E, O = halves[..., 0, :], halves[..., 1, :]  # (..., N/2) each: transforms of the even and odd samples
    k = torch.arange(N // 2, dtype=torch.float64)  # (N/2,)
    twiddle = torch.polar(torch.ones_like(k), -2 * math.pi * k / N)  # (N/2,) w^k
    return torch.cat([E + twiddle * O, E - twiddle * O], dim=-1)  # (..., N)


# --- short-time Fourier transform ---------------------------------------------------------------------------
def hann_window(n_fft: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The periodic Hann window 0.5 - 0.5 cos(2 pi n / n_fft), torch.hann_window's default. (n_fft,)"""
    if not isinstance(n_fft, int) or n_fft < 1:
        raise ValueError(f"n_fft must be a positive int, got {n_fft!r}")
    n = torch.arange(n_fft, dtype=torch.float64)  # (n_fft,)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)).to(dtype)


def frames(x, n_fft: int, hop: int, center: bool = True) -> torch.Tensor:
    """Overlapping slices of length n_fft, every hop samples: (..., L) -> (..., n_frames, n_fft).

    With center=True the signal is first padded by n_fft // 2 on each side with its own mirror image (as
    torch.stft does), so frame t is centred on sample t * hop.
    """
    x = as_wave(x)
    if not isinstance(hop, int) or hop < 1:
        raise ValueError(f"hop must be a positive int, got {hop!r}")
    if not isinstance(n_fft, int) or n_fft < 2:
        raise ValueError(f"n_fft must be an int >= 2, got {n_fft!r}")
    L = x.shape[-1]
    if center:
        pad = n_fft // 2
        if L <= pad:
            raise ValueError(f"a clip of {L} samples is too short to mirror-pad by n_fft // 2 = {pad}")
        batch = x.shape[:-1]
        x = torch.nn.functional.pad(x.reshape(-1, 1, L), (pad, pad), mode="reflect").reshape(*batch, -1)
    if x.shape[-1] < n_fft:
        raise ValueError(f"a clip of {L} samples is shorter than one frame of n_fft = {n_fft}")
    return x.unfold(-1, n_fft, hop)  # (..., n_frames, n_fft)


def stft(x, n_fft: int = 256, hop: int = 80, window=None, center: bool = True) -> torch.Tensor:
    """Short-time Fourier transform: the DFT of each windowed frame, bins 0..n_fft/2 (the rest mirror them).

    (..., L) -> (..., n_fft // 2 + 1, n_frames) complex, like torch.stft(..., return_complex=True).
    Defaults to the periodic Hann window. Works in x's precision (float32 -> complex64).
    """
    x = as_wave(x)
    if window is None:
        window = hann_window(n_fft, dtype=x.dtype)
    window = torch.as_tensor(window, dtype=x.dtype)
    if window.shape != (n_fft,):
        raise ValueError(f"window must have shape ({n_fft},) to match n_fft, got {tuple(window.shape)}")
    complex_dtype = (
        torch.complex64 if x.dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.complex128
    )
    x = x.to(torch.float32 if complex_dtype == torch.complex64 else torch.float64)
    W = dft_matrix(n_fft, dtype=complex_dtype)[: n_fft // 2 + 1]  # (F, n_fft): the non-negative frequencies
    segments = frames(x, n_fft, hop, center) * window.to(x.dtype)  # (..., T, n_fft)
    return (segments.to(complex_dtype) @ W.T).transpose(-1, -2)  # (..., F, T)


def power_spectrogram(x, n_fft: int = 256, hop: int = 80, center: bool = True) -> torch.Tensor:
    """|STFT|^2: the energy in each frequency bin of each frame. (..., n_fft // 2 + 1, n_frames) real."""
    return stft(x, n_fft, hop, center=center).abs() ** 2


def spectrogram_db(x, sample_rate: int, n_fft: int, hop: int | None = None, floor_db: float = -80.0) -> dict:
    """What the window-length slider draws: power in decibels (10 log10 P, relative to the loudest cell and
    floored at floor_db), with the frame times (s) and bin frequencies (Hz). hop defaults to n_fft // 4."""
    sample_rate = check_sample_rate(sample_rate)
    hop = max(1, n_fft // 4) if hop is None else hop
    P = power_spectrogram(x, n_fft, hop)  # (F, T)
    db = 10 * torch.log10(P / P.max() + 1e-12)  # (F, T), <= 0
    return {
        "db": db.clamp(min=floor_db).numpy(),
        "times": np.arange(P.shape[-1]) * hop / sample_rate,
        "freqs": np.arange(P.shape[-2]) * sample_rate / n_fft,
        "bin_hz": sample_rate / n_fft,
        "window_ms": 1000 * n_fft / sample_rate,
    }


def two_tones_and_clicks(
    sample_rate: int = SAMPLE_RATE, duration: float = 1.0, tones=(1000.0, 1080.0), clicks_every: float = 0.125
) -> np.ndarray:
    """A test sound for the time/frequency trade-off: two close steady tones, plus a click (one loud
    sample) every `clicks_every` seconds. Only a long window separates the tones; only a short one
    separates the clicks. (L,) float64 in [-1, 1]."""
    x = sum(tone(f, sample_rate, duration, amplitude=0.3) for f in tones)  # (L,)
    x[(np.arange(clicks_every, duration, clicks_every) * sample_rate).astype(int)] = 0.9
    return x


# --- the mel scale ------------------------------------------------------------------------------------------
def hz_to_mel(f):
    """The mel scale: m = 2595 log10(1 + f / 700); equal steps in m sound like equal steps in pitch."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=float) / 700.0)


def mel_to_hz(m):
    """The inverse of hz_to_mel: f = 700 (10^(m / 2595) - 1)."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=float) / 2595.0) - 1.0)


def mel_centres(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """n_mels + 2 frequencies (Hz) equally spaced in mel from f_min to f_max: triangle edges and peaks."""
    return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters, one per row: filter i rises from edge i to 1 at centre i + 1, falls to edge i + 2.

    Evaluated at the FFT bin frequencies k * sample_rate / n_fft; neighbouring triangles overlap so that
    between the first and last peak the filters sum to 1. (n_mels, n_fft // 2 + 1) float64.
    """
    sample_rate = check_sample_rate(sample_rate)
    f_max = sample_rate / 2 if f_max is None else f_max
    if not isinstance(n_mels, int) or n_mels < 1:
        raise ValueError(f"n_mels must be a positive int, got {n_mels!r}")
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}, got {f_min}, {f_max}"
        )
    edges = mel_centres(n_mels, f_min, f_max)  # (n_mels + 2,) Hz
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (F,) Hz of each FFT bin
    lo, peak, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    rising = (bins - lo) / (peak - lo)  # (n_mels, F)
    falling = (hi - bins) / (hi - peak)  # (n_mels, F)
    M = np.clip(np.minimum(rising, falling), 0.0, None)  # (n_mels, F)
    empty = np.flatnonzero(M.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"mel filters {empty.tolist()} fall between FFT bins ({sample_rate / n_fft:.1f} Hz apart): "
            f"use fewer than {n_mels} mels or a larger n_fft than {n_fft}"
        )
    return torch.from_numpy(M)


def log_mel_spectrogram(
    wave, sample_rate: int = SAMPLE_RATE, n_fft: int = 256, hop: int = 80, n_mels: int = 40, eps: float = 1e-6
) -> torch.Tensor:
    """log(mel filterbank @ |STFT|^2 + eps): speech as an image. (..., L) -> (..., n_mels, n_frames) float32.

    Defaults suit 8 kHz speech: 32 ms windows every 10 ms, 40 mel bands up to 4 kHz.
    """
    sample_rate = check_sample_rate(sample_rate)
    x = as_wave(wave, dtype=torch.float32)
    if x.abs().max() > 1.0:
        raise ValueError(
            f"wave must hold samples in [-1, 1], got a peak of {x.abs().max():.4g}; divide int16 by 32768"
        )
    P = power_spectrogram(x, n_fft, hop)  # (..., F, T)
    M = mel_filterbank(n_mels, n_fft, sample_rate).to(P.dtype)  # (n_mels, F)
    return torch.log(M @ P + eps)  # (..., n_mels, T)


# --- the Free Spoken Digit Dataset --------------------------------------------------------------------------
@dataclass(frozen=True)
class FSDD:
    """3,000 recordings of spoken digits: 6 speakers x 10 digits x 50 takes, at 8 kHz.

    waves[i] is recording i as float32 samples in [-1, 1] (lengths differ: `lengths[i]` samples);
    digits, speakers and takes are (N,) arrays. Source: "Free Spoken Digit Dataset, Zohar Jackson et al.",
    CC BY-SA 4.0.
    """

    waves: tuple[np.ndarray, ...]
    lengths: np.ndarray
    digits: np.ndarray
    speakers: np.ndarray
    takes: np.ndarray
    sample_rate: int = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.waves)

    @property
    def speaker_names(self) -> list[str]:
        return sorted(set(self.speakers.tolist()))

    def padded(self, length: int | None = None) -> np.ndarray:
        """All waves in one (N, length) float32 array: cut to `length` samples or padded with silence."""
        length = int(self.lengths.max()) if length is None else length
        if length < 1:
            raise ValueError(f"length must be at least one sample, got {length}")
        out = np.zeros((len(self), length), dtype=np.float32)  # (N, length)
        for i, w in enumerate(self.waves):
            out[i, : min(len(w), length)] = w[:length]
        return out

    def official_split(self) -> tuple[np.ndarray, np.ndarray]:
        """(train indices, test indices): the dataset's own split, takes 0-4 test and 5-49 train."""
        test = self.takes < 5
        return np.flatnonzero(~test), np.flatnonzero(test)

    def speaker_split(self, speaker: str) -> tuple[np.ndarray, np.ndarray]:
        """(train indices, test indices): every recording of `speaker` is held out; the others train."""
        if speaker not in self.speaker_names:
            raise ValueError(f"unknown speaker {speaker!r}; the speakers are {self.speaker_names}")
        test = self.speakers == speaker
        return np.flatnonzero(~test), np.flatnonzero(test)


def load_fsdd(path=None) -> FSDD:
    """The shipped recordings, data/fsdd_digits.npz (from data/make_fsdd.py), checked against the manifest."""
    path = data_path(FSDD_FILE) if path is None else path
    with np.load(path, allow_pickle=False) as f:
        samples, lengths = f["samples"], f["lengths"].astype(np.int64)
        digits, speakers, takes = f["digits"].astype(np.int64), f["speakers"], f["takes"].astype(np.int64)
        sample_rate = check_sample_rate(int(f["sample_rate"]), expected=SAMPLE_RATE)
    if samples.dtype != np.int16 or lengths.sum() != len(samples):
        raise ValueError(
            f"{path}: expected int16 samples adding up to the lengths table; regenerate the file"
        )
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    waves = tuple(
        (samples[s : s + n] / 32768.0).astype(np.float32) for s, n in zip(starts, lengths, strict=True)
    )
    return FSDD(waves, lengths, digits, speakers, takes, sample_rate)


def fsdd_features(
    data: FSDD,
    length: int = SAMPLE_RATE,
    n_fft: int = 256,
    hop: int = 200,
    n_mels: int = 32,
    chunk: int = 500,
) -> torch.Tensor:
    """Log-mel spectrograms of every recording, cut or padded with silence to `length` samples first.

    (N, n_mels, 1 + length // hop) float32, computed in chunks of `chunk` recordings to bound the memory.
    """
    W = torch.from_numpy(data.padded(length))  # (N, length)
    return torch.cat([log_mel_spectrogram(w, data.sample_rate, n_fft, hop, n_mels) for w in W.split(chunk)])


# --- classifiers -------------------------------------------------------------------------------------------
class SpectrogramCNN(DigitCNN):
    """Chapter 12's DigitCNN adapted to spectrograms: (N, n_mels, T) -> (N, classes) logits.

    Two changes. A 2x2 max pool after every convolution but the last makes the later layers four times
    cheaper each. And the final pool takes the maximum over time only, down to `bands` frequency bands:
    a word may start at any frame, but *where* in frequency the energy sits (a vowel's formants) matters.
    """

    def __init__(self, channels=(16, 32, 32), classes: int = 10, bands: int = 4):
        super().__init__(channels, classes, in_channels=1)
        if bands < 1:
            raise ValueError(f"bands must be at least 1, got {bands}")
        self.bands = bands
        self.head = nn.Linear(channels[-1] * bands, classes)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each conv + ReLU (+ pool), from (N, n_mels, T) spectrograms."""
        if x.ndim != 3:
            raise ValueError(f"expected spectrograms of shape (N, n_mels, T), got {tuple(x.shape)}")
        x = x[:, None]  # (N, 1, n_mels, T): one input channel
        maps = []
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))  # (N, C_layer, H, W)
            if i < len(self.convs) - 1:
                x = nn.functional.max_pool2d(x, 2)  # (N, C_layer, H / 2, W / 2)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.feature_maps(x)[-1]  # (N, C, H', W')
        h = nn.functional.adaptive_max_pool2d(h, (self.bands, 1))  # (N, C, bands, 1): max over time
        return self.head(h.flatten(1))  # (N, classes)


class FrameTransformer(nn.Module):
    """Chapter 17's blocks over time: each spectrogram frame is a token. (N, n_mels, T) -> (N, classes).

    `patch` neighbouring frames make one token (chapter 22's patches, along time; frames left over at the
    end are dropped). A linear map embeds each token's patch * n_mels energies, sinusoidal positions
    (helpers.transformer) say when it happened, `n_layer` non-causal blocks let every token attend to
    every other, and the mean over time goes to a linear head.
    """

    def __init__(
        self,
        n_mels: int,
        n_embd: int = 64,
        n_head: int = 4,
        n_layer: int = 2,
        patch: int = 1,
        classes: int = 10,
    ):
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be at least one frame, got {patch}")
        self.n_mels, self.patch = n_mels, patch
        self.embed = nn.Linear(n_mels * patch, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, causal=False) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.n_mels or x.shape[2] < self.patch:
            raise ValueError(
                f"expected spectrograms (N, {self.n_mels}, T >= {self.patch}), got {tuple(x.shape)}"
            )
        N, M, T = x.shape
        tokens = x[:, :, : T // self.patch * self.patch].transpose(1, 2)  # (N, T', M): frames in time order
        tokens = tokens.reshape(N, T // self.patch, self.patch * M)  # (N, T / patch, patch * M)
        h = self.embed(tokens)  # (N, T / patch, C): one token per patch of frames
        h = h + sinusoidal_encoding(h.shape[1], h.shape[2]).to(h)  # (N, T, C)
        for block in self.blocks:
            h = block(h)  # (N, T, C)
        return self.head(self.ln_f(h).mean(dim=1))  # (N, classes)


def train_spectrogram_classifier(
    model: nn.Module,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    epochs: int = 8,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
):
    """helpers.train.fit with AdamW whose learning rate decays to zero along a cosine (chapter 11), so the
    last epoch's test accuracy is a settled figure rather than one point of a noisy curve.

    X_* are (N, n_mels, T) log-mel spectrograms, already standardised. Returns fit's History with
    "test_accuracy" after each epoch.
    """
    if len(X_train) != len(y_train) or len(X_test) != len(y_test):
        raise ValueError("each X must have as many rows as its y")
    device = next(model.parameters()).device
    X_train, y_train = X_train.to(device), y_train.to(device)
    order = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(X_train) / batch_size)

    def batches():
        perm = torch.randperm(len(X_train), generator=order).to(device)  # (N,)
        return zip(X_train[perm].split(batch_size), y_train[perm].split(batch_size), strict=True)

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    evaluate = lambda m: {"test_accuracy": accuracy(m, X_test, y_test)}  # noqa: E731
    return fit(
        model, batches, nn.functional.cross_entropy, optimizer, epochs, evaluate, schedule, device, progress
    )
