"""Worker helper for figures: the figure rendered to SVG and PNG, size-capped, for the trusted side to judge."""
from __future__ import annotations

from typing import Any

from .registry import helper

# A figure stays in the worker. Graders judge the SVG that figure_render draws (cnngrade/graderkit/figures.py);
# the descriptions below are no more than conveniences: a student module can replace any of these helpers.
MAX_SVG_BYTES = 4 << 20       # the trusted side refuses bigger artifacts too
MAX_PNG_BYTES = 1 << 20
MAX_RENDER_PIXELS = 2_000_000  # pixels of the whole figure at the render dpi, so no embedded image is larger
# Text stays text, images are inlined one by one, lines keep every vertex, ids and metadata are stable.
RENDER_RC: dict[str, Any] = {"svg.fonttype": "none", "svg.image_inline": True, "image.composite_image": False,
             "path.simplify": False, "svg.hashsalt": "cnngrade"}


def _figure(fig: Any) -> Any:
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(f"expected a matplotlib Figure, got {type(fig).__name__}")
    return fig


def _render(fig: Any, fmt: str, dpi: float) -> bytes:
    import io
    import math

    import matplotlib

    width, height = fig.get_size_inches()
    # A huge figure is drawn at a lower dpi rather than allocating a giant raster.
    dpi = min(dpi, math.sqrt(MAX_RENDER_PIXELS / max(float(width * height), 1e-6)))
    buf = io.BytesIO()
    with matplotlib.rc_context(RENDER_RC):   # type: ignore[arg-type]  # the stubs spell out every rc key as a Literal
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


@helper
def figure_render(fig: Any, dpi: float = 144.0, png_dpi: float = 60.0) -> dict:
    """The figure as SVG (text as text, images inlined as PNG) for the grader to judge, and as PNG for people
    (None for a ``png_dpi`` of 0: a figure that no report shows is not drawn twice)."""
    fig = _figure(fig).figure  # a subfigure is drawn as the figure that holds it
    svg = _render(fig, "svg", float(dpi))
    if len(svg) > MAX_SVG_BYTES:
        raise ValueError(f"the figure's SVG takes {len(svg):,} bytes, more than the {MAX_SVG_BYTES:,} allowed")
    if not png_dpi > 0:
        return {"svg": svg, "png": None}
    png = _render(fig, "png", float(png_dpi))
    if len(png) > MAX_PNG_BYTES:
        raise ValueError(f"the figure's PNG takes {len(png):,} bytes, more than the {MAX_PNG_BYTES:,} allowed")
    return {"svg": svg, "png": png}
