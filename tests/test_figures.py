"""The trusted reader and judges of figures (cnngrade/graderkit/svg.py, figures.py), on SVGs drawn by real
matplotlib here: correct plots pass, wrong plots fail, hostile files fail as the student's failure (BadFigure),
never a crash."""
from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from matplotlib.figure import Figure

from cnngrade.graderkit import figures as F
from cnngrade.graderkit import svg_parts
from cnngrade.graderkit.values import BadValue
from cnngrade.sandbox.handles import Handle
from cnngrade.worker.figures import figure_render

VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")


def drawn(fig: Figure) -> F.Drawing:
    return F.parse_svg(figure_render(fig)["svg"])


def random_maps(seed: int = 0, shape: tuple[int, int] = (9, 13)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((8, *shape))


def maps_figure(maps: np.ndarray, rows: int = 2, cols: int = 4, **imshow) -> Figure:
    fig = Figure(figsize=(cols * 2.5, rows * 2))
    for ax, m in zip(fig.subplots(rows, cols).flat, maps):
        ax.imshow(m, **{"cmap": "gray", **imshow})
        ax.axis("off")
    return fig


def judge_maps(drawing: F.Drawing, maps: np.ndarray) -> tuple[int, int, list[int]]:
    """(panels with one image, grey pictures, maps no picture shows)."""
    panels = F.image_panels(drawing)
    pictures = [p for panel in panels for p in panel]
    missing = [i for i, m in enumerate(maps) if not any(F.resembles(p, m) for p in pictures)]
    return sum(len(p) == 1 for p in panels), sum(F.is_grey(p) for p in pictures), missing


# -- ex2: feature maps --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("style", [{}, {"cmap": "Greys_r"}, {"cmap": "Greys"}, {"origin": "lower"},
                                   {"interpolation": "nearest", "vmin": -4, "vmax": 4}])
def test_eight_grey_maps_pass(style):
    maps = random_maps()
    assert judge_maps(drawn(maps_figure(maps, **style)), maps) == (8, 8, [])


@pytest.mark.slow
def test_one_row_of_small_panels_and_colorbars_pass():
    maps = random_maps(1)
    fig = Figure()  # the default 6.4 x 4.8 inches: eight narrow panels
    for i, m in enumerate(maps):
        ax = fig.add_subplot(1, 8, i + 1)
        fig.colorbar(ax.imshow(m, cmap="gray"), ax=ax)
    drawing = drawn(fig)
    assert len(drawing.pictures) == 16  # the colorbars are images too, but colour scales, not panels
    assert judge_maps(drawing, maps) == (8, 8, [])


@pytest.mark.slow
def test_wrong_plots_fail_their_judge():
    maps = random_maps(2)
    assert judge_maps(drawn(maps_figure(maps, cmap="viridis")), maps) == (8, 0, [])
    assert judge_maps(drawn(maps_figure(maps[:4], rows=2, cols=2)), maps) == (4, 4, [4, 5, 6, 7])
    assert judge_maps(drawn(maps_figure(random_maps(3))), maps)[2] == list(range(8))
    assert judge_maps(drawn(maps_figure(maps.transpose(0, 2, 1))), maps)[2] == list(range(8))


def test_an_empty_figure_shows_nothing():
    assert judge_maps(drawn(Figure()), random_maps()) == (0, 0, list(range(8)))


# -- ex6: history curves ------------------------------------------------------------------------------
def history(seed: int = 0, n: int = 6) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {"train_loss": (0.05 + 2 * rng.random(n)).tolist(), "val_acc": rng.random(n).tolist()}


@pytest.mark.slow
def test_history_curves_in_any_units():
    h = history()
    fig = Figure()
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.semilogy(range(1, 7), h["train_loss"], marker="o")
    acc_ax.plot([100 * a for a in h["val_acc"]], "o")  # markers only, in percent
    drawing = drawn(fig)
    assert F.curves(drawing, h["train_loss"], log_ok=True)
    assert not F.curves(drawing, h["train_loss"])  # on a log scale the loss is not an affine image
    assert F.curves(drawing, h["val_acc"])


def test_twin_axes_and_wrong_series():
    h = history(1)
    fig = Figure()
    ax = fig.subplots()
    ax.plot(h["train_loss"], color="C0")
    ax.twinx().plot(h["val_acc"], color="C1")
    drawing = drawn(fig)
    assert F.curves(drawing, h["train_loss"]) and F.curves(drawing, h["val_acc"])
    assert not F.curves(drawing, history(2)["val_acc"])
    assert not F.curves(drawing, h["val_acc"][::-1])
    assert not F.curves(drawing, h["val_acc"][:5])


