"""Chapter 23's Fourier tools against numpy.fft, torch.fft and torch.stft; the mel filterbank's shape;
the shipped spoken digits and the script that makes them; clear errors for bad input."""

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import audio
from tests.conftest import ROOT

SEEDS = range(10)


def load_make_fsdd():
    spec = importlib.util.spec_from_file_location("make_fsdd", ROOT / "data" / "make_fsdd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- DFT and FFT ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_dft_matches_numpy_and_torch(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(1, 70))
    x = rng.normal(size=(2, N)) + 1j * rng.normal(size=(2, N))
    X = audio.dft(x).numpy()
    np.testing.assert_allclose(X, np.fft.fft(x), atol=1e-9)
    np.testing.assert_allclose(X, torch.fft.fft(torch.from_numpy(x)).numpy(), atol=1e-9)


def test_dft_matrix_is_unitary_up_to_scale():
    W = audio.dft_matrix(16)
    np.testing.assert_allclose((W.conj().T @ W).numpy(), 16 * np.eye(16), atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_fft_matches_numpy_on_powers_of_two(seed):
    rng = np.random.default_rng(seed)
    N = 2 ** int(rng.integers(0, 11))
    x = rng.normal(size=(3, N))
    np.testing.assert_allclose(audio.fft(x).numpy(), np.fft.fft(x), atol=1e-8)
    np.testing.assert_allclose(audio.fft(torch.from_numpy(x[0])).numpy(), np.fft.fft(x[0]), atol=1e-8)


@pytest.mark.parametrize("N", [3, 6, 12, 100])
def test_fft_rejects_lengths_that_are_not_powers_of_two(N):
    with pytest.raises(ValueError, match=f"power of 2, got {N}"):
        audio.fft(np.ones(N))


@pytest.mark.parametrize("f", [audio.dft, audio.fft])
def test_empty_signals_are_clear_errors(f):
    with pytest.raises(ValueError, match="at least one sample"):
        f(np.zeros(0))


# --- STFT ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_stft_matches_torch_stft(seed):
    rng = np.random.default_rng(seed)
    n_fft = int(rng.choice([16, 64, 100, 256]))
    hop = int(rng.integers(1, n_fft + 1))
    L = int(rng.integers(n_fft, 3 * n_fft))
    center = bool(seed % 2)
    x = torch.from_numpy(rng.normal(size=(2, L)))
    ours = audio.stft(x, n_fft, hop, center=center)
    theirs = torch.stft(
        x, n_fft, hop, window=torch.hann_window(n_fft, dtype=x.dtype), center=center, return_complex=True
    )
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-9)


def test_stft_in_float32_matches_torch_stft():
    x = torch.randn(3, 2000, generator=torch.Generator().manual_seed(0))
    ours = audio.stft(x, 256, 80)
    theirs = torch.stft(x, 256, 80, window=torch.hann_window(256), return_complex=True)
    assert ours.dtype == torch.complex64
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_hann_window_matches_torch():
    np.testing.assert_allclose(
        audio.hann_window(50).numpy(), torch.hann_window(50, dtype=torch.float64).numpy()
    )


def test_a_pure_tone_peaks_in_its_bin():
    x = audio.tone(1000, 8000, 0.5)
    P = audio.power_spectrogram(x, n_fft=256, hop=128)  # bins are 31.25 Hz apart: 1000 Hz is bin 32
    assert (P.argmax(dim=0) == 32).all()


def test_time_frequency_slider_data_trades_bins_for_frames():
    x = audio.two_tones_and_clicks()
    short, long = audio.spectrogram_db(x, 8000, 64), audio.spectrogram_db(x, 8000, 1024)
    assert long["bin_hz"] == 8000 / 1024 < 80 < short["bin_hz"]  # only the long window splits 1000 / 1080 Hz
    assert len(short["times"]) > len(long["times"])
    assert short["db"].max() == pytest.approx(0.0, abs=1e-9) and short["db"].min() >= -80.0


# --- sampling -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("f", "fs", "expected"), [(1000, 8000, 1000), (5000, 8000, 3000), (7000, 8000, 1000), (9000, 8000, 1000)]
)
def test_alias_frequency_folds_into_the_band(f, fs, expected):
    assert audio.alias_frequency(f, fs) == expected
    np.testing.assert_allclose(audio.tone(f, fs, 0.01), audio.tone(expected, fs, 0.01), atol=1e-9)


def test_sampling_demo_alias_goes_through_the_samples():
    demo = audio.sampling_demo(5000, 8000)
    assert demo["alias"] == 3000 and demo["nyquist"] == 4000
    np.testing.assert_allclose(demo["x_n"], np.cos(2 * np.pi * 3000 * demo["t_n"]), atol=1e-9)


# --- mel ---------------------------------------------------------------------------------------------------
def test_mel_scale_round_trips_and_is_anchored():
    f = np.array([0.0, 100.0, 1000.0, 4000.0])
    np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(f)), f, atol=1e-9)
    assert audio.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)  # the scale's reference point


