"""Sliders moved headless: each move redraws, and the picture and the maths behind it change."""

import warnings

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import slider_view
from helpers.plots import draw_linear_map, linear_map_picture, load_shape

warnings.filterwarnings("ignore", message=".*non-interactive.*")


def draw_line(slope):
    xs = np.linspace(-1, 1, 20)
    plt.plot(xs, slope * xs)
    plt.ylim(-3, 3)


def test_moving_a_slider_redraws_a_different_picture():
    view = slider_view(draw_line, slope=(-2.0, 2.0, 0.5, 0.5))
    assert view.redraws == 1 and view.image is not None
    before = view.image
    view.set(slope=-1.5)
    assert view.redraws == 2
    assert view.values == {"slope": -1.5}
    assert view.image.shape == before.shape
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    view.set(slope=0.5)
    np.testing.assert_array_equal(view.image, before)  # same value, same picture


def test_controls_are_sliders_of_the_right_kind():
    view = slider_view(lambda n, on: plt.plot(range(n)), n=(1, 10, 1, 3), on=widgets.Checkbox(value=True))
    assert isinstance(view.controls["n"], widgets.IntSlider)
    assert isinstance(view.controls["on"], widgets.Checkbox)
    assert isinstance(view.widget, widgets.VBox)
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"slope": (0.0, 1.0, 0.1, 2.0)}, ValueError, "outside"),
        ({"slope": (0.0, 1.0, 0.0, 0.5)}, ValueError, "step must be positive"),
        ({"slope": (0.0, 1.0)}, TypeError, "min, max, step, value"),
        ({"slope": (0.0, 1.0, 0.1, 0.5), "extra": (0, 1, 1, 0)}, TypeError, "unexpected"),
        ({}, TypeError, "missing"),
    ],
)
def test_bad_slider_specs_get_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        slider_view(draw_line, **kwargs)


def test_set_unknown_slider_is_a_clear_error():
    view = slider_view(draw_line, slope=(-2.0, 2.0, 0.5, 0.5))
    with pytest.raises(KeyError, match="no slider named 'angle'"):
        view.set(angle=1.0)


def test_chapter1_matrix_slider_moves_the_grid_and_the_shape():
    shape = load_shape("F")

    def draw(a, b, c, d):
        fig, ax = plt.subplots()
        draw_linear_map(ax, [[a, b], [c, d]], shape)

    view = slider_view(
        draw,
        a=(-2.0, 2.0, 0.1, 1.0),
        b=(-2.0, 2.0, 0.1, 0.0),
        c=(-2.0, 2.0, 0.1, 0.0),
        d=(-2.0, 2.0, 0.1, 1.0),
    )
    identity = view.image
    view.set(b=1.0)  # a shear
    assert np.abs(view.image.astype(int) - identity.astype(int)).sum() > 0
    sheared = linear_map_picture([[1, 1], [0, 1]], shape)
    np.testing.assert_allclose(sheared["e2"], [1, 1])
    np.testing.assert_allclose(sheared["shape"][:, 0], shape[:, 0] + shape[:, 1])
    assert sheared["area_scale"] == pytest.approx(1.0)