def test_upside_down_or_flattened_curves_do_not_count():
    h = history(3)
    fig = Figure()
    ax = fig.subplots()
    ax.plot(h["val_acc"])
    ax.invert_yaxis()  # larger values lower down
    assert not F.curves(drawn(fig), h["val_acc"])
    fig = Figure()
    ax = fig.subplots()
    ax.plot(h["val_acc"])
    ax.set_ylim(-1e7, 1e7)  # squashed into a flat line
    assert not F.curves(drawn(fig), h["val_acc"])


# -- ex8: labelled lines ------------------------------------------------------------------------------
def results(seed: int = 0, n: int = 5) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {name: rng.random(n).tolist() for name in VARIANTS}


def labelled_names(drawing: F.Drawing, res: dict[str, list[float]]) -> list[str]:
    return [name for name in VARIANTS if any(F.labelled(drawing, m, name) for m in F.curves(drawing, res[name]))]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["label", "pretty", "handles", "colour_text", "subplot_titles", "fig_legend"])
def test_lines_named_by_their_legend_or_label(style):
    res = results()
    fig = Figure(figsize=(8, 6))
    if style == "subplot_titles":
        for ax, name in zip(fig.subplots(2, 2).flat, VARIANTS):
            ax.plot(res[name], marker="o")
            ax.set_title(name)
    else:
        ax = fig.subplots()
        pretty = {name: f"  {name.replace('_', ' ').capitalize()} " for name in VARIANTS}  # "  No dropout "
        lines = [ax.plot(range(1, 6), res[name], label=pretty[name] if style == "pretty" else name)[0]
                 for name in VARIANTS]
        if style == "handles":
            ax.legend(lines, list(VARIANTS))
        elif style == "colour_text":
            for line, name in zip(lines, VARIANTS):
                ax.text(5.1, res[name][-1], name, color=line.get_color())
        elif style == "fig_legend":
            fig.legend(loc="outside right upper")
        else:
            ax.legend()
    assert labelled_names(drawn(fig), res) == list(VARIANTS)


@pytest.mark.slow
def test_unlabelled_or_mislabelled_lines_are_not_named():
    res = results(1)
    fig = Figure()
    ax = fig.subplots()
    for name in VARIANTS:
        ax.plot(res[name])
    ax.set_title("baseline against the others")
    assert labelled_names(drawn(fig), res) == []
    fig = Figure()
    ax = fig.subplots()
    lines = [ax.plot(res[name])[0] for name in VARIANTS]
    ax.legend(lines, list(reversed(VARIANTS)))  # every entry names another variant's line
    assert labelled_names(drawn(fig), res) == []


def test_labels_match_leniently_but_not_loosely():
    assert F.normalise_label("  No_Dropout ") == F.normalise_label("no dropout") == "no dropout"
    assert F.normalise_label("no-augmentation") == "no augmentation"
    assert F.normalise_label("baseline (val)") != "baseline"


# -- hostile files ------------------------------------------------------------------------------------
SVG_HEAD = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 100">'
LINE = '<path d="M 10 90 L 20 40 L 30 70 L 40 20" style="fill: none; stroke: #1f77b4{extra}"/>'
VALUES = [0.0, 0.5, 0.2, 0.7]


def svg(body: str) -> bytes:
    return (SVG_HEAD + body + "</svg>").encode()


def test_a_plain_line_is_read():
    drawing = F.parse_svg(svg(LINE.format(extra="")))
    assert len(F.curves(drawing, VALUES)) == 1 and drawing.marks[0].colour == "#1f77b4"


@pytest.mark.parametrize("hiding", [
    '<g style="display: none">{line}</g>', '<g visibility="hidden">{line}</g>', '<g opacity="0">{line}</g>',
    '<g transform="scale(0.001)">{line}</g>', '<g transform="translate(500 0)">{line}</g>',
    '<defs>{line}</defs>', '<g mask="url(#m)">{line}</g>',
    ('<defs><clipPath id="c"><rect x="0" y="0" width="15" height="100"/></clipPath></defs>'
    '<g clip-path="url(#c)">{line}</g>'),
    '<g clip-path="url(#nowhere)">{line}</g>',
])
def test_hidden_lines_do_not_count(hiding):
    assert not F.curves(F.parse_svg(svg(hiding.format(line=LINE.format(extra="")))), VALUES)


@pytest.mark.parametrize("extra", ["; stroke-width: 0", "; stroke-opacity: 0", "; stroke: none"])
def test_invisible_strokes_do_not_count(extra):
    assert not F.curves(F.parse_svg(svg(LINE.format(extra=extra))), VALUES)


def billion_laughs() -> bytes:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{"".join(f"&l{i - 1};" for _ in range(10))}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE svg [{entities}]>' + SVG_HEAD + "<text>&l9;</text></svg>").encode()


