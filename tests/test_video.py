"""Chapter 24's video helpers: the moving-digit clips, 3-D and (2+1)-D convolution against F.conv3d, the
reshapes of divided space-time attention against loops, the models' shapes and the attention-cost helper."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import video
from helpers.attention import SelfAttention
from helpers.digits import SIDE, load_digits_split

warnings.filterwarnings("ignore", message=".*non-interactive.*")


# --- the clips ----------------------------------------------------------------------------------------------
def test_clips_are_deterministic_and_shaped():
    a = video.moving_digits(50, T=6, size=16, seed=3)
    b = video.moving_digits(50, T=6, size=16, seed=3)
    c = video.moving_digits(50, T=6, size=16, seed=4)
    assert a.videos.shape == (50, 1, 6, 16, 16) and a.videos.dtype == torch.float32
    assert a.labels.shape == a.digits.shape == (50,) and a.positions.shape == (50, 6, 2)
    for name in ("videos", "labels", "digits", "positions"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.videos, c.videos)
    assert set(a.labels.tolist()) <= {0, 1, 2, 3} and set(a.digits.tolist()) <= set(range(10))


@pytest.mark.parametrize(("T", "size", "speed"), [(6, 16, 1), (5, 16, 2), (2, 9, 1)])
def test_labels_match_the_motion_and_digits_stay_inside(T, size, speed):
    clips = video.moving_digits(200, T=T, size=size, speed=speed, seed=1)
    moves = clips.positions[:, 1:] - clips.positions[:, :-1]  # (n, T-1, 2)
    expected = torch.as_tensor(video.STEPS)[clips.labels] * speed  # (n, 2)
    assert torch.equal(moves, expected[:, None, :].expand_as(moves))
    assert clips.positions.min() >= 0 and clips.positions.max() <= size - SIDE
    # the pixels are where the positions say, and nothing lies outside that square
    for i in range(0, 200, 37):
        for t in range(T):
            r, c = clips.positions[i, t].tolist()
            frame = clips.videos[i, 0, t].clone()
            inside = frame[r : r + SIDE, c : c + SIDE].clone()
            frame[r : r + SIDE, c : c + SIDE] = 0
            assert frame.abs().sum() == 0 and inside.sum() > 0


def test_clips_use_the_books_split_and_the_right_digit():
    split = load_digits_split()
    for part, images, targets in (
        ("train", split.images("train"), split.y_train),
        ("test", split.images("test"), split.y_test),
    ):
        clips = video.moving_digits(20, part=part, seed=0)
        lookup = {img.astype(np.float32).tobytes(): int(y) for img, y in zip(images, targets, strict=True)}
        for i in range(20):
            r, c = clips.positions[i, 0].tolist()
            digit = clips.videos[i, 0, 0, r : r + SIDE, c : c + SIDE].numpy()
            assert lookup[digit.tobytes()] == int(clips.digits[i])  # a digit of this part, labelled right


def test_opposite_directions_have_the_same_start_and_end_places():
    clips = video.moving_digits(4000, T=6, size=16, seed=0)
    right = clips.positions[clips.labels == 3][:, :, 1]  # (n_right, T) columns
    left = clips.positions[clips.labels == 2][:, :, 1]
    # a clip moving left is one moving right played backwards: same range of start and end columns
    assert sorted(set(right[:, 0].tolist())) == sorted(set(left[:, -1].tolist())) == [0, 1, 2, 3]
    assert sorted(set(right[:, -1].tolist())) == sorted(set(left[:, 0].tolist())) == [5, 6, 7, 8]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be an int"),
        ({"n": 5, "T": 1}, "at least T=2"),
        ({"n": 5, "T": 8, "size": 12}, "canvas of at least 15"),
        ({"n": 5, "T": 5, "speed": 2, "size": 15}, "canvas of at least 16"),
        ({"n": 5, "part": "val"}, "part must be"),
        ({"n": 5, "speed": 0}, "speed must be"),
    ],
)
def test_bad_clip_requests_get_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        video.moving_digits(**kwargs)


def test_animation_plays_offline_with_one_frame_per_time_step():
    clips = video.moving_digits(3, T=5, seed=0)
    anim = video.animate_clips(clips.videos, titles=["a", "b", "c"])
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 5  # every frame inside the page: no server, no files
    with pytest.raises(ValueError, match="3 clips"):
        video.animate_clips(clips.videos, titles=["a"])
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        video.animate_clips(clips.videos[0])
    with pytest.raises(ValueError, match="at most 8"):
        video.animate_clips(video.moving_digits(9, seed=0).videos)


# --- convolution --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_conv3d_by_frames_matches_conv3d(seed):
    g = torch.Generator().manual_seed(seed)
    B, C_in, C_out = (
        2,
        int(torch.randint(1, 4, (1,), generator=g)),
        int(torch.randint(1, 5, (1,), generator=g)),
    )
    T, H, W = 5, 7, 6
    kT, kH, kW = (int(k) for k in torch.randint(1, 4, (3,), generator=g))
    padding = tuple(int(p) for p in torch.randint(0, 2, (3,), generator=g))
    x = torch.randn(B, C_in, T, H, W, generator=g, dtype=torch.float64)
    w = torch.randn(C_out, C_in, kT, kH, kW, generator=g, dtype=torch.float64)
    b = torch.randn(C_out, generator=g, dtype=torch.float64)
    got = video.conv3d_by_frames(x, w, b, padding=padding)
    torch.testing.assert_close(got, F.conv3d(x, w, b, padding=padding))
    assert tuple(got.shape[2:]) == video.conv3d_output_shape((T, H, W), (kT, kH, kW), 1, padding)


def test_temporal_kernel_of_one_is_a_per_frame_conv2d():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 6, 9, 9, generator=g, dtype=torch.float64)  # (B, C, T, H, W)
    w2 = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    y3 = F.conv3d(x, w2[:, :, None], padding=(0, 1, 1))  # (B, 4, T, H, W)
    frames = x.transpose(1, 2).reshape(18, 2, 9, 9)  # (B*T, C, H, W)
    y2 = F.conv2d(frames, w2, padding=1).view(3, 6, 4, 9, 9).transpose(1, 2)  # (B, 4, T, H, W)
    torch.testing.assert_close(y3, y2)


@pytest.mark.parametrize("mid", [1, 3])
def test_2plus1d_without_the_relu_is_a_conv3d_with_the_composed_kernel(mid):
    g = torch.Generator().manual_seed(mid)
    x = torch.randn(2, 3, 6, 8, 8, generator=g, dtype=torch.float64)
    w_space = torch.randn(mid, 3, 1, 3, 3, generator=g, dtype=torch.float64)
    w_time = torch.randn(5, mid, 3, 1, 1, generator=g, dtype=torch.float64)
    two_steps = F.conv3d(F.conv3d(x, w_space, padding=(0, 1, 1)), w_time, padding=(1, 0, 0))
    one_step = F.conv3d(x, video.compose_2plus1d(w_space, w_time), padding=1)
    torch.testing.assert_close(two_steps, one_step)
    with pytest.raises(ValueError, match="reads"):
        video.compose_2plus1d(w_space, torch.randn(5, mid + 1, 3, 1, 1))


def test_mid_channels_match_the_parameter_count_of_a_full_conv3d():
    for c_in, c_out in [(1, 8), (8, 16), (64, 64)]:
        layer = video.Conv2Plus1d(c_in, c_out)
        full = torch.nn.Conv3d(c_in, c_out, 3, bias=False).weight.numel()
        weights = layer.spatial.weight.numel() + layer.temporal.weight.numel()
        assert weights <= full and weights > full - (9 * c_in + 3 * c_out)  # within one mid channel
    assert video.mid_channels(64, 64) == 144  # R(2+1)D's rule: 3*9*64*64 / (9*64 + 3*64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: video.conv3d_by_frames(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 1, 1, 1)),
            "(B, C, T, H, W)",
        ),
        (lambda: video.conv3d_by_frames(torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 1, 1)), "C_out, C_in"),
        (lambda: video.conv3d_by_frames(torch.zeros(1, 2, 4, 4, 4), torch.zeros(1, 1, 1, 1, 1)), "channels"),
        (lambda: video.conv3d_by_frames(torch.zeros(1, 1, 1, 4, 4), torch.zeros(1, 1, 1, 1, 1)), "T=1"),
        (
            lambda: video.conv3d_by_frames(torch.zeros(1, 1, 3, 4, 4), torch.zeros(1, 1, 5, 1, 1)),
            "does not fit",
        ),
        (lambda: video.conv3d_output_shape((4, 4), 3), r"\(T, H, W\)"),
        (lambda: video.conv3d_output_shape((4, 4, 4), (3, 3)), "three ints"),
        (lambda: video.mid_channels(0, 4), "c_in"),
    ],
)
def test_bad_conv_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the models ---------------------------------------------------------------------------------------------
MODELS = {
    "frame": lambda: video.FrameAverage(),
    "3d": lambda: video.Conv3dNet(),
    "2+1d": lambda: video.Conv2Plus1dNet(),
    "divided": lambda: video.SpaceTimeTransformer(6, 16),
    "joint": lambda: video.SpaceTimeTransformer(6, 16, attention="joint"),
}


@pytest.mark.parametrize("name", MODELS)
def test_models_map_clips_to_four_logits(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    clips = video.moving_digits(3, T=6, seed=0).videos  # (3, 1, 6, 16, 16)
    assert model(clips).shape == (3, 4)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(clips[:, 0])
    with pytest.raises(ValueError, match="T=1"):
        model(clips[:, :, :1])


def test_the_per_frame_model_cannot_see_the_order_or_the_place():
    torch.manual_seed(0)
    model = video.FrameAverage().eval()
    clips = video.moving_digits(8, T=6, seed=0).videos
    with torch.no_grad():
        logits = model(clips)
        torch.testing.assert_close(model(clips.flip(2)), logits)  # played backwards
        one_frame = clips[:, :, :1].expand_as(clips)  # the first frame repeated: the digit standing still
        torch.testing.assert_close(model(one_frame), logits)  # where the digit is makes no difference


def test_the_conv_models_do_see_the_order():
    torch.manual_seed(0)
    clips = video.moving_digits(8, T=6, seed=0).videos
    for model in (video.Conv3dNet(), video.Conv2Plus1dNet(), video.SpaceTimeTransformer(6, 16)):
        with torch.no_grad():
            assert not torch.allclose(model(clips), model(clips.flip(2)))


def test_transformer_needs_the_frame_count_it_was_built_for():
    model = video.SpaceTimeTransformer(6, 16)
    with pytest.raises(ValueError, match="T=6"):
        model(torch.zeros(1, 1, 5, 16, 16))
    with pytest.raises(ValueError, match="multiple of the patch"):
        video.SpaceTimeTransformer(6, 18, patch=4)
    with pytest.raises(ValueError, match="divided"):
        video.SpaceTimeTransformer(6, 16, attention="full")


# --- divided attention --------------------------------------------------------------------------------------
def test_reshapes_pick_the_right_tokens_and_invert():
    x = torch.randn(2, 3, 5, 4)  # (B, T, N, C)
    s, t = video.space_sequences(x), video.time_sequences(x)
    assert s.shape == (6, 5, 4) and t.shape == (10, 3, 4)
    for b in range(2):
        for frame in range(3):
            torch.testing.assert_close(s[b * 3 + frame], x[b, frame])  # frame's N patches
        for n in range(5):
            torch.testing.assert_close(t[b * 5 + n], x[b, :, n])  # position n through time
    assert torch.equal(video.from_space_sequences(s, 2), x)
    assert torch.equal(video.from_time_sequences(t, 2), x)
    with pytest.raises(ValueError, match=r"\(B, T, N, C\)"):
        video.time_sequences(torch.zeros(2, 3, 4))


def test_attention_over_time_equals_a_loop_over_positions():
    torch.manual_seed(0)
    attn = SelfAttention(8, 2, causal=False).eval()
    x = torch.randn(2, 4, 5, 8)  # (B, T, N, C)
    with torch.no_grad():
        y = video.from_time_sequences(attn(video.time_sequences(x)), 2)  # (B, T, N, C)
        for b in range(2):
            for n in range(5):
                torch.testing.assert_close(y[b, :, n], attn(x[b : b + 1, :, n])[0], atol=1e-6, rtol=1e-5)


def test_divided_block_is_space_then_time():
    torch.manual_seed(0)
    block = video.DividedSpaceTimeBlock(8, 2).eval()
    x = torch.randn(2, 3, 4, 8)
    with torch.no_grad():
        h = torch.stack([block.space(x[:, t]) for t in range(3)], dim=1)  # each frame alone
        want = torch.stack([block.time(h[:, :, n]) for n in range(4)], dim=2)  # each position alone
        torch.testing.assert_close(block(x), want, atol=1e-6, rtol=1e-5)


def test_joint_block_mixes_frames_and_positions_at_once():
    torch.manual_seed(0)
    block = video.JointSpaceTimeBlock(8, 2).eval()
    x = torch.randn(1, 3, 4, 8)
    with torch.no_grad():
        want = block.block(x.reshape(1, 12, 8)).reshape(1, 3, 4, 8)
        torch.testing.assert_close(block(x), want)


# --- cost ---------------------------------------------------------------------------------------------------
def test_attention_cost_counts_query_key_pairs():
    cost = video.attention_cost(8, 196)
    assert cost["tokens"] == 1568 and cost["joint"] == 1568**2
    assert cost["divided"] == 8 * 196**2 + 196 * 8**2
    assert cost["ratio"] == pytest.approx(1568**2 / (8 * 196**2 + 196 * 64))
    # counted by brute force: pairs of tokens that share a frame, plus pairs that share a position
    T, N = 3, 4
    tokens = [(t, n) for t in range(T) for n in range(N)]
    same_frame = sum(a[0] == b[0] for a in tokens for b in tokens)
    same_place = sum(a[1] == b[1] for a in tokens for b in tokens)
    assert video.attention_cost(T, N)["divided"] == same_frame + same_place
    with pytest.raises(ValueError, match="T must be"):
        video.attention_cost(0, 4)


def test_time_attention_returns_counts_and_seconds():
    out = video.time_attention(4, 9, n_embd=8, n_head=2, repeats=1)
    assert out["joint"] == 36**2 and out["joint_s"] > 0 and out["divided_s"] > 0


def test_cost_slider_moves_the_numbers_and_the_picture():
    view = video.cost_view(T=8, side=14)
    before = view.image
    view.set(T=32)
    assert view.values == {"T": 32, "side": 14}
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    view.set(T=8)
    np.testing.assert_array_equal(view.image, before)


def test_exercise_24_1_refuses_the_shortcuts():
    from helpers.exercises import ch24, passes

    def calls_the_helper(x):
        return video.time_sequences(x)

    assert passes("24.1", ch24.time_sequences)  # the reference solution, written with permute + reshape
    assert not passes("24.1", video.time_sequences)
    assert not passes("24.1", calls_the_helper)
    alias = video.time_sequences
    assert not passes("24.1", lambda x: alias(x))  # the helper under another name refuses too
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(video.time_sequences(x), ch24.time_sequences(x))  # and works again afterwards
