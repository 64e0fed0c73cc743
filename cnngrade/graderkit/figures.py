"""Figures judged as artifacts: the student's figure, drawn to SVG in the worker, parsed and judged on the trusted side.

The worker renders the figure (``figure_render`` in cnngrade/worker/figures.py); the student owns
that interpreter, so the SVG is treated as hostile input: parsed with defusedxml under hard
bounds (bytes, elements, nesting, image pixels), every failure to parse is the student's
(``BadFigure``, an AssertionError). What is judged is what the SVG draws: inlined images (decoded
here), polylines of paths and marker positions in SVG coordinates with their colour, and texts.
Elements the SVG hides (display, visibility, opacity, a clip rectangle that leaves points out,
transforms this reader does not apply) are not counted. So a forged SVG that passes is itself a
correct plot of the grader's data.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_SVG_BYTES = 4 << 20
MAX_PNG_BYTES = 1 << 20           # the PNG for people, shown in feedback.html
MAX_ELEMENTS = 50_000             # matplotlib draws ex2's 8 panels in about 300 elements
MAX_DEPTH = 40                    # matplotlib nests about 8 deep
MAX_IMAGES = 64
MAX_IMAGE_PIXELS = 4_000_000      # all inlined images together, checked from their headers before decoding
MAX_REPORT_PIXELS = 4_000_000     # the PNG for people
MAX_VERTICES = 500_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# Elements that define things without drawing them where they stand.
NOT_DRAWN = {"defs", "clipPath", "mask", "pattern", "marker", "symbol", "style", "metadata", "title", "desc",
             "linearGradient", "radialGradient", "filter", "script", "foreignObject", "switch", "svg", "a"}
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
TOKENS = re.compile(rf"[MLHVCSQTAZmlhvcsqtaz]|{NUMBER}")
TRANSFORM = re.compile(r"\s*(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)\s*,?")
HEX = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
CLIP_URL = re.compile(r"^url\(#([^)]+)\)$")
SLACK = 0.5  # points (1/72 in) a vertex may stick out of its clip rectangle


class BadFigure(AssertionError):
    """The figure could not be read as a drawing (the student's failure, never a grader error)."""


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
    root = _parse_bounded(bytes(data), call)
    if root.tag != f"{SVG}svg":
        raise BadFigure(f"{call} was not drawn as an SVG document (its root element is {root.tag[:60]!r})")
    box = [_num(v) for v in (root.get("viewBox") or "").replace(",", " ").split()]
    if len(box) != 4 or any(v is None for v in box) or not (box[2] > 0 and box[3] > 0):
        raise BadFigure(f"the SVG of {call} has no usable viewBox")
    drawing = Drawing(width=box[0] + box[2], height=box[1] + box[3])
    reader = _Reader(drawing, _clip_rects(root), call)
    reader.walk(root, _Context(clips=((box[0], box[1], box[0] + box[2], box[1] + box[3]),)))
    return drawing


def _parse_bounded(data: bytes, call: str) -> Any:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    count = depth = 0
    root = None
    try:
        for event, elem in iterparse(io.BytesIO(data), events=("start", "end")):
            if event == "end":
                depth -= 1
                continue
            count, depth = count + 1, depth + 1
            root = elem if root is None else root
            if count > MAX_ELEMENTS:
                raise BadFigure(f"the SVG of {call} has more than {MAX_ELEMENTS:,} elements")
            if depth > MAX_DEPTH:
                raise BadFigure(f"the SVG of {call} nests elements more than {MAX_DEPTH} deep")
    except (ParseError, DefusedXmlException, ValueError, RecursionError, MemoryError) as exc:
        # Entity declarations (billion laughs), external references and malformed XML all end here.
        raise BadFigure(f"the SVG of {call} could not be read safely: {type(exc).__name__}: {str(exc)[:200]}") from None
    if root is None:
        raise BadFigure(f"the SVG of {call} is empty")
    return root


def _clip_rects(root: Any) -> dict[str, tuple[float, float, float, float] | None]:
    """clipPath id -> its rectangle; None for a clip this reader cannot bound (it hides what it clips)."""
    rects: dict[str, tuple[float, float, float, float] | None] = {}
    for clip in root.iter(f"{SVG}clipPath"):
        kids = list(clip)
        rect = None
        if len(kids) == 1 and kids[0].tag == f"{SVG}rect" and not clip.get("transform") and not kids[0].get("transform"):
            x, y, w, h = (_num(kids[0].get(k, "0")) for k in ("x", "y", "width", "height"))
            if None not in (x, y, w, h) and w >= 0 and h >= 0:
                rect = (x, y, x + w, y + h)
        rects[clip.get("id", "")] = rect
    return rects


class _Reader:
    """Walks the drawn elements, keeping what is visible."""

    def __init__(self, drawing: Drawing, clips: dict, call: str):
        self.drawing, self.clips, self.call = drawing, clips, call
        self.pixels = self.vertices = 0

    def walk(self, node: Any, ctx: _Context) -> None:
        for child in node:
            tag = child.tag.rpartition("}")[2] if isinstance(child.tag, str) else ""
            if not tag or tag in NOT_DRAWN or _hidden(child):
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
            steps = _transform_steps(transform)
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
        url = elem.get("clip-path") or _style(elem).get("clip-path")
        if url:
            match = CLIP_URL.match(url.strip())
            rect = self.clips.get(match.group(1)) if match else None
            if rect is None:
                return None
            clips = (*clips, _shift(rect, ctx.offset))
        return _Context(axes, offset, rotated, clips)

    def _path(self, elem: Any, ctx: _Context) -> None:
        style = _style(elem)
        colour = _colour(style.get("stroke"))
        if ctx.rotated or elem.get("transform") or colour is None or not _positive(style, "stroke-width", 1.0) \
                or not _positive(style, "stroke-opacity", 1.0):
            return
        for points in _polylines(elem.get("d") or "", self.call):
            self.vertices += len(points)
            if self.vertices > MAX_VERTICES:
                raise BadFigure(f"the SVG of {self.call} has more than {MAX_VERTICES:,} path vertices")
            pts = np.asarray(points, dtype=float) + np.asarray(ctx.offset)
            if _inside(pts, ctx.clips):
                self.drawing.marks.append(Mark(pts, colour, ctx.axes, "line"))

    def _markers(self, node: Any, ctx: _Context) -> None:
        """The <use> children of one group, in order: a line drawn with markers only (or a line's markers)."""
        if ctx.rotated:
            return
        points, colours = [], set()
        for child in node:
            if child.tag != f"{SVG}use" or _hidden(child) or child.get("transform") or child.get("clip-path"):
                continue
            x, y = _num(child.get("x", "0")), _num(child.get("y", "0"))
            style = _style(child)
            colour = _colour(style.get("stroke")) or _colour(style.get("fill"))
            if x is None or y is None or colour is None:
                continue
            points.append((x + ctx.offset[0], y + ctx.offset[1]))
            colours.add(colour)
        if points and len(colours) == 1:
            pts = np.asarray(points, dtype=float)
            if _inside(pts, ctx.clips):
                self.drawing.marks.append(Mark(pts, colours.pop(), ctx.axes, "markers"))

    def _image(self, elem: Any, ctx: _Context) -> None:
        if ctx.rotated or len(self.drawing.pictures) >= MAX_IMAGES:
            if len(self.drawing.pictures) >= MAX_IMAGES:
                raise BadFigure(f"the SVG of {self.call} has more than {MAX_IMAGES} images")
            return
        x, y, w, h = (_num(elem.get(k, "0")) for k in ("x", "y", "width", "height"))
        if None in (x, y, w, h) or not (w > 0 and h > 0):
            return
        flipped = False
        transform = elem.get("transform")
        if transform:
            # Only matplotlib's own form is placed: scale(1 -1) translate(0 -h), the PNG stored bottom row first.
            steps = _transform_steps(transform) or []
            if not (len(steps) == 2 and steps[0] == ("scale", [1.0, -1.0]) and steps[1][0] == "translate"
                    and len(steps[1][1]) == 2 and steps[1][1][0] == 0 and abs(steps[1][1][1] + h) < 1e-3):
                return
            flipped, y = True, -y  # the flipped box spans -y .. -y + h on the page
        box = _shift((x, y, x + w, y + h), ctx.offset)
        if not _inside(np.asarray([box[:2], box[2:]]), ctx.clips):
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
        except _pil_errors() as exc:
            raise BadFigure(f"an image of {self.call} is not a readable PNG ({type(exc).__name__})") from None

    def _text(self, elem: Any, ctx: _Context) -> None:
        text = " ".join("".join(elem.itertext()).split())[:500]
        if not text:
            return
        style = _style(elem)
        first = next(iter(elem), None)
        x, y = _num(elem.get("x", "")), _num(elem.get("y", ""))
        if (x is None or y is None) and first is not None:
            x, y = _num(first.get("x", "0")), _num(first.get("y", "0"))
            style = {**_style(first), **style}
        if not _turns_in_place(elem.get("transform"), x, y):
            return
        size = _num(re.sub(r"px$", "", style.get("font-size", "10").strip())) or 0.0
        colour = _colour(style.get("fill", "#000000"))
        if x is None or y is None or size <= 0 or colour is None or not _positive(style, "fill-opacity", 1.0):
            return
        point = np.asarray([[x + ctx.offset[0], y + ctx.offset[1]]])
        if _inside(point, ctx.clips):
            self.drawing.labels.append(Label(text, float(point[0, 0]), float(point[0, 1]), size,
                                             style.get("text-anchor", "start").strip(), colour, ctx.axes))


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _style(elem: Any) -> dict[str, str]:
    """Presentation attributes overridden by the style attribute, as matplotlib writes them."""
    out = {k: elem.get(k) for k in ("fill", "stroke", "stroke-width", "opacity", "display", "visibility",
                                    "stroke-opacity", "fill-opacity", "font-size", "text-anchor") if elem.get(k)}
    for item in (elem.get("style") or "").split(";"):
        key, sep, value = item.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def _hidden(elem: Any) -> bool:
    style = _style(elem)
    if style.get("display", "").lower() == "none" or style.get("visibility", "").lower() in ("hidden", "collapse"):
        return True
    if elem.get("mask") or elem.get("filter") or "mask" in style or "filter" in style:
        return True  # not applied here, so what it draws is not counted
    return not _positive(style, "opacity", 1.0)


def _positive(style: dict, key: str, default: float) -> bool:
    value = _num(re.sub(r"(px|pt)$", "", style.get(key, str(default)).strip()))
    return value is not None and value > 0


def _colour(value: str | None) -> str | None:
    if value is None:
        return None
    match = HEX.match(value.strip())
    if not match:
        return None
    digits = match.group(1).lower()
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)


