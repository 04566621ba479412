"""Matplotlib figures drawn into uint8 pixel arrays, the images of the TensorBoard loggers.

Each figure is a `matplotlib.figure.Figure` on its own Agg canvas: no pyplot state, no display
and no backend switch, so drawing in a callback leaves the user's matplotlib set-up alone.
Matplotlib is imported on first use, not when keras_seq is imported.
"""

import numpy as np

# Figures are sized in pixels; at this resolution one point of text is 100 / 72 pixels.
DPI = 100


def new_figure(width, height):
    """A white `Figure` of `width` x `height` pixels on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def figure_to_image(figure):
    """Draw `figure`; return its pixels as uint8 RGB `(height, width, 3)`."""
    figure.canvas.draw()
    return np.array(figure.canvas.buffer_rgba())[..., :3]  # (H, W, 3), a copy


def axes_at(figure, left, top, width, height):
    """Axes whose plot area covers exactly these pixels (from the figure's top-left corner)."""
    figure_width, figure_height = figure.canvas.get_width_height()
    return figure.add_axes(
        (
            left / figure_width,
            (figure_height - top - height) / figure_height,
            width / figure_width,
            height / figure_height,
        )
    )
