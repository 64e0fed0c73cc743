"""Worker helpers for figures: the figure rendered to SVG and PNG (what graders judge), and plain descriptions."""
from __future__ import annotations

from typing import Any

from .helpers import helper

# A figure stays in the worker. Graders judge the SVG that figure_render draws (cnngrade/graderkit/figures.py);
# the descriptions below are no more than conveniences: a student module can replace any of these helpers.
MAX_POINTS = 10_000
MAX_SVG_BYTES = 4 << 20       # the trusted side refuses bigger artifacts too
MAX_PNG_BYTES = 1 << 20
MAX_RENDER_PIXELS = 2_000_000  # pixels of the whole figure at the render dpi, so no embedded image is larger
# Text stays text, images are inlined one by one, lines keep every vertex, ids and metadata are stable.
RENDER_RC = {"svg.fonttype": "none", "svg.image_inline": True, "image.composite_image": False,
             "path.simplify": False, "svg.hashsalt": "cnngrade"}


def _figure(fig: Any) -> Any:
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(f"expected a matplotlib Figure, got {type(fig).__name__}")
    return fig


def _floats(values: Any) -> list | None:
    """Line data as plain floats (None when it is not numeric, e.g. category labels)."""
    import numpy as np

    try:
        arr = np.asarray(values, dtype=float).ravel()[:MAX_POINTS]
    except (TypeError, ValueError):
        return None
    return [float(v) for v in arr]


def _label(artist: Any) -> str:
    # matplotlib names unlabelled artists "_child0", "_line1", ...: those have no label.
    text = str(artist.get_label() or "")
    return "" if text.startswith("_") else text


def _image_info(image: Any) -> dict:
    arr = image.get_array()
    cmap = image.get_cmap()
    return {"shape": list(getattr(arr, "shape", ())), "cmap": getattr(cmap, "name", None)}


def _color(artist: Any) -> str | None:
    from matplotlib.colors import to_hex

    try:
        return to_hex(artist.get_color())
    except (AttributeError, TypeError, ValueError):
        return None


def _legend_colors(legend: Any) -> list:
    # A legend built from (handles, labels) leaves the lines unlabelled; its proxies keep their colours.
    handles = getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", [])
    return [_color(h) for h in handles]


def _axes_info(ax: Any) -> dict:
    legend = ax.get_legend()
    return {
        "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "lines": [{"label": _label(line), "n": len(line.get_xdata()), "x": _floats(line.get_xdata()),
                   "y": _floats(line.get_ydata()), "color": _color(line)} for line in ax.get_lines()],
        "images": [_image_info(im) for im in ax.get_images()],
        "collections": [type(c).__name__ for c in ax.collections],
        "legend": None if legend is None else [t.get_text() for t in legend.get_texts()],
        "legend_colors": None if legend is None else _legend_colors(legend),
        "visible": bool(ax.get_visible()),
        "axis_on": bool(ax.axison),
    }


@helper
def figure_info(fig: Any) -> dict:
    """What a figure shows: per axes its title, axis labels, lines (label, data, colour), images (shape, colormap),
    other collections and legend entries (texts and colours); plus the figure's suptitle and legends."""
    fig = _figure(fig)
    suptitle = getattr(fig, "_suptitle", None)
    return {
        "axes": [_axes_info(ax) for ax in fig.get_axes()],
        "suptitle": suptitle.get_text() if suptitle is not None else "",
        "legends": [[t.get_text() for t in leg.get_texts()] for leg in fig.legends],
    }


@helper
def figure_png(fig: Any, dpi: int = 60) -> bytes:
    """The figure rendered to PNG bytes (Agg), for a person to look at or a grader to decode."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(fig)
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas; pyplot figures under Agg already have one
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=int(dpi))
    return buf.getvalue()


@helper
def figure_images(fig: Any, lut_size: int = 16) -> list:
    """Per axes of a figure, its images: the data each shows (float64, masked cells as NaN) and its colormap
    sampled at ``lut_size`` points (RGBA rows), so the grader can judge both by value, not by name."""
    import numpy as np

    out = []
    for ax in _figure(fig).get_axes():
        images = []
        for image in ax.get_images():
            data = np.ma.filled(np.ma.asarray(image.get_array(), dtype=float), np.nan)
            lut = np.asarray(image.get_cmap()(np.linspace(0.0, 1.0, int(lut_size))), dtype=float)
            images.append({"data": np.ascontiguousarray(data), "lut": lut})
        out.append(images)
    return out




def _render(fig: Any, fmt: str, dpi: float) -> bytes:
    import io
    import math

    import matplotlib

    width, height = fig.get_size_inches()
    # A huge figure is drawn at a lower dpi rather than allocating a giant raster.
    dpi = min(dpi, math.sqrt(MAX_RENDER_PIXELS / max(float(width * height), 1e-6)))
    buf = io.BytesIO()
    with matplotlib.rc_context(RENDER_RC):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


@helper
def figure_render(fig: Any, dpi: float = 144.0, png_dpi: float = 60.0) -> dict:
    """The figure as SVG (text as text, images inlined as PNG) for the grader to judge, and as PNG for people."""
    fig = _figure(fig).figure  # a subfigure is drawn as the figure that holds it
    svg = _render(fig, "svg", float(dpi))
    if len(svg) > MAX_SVG_BYTES:
        raise ValueError(f"the figure's SVG takes {len(svg):,} bytes, more than the {MAX_SVG_BYTES:,} allowed")
    png = _render(fig, "png", float(png_dpi))
    if len(png) > MAX_PNG_BYTES:
        raise ValueError(f"the figure's PNG takes {len(png):,} bytes, more than the {MAX_PNG_BYTES:,} allowed")
    return {"svg": svg, "png": png}
