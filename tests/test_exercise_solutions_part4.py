"""The reference solutions of chapters 22-25's exercises, checked against the library they mirror.

tests/test_exercises.py proves each checker accepts its own reference solution and rejects a wrong answer;
that alone would let a reference and its checker be wrong together. Here each reference is compared with
torch, numpy or the chapter's helper (itself tested against torch in tests/test_vit.py, test_audio.py,
test_video.py and test_multimodal.py) on random inputs, and each build-it checker is shown to refuse the
shortcuts it exists to refuse. The predict-then-run choices 23.6, 24.2 and 25.5 need trained models; the
notebooks assert the measurements their answers rest on.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import audio, multimodal, video, vit
from helpers.cnn import place_on_canvas
from helpers.exercises import check, get, passes


def refused(key, answer, capsys, *words) -> bool:
    """True when exercise `key` rejects `answer` with a verdict that names the shortcut it took."""
    check(key, answer)
    out = capsys.readouterr().out
    return "❌" in out and any(word in out for word in words)


# chapter 22 ---------------------------------------------------------------------------------------------
def test_22_1_patchify_matches_the_helper_and_f_unfold():
    reference = get("22.1").solution
    gen = torch.Generator().manual_seed(0)
    for B, C, H, W, p in [(2, 1, 16, 16, 4), (3, 3, 12, 8, 4), (1, 2, 6, 9, 3), (2, 3, 5, 5, 5)]:
        x = torch.randn(B, C, H, W, generator=gen)  # (B, C, H, W)
        ours = reference(x, p)  # (B, N, C*p*p)
        assert torch.equal(ours, vit.patchify(x, p))
        assert torch.equal(ours, F.unfold(x, kernel_size=p, stride=p).transpose(1, 2))


def test_22_1_refuses_unfold_and_the_helper(capsys):
    def by_unfold(images, patch):
        return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)

    def by_helper(images, patch):
        return vit.patchify(images, patch)

    for shortcut in (by_unfold, by_helper):
        assert refused("22.1", shortcut, capsys, "not unfold or helpers.vit")
    assert passes("22.1", get("22.1").solution)  # the helper and F.unfold are restored after each check
    assert torch.equal(vit.patchify(torch.ones(1, 1, 4, 4), 2), torch.ones(1, 4, 4))


def test_22_2_embedding_cost_factor_matches_vit_macs():
    for size, n_embd in [(16, 16), (32, 24), (64, 8)]:
        old = vit.vit_macs(vit.ViTConfig(size, 4, n_embd=n_embd, n_head=2))["patch_embed"]
        new = vit.vit_macs(vit.ViTConfig(size, 2, n_embd=n_embd, n_head=2))["patch_embed"]
        assert new / old == get("22.2").solution


def test_22_3_parameter_count_matches_the_module_and_conv2d():
    count = sum(p.numel() for p in vit.PatchEmbedding(3, 768, 16).parameters())
    conv = sum(p.numel() for p in nn.Conv2d(3, 768, kernel_size=16, stride=16).parameters())
    assert get("22.3").solution == count == conv


def test_22_4_no_positions_and_mean_pooling_ignore_a_whole_patch_shift():
    from helpers.digits import load_digits_split  # only this test needs the digits

    X = load_digits_split().tensors(images=True)[1][:20]  # (20, 1, 8, 8) test digits
    torch.manual_seed(0)
    blind = vit.ViT(vit.ViTConfig(16, 4, n_embd=16, n_head=2, pos="none", pool="mean")).eval()
    with torch.no_grad():
        before = blind(place_on_canvas(X, 16))
        whole_patch = blind(place_on_canvas(X, 16, (0, 4)))
        one_pixel = blind(place_on_canvas(X, 16, (0, 1)))
    assert torch.allclose(before, whole_patch, atol=1e-5) == get("22.4").solution
    assert not torch.allclose(before, one_pixel, atol=1e-3)  # the claim is about whole patches only


def test_22_5_reference_matches_f_conv2d_and_the_patch_embedding():
    reference = get("22.5").solution
    gen = torch.Generator().manual_seed(1)
    for B, C, H, W, p, d in [
        (2, 1, 16, 16, 4, 16),
        (3, 3, 12, 8, 4, 7),
        (1, 2, 6, 9, 3, 5),
        (2, 3, 4, 4, 1, 3),
    ]:
        x = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)  # (B, C, H, W)
        w = torch.randn(d, C, p, p, generator=gen, dtype=torch.float64)  # (d, C, p, p)
        b = torch.randn(d, generator=gen, dtype=torch.float64)  # (d,)
        ours = reference(x, w, b)  # (B, d, H/p, W/p)
        assert torch.allclose(ours, F.conv2d(x, w, b, stride=p), rtol=1e-12, atol=1e-12)
        embed = vit.PatchEmbedding(C, d, p).double()
        with torch.no_grad():
            embed.proj.weight.copy_(w.reshape(d, -1))  # a Conv2d checkpoint loaded into the Linear
            embed.proj.bias.copy_(b)
            tokens = embed(x)  # (B, N, d)
        assert torch.allclose(tokens, ours.flatten(2).transpose(1, 2), rtol=1e-12, atol=1e-12)


def test_22_5_refuses_convolutions_and_the_patch_embedding(capsys):
    def by_conv2d(images, weight, bias):
        return F.conv2d(images, weight, bias, stride=weight.shape[-1])

    def by_torch_conv2d(images, weight, bias):
        return torch.conv2d(images, weight, bias, stride=weight.shape[-1])

    def by_module(images, weight, bias):
        d, C, p, _ = weight.shape
        conv = nn.Conv2d(C, d, p, stride=p).double()
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
            return conv(images)

    def by_embedding(images, weight, bias):
        d, C, p, _ = weight.shape
        embed = vit.PatchEmbedding(C, d, p).double()
        with torch.no_grad():
            embed.proj.weight.copy_(weight.reshape(d, -1))
            embed.proj.bias.copy_(bias)
            z = embed(images)  # (B, N, d)
        return z.transpose(1, 2).reshape(len(images), d, images.shape[2] // p, images.shape[3] // p)

    for shortcut in (by_conv2d, by_torch_conv2d, by_module, by_embedding):
        assert refused("22.5", shortcut, capsys, "off limits", "build it yourself", "own code")
    assert passes("22.5", get("22.5").solution)
    x = torch.randn(1, 1, 4, 4)
    assert F.conv2d(x, torch.ones(1, 1, 2, 2), stride=2).shape == (1, 1, 2, 2)  # restored after the check


# chapter 23 ---------------------------------------------------------------------------------------------
def test_23_1_alias_matches_the_helper_and_the_spectrum():
    assert audio.alias_frequency(5000, 8000) == get("23.1").solution
    x = audio.tone(5000, sample_rate=8000, duration=1.0)  # (8000,): bins 1 Hz apart
    spectrum = np.abs(np.fft.rfft(x))
    assert spectrum.argmax() == get("23.1").solution  # the samples hold a 3 kHz tone


def test_23_2_and_23_4_references_match_numpy_fft():
    rng = np.random.default_rng(0)
    for N in [1, 2, 4, 64, 512]:
        x = rng.normal(size=N) + 1j * rng.normal(size=N)
        assert np.allclose(get("23.2").solution(x), np.fft.fft(x), atol=1e-9)
        assert np.allclose(get("23.2").solution(x), audio.fft(x).numpy(), atol=1e-9)
    for N in [1, 3, 17, 40]:
        X = rng.normal(size=N) + 1j * rng.normal(size=N)
        assert np.allclose(get("23.4").solution(X), np.fft.ifft(X), atol=1e-12)


def test_23_2_and_23_4_refuse_the_library_transforms(capsys):
    from numpy.fft import fft  # a shortcut imported by name, as a notebook might

    def by_numpy(x):
        return np.fft.fft(x)

    def by_name(x):
        return fft(x)

    def by_torch(x):
        return torch.fft.fft(torch.as_tensor(x)).numpy()

    def by_helper(x):
        return audio.fft(x).numpy()

    for shortcut in (np.fft.fft, by_numpy, by_name, by_torch, by_helper):
        assert refused("23.2", shortcut, capsys, "off limits", "build it yourself", "own code")
    assert refused("23.4", np.fft.ifft, capsys, "off limits", "build it yourself", "own code")
    assert refused("23.4", lambda X: np.fft.ifft(X), capsys, "off limits", "build it yourself", "own code")
    assert refused("23.4", lambda X: torch.fft.ifft(torch.as_tensor(X)).numpy(), capsys, "off limits")
    assert passes("23.2", get("23.2").solution) and passes("23.4", get("23.4").solution)
    assert np.allclose(np.fft.ifft(np.fft.fft([1.0, 2.0])), [1.0, 2.0])  # restored after the checks


def test_23_3_frame_count_matches_torch_stft_and_the_helper():
    x = torch.zeros(8000, dtype=torch.float64)  # one second at 8 kHz
    window = torch.hann_window(256, dtype=torch.float64)
    theirs = torch.stft(x, 256, 160, window=window, center=True, return_complex=True)  # (129, frames)
    assert theirs.shape[-1] == audio.stft(x, n_fft=256, hop=160).shape[-1] == get("23.3").solution
    uncentred = audio.stft(x, n_fft=256, hop=160, center=False)
    assert uncentred.shape[-1] == get("23.3").wrong  # the tempting answer is the count without centring


def test_23_5_reference_matches_torch_stft_and_the_helper():
    reference = get("23.5").solution
    rng = np.random.default_rng(1)
    for L, n_fft, hop in [(64, 16, 4), (1000, 256, 100), (777, 64, 7), (256, 256, 1), (8000, 256, 80)]:
        x = rng.normal(size=L)
        ours = reference(x, n_fft, hop)  # (n_fft // 2 + 1, T)
        window = torch.hann_window(n_fft, dtype=torch.float64)
        theirs = torch.stft(torch.from_numpy(x), n_fft, hop, window=window, center=False, return_complex=True)
        assert ours.shape == tuple(theirs.shape)
        assert np.allclose(ours, theirs.numpy(), atol=1e-9)
        assert np.allclose(ours, audio.stft(x, n_fft=n_fft, hop=hop, center=False).numpy(), atol=1e-9)


def test_23_5_refuses_library_stfts_and_explains_window_mistakes(capsys):
    def by_torch(x, n_fft, hop):
        window = torch.hann_window(n_fft, dtype=torch.float64)
        return torch.stft(torch.from_numpy(x), n_fft, hop, window=window, center=False, return_complex=True)

    def by_helper(x, n_fft, hop):
        return audio.stft(x, n_fft=n_fft, hop=hop, center=False).numpy()

    def by_frames(x, n_fft, hop):
        segments = audio.frames(torch.from_numpy(x), n_fft, hop, center=False).numpy()  # (T, n_fft)
        return np.fft.rfft(segments * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)), axis=1).T

    def by_scipy(x, n_fft, hop):
        from scipy.signal import stft  # the shortcut under test, imported where it is used

        return stft(x, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=None, padded=False)[2]

    for shortcut in (by_torch, by_helper, by_frames, by_scipy):
        assert refused("23.5", shortcut, capsys, "off limits", "build it yourself", "own code")
    check("23.5", get("23.5").wrong)
    assert "left out the window" in capsys.readouterr().out

    def symmetric(x, n_fft, hop):
        starts = range(0, len(x) - n_fft + 1, hop)
        return np.fft.rfft(np.stack([x[s : s + n_fft] * np.hanning(n_fft) for s in starts]), axis=1).T

    check("23.5", symmetric)
    assert "symmetric window" in capsys.readouterr().out
    assert passes("23.5", get("23.5").solution)
    assert torch.stft(torch.zeros(64), 16, 4, window=torch.hann_window(16), return_complex=True).shape[0] == 9


# chapter 24 ---------------------------------------------------------------------------------------------
def test_24_1_reference_matches_the_helper_and_a_loop():
    reference = get("24.1").solution
    x = torch.randn(3, 5, 4, 2, generator=torch.Generator().manual_seed(2))  # (B, T, N, C)
    ours = reference(x)  # (B*N, T, C)
    assert torch.equal(ours, video.time_sequences(x))
    for b in range(3):
        for n in range(4):
            assert torch.equal(ours[b * 4 + n], x[b, :, n])


def test_24_1_refuses_the_helper(capsys):
    assert refused("24.1", lambda x: video.time_sequences(x), capsys, "without calling the chapter's")
    assert refused("24.1", video.time_sequences, capsys, "without calling the chapter's")
    assert video.time_sequences(torch.zeros(1, 2, 3, 4)).shape == (3, 2, 4)  # restored after the check


def test_24_3_output_shape_matches_conv3d_and_the_helper():
    layer = nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), device="meta")
    out = layer(torch.empty(1, 3, 16, 112, 112, device="meta"))  # shapes only, no arithmetic
    assert tuple(out.shape[1:]) == get("24.3").solution
    assert (64, *video.conv3d_output_shape((16, 112, 112), (3, 7, 7), (1, 2, 2), (1, 3, 3))) == get(
        "24.3"
    ).solution


def test_24_4_ratio_matches_attention_cost():
    cost = video.attention_cost(16, (224 // 16) ** 2)
    assert abs(cost["ratio"] - get("24.4").solution) < 0.005
    assert math.isclose(cost["ratio"], 16 * 196 / (16 + 196))


def test_24_5_reference_matches_conv3d_and_the_per_frame_patch_embedding():
    reference = get("24.5").solution
    gen = torch.Generator().manual_seed(3)
    for B, C, T, H, W, t, p, d in [
        (2, 1, 6, 16, 16, 2, 4, 8),
        (1, 3, 4, 8, 12, 4, 2, 5),
        (2, 2, 3, 6, 6, 3, 3, 4),
    ]:
        x = torch.randn(B, C, T, H, W, generator=gen, dtype=torch.float64)  # (B, C, T, H, W)
        w = torch.randn(d, C, t, p, p, generator=gen, dtype=torch.float64)  # (d, C, t, p, p)
        b = torch.randn(d, generator=gen, dtype=torch.float64)  # (d,)
        ours = reference(x, w, b)  # (B, T/t, N, d)
        y = F.conv3d(x, w, b, stride=(t, p, p))  # (B, d, T/t, H/p, W/p)
        assert torch.allclose(ours, y.flatten(3).permute(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    # t = 1 is the chapter's own tokens: each frame through chapter 22's PatchEmbedding
    embed = vit.PatchEmbedding(1, 8, 4).double()
    clips = torch.randn(2, 1, 6, 16, 16, generator=gen, dtype=torch.float64)  # (B, C, T, H, W)
    with torch.no_grad():
        per_frame = embed(clips.transpose(1, 2).reshape(12, 1, 16, 16)).view(2, 6, 16, 8)  # (B, T, N, d)
        ours = reference(clips, embed.conv_weight()[:, :, None], embed.proj.bias)
    assert torch.allclose(ours, per_frame, rtol=1e-12, atol=1e-12)


def test_24_5_refuses_convolutions(capsys):
    def by_conv3d(videos, weight, bias):
        t, p = weight.shape[2], weight.shape[3]
        return F.conv3d(videos, weight, bias, stride=(t, p, p)).flatten(3).permute(0, 2, 3, 1)

    def by_module(videos, weight, bias):
        d, C, t, p, _ = weight.shape
        conv = nn.Conv3d(C, d, (t, p, p), stride=(t, p, p)).double()
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
            return conv(videos).flatten(3).permute(0, 2, 3, 1)

    def by_frames(videos, weight, bias):
        t, p = weight.shape[2], weight.shape[3]
        y = video.conv3d_by_frames(
            videos, weight, bias
        )  # stride 1: every position, then keep the strided ones
        return y[:, :, ::t, ::p, ::p].flatten(3).permute(0, 2, 3, 1)

    for shortcut in (by_conv3d, by_module, by_frames):
        assert refused("24.5", shortcut, capsys, "off limits", "build it yourself", "own code")
    assert passes("24.5", get("24.5").solution)
    assert F.conv3d(torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)).shape == (1, 1, 1, 1, 1)


# chapter 25 ---------------------------------------------------------------------------------------------
def test_25_1_reference_matches_info_nce_and_cross_entropy():
    reference = get("25.1").solution
    rng = np.random.default_rng(4)
    for temperature in [1.0, 0.3, 0.05, 0.002]:
        B, d = int(rng.integers(2, 12)), int(rng.integers(2, 9))
        a, b = rng.normal(size=(B, d)), rng.normal(size=(B, d))
        a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
        ta, tb = torch.as_tensor(a), torch.as_tensor(b)
        S, targets = ta @ tb.T / temperature, torch.arange(B)  # (B, B)
        by_cross_entropy = (F.cross_entropy(S, targets) + F.cross_entropy(S.T, targets)) / 2
        ours = reference(a, b, temperature)
        assert math.isclose(ours, multimodal.info_nce(ta, tb, temperature).item(), rel_tol=1e-10)
        assert math.isclose(ours, by_cross_entropy.item(), rel_tol=1e-10)


def test_25_1_refuses_ready_made_softmaxes(capsys):
    def by_cross_entropy(a, b, temperature):
        S, targets = torch.as_tensor(a @ b.T / temperature), torch.arange(len(a))
        return ((F.cross_entropy(S, targets) + F.cross_entropy(S.T, targets)) / 2).item()

    def by_tensor_method(a, b, temperature):
        S = torch.as_tensor(a @ b.T / temperature)
        rows, columns = S.log_softmax(1).diagonal(), S.log_softmax(0).diagonal()
        return -(rows.mean() + columns.mean()).item() / 2

    def by_scipy(a, b, temperature):
        from scipy.special import log_softmax  # the shortcut under test, imported where it is used

        S = a @ b.T / temperature
        return -(np.diag(log_softmax(S, axis=1)).mean() + np.diag(log_softmax(S, axis=0)).mean()) / 2

    def by_helper(a, b, temperature):
        return multimodal.info_nce(torch.as_tensor(a), torch.as_tensor(b), temperature).item()

    for shortcut in (by_cross_entropy, by_tensor_method, by_scipy, by_helper):
        assert refused("25.1", shortcut, capsys, "off limits", "build it yourself", "own code")
    assert torch.log_softmax(torch.zeros(2), 0).allclose(torch.full((2,), -math.log(2)))  # restored


def log_softmax(M, axis):
    """The reader's own log-softmax, with the library's name: a numpy answer that uses it must pass."""
    M = M - M.max(axis=axis, keepdims=True)
    return M - np.log(np.exp(M).sum(axis=axis, keepdims=True))


def test_25_1_accepts_a_numpy_answer_whose_helper_shares_a_library_name():
    def contrastive_loss(a, b, temperature):
        S = a @ b.T / temperature
        return float(-(np.diag(log_softmax(S, 1)).mean() + np.diag(log_softmax(S, 0)).mean()) / 2)

    assert passes("25.1", contrastive_loss)


def test_25_2_prediction_matches_similarity_softmax():
    S = torch.tensor([[0.9, 0.2, 0.4], [0.6, 0.3, 0.8], [0.5, 0.5, 0.1]], dtype=torch.float64)
    identity = torch.eye(3, dtype=torch.float64)  # a @ identity.T = S: the rows of S as embeddings
    cold = multimodal.similarity_softmax(S, identity, 1e-4)  # (3, 3)
    assert np.allclose(cold.numpy(), get("25.2").solution, atol=1e-6)


def test_25_3_collapsed_loss_matches_info_nce():
    same = F.normalize(torch.ones(256, 8, dtype=torch.float64), dim=1)  # every embedding the same unit vector
    for temperature in (0.07, 1.0):
        assert math.isclose(multimodal.info_nce(same, same, temperature).item(), get("25.3").solution)


def test_25_4_recall_matches_recall_at_k():
    S = torch.tensor([[0.2, 0.9, 0.1], [0.1, 0.8, 0.3], [0.4, 0.3, 0.5]])
    ids = np.arange(3)
    assert [multimodal.recall_at_k(S, k, ids, ids) for k in (1, 2)] == pytest.approx(get("25.4").solution)
    assert [multimodal.recall_at_k(S.T, k, ids, ids) for k in (1, 2)] == pytest.approx(get("25.4").wrong)


# the notebooks' own teaching cells ----------------------------------------------------------------------
# A `# mirrors` cell defines the chapter's own copy of a helper: a different object, so by_hand cannot see
# it. These stand-ins play the copies a notebook holds; an answer that calls one is refused by name.
class PatchEmbedding(vit.PatchEmbedding):
    """Stands in for chapter 22's teaching cell of the same name."""