def png_bytes(width: int, height: int, *, claimed: tuple[int, int] | None = None) -> bytes:
    from PIL import Image

    if claimed is None:
        buf = io.BytesIO()
        Image.new("RGBA", (width, height), (9, 9, 9, 255)).save(buf, format="PNG")
        return buf.getvalue()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (F.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", *claimed, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def image_svg(png: bytes | str) -> bytes:
    data = png if isinstance(png, str) else base64.b64encode(png).decode()
    return svg(f'<image x="10" y="10" width="50" height="50" xlink:href="data:image/png;base64,{data}"/>')


@pytest.mark.parametrize("data", [
    pytest.param(billion_laughs(), id="billion-laughs"),
    pytest.param(b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                 + svg("<text>&x;</text>"), id="external-entity"),
    pytest.param(svg("<g>" * 100 + "</g>" * 100), id="deep-nesting"),
    pytest.param(svg("<g/>" * (svg_parts.MAX_ELEMENTS + 1)), id="too-many-elements", marks=pytest.mark.slow),
    pytest.param(svg("<!--" + "x" * svg_parts.MAX_SVG_BYTES + "-->"), id="over-size"),
    pytest.param(b"<svg", id="malformed"),
    pytest.param(b"\xff\xfe\x00junk", id="not-xml"),
    pytest.param(b'<html xmlns="http://www.w3.org/1999/xhtml"/>', id="not-svg"),
    pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg"/>', id="no-viewbox"),
    pytest.param("<svg/>", id="text-not-bytes"),
    pytest.param(None, id="none"),
    pytest.param(image_svg("!!!not base64!!!"), id="bad-base64"),
    pytest.param(image_svg(b"\x89PNG\r\n\x1a\n garbage"), id="broken-png"),
    pytest.param(image_svg(png_bytes(0, 0, claimed=(60_000, 60_000))), id="png-bomb-header"),
])
def test_hostile_svg_is_the_students_failure(data):
    with pytest.raises(F.BadFigure):
        F.parse_svg(data)


def test_images_share_one_pixel_budget():
    one = image_svg(png_bytes(1500, 1000)).decode()[len(SVG_HEAD):-len("</svg>")]
    assert len(F.parse_svg(svg(one)).pictures) == 1
    with pytest.raises(F.BadFigure, match="pixels"):
        F.parse_svg(svg(one * 3))


def test_an_image_outside_the_page_or_not_inlined_is_not_counted():
    png = base64.b64encode(png_bytes(4, 4)).decode()
    outside = svg(f'<image x="500" y="10" width="50" height="50" xlink:href="data:image/png;base64,{png}"/>')
    linked = svg('<image x="10" y="10" width="50" height="50" xlink:href="file:///etc/hostname"/>')
    assert F.parse_svg(outside).pictures == [] and F.parse_svg(linked).pictures == []


# -- the PNG for people and the render call -----------------------------------------------------------
def test_checked_png():
    good = png_bytes(8, 6)
    assert F.checked_png(good) == good
    assert F.checked_png(good[:30]) is None
    assert F.checked_png(b"GIF89a....") is None
    assert F.checked_png("not bytes") is None
    assert F.checked_png(png_bytes(0, 0, claimed=(100_000, 100_000))) is None
    assert F.checked_png(good, max_bytes=10) is None


class FakeSubmission:
    def __init__(self, answer):
        self.answer = answer

    def helper(self, name, *args, **kwargs):
        assert name == "figure_render"
        return self.answer


def test_render_reads_the_artifacts_and_keeps_only_a_sane_png():
    fig = Handle(None, 1, "Figure", 0)
    rendered = figure_render(maps_figure(random_maps()))
    metrics: dict = {}
    drawing = F.render(FakeSubmission(rendered), fig, "plot_feature_maps(maps)", metrics)
    assert len(drawing.pictures) == 8 and base64.b64decode(metrics["figure_png"]) == rendered["png"]
    metrics = {}
    F.render(FakeSubmission({**rendered, "png": b"\x89PNG\r\n\x1a\nforged"}), fig, "f()", metrics)
    assert metrics == {}
    with pytest.raises(BadValue):
        F.render(FakeSubmission(["not", "a", "dict"]), fig, "f()")
    with pytest.raises(F.BadFigure, match="expected a matplotlib"):
        F.render(FakeSubmission(rendered), 42, "f()")


def test_a_figure_no_report_shows_is_drawn_without_its_png():
    """The PNG is drawn only for a test that keeps it (``metrics``); the judged SVG is the same either way."""
    asked: list[dict] = []

    class Recording(FakeSubmission):
        def helper(self, name, *args, **kwargs):
            asked.append(kwargs)
            return figure_render(maps_figure(random_maps()), **kwargs)

    fig = Handle(None, 1, "Figure", 0)
    metrics: dict = {}
    with_png = F.render(Recording(None), fig, "f()", metrics)
    without = F.render(Recording(None), fig, "f()")
    assert [a["png_dpi"] > 0 for a in asked] == [True, False] and "figure_png" in metrics
    assert figure_render(maps_figure(random_maps()), png_dpi=0)["png"] is None
    assert [p.rgba.tolist() for p in with_png.pictures] == [p.rgba.tolist() for p in without.pictures]
