"""Small inline SVG charts for the HTML reports: a histogram, line curves and a measured-against-threshold bar."""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Colours chosen to stay distinguishable for the common forms of colour blindness.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


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


def line_chart(series: dict[str, Sequence[float]], *, title: str, y_label: str = "",
               threshold: float | None = None, width: int = 460, height: int = 220) -> str:
    """One line per named series against the epoch (1, 2, ...); an optional dashed threshold line."""
    clean = {k: [float(v) for v in vs if _finite(v)] for k, vs in series.items()}
    clean = {k: vs for k, vs in clean.items() if vs}
    if not clean:
        return ""
    values = [v for vs in clean.values() for v in vs] + ([threshold] if threshold is not None else [])
    y_lo, y_hi = min(0.0, min(values)), max(values)
    y_hi = y_hi if y_hi > y_lo else y_lo + 1.0
    n = max(len(vs) for vs in clean.values())
    left, bottom, right, head = 44, 34, 10, 24
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
    if threshold is not None:
        y = xy(0, threshold).split(",")[1]
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" class="threshold"/>'
                     f'<text x="{width - right}" y="{float(y) - 4:.1f}" text-anchor="end">'
                     f'threshold {threshold:.3g}</text>')
    for k, (name, vs) in enumerate(clean.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(xy(i, v) for i, v in enumerate(vs))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f'<title>{escape(name)}</title></polyline>')
        parts.append(f'<text x="{left + 8 + 130 * k}" y="{height - 4}" fill="{colour}">■ {escape(name)}</text>')
    parts.append(f'<text x="{left + plot_w:.1f}" y="{head + plot_h + 14}" text-anchor="end">epoch {n}</text>'
                 f'<text x="{left}" y="{head + plot_h + 14}">epoch 1</text>')
    if y_label:
        parts.append(f'<text x="{left}" y="{head - 4}" class="axis-label">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def threshold_bar(value: float, threshold: float, *, label: str = "accuracy", width: int = 460) -> str:
    """A horizontal bar of ``value`` on [0, max(1, value, threshold)] with the threshold marked."""
    if not (_finite(value) and _finite(threshold)):
        return ""
    top = max(1.0, value, threshold)
    left, right, height = 10, 10, 54
    span = width - left - right
    reached = value >= threshold
    colour = PALETTE[2] if reached else PALETTE[1]
    tx = left + span * threshold / top
    verdict = "reaches" if reached else "is below"
    return (_svg_open(width, height, f"{label} {value:.4g} {verdict} the threshold {threshold:.4g}") +
            f'<rect x="{left}" y="18" width="{span}" height="16" class="track"/>'
            f'<rect x="{left}" y="18" width="{span * value / top:.1f}" height="16" fill="{colour}"/>'
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="12" y2="40" class="threshold"/>'
            f'<text x="{left}" y="12">{escape(label)} {value:.4g}</text>'
            f'<text x="{tx:.1f}" y="52" text-anchor="middle">threshold {threshold:.4g}</text></svg>')


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
