"""The parts of the figure reader (graderkit/svg.py) below the drawing: bounded XML parsing, attributes, path data.

Everything here reads hostile text (the student's worker drew the SVG). Attribute readers answer None, False
or what they could read and never raise; parsing raises only ``BadFigure``, the student's failure.
"""
from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
TOKENS = re.compile(rf"[MLHVCSQTAZmlhvcsqtaz]|{NUMBER}")
TRANSFORM = re.compile(r"\s*(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)\s*,?")
HEX = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
MAX_SVG_BYTES = 4 << 20
MAX_ELEMENTS = 50_000             # matplotlib draws ex2's 8 panels in about 300 elements
MAX_DEPTH = 40                    # matplotlib nests about 8 deep
SVG = "{http://www.w3.org/2000/svg}"
SLACK = 0.5  # points (1/72 in) a vertex may stick out of its clip rectangle


class BadFigure(AssertionError):
    """The figure could not be read as a drawing (the student's failure, never a grader error)."""


def parse_bounded(data: bytes, call: str) -> Any:
    """The root element of ``data``, parsed by defusedxml within the element and nesting bounds."""
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


def clip_rects(root: Any) -> dict[str, tuple[float, float, float, float] | None]:
    """clipPath id -> its rectangle; None for a clip this reader cannot bound (it hides what it clips)."""
    rects: dict[str, tuple[float, float, float, float] | None] = {}
    for clip in root.iter(f"{SVG}clipPath"):
        kids = list(clip)
        rect = None
        plain = not clip.get("transform") and not (kids and kids[0].get("transform"))
        if len(kids) == 1 and kids[0].tag == f"{SVG}rect" and plain:
            found = numbers([kids[0].get(k, "0") for k in ("x", "y", "width", "height")])
            if found is not None and found[2] >= 0 and found[3] >= 0:
                x, y, w, h = found
                rect = (x, y, x + w, y + h)
        rects[clip.get("id", "")] = rect
    return rects


def num(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def numbers(texts: list[str]) -> list[float] | None:
    """Every text as a finite number, or None when one is not."""
    found = [num(t) for t in texts]
    return [v for v in found if v is not None] if None not in found else None


def style_of(elem: Any) -> dict[str, str]:
    """Presentation attributes overridden by the style attribute, as matplotlib writes them."""
    out = {k: elem.get(k) for k in ("fill", "stroke", "stroke-width", "opacity", "display", "visibility",
                                    "stroke-opacity", "fill-opacity", "font-size", "text-anchor") if elem.get(k)}
    for item in (elem.get("style") or "").split(";"):
        key, sep, value = item.partition(":")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def hidden(elem: Any) -> bool:
    style = style_of(elem)
    if style.get("display", "").lower() == "none" or style.get("visibility", "").lower() in ("hidden", "collapse"):
        return True
    if elem.get("mask") or elem.get("filter") or "mask" in style or "filter" in style:
        return True  # not applied here, so what it draws is not counted
    return not positive(style, "opacity", 1.0)


def positive(style: dict, key: str, default: float) -> bool:
    value = num(re.sub(r"(px|pt)$", "", style.get(key, str(default)).strip()))
    return value is not None and value > 0


def colour_of(value: str | None) -> str | None:
    if value is None:
        return None
    match = HEX.match(value.strip())
    if not match:
        return None
    digits = match.group(1).lower()
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)


def transform_steps(text: str) -> list[tuple[str, list[float]]] | None:
    steps: list[tuple[str, list[float]]] = []
    pos = 0
    while pos < len(text):
        match = TRANSFORM.match(text, pos)
        if not match:
            return None if text[pos:].strip() else steps
        args = numbers(match.group(2).replace(",", " ").split())
        if args is None:
            return None
        steps.append((match.group(1), args))
        pos = match.end()
    return steps


def turns_in_place(transform: str | None, x: float | None, y: float | None) -> bool:
    """A text's own transform only turns it about its anchor (matplotlib's rotate(angle x y)), or it has none."""
    if not transform:
        return True
    steps = transform_steps(transform)
    if not steps:
        return False
    return all(name == "rotate" and (len(args) == 1 or len(args) == 3 and (args[1], args[2]) == (x, y))
               for name, args in steps)


def shift(box: tuple[float, float, float, float], offset: tuple[float, float]) -> tuple[float, float, float, float]:
    return box[0] + offset[0], box[1] + offset[1], box[2] + offset[0], box[3] + offset[1]


def inside(points: np.ndarray, clips: tuple) -> bool:
    for x0, y0, x1, y1 in clips:
        if not (np.all(points[:, 0] >= x0 - SLACK) and np.all(points[:, 0] <= x1 + SLACK)
                and np.all(points[:, 1] >= y0 - SLACK) and np.all(points[:, 1] <= y1 + SLACK)):
            return False
    return True


def polylines(d: str, call: str) -> list[list[tuple[float, float]]]:
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


def pil_errors() -> tuple[type[BaseException], ...]:
    """What PIL raises on hostile or truncated PNG data."""
    import struct
    import zlib

    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct.error, zlib.error,
            MemoryError, Image.DecompressionBombError)
