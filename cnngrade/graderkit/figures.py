"""Figures judged as artifacts: the student's figure, rendered in the worker, read as SVG here (graderkit/svg.py)
and judged by what it draws: panels of images that show given values in grey, curves that plot given values.

A judge answers for the drawing only; a forged SVG that passes is itself a correct plot of the grader's data.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from cnngrade.graderkit.svg import BadFigure, Drawing, Label, Mark, Picture, parse_svg, pil_errors

MAX_PNG_BYTES = 1 << 20           # the PNG for people, shown in feedback.html
MAX_REPORT_PIXELS = 4_000_000     # the PNG for people
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_DPI = 60.0                    # the PNG for people: small enough for feedback.html, large enough to read


# -- the PNG for people ------------------------------------------------------------------------------
def checked_png(raw: Any, max_bytes: int = MAX_PNG_BYTES, max_pixels: int = MAX_REPORT_PIXELS) -> bytes | None:
    """``raw`` when it is a sane PNG (magic, PIL's verify, bounded size and pixels); otherwise None."""
    if not isinstance(raw, (bytes, bytearray)) or len(raw) > max_bytes or not bytes(raw).startswith(PNG_MAGIC):
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as img:
            if img.width * img.height > max_pixels or img.width < 1 or img.height < 1:
                return None
            img.verify()
    except pil_errors():
        return None
    return bytes(raw)


# -- getting a student's figure ----------------------------------------------------------------------
def render(submission: Any, fig: Any, call: str, metrics: dict | None = None) -> Drawing:
    """The drawing of the figure ``call`` returned, rendered in the worker; its PNG goes to ``metrics`` (without
    ``metrics`` the worker draws no PNG)."""
    from cnngrade.errors import StudentError
    from cnngrade.graderkit.checks import show
    from cnngrade.graderkit.values import mapping
    from cnngrade.sandbox.handles import Handle

    if not isinstance(fig, Handle):
        raise BadFigure(f"{call} returned {show(fig)}; expected a matplotlib.figure.Figure")
    try:
        got = submission.helper("figure_render", fig, png_dpi=PNG_DPI if metrics is not None else 0.0)
    except StudentError as exc:
        raise BadFigure(f"{call} returned a {fig.type_name} that could not be drawn: {exc}") from None
    got = mapping(got, f"drawing {call}", keys=("svg", "png"))
    drawing = parse_svg(got["svg"], f"the figure of {call}")
    png = checked_png(got["png"])
    if metrics is not None and png is not None:
        metrics["figure_png"] = base64.b64encode(png).decode("ascii")
    return drawing


# -- judges ------------------------------------------------------------------------------------------
def image_panels(drawing: Drawing) -> list[list[Picture]]:
    """Pictures grouped by the axes that hold them (a picture outside any axes is a panel of its own); colour
    scales (a colorbar is drawn as an image too) are left out."""
    groups: dict[Any, list[Picture]] = {}
    for i, pic in enumerate(drawing.pictures):
        if not is_colour_scale(pic):
            groups.setdefault(pic.axes if pic.axes is not None else ("figure", i), []).append(pic)
    return list(groups.values())


def is_colour_scale(pic: Picture, tolerance: int = 2) -> bool:
    """A strip that changes along one direction only: every row, or every column, is one colour."""
    rgb = pic.rgba[..., :3].astype(np.int16)
    if rgb.size == 0:
        return False
    rows_flat = int(np.abs(rgb - rgb[:, :1]).max()) <= tolerance
    cols_flat = int(np.abs(rgb - rgb[:1, :]).max()) <= tolerance
    return rows_flat or cols_flat


def _visible_pixels(pic: Picture) -> np.ndarray:
    rgba = pic.rgba.reshape(-1, 4).astype(np.int32)
    return rgba[rgba[:, 3] > 0]


def is_grey(pic: Picture, tolerance: int = 3) -> bool:
    """Every visible pixel has equal red, green and blue (within rounding), and the picture is not flat."""
    px = _visible_pixels(pic)
    if len(px) == 0:
        return False
    spread = np.abs(px[:, 0] - px[:, 1]).max(initial=0), np.abs(px[:, 1] - px[:, 2]).max(initial=0)
    return max(spread) <= tolerance and int(np.ptp(px[:, 0])) >= 16


def resembles(pic: Picture, values: np.ndarray, threshold: float = 0.9) -> bool:
    """The picture shows ``values`` (H, W) up to an affine change of intensity: its brightness, averaged back
    to the grid of ``values``, correlates with them (or with them upside down, as origin='lower' draws them)."""
    from PIL import Image

    h, w = values.shape
    rgb = pic.rgba[..., :3].astype(np.float32)
    luma = rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    if luma.shape[0] < 1 or luma.shape[1] < 1:
        return False
    small = np.asarray(Image.fromarray(luma, mode="F").resize((w, h), Image.Resampling.BOX), dtype=float)
    want = np.asarray(values, dtype=float)
    return any(abs(_correlation(small.ravel(), v.ravel())) >= threshold for v in (want, want[::-1]))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else 0.0


def curves(drawing: Drawing, values: list[float], *, log_ok: bool = False) -> list[Mark]:
    """Marks that draw ``values`` left to right: one vertex per value, x increasing, and y an affine image of the
    values (or of their logarithm when ``log_ok``) that puts larger values higher on the page."""
    want = np.asarray(values, dtype=float)
    series = [want] + ([np.log(want)] if log_ok and np.all(want > 0) else [])
    return [m for m in drawing.marks if len(m.points) == len(want)
            and np.all(np.diff(m.points[:, 0]) > 0) and any(_affine_up(m.points[:, 1], s) for s in series)]


def _affine_up(ys: np.ndarray, values: np.ndarray) -> bool:
    if np.ptp(values) <= 0 or np.ptp(ys) < 2.0:  # a curve squashed under two points of height shows nothing
        return False
    slope, intercept = np.polyfit(values, ys, 1)
    residual = np.abs(ys - (slope * values + intercept)).max()
    return bool(slope < 0 and residual <= 0.01 + 1e-4 * np.ptp(ys))


def normalise_label(text: str) -> str:
    """Case, '_' or '-' against spaces and surrounding spaces do not matter in a label."""
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def labelled(drawing: Drawing, mark: Mark, name: str) -> bool:
    """A text naming ``name`` is tied to ``mark``: a legend entry whose handle has the mark's colour, a text in
    that colour, or a text in the same axes when the mark is the only curve of its length there."""
    want = normalise_label(name)
    texts = [t for t in drawing.labels if normalise_label(t.text) == want]
    for text in texts:
        if mark.colour is not None and text.colour == mark.colour and text.colour != "#000000":
            return True
        if mark.colour is not None and mark.colour in _handle_colours(drawing, text):
            return True
    # A line drawn with markers gives two marks on the same points; those are one curve.
    others = [m for m in drawing.marks if m.axes == mark.axes and len(m.points) == len(mark.points)
              and not np.allclose(m.points, mark.points, atol=0.01)]
    return mark.axes is not None and not others and any(t.axes == mark.axes for t in texts)


def _handle_colours(drawing: Drawing, text: Label) -> set[str]:
    """Colours of the marks drawn just left of a text on its line (a legend handle)."""
    width = 0.6 * text.size * len(text.text)
    left = text.x - {"middle": width / 2, "end": width}.get(text.anchor, 0.0)
    centre = text.y - 0.35 * text.size
    found = set()
    for m in drawing.marks:
        xs, ys = m.points[:, 0], m.points[:, 1]
        near = xs.max() <= left + 1 and xs.min() >= left - 5 * text.size
        if near and m.colour is not None and np.all(np.abs(ys - centre) <= 0.7 * text.size):
            found.add(m.colour)
    return found
