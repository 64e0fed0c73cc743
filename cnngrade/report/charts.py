"""Small inline SVG charts for the HTML reports: a histogram, line curves and a measured-against-threshold bar."""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Colours chosen to stay distinguishable for the common forms of colour blindness.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")
LEGEND_ITEM = 130        # horizontal room of one legend entry of a line chart
MAX_EPOCH_TICKS = 12     # a line chart numbers every epoch up to this many
AT_LEAST, AT_MOST = "at least", "at most"   # what a threshold requires of the measured value


def _svg_open(width: int, height: int, title: str) -> str:
    """An inline SVG element with an accessible title (shown as a tooltip too)."""
    return (f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>')


def _num(value: float) -> str:
    return f"{value:.1f}"


def histogram(values: Sequence[float], *, bins: int = 10, lo: float = 0.0, hi: float = 100.0,
              label: str = "score (%)", width: int = 520, height: int = 220) -> str:
    """Counts of ``values`` in equal bins over [lo, hi]; the last bin includes ``hi``."""
    counts = [0] * bins
    step = (hi - lo) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) // step)))] += 1
    top = max(counts) or 1
    left, bottom, right, head = 36, 34, 10, 10
    plot_w, plot_h = width - left - right, height - bottom - head
    bar_w = plot_w / bins
    parts = [_svg_open(width, height, f"{label}: number of students per bin")]
    for tick in _ticks(top):
        y = head + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>'
                     f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">{tick}</text>')
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = left + i * bar_w
        a, b = lo + i * step, lo + (i + 1) * step
        parts.append(f'<rect x="{_num(x + 1)}" y="{_num(head + plot_h - h)}" width="{_num(bar_w - 2)}" '
                     f'height="{_num(h)}" fill="{PALETTE[0]}"><title>{a:g}–{b:g}: {c} student(s)</title></rect>')
        if c:
            parts.append(f'<text x="{_num(x + bar_w / 2)}" y="{_num(head + plot_h - h - 3)}" '
                         f'text-anchor="middle">{c}</text>')
    for i in range(bins + 1):
        x = left + i * bar_w
        parts.append(f'<text x="{_num(x)}" y="{head + plot_h + 14}" text-anchor="middle">{lo + i * step:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(top: int) -> list[int]:
    step = max(1, math.ceil(top / 4))
    return list(range(0, top + 1, step))


def line_chart(series: dict[str, Sequence[float | None]], *, title: str, y_label: str = "",
               threshold: float | None = None, width: int = 460, height: int = 220) -> str:
    """One line per named series against the epoch (1, 2, ...); an optional dashed threshold line.

    A value that is not a finite number (a NaN loss is stored as null in report.json) leaves a gap at its epoch.
    """
    clean: dict[str, list[float | None]] = {
        k: [float(v) if v is not None and _finite(v) else None for v in vs] for k, vs in series.items()}
    clean = {k: vs for k, vs in clean.items() if any(v is not None for v in vs)}
    if not clean:
        return ""
    line = float(threshold) if threshold is not None and _finite(threshold) else None
    values = [v for vs in clean.values() for v in vs if v is not None] + ([line] if line is not None else [])
    y_lo, y_hi = min(0.0, min(values)), max(values)
    y_hi = y_hi if y_hi > y_lo else y_lo + 1.0
    n = max(len(vs) for vs in clean.values())
    per_row = max(1, (width - 44) // LEGEND_ITEM)
    legend_rows = -(-len(clean) // per_row)
    height += 14 * (legend_rows - 1)
    left, bottom, right, head = 44, 20 + 14 * legend_rows, 10, 24
    plot_w, plot_h = width - left - right, height - bottom - head

    def xy(i: int, v: float) -> str:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return f"{x:.1f},{head + plot_h - plot_h * (v - y_lo) / (y_hi - y_lo):.1f}"

    parts = [_svg_open(width, height, title), f'<text x="{left}" y="14" class="chart-title">{escape(title)}</text>']
    for frac in (0.0, 0.5, 1.0):
        v = y_lo + frac * (y_hi - y_lo)
        y = head + plot_h - plot_h * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    if line is not None:
        ty = xy(0, line).split(",")[1]
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{ty}" y2="{ty}" class="threshold"/>'
                     f'<text x="{width - right}" y="{float(ty) - 4:.1f}" text-anchor="end">'
                     f'threshold {line:.3g}</text>')
    for k, (name, vs) in enumerate(clean.items()):
        colour = PALETTE[k % len(PALETTE)]
        for run in _runs(vs):   # one polyline per stretch of finite values; a lone point is a dot
            pts = [xy(i, v) for i, v in run]
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(pts)}">'
                         f'<title>{escape(name)}</title></polyline>' if len(pts) > 1 else
                         f'<circle cx="{pts[0].split(",")[0]}" cy="{pts[0].split(",")[1]}" r="3" fill="{colour}">'
                         f'<title>{escape(name)}</title></circle>')
        row, col = divmod(k, per_row)
        parts.append(f'<text x="{left + col * LEGEND_ITEM}" y="{head + plot_h + 30 + 14 * row}" fill="{colour}">'
                     f'■ {escape(_clip(name, 18))}<title>{escape(name)}</title></text>')
    parts.append(f'<text x="{left + plot_w:.1f}" y="{head + plot_h + 14}" text-anchor="end">epoch {n}</text>'
                 f'<text x="{left}" y="{head + plot_h + 14}">epoch 1</text>')
    if n <= MAX_EPOCH_TICKS:   # the epochs between, where they fit
        parts += [f'<text x="{xy(i, y_lo).split(",")[0]}" y="{head + plot_h + 14}" text-anchor="middle">{i + 1}</text>'
                  for i in range(1, n - 1)]
    if y_label:
        parts.append(f'<text x="{left}" y="{head - 4}" class="axis-label">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _runs(values: list[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive finite values, with their epoch indices."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def threshold_bar(value: float, threshold: float, *, passed: bool | None, direction: str = AT_LEAST,
                  label: str = "accuracy", width: int = 460) -> str:
    """A horizontal bar of ``value`` on [0, max(1, value, threshold)] with the threshold marked.

    The colour is the test's verdict (green passed, red failed, grey when it did not decide), never which side
    of the threshold the value lies on: a test may require staying *below* a threshold (``direction`` AT_MOST).
    """
    if not (_finite(value) and _finite(threshold)):
        return ""
    top = max(1.0, value, threshold)
    left, right, height = 10, 10, 54
    span = width - left - right
    colour = "#5f6368" if passed is None else PALETTE[2] if passed else PALETTE[1]
    verdict = "" if passed is None else ": passed" if passed else ": failed"
    rule = "at most" if direction == AT_MOST else "at least"
    tx = left + span * threshold / top
    anchor = "start" if tx < left + 60 else "end" if tx > width - right - 60 else "middle"
    return (_svg_open(width, height, f"{label} {value:.4g}, required {rule} {threshold:.4g}{verdict}") +
            f'<rect x="{left}" y="18" width="{span}" height="16" class="track"/>'
            f'<rect x="{left}" y="18" width="{span * value / top:.1f}" height="16" fill="{colour}"/>'
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="12" y2="40" class="threshold"/>'
            f'<text x="{left}" y="12">{escape(label)} {value:.4g}{verdict}</text>'
            f'<text x="{tx:.1f}" y="52" text-anchor="{anchor}">required: {rule} {threshold:.4g}</text></svg>')


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
