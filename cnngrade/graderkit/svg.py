"""What a figure's SVG draws, read on the trusted side: inlined images, polylines and marker runs, and texts.

The worker renders the figure (``figure_render`` in cnngrade/worker/figures.py); the student owns
that interpreter, so the SVG is treated as hostile input: parsed with defusedxml under hard
bounds (bytes, elements, nesting, image pixels), every failure to parse is the student's
(``BadFigure``, an AssertionError). What is read is what the SVG draws: inlined images (decoded
here), polylines of paths and marker positions in SVG coordinates with their colour, and texts.
Elements the SVG hides (display, visibility, opacity, a clip rectangle that leaves points out,
transforms this reader does not apply) are not counted. So a forged SVG that passes is itself a
correct plot of the grader's data. The judges of a drawing are in graderkit/figures.py.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnngrade.graderkit.svg_parts import (
    MAX_SVG_BYTES,
    SVG,
    BadFigure,
    clip_rects,
    colour_of,
    hidden,
    inside,
    num,
    numbers,
    parse_bounded,
    pil_errors,
    polylines,
    positive,
    shift,
    style_of,
    transform_steps,
    turns_in_place,
)

MAX_IMAGES = 64
MAX_IMAGE_PIXELS = 4_000_000      # all inlined images together, checked from their headers before decoding
MAX_VERTICES = 500_000
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# Elements that define things without drawing them where they stand.
NOT_DRAWN = {"defs", "clipPath", "mask", "pattern", "marker", "symbol", "style", "metadata", "title", "desc",
             "linearGradient", "radialGradient", "filter", "script", "foreignObject", "switch", "svg", "a"}
CLIP_URL = re.compile(r"^url\(#([^)]+)\)$")


@dataclass(frozen=True)
class Picture:
    """An inlined image as it appears on the page: RGBA pixels (top row first) and its box in SVG units."""

    rgba: np.ndarray
    box: tuple[float, float, float, float]   # x0, y0, x1, y1
    axes: str | None


@dataclass(frozen=True)
class Mark:
    """A visible open polyline (one subpath of straight segments) or a run of markers, in drawing order."""

    points: np.ndarray   # (n, 2), SVG coordinates: y grows downwards
    colour: str | None
    axes: str | None
    kind: str            # "line" or "markers"


@dataclass(frozen=True)
class Label:
    text: str
    x: float
    y: float
    size: float
    anchor: str
    colour: str | None
    axes: str | None


@dataclass
class Drawing:
    width: float
    height: float
    pictures: list[Picture] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    axes: str | None = None
    offset: tuple[float, float] = (0.0, 0.0)
    rotated: bool = False                  # under a rotated group: only text is placed (by its anchor)
    clips: tuple[tuple[float, float, float, float], ...] = ()


# -- reading the SVG ---------------------------------------------------------------------------------
def parse_svg(data: Any, call: str = "the figure") -> Drawing:
    """What an SVG draws, read under hard bounds; anything unreadable raises BadFigure."""
    if not isinstance(data, (bytes, bytearray)):
        raise BadFigure(f"rendering {call} gave {type(data).__name__}, not SVG bytes")
    if len(data) > MAX_SVG_BYTES:
        raise BadFigure(f"{call} drawn as SVG takes {len(data):,} bytes; at most {MAX_SVG_BYTES:,} are read")
    root = parse_bounded(bytes(data), call)
    if root.tag != f"{SVG}svg":
        raise BadFigure(f"{call} was not drawn as an SVG document (its root element is {root.tag[:60]!r})")
    box = numbers((root.get("viewBox") or "").replace(",", " ").split())
    if box is None or len(box) != 4 or not (box[2] > 0 and box[3] > 0):
        raise BadFigure(f"the SVG of {call} has no usable viewBox")
    drawing = Drawing(width=box[0] + box[2], height=box[1] + box[3])
    reader = _Reader(drawing, clip_rects(root), call)
    reader.walk(root, _Context(clips=((box[0], box[1], box[0] + box[2], box[1] + box[3]),)))
    return drawing


class _Reader:
    """Walks the drawn elements, keeping what is visible."""

    def __init__(self, drawing: Drawing, clips: dict, call: str):
        self.drawing, self.clips, self.call = drawing, clips, call
        self.pixels = self.vertices = 0

    def walk(self, node: Any, ctx: _Context) -> None:
        for child in node:
            tag = child.tag.rpartition("}")[2] if isinstance(child.tag, str) else ""
            if not tag or tag in NOT_DRAWN or hidden(child):
                continue
            inner = self._context(child, ctx)
            if inner is None:
                continue
            if tag == "g":
                self.walk(child, inner)
            elif tag == "path":
                self._path(child, inner)
            elif tag == "use":
                continue  # runs of markers are read by their parent, below
            elif tag == "image":
                self._image(child, inner)
            elif tag == "text":
                self._text(child, inner)
        self._markers(node, ctx)

    def _context(self, elem: Any, ctx: _Context) -> _Context | None:
        """The context inside ``elem``: its axes, offset and clips; None when it cannot be placed."""
        gid = elem.get("id") or ""
        axes = gid if re.fullmatch(r"axes_\d+", gid) else ctx.axes
        offset, rotated = ctx.offset, ctx.rotated
        transform = elem.get("transform")
        tag = elem.tag.rpartition("}")[2]
        if transform and tag == "g":
            steps = transform_steps(transform)
            if steps is None:
                return None
            for name, args in steps:
                if name == "translate" and not rotated and len(args) in (1, 2):
                    offset = (offset[0] + args[0], offset[1] + (args[1] if len(args) == 2 else 0.0))
                elif name == "rotate" and len(args) == 1:
                    rotated = True
                else:
                    return None  # scaling, skewing or a matrix: not applied here, so not counted
        clips = ctx.clips
        url = elem.get("clip-path") or style_of(elem).get("clip-path")
        if url:
            match = CLIP_URL.match(url.strip())
            rect = self.clips.get(match.group(1)) if match else None
            if rect is None:
                return None
            clips = (*clips, shift(rect, ctx.offset))
        return _Context(axes, offset, rotated, clips)

    def _path(self, elem: Any, ctx: _Context) -> None:
        style = style_of(elem)
        colour = colour_of(style.get("stroke"))
        if ctx.rotated or elem.get("transform") or colour is None or not positive(style, "stroke-width", 1.0) \
                or not positive(style, "stroke-opacity", 1.0):
            return
        for points in polylines(elem.get("d") or "", self.call):
            self.vertices += len(points)
            if self.vertices > MAX_VERTICES:
                raise BadFigure(f"the SVG of {self.call} has more than {MAX_VERTICES:,} path vertices")
            pts = np.asarray(points, dtype=float) + np.asarray(ctx.offset)
            if inside(pts, ctx.clips):
                self.drawing.marks.append(Mark(pts, colour, ctx.axes, "line"))

    def _markers(self, node: Any, ctx: _Context) -> None:
        """The <use> children of one group, in order: a line drawn with markers only (or a line's markers)."""
        if ctx.rotated:
            return
        points, colours = [], set()
        for child in node:
            if child.tag != f"{SVG}use" or hidden(child) or child.get("transform") or child.get("clip-path"):
                continue
            x, y = num(child.get("x", "0")), num(child.get("y", "0"))
            style = style_of(child)
            colour = colour_of(style.get("stroke")) or colour_of(style.get("fill"))
            if x is None or y is None or colour is None:
                continue
            points.append((x + ctx.offset[0], y + ctx.offset[1]))
            colours.add(colour)
        if points and len(colours) == 1:
            pts = np.asarray(points, dtype=float)
            if inside(pts, ctx.clips):
                self.drawing.marks.append(Mark(pts, colours.pop(), ctx.axes, "markers"))

    def _image(self, elem: Any, ctx: _Context) -> None:
        if ctx.rotated or len(self.drawing.pictures) >= MAX_IMAGES:
            if len(self.drawing.pictures) >= MAX_IMAGES:
                raise BadFigure(f"the SVG of {self.call} has more than {MAX_IMAGES} images")
            return
        found = numbers([elem.get(k, "0") for k in ("x", "y", "width", "height")])
        if found is None or not (found[2] > 0 and found[3] > 0):
            return
        x, y, w, h = found
        flipped = False
        transform = elem.get("transform")
        if transform:
            # Only matplotlib's own form is placed: scale(1 -1) translate(0 -h), the PNG stored bottom row first.
            steps = transform_steps(transform) or []
            if not (len(steps) == 2 and steps[0] == ("scale", [1.0, -1.0]) and steps[1][0] == "translate"
                    and len(steps[1][1]) == 2 and steps[1][1][0] == 0 and abs(steps[1][1][1] + h) < 1e-3):
                return
            flipped, y = True, -y  # the flipped box spans -y .. -y + h on the page
        box = shift((x, y, x + w, y + h), ctx.offset)
        if not inside(np.asarray([box[:2], box[2:]]), ctx.clips):
            return
        rgba = self._decode(elem.get(XLINK_HREF) or elem.get("href") or "")
        if rgba is None:
            return
        self.drawing.pictures.append(Picture(rgba[::-1] if flipped else rgba, box, ctx.axes))

    def _decode(self, href: str) -> np.ndarray | None:
        """An inlined PNG as RGBA pixels, within the pixel budget; None for anything that is not one."""
        prefix = "data:image/png;base64,"
        if not href.startswith(prefix):
            return None
        try:
            raw = base64.b64decode("".join(href[len(prefix):].split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadFigure(f"an image of {self.call} is not valid base64 data") from None
        from PIL import Image

        try:
            with Image.open(io.BytesIO(raw), formats=["PNG"]) as img:
                self.pixels += img.width * img.height
                if self.pixels > MAX_IMAGE_PIXELS:
                    raise BadFigure(f"the images of {self.call} hold more than {MAX_IMAGE_PIXELS:,} pixels")
                return np.asarray(img.convert("RGBA"))
        except BadFigure:
            raise
        except pil_errors() as exc:
            raise BadFigure(f"an image of {self.call} is not a readable PNG ({type(exc).__name__})") from None

    def _text(self, elem: Any, ctx: _Context) -> None:
        text = " ".join("".join(elem.itertext()).split())[:500]
        if not text:
            return
        style = style_of(elem)
        first = next(iter(elem), None)
        x, y = num(elem.get("x", "")), num(elem.get("y", ""))
        if (x is None or y is None) and first is not None:
            x, y = num(first.get("x", "0")), num(first.get("y", "0"))
            style = {**style_of(first), **style}
        if not turns_in_place(elem.get("transform"), x, y):
            return
        size = num(re.sub(r"px$", "", style.get("font-size", "10").strip())) or 0.0
        colour = colour_of(style.get("fill", "#000000"))
        if x is None or y is None or size <= 0 or colour is None or not positive(style, "fill-opacity", 1.0):
            return
        point = np.asarray([[x + ctx.offset[0], y + ctx.offset[1]]])
        if inside(point, ctx.clips):
            self.drawing.labels.append(Label(text, float(point[0, 0]), float(point[0, 1]), size,
                                             style.get("text-anchor", "start").strip(), colour, ctx.axes))
