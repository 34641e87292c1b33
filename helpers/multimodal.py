"""Multimodal learning (chapter 25): two encoders, one embedding space, trained by contrast.

What this module adds over the towers it borrows (chapter 12's DigitCNN body for images, chapter 17's
Block for text, a 1-D convolution for chapter 23's log-mel spectrograms):

    info_nce(a, b, temperature)          the symmetric contrastive loss of CLIP, from log-softmaxes
    similarity_softmax(a, b, temperature) the row softmax of the similarity matrix (the temperature slider)
    recall_at_k(similarity, k, ...)       retrieval quality: is a right answer among the k best?
    captions: `caption`, `tokenize`, `make_pairs`, `render`  digits on a 16 x 16 canvas, described in words
    towers:   ImageTower, TextTower, AudioTower; CLIP = an image tower, a text tower, a learned temperature
    training: `distinct_batches` (no repeated key inside a batch) and `train_contrastive`

Embeddings are rows of unit length, so a dot product is a cosine similarity (chapter 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.cnn import DigitCNN, place_on_canvas
from helpers.normalization import LayerNorm
from helpers.train import History
from helpers.transformer import Block


# --- the contrastive loss -----------------------------------------------------------------------------------
def check_embeddings(a, b, temperature=None, paired: bool = True) -> None:
    """A clear ValueError unless a and b are 2-D (rows, d) tensors of one width (and as many rows, if
    `paired`), and the temperature, if given, is one positive number."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ValueError(f"{name} must be a 2-D tensor (B, d), got {getattr(x, 'shape', type(x))}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width d, got {tuple(a.shape)} and {tuple(b.shape)}")
    if paired and a.shape[0] != b.shape[0]:
        raise ValueError(
            f"a and b must hold the same number of pairs (row i of a goes with row i of b), "
            f"got {a.shape[0]} and {b.shape[0]} rows"
        )
    if temperature is not None:
        t = torch.as_tensor(temperature).detach()
        if t.numel() != 1 or not bool(t > 0):
            raise ValueError(f"temperature must be one positive number, got {temperature}")


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float | torch.Tensor = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE: row i of a belongs with row i of b and with no other row.

    S = a b^T / temperature is (B, B). Reading each row of S as a B-way classification "which b goes with
    this a?" gives the loss -mean_i log softmax_row(S)[i, i]; reading each column ("which a goes with this
    b?") gives -mean_j log softmax_col(S)[j, j]. The loss is the average of the two directions.
    """
    check_embeddings(a, b, temperature)
    S = a @ b.T / temperature  # (B, B): S[i, j] = a_i . b_j / tau
    a_to_b = -torch.log_softmax(S, dim=1).diagonal().mean()  # each row: which b is a_i's?
    b_to_a = -torch.log_softmax(S, dim=0).diagonal().mean()  # each column: which a is b_j's?
    return (a_to_b + b_to_a) / 2


def similarity_softmax(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax over each row of a b^T / temperature: (len(a), len(b)), every row sums to 1.

    Row i is how the loss spreads a_i's probability over the b's; temperature -> 0 makes it one-hot at the
    largest similarity, temperature -> infinity makes it uniform.
    """
    check_embeddings(a, b, temperature, paired=False)
    return torch.softmax(a @ b.T / temperature, dim=1)  # (A, B)


