"""Chapter 25: InfoNCE against its cross-entropy form and a loop, recall@k against a brute force, the caption
generator, the towers' shapes and unit norms, the temperature slider moved headless, and bad inputs."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import multimodal as mm
from helpers import slider_view

warnings.filterwarnings("ignore", message=".*non-interactive.*")

SEEDS = range(20)


def unit_rows(B, d, generator):
    return F.normalize(torch.randn(B, d, generator=generator, dtype=torch.float64), dim=1)


def random_pair(seed):
    g = torch.Generator().manual_seed(seed)
    B, d = int(torch.randint(1, 12, (1,), generator=g)), int(torch.randint(1, 9, (1,), generator=g))
    tau = float(torch.empty(1).uniform_(0.02, 2.0, generator=g))
    return unit_rows(B, d, g), unit_rows(B, d, g), tau


def info_nce_loop(a, b, tau):
    """The definition, one term at a time: -log e^{S_ii} / sum_j e^{S_ij}, rows then columns."""
    B = len(a)
    S = [[float(a[i] @ b[j]) / tau for j in range(B)] for i in range(B)]
    rows = sum(-S[i][i] + math.log(sum(math.exp(S[i][j]) for j in range(B))) for i in range(B)) / B
    cols = sum(-S[j][j] + math.log(sum(math.exp(S[i][j]) for i in range(B))) for j in range(B)) / B
    return (rows + cols) / 2


# --- InfoNCE ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_info_nce_is_the_mean_of_two_cross_entropies(seed):
    a, b, tau = random_pair(seed)
    S = a @ b.T / tau
    labels = torch.arange(len(a))
    want = (F.cross_entropy(S, labels) + F.cross_entropy(S.T, labels)) / 2
    torch.testing.assert_close(mm.info_nce(a, b, tau), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_info_nce_matches_a_loop_over_the_definition(seed):
    a, b, tau = random_pair(seed)
    assert mm.info_nce(a, b, tau).item() == pytest.approx(info_nce_loop(a, b, tau), rel=1e-10)


def test_info_nce_is_symmetric_in_its_arguments_but_each_direction_alone_is_not():
    g = torch.Generator().manual_seed(0)
    a, b = unit_rows(6, 4, g), unit_rows(6, 4, g)
    torch.testing.assert_close(mm.info_nce(a, b, 0.1), mm.info_nce(b, a, 0.1))
    S = a @ b.T / 0.1
    labels = torch.arange(6)
    rows, cols = F.cross_entropy(S, labels), F.cross_entropy(S.T, labels)
    assert abs(rows - cols) > 0.1  # the two directions really differ on these inputs


def test_info_nce_accepts_a_learned_temperature_and_passes_gradients_to_it():
    g = torch.Generator().manual_seed(1)
    a, b = unit_rows(5, 3, g).requires_grad_(), unit_rows(5, 3, g)
    log_scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    mm.info_nce(a, b, torch.exp(-log_scale)).backward()
    assert a.grad is not None and log_scale.grad is not None and log_scale.grad != 0


def test_perfect_and_collapsed_embeddings_give_the_expected_losses():
    B, tau = 8, 0.5
    eye = torch.eye(B, dtype=torch.float64)
    floor = math.log(1 + (B - 1) * math.exp(-1 / tau))  # orthogonal pairs: S_ii = 1/tau, S_ij = 0
    assert mm.info_nce(eye, eye, tau).item() == pytest.approx(floor, rel=1e-12)
    same = torch.ones(B, 1, dtype=torch.float64)
    assert mm.info_nce(same, same, tau).item() == pytest.approx(math.log(B), rel=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "tau", "message"),
    [
        (torch.zeros(4, 3), torch.zeros(5, 3), 0.1, "same number of pairs"),
        (torch.zeros(4, 3), torch.zeros(4, 2), 0.1, "same width"),
        (torch.zeros(4), torch.zeros(4, 3), 0.1, "2-D"),
        (np.zeros((4, 3)), torch.zeros(4, 3), 0.1, "2-D tensor"),
        (torch.zeros(4, 3), torch.zeros(4, 3), 0.0, "positive"),
        (torch.zeros(4, 3), torch.zeros(4, 3), torch.tensor([0.1, 0.2]), "one positive"),
    ],
)
def test_info_nce_bad_inputs_are_clear_errors(a, b, tau, message):
    with pytest.raises(ValueError, match=message):
        mm.info_nce(a, b, tau)


# --- the temperature helper and its slider ------------------------------------------------------------------
def test_similarity_softmax_is_a_row_softmax_and_temperature_moves_it_from_one_hot_to_uniform():
    g = torch.Generator().manual_seed(2)
    a, b = unit_rows(5, 4, g), unit_rows(7, 4, g)
    P = mm.similarity_softmax(a, b, 0.3)
    assert P.shape == (5, 7)
    torch.testing.assert_close(P, torch.softmax(a @ b.T / 0.3, dim=1))
    torch.testing.assert_close(P.sum(dim=1), torch.ones(5, dtype=torch.float64))
    cold = mm.similarity_softmax(a, b, 1e-4)
    torch.testing.assert_close(cold, F.one_hot((a @ b.T).argmax(1), 7).double())
    hot = mm.similarity_softmax(a, b, 1e4)
    torch.testing.assert_close(hot, torch.full((5, 7), 1 / 7, dtype=torch.float64), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="positive"):
        mm.similarity_softmax(a, b, -1.0)
    with pytest.raises(ValueError, match="same width"):
        mm.similarity_softmax(a, b[:, :3], 1.0)


def test_temperature_slider_redraws_a_sharper_matrix_headless():
    g = torch.Generator().manual_seed(3)
    a = unit_rows(6, 8, g)
    b = F.normalize(a + 0.5 * torch.randn(6, 8, generator=g, dtype=torch.float64), dim=1)
    shown = {}

    def draw(temperature):
        P = mm.similarity_softmax(a, b, temperature)
        shown["diagonal"] = P.diagonal().mean().item()
        plt.imshow(P.numpy(), vmin=0, vmax=1)

    view = slider_view(draw, temperature=(0.02, 2.0, 0.02, 1.0))
    before, warm = view.image, shown["diagonal"]
    view.set(temperature=0.04)
    assert view.redraws == 2 and np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    assert shown["diagonal"] > warm


# --- recall@k -----------------------------------------------------------------------------------------------
def recall_brute_force(S, k, query_labels, item_labels):
    hits = 0
    for i in range(S.shape[0]):
        order = sorted(range(S.shape[1]), key=lambda j: -float(S[i, j]))
        hits += any(item_labels[j] == query_labels[i] for j in order[:k])
    return hits / S.shape[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_recall_at_k_matches_a_brute_force(seed):
    rng = np.random.default_rng(seed)
    Q, N = (int(v) for v in rng.integers(1, 15, size=2))
    S = torch.as_tensor(rng.normal(size=(Q, N)))
    q_labels, i_labels = rng.integers(0, 4, size=Q), rng.integers(0, 4, size=N)
    for k in (1, 2, 5, N + 3):
        assert mm.recall_at_k(S, k, q_labels, i_labels) == pytest.approx(
            recall_brute_force(S, k, q_labels, i_labels)
        )
    square = S[:Q, :Q] if N >= Q else torch.as_tensor(rng.normal(size=(Q, Q)))
    for k in (1, 3):
        want = recall_brute_force(square, k, list(range(Q)), list(range(Q)))
        assert mm.recall_at_k(square, k) == pytest.approx(want)


def test_recall_at_k_on_a_hand_example():
    S = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.7, 0.1], [0.2, 0.3, 0.1]])
    assert mm.recall_at_k(S, 1) == pytest.approx(1 / 3)  # only row 0 ranks its own column first
    assert mm.recall_at_k(S, 2) == pytest.approx(2 / 3)
    assert mm.recall_at_k(S, 3) == 1.0


@pytest.mark.parametrize(
    ("S", "k", "labels", "error"),
    [
        (torch.zeros(3, 3), 0, None, "k must be an int >= 1"),
        (torch.zeros(3, 3), -2, None, "k must be an int >= 1"),
        (torch.zeros(3, 3), 1.5, None, "k must be an int >= 1"),
        (torch.zeros(3, 3), True, None, "k must be an int >= 1"),
        (torch.zeros(3, 4), 1, None, "square"),
        (torch.zeros(3), 1, None, "2-D"),
        (torch.zeros(3, 4), 1, ([0, 1, 2], None), "both"),
        (torch.zeros(3, 4), 1, ([0, 1], [0, 1, 2, 3]), "need 3 query labels"),
    ],
)
def test_recall_at_k_bad_inputs_are_clear_errors(S, k, labels, error):
    q, i = labels if labels is not None else (None, None)
    with pytest.raises(ValueError, match=error):
        mm.recall_at_k(S, k, q, i)


# --- captions and pictures ----------------------------------------------------------------------------------
def some_digits(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), np.arange(n) % 10


def test_caption_generator_is_deterministic_and_uses_only_its_vocabulary():
    images, labels = some_digits()
    first = mm.make_pairs(images, labels, seed=3, copies=2)
    again = mm.make_pairs(images, labels, seed=3, copies=2)
    other = mm.make_pairs(images, labels, seed=4, copies=2)
    assert first["captions"] == again["captions"] and torch.equal(first["images"], again["images"])
    assert first["captions"] != other["captions"]
    assert first["images"].shape == (80, 1, 16, 16) and len(first["captions"]) == 80
    words = {w for c in first["captions"] for w in c.split()}
    assert words <= set(mm.VOCAB)
    for cap, d, s, p, t in zip(
        first["captions"], first["digit"], first["size"], first["position"], first["template"], strict=True
    ):
        assert cap == mm.caption(d, s, p, t) and mm.DIGIT_WORDS[d] in cap.split()
    assert len(mm.VOCAB) == len(set(mm.VOCAB)) == 20


def test_every_caption_and_prompt_tokenizes_and_unknown_words_are_errors():
    for combo in mm.combos():
        for t in range(len(mm.TEMPLATES)):
            ids = mm.tokenize(mm.caption(*combo, template=t))
            assert all(0 <= i < len(mm.VOCAB) for i in ids)
    assert mm.caption(3, "small", "top left") == "a small three in the top left"
    assert mm.prompt("digit", 3) == "a three" and mm.prompt("position", "top right") == "in the top right"
    prompts = [mm.prompt("digit", d) for d in range(10)] + [mm.prompt("position", p) for p in mm.POSITIONS]
    captions = {mm.caption(*c, template=t) for c in mm.combos() for t in range(len(mm.TEMPLATES))}
    assert not captions & set(prompts)  # the prompts are never training captions
    with pytest.raises(ValueError, match="unknown words"):
        mm.tokenize("a photo of a three")
    with pytest.raises(ValueError, match="unknown words"):
        mm.tokenize("")
    with pytest.raises(ValueError, match="digit must be"):
        mm.caption(10, "small", "top left")
    with pytest.raises(ValueError, match="size must be"):
        mm.caption(1, "huge", "top left")
    with pytest.raises(ValueError, match="kind must be"):
        mm.prompt("colour", "red")


def test_held_out_pairs_never_appear_when_excluded():
    images, labels = some_digits(200)
    pairs = mm.make_pairs(images, labels, seed=0, copies=3, exclude=mm.HELD_OUT)
    drawn = set(zip(pairs["digit"].tolist(), pairs["position"].tolist(), strict=True))
    assert not drawn & mm.HELD_OUT
    assert len(drawn) == 30  # every other digit-corner pair does appear
    assert len(mm.HELD_OUT) == 10 and {p for _, p in mm.HELD_OUT} == set(mm.POSITIONS)


def test_render_puts_the_ink_in_the_named_corner():
    images, _ = some_digits(8)
    for size in mm.SIZES:
        for position in mm.POSITIONS:
            canvas = mm.render(images, [size] * 8, [position] * 8)[:, 0]  # (8, 16, 16)
            top = canvas[:, :8].sum() > canvas[:, 8:].sum()
            left = canvas[:, :, :8].sum() > canvas[:, :, 8:].sum()
            assert top == ("top" in position) and left == ("left" in position), (size, position)
            if size == "small":
                torch.testing.assert_close(canvas.sum(dim=(1, 2)), images.sum(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        mm.render(torch.zeros(2, 8, 8), ["small"] * 2, ["top left"] * 2)
    with pytest.raises(ValueError, match="one size and one position per image"):
        mm.render(images, ["small"], ["top left"])
    with pytest.raises(ValueError, match="one label per image"):
        mm.make_pairs(images, [1, 2, 3])
    with pytest.raises(ValueError, match="copies"):
        mm.make_pairs(images, list(range(8)), copies=0)


# --- towers -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pool", ["what-where", "grid"])
def test_image_tower_gives_unit_rows(pool):
    torch.manual_seed(0)
    tower = mm.ImageTower(d=12, pool=pool)
    z = tower(torch.rand(5, 1, 16, 16))
    assert z.shape == (5, 12)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        tower(torch.rand(5, 16, 16))
    with pytest.raises(ValueError, match="pool must be"):
        mm.ImageTower(pool="avg")


def test_text_tower_groups_lengths_without_changing_any_row():
    torch.manual_seed(0)
    tower = mm.TextTower(d=12).eval()
    texts = [
        "a three",
        mm.caption(3, "large", "top left"),
        "in the top left",
        mm.caption(5, "small", "bottom right", 1),
    ]
    together = tower.encode(texts)
    assert together.shape == (4, 12)
    torch.testing.assert_close(together.norm(dim=1), torch.ones(4))
    for i, t in enumerate(texts):
        torch.testing.assert_close(tower.encode([t])[0], together[i])
    with pytest.raises(ValueError, match="list of captions"):
        tower.encode("a three")
    with pytest.raises(ValueError, match="1 <= T <= 12"):
        tower(torch.zeros(2, 13, dtype=torch.long))


def test_clip_two_towers_and_learned_temperature():
    torch.manual_seed(0)
    model = mm.CLIP(mm.ImageTower(d=16), mm.TextTower(d=16), temperature=0.2)
    assert model.temperature.item() == pytest.approx(0.2)
    images, labels = some_digits(6)
    pairs = mm.make_pairs(images, labels, seed=0)
    zi, zt = model.encode_image(pairs["images"]), model.encode_text(pairs["captions"])
    assert zi.shape == zt.shape == (6, 16)
    loss = model.loss(pairs["images"], pairs["captions"])
    torch.testing.assert_close(loss, mm.info_nce(zi, zt, model.temperature))
    loss.backward()
    assert model.logit_scale.grad is not None
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.temperature.item() == pytest.approx(0.01)  # clamped: the scale never passes 100


def test_audio_tower_shapes_and_errors():
    tower = mm.AudioTower(n_mels=10, d=8)
    z = tower(torch.randn(3, 10, 25))
    assert z.shape == (3, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match=r"\(B, 10, frames\)"):
        tower(torch.randn(3, 12, 25))


# --- batches and training -----------------------------------------------------------------------------------
def test_distinct_batches_never_repeat_a_key_and_use_each_row_once():
    keys = np.repeat(np.arange(10), 7)
    batches = mm.distinct_batches(keys, 10, seed=0)
    used = np.concatenate(batches)
    assert sorted(used.tolist()) == list(range(70))
    for batch in batches:
        assert len(set(keys[batch].tolist())) == len(batch) <= 10
    again = mm.distinct_batches(keys, 10, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))
    with pytest.raises(ValueError, match="at least 2"):
        mm.distinct_batches(keys, 1)


def test_train_contrastive_learns_to_pair_two_views():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = x @ torch.randn(6, 6, generator=g)  # a second "modality": a linear view of the first
    f, h = torch.nn.Linear(6, 8), torch.nn.Linear(6, 8)

    def loss_fn(batch):
        return mm.info_nce(F.normalize(f(x[batch]), dim=1), F.normalize(h(y[batch]), dim=1), 0.1)

    history = mm.train_contrastive(
        loss_fn,
        [*f.parameters(), *h.parameters()],
        np.arange(64),
        epochs=60,
        batch_size=16,
        lr=1e-2,
        progress=False,
    )
    assert history.step_loss[-1] < history.step_loss[0] / 3
    with torch.no_grad():
        S = F.normalize(f(x), dim=1) @ F.normalize(h(y), dim=1).T
    assert mm.recall_at_k(S, 1) > 0.5  # chance is 1/64
    with pytest.raises(ValueError, match="epochs"):
        mm.train_contrastive(loss_fn, f.parameters(), np.arange(64), epochs=0)
