"""Sliders that redraw a figure, and that a test can move without a browser.

A view is a drawing function plus named sliders. The function draws with matplotlib and calls nothing
else; the view calls it again whenever a slider moves (ipywidgets 8 `interactive_output`, inline backend,
`plt.show()` after each drawing). Keep the maths out of the drawing function, in a helper that returns
data, so that tests can check the numbers as well as the picture.

    view = slider_view(draw, angle=(0.0, 360.0, 5.0, 30.0))
    view                      # in a notebook: sliders above the figure
    view.set(angle=90.0)      # in a test: move a slider as a reader would
    view.image                # the pixels last drawn, an (H, W, 4) uint8 array
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

SliderSpec = tuple | widgets.ValueWidget


def make_slider(name: str, spec: SliderSpec) -> widgets.ValueWidget:
    """A slider from `(min, max, step, value)`; ints give an IntSlider, floats a FloatSlider.

    A ready-made ipywidgets control (a dropdown, a checkbox) is passed through unchanged.
    """
    if isinstance(spec, widgets.ValueWidget):
        return spec
    if not isinstance(spec, tuple) or len(spec) != 4:
        raise TypeError(
            f"slider {name!r}: give (min, max, step, value) or an ipywidgets control, got {spec!r}"
        )
    lo, hi, step, value = spec
    if not lo <= value <= hi:
        raise ValueError(f"slider {name!r}: start value {value} is outside [{lo}, {hi}]")
    if step <= 0:
        raise ValueError(f"slider {name!r}: step must be positive, got {step}")
    style = {"description_width": "initial"}
    layout = widgets.Layout(width="260px")
    if all(isinstance(x, int) and not isinstance(x, bool) for x in spec):
        return widgets.IntSlider(
            value=value,
            min=lo,
            max=hi,
            step=step,
            description=name,
            style=style,
            layout=layout,
            continuous_update=False,
        )
    return widgets.FloatSlider(
        value=float(value),
        min=float(lo),
        max=float(hi),
        step=float(step),
        description=name,
        style=style,
        layout=layout,
        continuous_update=False,
        readout_format=".2f",
    )


class SliderView:
    """Named controls above a matplotlib figure that `draw(**values)` redraws whenever one moves."""

    def __init__(self, draw: Callable[..., Any], controls: dict[str, widgets.ValueWidget], columns: int = 3):
        missing = set(inspect.signature(draw).parameters) - set(controls)
        extra = set(controls) - set(inspect.signature(draw).parameters)
        if missing or extra:
            raise TypeError(
                f"draw() takes {sorted(inspect.signature(draw).parameters)} but the sliders are "
                f"{sorted(controls)}: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        self.draw = draw
        self.controls = controls
        self.redraws = 0
        self.image: np.ndarray | None = None
        self.values: dict[str, Any] = {}
        boxes = list(controls.values())
        rows = [widgets.HBox(boxes[i : i + columns]) for i in range(0, len(boxes), columns)]
        self.output = widgets.interactive_output(self._redraw, controls)
        self.widget = widgets.VBox([*rows, self.output])

    def _redraw(self, **values: Any) -> None:
        plt.close("all")
        self.draw(**values)
        figure = plt.gcf()
        figure.canvas.draw()
        self.image = np.asarray(figure.canvas.buffer_rgba()).copy()  # (H, W, 4)
        self.values = dict(values)
        self.redraws += 1
        plt.show()
        plt.close(figure)

    def set(self, **values: Any) -> None:
        """Move sliders to new values, exactly as dragging them would (each move redraws)."""
        for name, value in values.items():
            if name not in self.controls:
                raise KeyError(f"no slider named {name!r}; the sliders are {sorted(self.controls)}")
            self.controls[name].value = value

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def slider_view(draw: Callable[..., Any], columns: int = 3, **sliders: SliderSpec) -> SliderView:
    """Sliders named after `draw`'s parameters, each `(min, max, step, value)` or an ipywidgets control."""
    return SliderView(
        draw, {name: make_slider(name, spec) for name, spec in sliders.items()}, columns=columns
    )