def _transform_steps(text: str) -> list[tuple[str, list[float]]] | None:
    steps, pos = [], 0
    while pos < len(text):
        match = TRANSFORM.match(text, pos)
        if not match:
            return None if text[pos:].strip() else steps
        args = [_num(a) for a in match.group(2).replace(",", " ").split()]
        if None in args:
            return None
        steps.append((match.group(1), args))
        pos = match.end()
    return steps


def _turns_in_place(transform: str | None, x: float | None, y: float | None) -> bool:
    """A text's own transform only turns it about its anchor (matplotlib's rotate(angle x y)), or it has none."""
    if not transform:
        return True
    steps = _transform_steps(transform)
    return bool(steps) and all(name == "rotate" and (len(args) == 1 or len(args) == 3 and (args[1], args[2]) == (x, y))
                               for name, args in steps)


def _shift(box: tuple[float, float, float, float], offset: tuple[float, float]) -> tuple[float, float, float, float]:
    return box[0] + offset[0], box[1] + offset[1], box[2] + offset[0], box[3] + offset[1]


def _inside(points: np.ndarray, clips: tuple) -> bool:
    for x0, y0, x1, y1 in clips:
        if not (np.all(points[:, 0] >= x0 - SLACK) and np.all(points[:, 0] <= x1 + SLACK)
                and np.all(points[:, 1] >= y0 - SLACK) and np.all(points[:, 1] <= y1 + SLACK)):
            return False
    return True