def stft(x, n_fft=256, hop=80, center=True):
    """Stands in for chapter 23's teaching cell: framing and a DFT matrix, no library STFT."""
    segments = torch.as_tensor(x).unfold(-1, n_fft, hop)  # (T, n_fft), center=False only
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n_fft, dtype=torch.float64) / n_fft)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    W = torch.polar(
        torch.ones((), dtype=torch.float64), -2 * math.pi * k * torch.arange(n_fft) / n_fft
    )  # (F, n_fft)
    return W @ (segments * window).T.to(W.dtype)  # (F, T)


def conv3d_by_frames(x, weight, bias=None):
    """Stands in for chapter 24's teaching cell: the 3-D convolution as an explicit sum, no F.conv3d."""
    d, C, kT, kH, kW = weight.shape
    patches = x.unfold(2, kT, 1).unfold(3, kH, 1).unfold(4, kW, 1)  # (B, C, T', H', W', kT, kH, kW)
    y = torch.einsum("bcthwijk,dcijk->bdthw", patches, weight)  # (B, d, T', H', W')
    return y if bias is None else y + bias[:, None, None, None]


def test_build_its_refuse_the_notebooks_own_copies(capsys):
    def by_notebook_embedding(images, weight, bias):
        d, C, p, _ = weight.shape
        embed = PatchEmbedding(C, d, p).double()
        with torch.no_grad():
            embed.proj.weight.copy_(weight.reshape(d, -1))
            embed.proj.bias.copy_(bias)
            z = embed(images)  # (B, N, d)
        return z.transpose(1, 2).reshape(len(images), d, images.shape[2] // p, images.shape[3] // p)

    def by_notebook_stft(x, n_fft, hop):
        return stft(x, n_fft, hop, center=False).numpy()

    def by_notebook_conv3d(videos, weight, bias):
        t, p = weight.shape[2], weight.shape[3]
        return conv3d_by_frames(videos, weight, bias)[:, :, ::t, ::p, ::p].flatten(3).permute(0, 2, 3, 1)

    # each copy gives the right numbers: only the name check stands between it and a pass
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w, b = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    assert torch.allclose(by_notebook_embedding(x, w, b), F.conv2d(x, w, b, stride=4))
    signal = np.random.default_rng(0).normal(size=300)
    assert np.allclose(by_notebook_stft(signal, 32, 8), get("23.5").solution(signal, 32, 8))
    clips, kernel = (
        torch.randn(1, 2, 4, 8, 8, dtype=torch.float64),
        torch.randn(3, 2, 2, 4, 4, dtype=torch.float64),
    )
    assert torch.allclose(
        by_notebook_conv3d(clips, kernel, b[:3]), get("24.5").solution(clips, kernel, b[:3])
    )
    for key, answer in [
        ("22.5", by_notebook_embedding),
        ("23.5", by_notebook_stft),
        ("24.5", by_notebook_conv3d),
    ]:
        assert refused(key, answer, capsys, "the chapter's own code")