@pytest.mark.parametrize(("n_mels", "n_fft", "sr"), [(40, 256, 8000), (20, 512, 16000), (10, 64, 8000)])
def test_mel_filterbank_is_triangles_at_mel_spaced_centres_that_cover_the_band(n_mels, n_fft, sr):
    M = audio.mel_filterbank(n_mels, n_fft, sr).numpy()
    assert M.shape == (n_mels, n_fft // 2 + 1)
    assert M.min() >= 0 and M.max() <= 1 + 1e-12
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = audio.mel_centres(n_mels, 0, sr / 2)
    assert np.allclose(np.diff(audio.hz_to_mel(edges)), np.diff(audio.hz_to_mel(edges))[0])  # equal in mel
    for i, row in enumerate(M):
        nonzero = np.flatnonzero(row)
        assert nonzero.size, f"filter {i} is empty"
        assert (bins[nonzero] > edges[i]).all() and (bins[nonzero] < edges[i + 2]).all()  # its support
        peak = row.argmax()
        assert abs(bins[peak] - edges[i + 1]) <= sr / n_fft  # peaks at its centre, to within a bin
        assert (np.diff(row[: peak + 1]) >= -1e-12).all() and (np.diff(row[peak:]) <= 1e-12).all()  # one hump
    covered = (bins >= edges[1]) & (bins <= edges[-2])
    np.testing.assert_allclose(M.sum(axis=0)[covered], 1.0, atol=1e-9)  # neighbours add up to one


def test_mel_filterbank_with_too_many_mels_for_the_bins_is_a_clear_error():
    with pytest.raises(ValueError, match="fall between FFT bins"):
        audio.mel_filterbank(128, 64, 8000)


def test_log_mel_spectrogram_shapes_and_batch():
    x = torch.from_numpy(audio.tone(440, 8000, 0.5)).float() * 0.5
    S = audio.log_mel_spectrogram(x, 8000, n_fft=256, hop=80, n_mels=40)
    assert S.shape == (40, 1 + 4000 // 80) and S.dtype == torch.float32
    batch = audio.log_mel_spectrogram(torch.stack([x, -x]), 8000, n_fft=256, hop=80, n_mels=40)
    assert batch.shape == (2, 40, 51)
    torch.testing.assert_close(batch[0], S)


# --- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: audio.log_mel_spectrogram(np.zeros(0), 8000), "empty"),
        (lambda: audio.log_mel_spectrogram(np.zeros(100), 8000), "too short"),
        (lambda: audio.log_mel_spectrogram(np.full(1000, 3000.0), 8000), r"in \[-1, 1\]"),
        (lambda: audio.log_mel_spectrogram(np.zeros(1000), 0), "sample_rate must be a positive"),
        (lambda: audio.log_mel_spectrogram(np.zeros(1000), 8000.5), "sample_rate must be a positive"),
        (lambda: audio.log_mel_spectrogram(np.float64(0.5), 8000), "scalar"),
        (lambda: audio.stft(np.zeros(1000), 256, 80, window=np.ones(100)), r"shape \(256,\)"),
        (lambda: audio.stft(np.zeros(1000), 256, 0), "hop must be"),
        (lambda: audio.stft(np.zeros(100), 256, 80, center=False), "shorter than one frame"),
        (lambda: audio.check_sample_rate(16000, expected=8000), "expected audio sampled at 8000"),
        (lambda: audio.mel_filterbank(10, 256, 8000, f_max=5000), "f_max <= sample_rate / 2"),
        (lambda: audio.dft_matrix(0), "positive int"),
        (lambda: audio.tone(-5, 8000), "frequency must be"),
        (lambda: audio.FrameTransformer(32)(torch.zeros(2, 40, 10)), r"expected spectrograms \(N, 32"),
        (lambda: audio.SpectrogramCNN()(torch.zeros(2, 1, 32, 10)), r"\(N, n_mels, T\)"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the shipped data ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fsdd():
    return audio.load_fsdd()


def test_loader_holds_every_recording(fsdd):
    assert len(fsdd) == 3000 and fsdd.sample_rate == 8000
    assert fsdd.speaker_names == ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert sorted(set(fsdd.digits.tolist())) == list(range(10)) and sorted(set(fsdd.takes.tolist())) == list(
        range(50)
    )
    assert all(len(w) == n for w, n in zip(fsdd.waves, fsdd.lengths, strict=True))
    assert all(w.dtype == np.float32 and np.abs(w).max() <= 1.0 for w in fsdd.waves)


def test_official_and_speaker_splits(fsdd):
    train, test = fsdd.official_split()
    assert len(test) == 300 and len(train) == 2700
    assert (fsdd.takes[test] < 5).all() and (fsdd.takes[train] >= 5).all()
    assert set(fsdd.speakers[test]) == set(fsdd.speakers[train])  # every speaker is in both
    train, test = fsdd.speaker_split("theo")
    assert len(test) == 500 and len(train) == 2500
    assert set(fsdd.speakers[test]) == {"theo"} and "theo" not in set(fsdd.speakers[train])
    with pytest.raises(ValueError, match="unknown speaker 'bob'"):
        fsdd.speaker_split("bob")


def test_padded_and_features(fsdd):
    small = audio.FSDD(fsdd.waves[:3], fsdd.lengths[:3], fsdd.digits[:3], fsdd.speakers[:3], fsdd.takes[:3])
    P = small.padded(4000)
    assert P.shape == (3, 4000)
    n = min(4000, int(small.lengths[0]))
    np.testing.assert_array_equal(P[0, :n], small.waves[0][:n])
    X = audio.fsdd_features(small, length=4000, hop=160, n_mels=32)
    assert X.shape == (3, 32, 26)


def test_classifiers_give_logits_for_any_length():
    x = torch.randn(4, 32, 51)
    assert audio.SpectrogramCNN()(x).shape == (4, 10)
    assert audio.FrameTransformer(32, patch=3)(x).shape == (4, 10)
    assert audio.FrameTransformer(32, patch=3)(x[:, :, :20]).shape == (4, 10)


# --- the data script ----------------------------------------------------------------------------------------
def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.astype("<i2").tobytes())


def fake_fsdd(folder: Path) -> dict:
    rng = np.random.default_rng(0)
    (folder / "recordings").mkdir(parents=True)
    made = {}
    for speaker in ["ann", "bob"]:
        for digit in range(3):
            for take in range(2):
                samples = rng.integers(-30000, 30000, size=int(rng.integers(200, 900)))
                write_wav(folder / "recordings" / f"{digit}_{speaker}_{take}.wav", samples)
                made[(speaker, digit, take)] = samples
    return made


def test_make_fsdd_on_a_fake_folder_is_exact_and_reproducible(tmp_path):
    make_fsdd = load_make_fsdd()
    made = fake_fsdd(tmp_path / "fsdd")
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    make_fsdd.main([str(tmp_path / "fsdd"), "--out", str(first)])
    make_fsdd.main([str(tmp_path / "fsdd"), "--out", str(second)])
    assert first.read_bytes() == second.read_bytes()  # no timestamps in the zip
    data = audio.load_fsdd(first)
    assert len(data) == 12 and data.speaker_names == ["ann", "bob"]
    for i in range(len(data)):
        samples = made[(data.speakers[i], data.digits[i], data.takes[i])]
        np.testing.assert_array_equal(np.round(data.waves[i] * 32768).astype(int), samples)


@pytest.mark.parametrize(
    ("rate", "channels", "message"), [(16000, 1, "sample rate of 8000 Hz, found 16000"), (8000, 2, "mono")]
)
def test_make_fsdd_rejects_wrong_rate_or_stereo(tmp_path, rate, channels, message):
    make_fsdd = load_make_fsdd()
    fake_fsdd(tmp_path / "fsdd")
    write_wav(tmp_path / "fsdd" / "recordings" / "9_ann_0.wav", np.zeros(400 * channels), rate, channels)
    with pytest.raises(ValueError, match=message):
        make_fsdd.main([str(tmp_path / "fsdd"), "--out", str(tmp_path / "x.npz")])


def test_make_fsdd_missing_folder_and_bad_names_are_clear_errors(tmp_path):
    make_fsdd = load_make_fsdd()
    with pytest.raises(FileNotFoundError, match="no FSDD checkout"):
        make_fsdd.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.npz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .wav recordings"):
        make_fsdd.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.npz")])
    write_wav(tmp_path / "empty" / "seven.wav", np.zeros(10))
    with pytest.raises(ValueError, match="digit_speaker_take"):
        make_fsdd.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.npz")])


def test_shipped_file_is_in_the_manifest():
    from helpers.data import read_manifest

    assert audio.FSDD_FILE in read_manifest()


# --- the chapter's sliders, moved headless ------------------------------------------------------------------
def test_window_slider_changes_the_resolution_it_draws():
    import matplotlib.pyplot as plt

    from helpers import slider_view

    mix, seen = audio.two_tones_and_clicks(), []

    def draw(n_fft):
        S = audio.spectrogram_db(mix, 8000, n_fft)
        seen.append(S["db"].shape)
        plt.imshow(S["db"], origin="lower", aspect="auto")

    view = slider_view(draw, n_fft=(32, 1024, 32, 256))
    before = view.image
    view.set(n_fft=1024)
    assert seen[0] == (129, 126) and seen[-1] == (513, 32)  # more bins, fewer frames
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0


def test_sampling_slider_reports_the_alias():
    import matplotlib.pyplot as plt

    from helpers import slider_view

    heard = []

    def draw(frequency, sample_rate):
        d = audio.sampling_demo(frequency, sample_rate)
        heard.append(d["alias"])
        plt.plot(d["t"], d["x"])
        plt.plot(d["t_n"], d["x_n"], "o")

    view = slider_view(draw, frequency=(100, 8000, 100, 1000), sample_rate=(4000, 16000, 1000, 8000))
    view.set(frequency=5000)
    view.set(sample_rate=12000)
    assert heard == [1000, 3000, 5000]  # below Nyquist, folded, below the new Nyquist again