def _polylines(d: str, call: str) -> list[list[tuple[float, float]]]:
    """The open subpaths of straight segments in path data (absolute or relative M, L, H, V; Z closes)."""
    tokens = TOKENS.findall(d)
    out: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    straight = True
    x = y = 0.0
    i, cmd = 0, ""

    def finish() -> None:
        if current and straight and len(current) >= 2:
            out.append(list(current))

    while i < len(tokens):
        tok = tokens[i]
        if tok.isalpha():
            cmd, i = tok, i + 1
            if cmd in "Zz":
                straight = False  # a closed outline is a shape, not a curve of data
            continue
        need = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7}.get(cmd.upper())
        if need is None or i + need > len(tokens) or any(t.isalpha() for t in tokens[i:i + need]):
            return out  # malformed data: what was read so far stands, the rest is not drawn
        args = [float(t) for t in tokens[i:i + need]]
        i += need
        rel = cmd.islower()
        up = cmd.upper()
        if up == "M":
            finish()
            current, straight = [], True
            x, y = (x + args[0], y + args[1]) if rel else (args[0], args[1])
            current.append((x, y))
            cmd = "l" if rel else "L"  # further pairs after M are line-tos
            continue
        if up in "CSQTA":
            straight = False
        if up == "H":
            x = x + args[0] if rel else args[0]
        elif up == "V":
            y = y + args[0] if rel else args[0]
        else:
            x, y = (x + args[-2], y + args[-1]) if rel else (args[-2], args[-1])
        current.append((x, y))
    finish()
    return out


def _pil_errors() -> tuple[type[BaseException], ...]:
    """What PIL raises on hostile or truncated PNG data."""
    import struct
    import zlib

    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct.error, zlib.error,
            MemoryError, Image.DecompressionBombError)


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
    except _pil_errors():
        return None
    return bytes(raw)


# -- getting a student's figure ----------------------------------------------------------------------
def render(submission: Any, fig: Any, call: str, metrics: dict | None = None) -> Drawing:
    """The drawing of the figure ``call`` returned, rendered in the worker; its PNG goes to ``metrics``."""
    from cnngrade.graderkit.checks import show
    from cnngrade.sandbox.client import Handle
    from cnngrade.errors import StudentError
    from cnngrade.graderkit.values import mapping

    if not isinstance(fig, Handle):
        raise BadFigure(f"{call} returned {show(fig)}; expected a matplotlib.figure.Figure")
    try:
        got = submission.helper("figure_render", fig)
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