def recall_at_k(
    similarity: torch.Tensor,
    k: int,
    query_labels: Sequence[int] | torch.Tensor | None = None,
    item_labels: Sequence[int] | torch.Tensor | None = None,
) -> float:
    """Fraction of queries (rows of `similarity`, shape (Q, N)) with a right item among their k best columns.

    Without labels, the right item of query i is column i (paired data, Q == N). With labels, an item is
    right for a query when their labels are equal (e.g. any image of the digit a recording says).
    Ties are broken in favour of the lower column index.
    """
    if not isinstance(similarity, torch.Tensor) or similarity.dim() != 2:
        raise ValueError(
            f"similarity must be a 2-D tensor (queries, items), got {getattr(similarity, 'shape', '?')}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    Q, N = similarity.shape
    if (query_labels is None) != (item_labels is None):
        raise ValueError("give both query_labels and item_labels, or neither")
    if query_labels is None:
        if Q != N:
            raise ValueError(
                f"without labels the similarity must be square (query i <-> item i), got {(Q, N)}"
            )
        query_labels, item_labels = torch.arange(Q), torch.arange(N)
    query_labels = torch.as_tensor(query_labels).to(similarity.device)
    item_labels = torch.as_tensor(item_labels).to(similarity.device)
    if query_labels.shape != (Q,) or item_labels.shape != (N,):
        raise ValueError(
            f"need {Q} query labels and {N} item labels, got {tuple(query_labels.shape)} and "
            f"{tuple(item_labels.shape)}"
        )
    top = torch.topk(similarity, min(k, N), dim=1, sorted=True).indices  # (Q, k): the k best items
    hits = (item_labels[top] == query_labels[:, None]).any(dim=1)  # (Q,)
    return hits.sum().item() / Q


# --- digits on a canvas, and their captions -----------------------------------------------------------------
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZES = ("small", "large")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
CANVAS = 16  # pixels per side
DIGIT_SIDE = {"small": 8, "large": 12}  # side of the digit on the canvas
#: Caption templates used for training; PROMPTS are never training captions (zero-shot only).
TEMPLATES = ("a {size} {digit} in the {position}", "{position} : a {size} {digit}")
PROMPTS = {"digit": "a {digit}", "position": "in the {position}", "size": "a {size}"}
VOCAB = tuple(
    sorted(
        {w for t in (*TEMPLATES, *PROMPTS.values()) for w in t.split() if not w.startswith("{")}
        | set(DIGIT_WORDS)
        | set(SIZES)
        | {w for p in POSITIONS for w in p.split()}
    )
)
WORD_ID = {w: i for i, w in enumerate(VOCAB)}
#: Digit-position pairs never shown in training: each digit misses one corner (in both sizes).
HELD_OUT = frozenset((d, POSITIONS[d % len(POSITIONS)]) for d in range(10))


def combos() -> list[tuple[int, str, str]]:
    """All (digit, size, position) triples, in a fixed order: 10 x 2 x 4 = 80."""
    return [(d, s, p) for d in range(10) for s in SIZES for p in POSITIONS]


def caption(digit: int, size: str, position: str, template: int = 0) -> str:
    """The words for a digit drawn at a size and position, e.g. 'a small three in the top left'."""
    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    if size not in SIZES or position not in POSITIONS:
        raise ValueError(
            f"size must be one of {SIZES} and position one of {POSITIONS}, got {size!r}, {position!r}"
        )
    if not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be 0..{len(TEMPLATES) - 1}, got {template}")
    return TEMPLATES[template].format(size=size, digit=DIGIT_WORDS[int(digit)], position=position)


def prompt(kind: str, value) -> str:
    """A zero-shot prompt, in a form no training caption has: 'a three', 'in the top left', 'a large'."""
    if kind not in PROMPTS:
        raise ValueError(f"kind must be one of {sorted(PROMPTS)}, got {kind!r}")
    if kind == "digit":
        return PROMPTS[kind].format(digit=DIGIT_WORDS[int(value)])
    return PROMPTS[kind].format(**{kind: value})


def tokenize(text: str) -> list[int]:
    """Word ids of a caption (lower case, split on spaces); unknown words are an error."""
    words = text.lower().split()
    unknown = [w for w in words if w not in WORD_ID]
    if not words or unknown:
        raise ValueError(
            f"cannot tokenize {text!r}: unknown words {unknown}; the vocabulary is {list(VOCAB)}"
        )
    return [WORD_ID[w] for w in words]


def render(images: torch.Tensor, sizes: Sequence[str], positions: Sequence[str]) -> torch.Tensor:
    """(N, 1, 8, 8) digits drawn on a blank (N, 1, 16, 16) canvas, each at its own size and corner.

    A small digit is the 8 x 8 original in a quarter of the canvas; a large one is scaled to 12 x 12
    (bilinear) and pushed into the corner, so it covers most of the canvas.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError(
            f"images must be a (N, 1, 8, 8) tensor, got {getattr(images, 'shape', type(images))}"
        )
    if not len(sizes) == len(positions) == len(images):
        raise ValueError(
            f"need one size and one position per image, got {len(sizes)}, {len(positions)}, {len(images)}"
        )
    out = images.new_zeros(len(images), 1, CANVAS, CANVAS)  # (N, 1, 16, 16)
    sizes, positions = np.asarray(sizes), np.asarray(positions)
    for size in SIZES:
        side = DIGIT_SIDE[size]
        room = (CANVAS - side) // 2  # how far the centred digit can move to each side
        for position in POSITIONS:
            rows = np.flatnonzero((sizes == size) & (positions == position))
            if len(rows) == 0:
                continue
            digits = images[rows]  # (n, 1, 8, 8)
            if side != 8:
                digits = F.interpolate(digits, size=(side, side), mode="bilinear", align_corners=False)
            shift = (-room if "top" in position else room, -room if "left" in position else room)
            out[rows] = place_on_canvas(digits, CANVAS, shift)  # (n, 1, 16, 16)
    return out


def make_pairs(
    images: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    seed: int = 0,
    copies: int = 1,
    exclude: frozenset = frozenset(),
) -> dict:
    """Captioned images: each digit drawn `copies` times at a random size and corner, with a caption.

    Deterministic for a given seed. `exclude` holds (digit, position) pairs that are never drawn.
    Returns a dict with "images" (N, 1, 16, 16), "captions" (N strings), and the attributes "digit",
    "size", "position", "template" and "combo" (the index of (digit, size, position) in `combos()`).
    """
    labels = np.asarray(labels)
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    if len(labels) != len(images):
        raise ValueError(f"need one label per image, got {len(labels)} labels for {len(images)} images")
    rng = np.random.default_rng(seed)
    allowed = {d: [(s, p) for s in SIZES for p in POSITIONS if (d, p) not in exclude] for d in range(10)}
    index = {c: i for i, c in enumerate(combos())}
    rows, sizes, positions, templates = [], [], [], []
    for _ in range(copies):
        for i, d in enumerate(labels):
            s, p = allowed[int(d)][rng.integers(len(allowed[int(d)]))]
            rows.append(i)
            sizes.append(s)
            positions.append(p)
            templates.append(int(rng.integers(len(TEMPLATES))))
    rows = np.array(rows)
    digits = labels[rows]
    return {
        "images": render(images[torch.as_tensor(rows)], sizes, positions),
        "captions": [
            caption(d, s, p, t) for d, s, p, t in zip(digits, sizes, positions, templates, strict=True)
        ],
        "digit": digits,
        "size": np.array(sizes),
        "position": np.array(positions),
        "template": np.array(templates),
        "combo": np.array([index[(int(d), s, p)] for d, s, p in zip(digits, sizes, positions, strict=True)]),
    }


# --- the towers ---------------------------------------------------------------------------------------------
class ImageTower(nn.Module):
    """Chapter 12's DigitCNN convolutions, pooled so that the embedding knows *where* the digit is, projected.

    DigitCNN takes one global max per channel: it says what is on the canvas, never where. Two fixes:
      pool="what-where": that global max ("what", C numbers) next to a 4 x 4 thumbnail of the canvas
                         ("where", 16 numbers of ink per 4 x 4 block), so the two kinds of fact stay apart;
      pool="grid":       one max per channel in each quarter of the canvas (4C numbers), so each corner
                         learns its own digit detectors.
    """

    def __init__(self, d: int = 32, channels: Sequence[int] = (16, 32), pool: str = "what-where"):
        super().__init__()
        if pool not in ("what-where", "grid"):
            raise ValueError(f"pool must be 'what-where' or 'grid', got {pool!r}")
        self.body = DigitCNN(channels)
        self.body.head = nn.Identity()  # the classifier is not used: the projection replaces it
        self.pool = pool
        width = channels[-1] + 16 if pool == "what-where" else 4 * channels[-1]
        self.proj = nn.Linear(width, d)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be (B, 1, H, W), got {tuple(images.shape)}")
        maps = self.body.feature_maps(images)[-1]  # (B, C, H, W)
        if self.pool == "what-where":
            what = maps.amax(dim=(2, 3))  # (B, C): DigitCNN's global max pool
            where = F.adaptive_avg_pool2d(images, 4).flatten(1)  # (B, 16): ink in each 4 x 4 block
            features = torch.cat([what, where], dim=1)  # (B, C + 16)
        else:
            features = F.adaptive_max_pool2d(maps, 2).flatten(1)  # (B, 4C): a max per channel and quarter
        return F.normalize(self.proj(features), dim=-1)  # (B, d), unit rows


class TextTower(nn.Module):
    """Word embeddings + learned positions, chapter 17's Block with causal=False, mean-pooled, projected."""

    def __init__(self, d: int = 32, n_embd: int = 32, n_head: int = 4, n_layer: int = 2, max_len: int = 12):
        super().__init__()
        self.wte = nn.Embedding(len(VOCAB), n_embd)
        self.wpe = nn.Embedding(max_len, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, causal=False) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.proj = nn.Linear(n_embd, d)
        self.max_len = max_len

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (B, T) word ids of B captions of the same length T -> (B, d) unit rows."""
        if ids.dim() != 2 or not 1 <= ids.shape[1] <= self.max_len:
            raise ValueError(f"ids must be (B, T) with 1 <= T <= {self.max_len}, got {tuple(ids.shape)}")
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.wte(ids) + self.wpe(positions)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C): every word sees every other word
        pooled = self.ln_f(x).mean(dim=1)  # (B, C)
        return F.normalize(self.proj(pooled), dim=-1)  # (B, d)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Captions of any lengths -> (len(texts), d): captions of equal length run together, no padding."""
        if isinstance(texts, str):
            raise ValueError("encode takes a list of captions, not one string")
        token_lists = [tokenize(t) for t in texts]
        device = self.wte.weight.device
        out = torch.empty(len(texts), self.proj.out_features, device=device)  # (N, d)
        for length in sorted({len(t) for t in token_lists}):
            rows = [i for i, t in enumerate(token_lists) if len(t) == length]
            ids = torch.tensor([token_lists[i] for i in rows], device=device)  # (n, length)
            out[rows] = self(ids)
        return out


class AudioTower(nn.Module):
    """Log-mel spectrograms (B, n_mels, frames) -> (B, d): two 1-D convolutions, mean and max over time."""

    def __init__(self, n_mels: int, d: int = 32, width: int = 64):
        super().__init__()
        self.n_mels = n_mels
        self.conv1 = nn.Conv1d(n_mels, width, 5, padding=2)
        self.conv2 = nn.Conv1d(width, width, 5, padding=2)
        self.proj = nn.Linear(2 * width, d)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        if mels.dim() != 3 or mels.shape[1] != self.n_mels:
            raise ValueError(f"expected (B, {self.n_mels}, frames), got {tuple(mels.shape)}")
        h = F.gelu(self.conv1(mels))  # (B, width, frames)
        h = F.gelu(self.conv2(h))  # (B, width, frames)
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)  # (B, 2 * width)
        return F.normalize(self.proj(pooled), dim=-1)  # (B, d)


