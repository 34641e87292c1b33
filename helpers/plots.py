"""Pictures that several chapters draw: linear maps of the plane, arrows for vectors.

Each drawing function takes an Axes and draws on it; the numbers it draws come from a function that
returns data (`linear_map_picture`), so tests can check the maths without looking at pixels.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np

from helpers.data import data_path
from helpers.linalg import apply_to_points, as_matrix

BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#9a9a9a"


def load_shape(name: str = "F") -> np.ndarray:
    """A closed outline from data/shapes.json as a (k, 2) array of corner points."""
    shapes = json.loads(data_path("shapes.json").read_text())
    if name not in shapes:
        raise KeyError(f"no shape {name!r}; data/shapes.json has {sorted(shapes)}")
    return np.array(shapes[name], dtype=float)


def grid_lines(half_width: int = 3, samples: int = 2) -> list[np.ndarray]:
    """The lines x = i and y = i for |i| <= half_width, each a (samples, 2) array of points."""
    t = np.linspace(-half_width, half_width, samples)
    lines = []
    for i in range(-half_width, half_width + 1):
        lines.append(np.column_stack([np.full_like(t, i), t]))  # vertical
        lines.append(np.column_stack([t, np.full_like(t, i)]))  # horizontal
    return lines


def linear_map_picture(A, shape: np.ndarray, half_width: int = 3) -> dict[str, object]:
    """Everything the linear-map figure shows, as numbers: the mapped grid, basis vectors and shape."""
    A = as_matrix(A)
    if A.shape != (2, 2):
        raise ValueError(f"the picture is of the plane, so A must be 2x2, got {A.shape}")
    return {
        "grid": [apply_to_points(A, line) for line in grid_lines(half_width)],
        "e1": A[:, 0],  # where (1, 0) lands: the first column
        "e2": A[:, 1],  # where (0, 1) lands: the second column
        "shape": apply_to_points(A, shape),
        "area_scale": float(np.linalg.det(A)),
    }


def draw_linear_map(ax: plt.Axes, A, shape: np.ndarray | None = None, half_width: int = 3, lim: float = 3.2):
    """Draw the plane before (grey) and after (colour) the map A: grid, basis vectors, and a shape."""
    shape = load_shape("F") if shape is None else shape
    picture = linear_map_picture(A, shape, half_width)
    for line in grid_lines(half_width):
        ax.plot(line[:, 0], line[:, 1], color=GREY, lw=0.6, alpha=0.5)
    for line in picture["grid"]:
        ax.plot(line[:, 0], line[:, 1], color=BLUE, lw=0.9, alpha=0.7)
    ax.fill(shape[:, 0], shape[:, 1], color=GREY, alpha=0.35)
    ax.fill(picture["shape"][:, 0], picture["shape"][:, 1], color=ORANGE, alpha=0.8)
    for vector, label, colour in [(picture["e1"], "$Ae_1$", "#d62728"), (picture["e2"], "$Ae_2$", "#2ca02c")]:
        ax.annotate("", xy=vector, xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2})
        ax.text(*(1.08 * vector), label, color=colour, fontsize=11)
    ax.grid(False)  # the grey grid is the plane before the map
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    return picture