class CLIP(nn.Module):
    """Two towers into one d-dimensional space, and a learned temperature tau = exp(-logit_scale)."""

    def __init__(self, image_tower: ImageTower, text_tower: TextTower, temperature: float = 0.1):
        super().__init__()
        self.image_tower, self.text_tower = image_tower, text_tower
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))  # learned, in log space

    @property
    def temperature(self) -> torch.Tensor:
        return torch.exp(-self.logit_scale.clamp(max=math.log(100.0)))  # never below 0.01

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_tower(images)  # (B, d)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_tower.encode(texts)  # (B, d)

    def loss(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        return info_nce(self.encode_image(images), self.encode_text(texts), self.temperature)


# --- training -----------------------------------------------------------------------------------------------
def distinct_batches(keys: Sequence[int], batch_size: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffled batches of indices in which no key appears twice (every index used once).

    InfoNCE counts every other row of a batch as a wrong answer, so two rows with the same caption (or two
    recordings of the same digit) in one batch would each be pushed away from its own right answer.
    Batches with fewer than 2 rows are dropped.
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2, got {batch_size}")
    rng = np.random.default_rng(seed)
    keys = np.asarray(keys)
    queues = {k: list(rng.permutation(np.flatnonzero(keys == k))) for k in np.unique(keys)}
    batches = []
    while True:
        left = [k for k, q in queues.items() if q]
        if len(left) < 2:
            break
        counts = np.array([len(queues[k]) for k in left], dtype=float)
        chosen = rng.choice(
            len(left), size=min(batch_size, len(left)), replace=False, p=counts / counts.sum()
        )
        batches.append(np.array([queues[left[c]].pop() for c in chosen]))
    return [batches[i] for i in rng.permutation(len(batches))]


def train_contrastive(
    loss_fn: Callable[[np.ndarray], torch.Tensor],
    parameters,
    keys: Sequence[int],
    epochs: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Adam on `loss_fn(batch_indices)` over `distinct_batches(keys, ...)`, reshuffled every epoch.

    Returns a History with the loss of every step (and nothing per epoch), for helpers.train.plot_history.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    optimizer = torch.optim.Adam(parameters, lr=lr)
    history = History()
    for epoch in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
        for batch in distinct_batches(keys, batch_size, seed=seed + epoch):
            loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.step_loss.append(loss.item())
    return history
