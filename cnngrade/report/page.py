"""The shell shared by the HTML reports: inline stylesheet, page frame and small escaped building blocks.

Everything a student wrote or printed is untrusted text: every dynamic value goes through
``html.escape`` before it reaches a page, and the pages load nothing from the network and
run no script, so they open the same from a laptop, a zip file or an LMS attachment.
"""
from __future__ import annotations

import base64
import binascii
import re
from html import escape
from pathlib import PurePath
from typing import Any

from cnngrade.records import Status
from cnngrade.training.profiles import Profile

STATUS_LABELS: dict[str, str] = {
    Status.PASSED: "passed", Status.FAILED: "failed", Status.ERROR: "error", Status.TIMEOUT: "timed out",
    Status.MANUAL: "awaiting review", Status.MISSING: "file missing", Status.ADVICE: "advice",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The cpu profile's data set name (profiles.py): synthetic-shapes-TRAIN/HELD_OUT[-SIZEpx]; 32 px when unsaid.
SYNTHETIC = re.compile(r"synthetic-shapes-(\d+)/(\d+)(?:-(\d+)px)?")
CALIBRATION_KEYS = ("date", "device", "torch", "seeds", "file", "sha256")   # shown from profile["calibration"]
MAX_FIGURE_BYTES = 4 << 20   # a figure bigger than this is a runaway plot, not feedback

CSS = """
:root { --ok:#1a7f37; --bad:#c62828; --warn:#b26a00; --muted:#5f6368; --line:#d9dce1; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1d1f23; margin:0;
       background: var(--bg); }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0 0 10px; } h3 { font-size: 16px; }
section, header.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px;
       margin: 0 0 18px; }
.muted { color: var(--muted); } .small { font-size: 13px; }
.big { font-size: 34px; font-weight: 700; }
.meta { display:flex; flex-wrap:wrap; gap: 6px 22px; margin-top: 8px; font-size: 13px; color: var(--muted); }
.meta b { color:#1d1f23; font-weight:600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align:left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.badge { display:inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
         white-space: nowrap; color:#fff; }
.st-passed { background: var(--ok); } .st-failed { background: var(--bad); } .st-error { background:#6a1b9a; }
.st-timeout { background: var(--warn); } .st-manual { background:#1565c0; } .st-missing { background:#616161; } .st-advice { background:#00838f; }
.tag { font-size: 11px; color: var(--muted); border:1px solid var(--line); border-radius: 8px; padding: 0 6px; }
pre { background:#f3f4f6; border:1px solid var(--line); border-radius:6px; padding: 8px 10px; margin: 6px 0;
      white-space: pre-wrap; overflow-wrap: anywhere; font: 13px/1.4 ui-monospace, Menlo, Consolas, monospace; }
pre.counterexample { background:#fff8e1; border-color:#f0c36d; }
.answer { white-space: pre-wrap; background:#f3f4f6; border-left: 3px solid #1565c0; padding: 6px 10px; }
.fix li { margin: 4px 0; } .fix a { font-weight: 600; }
.bar { position: relative; background:#e8eaed; border-radius: 4px; height: 14px; min-width: 120px; }
.bar > span { position:absolute; left:0; top:0; bottom:0; border-radius: 4px; }
.callout { border-left: 5px solid var(--bad); background:#fff5f5; padding: 10px 14px; border-radius: 6px;
           font-size: 16px; margin: 10px 0 0; }
.good { border-left-color: var(--ok); background:#f1faf3; }
figure { margin: 8px 0; } figure img { max-width: 100%; border: 1px solid var(--line); border-radius: 4px; }
svg.chart { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; fill: #3c4043; }
svg .grid { stroke: #e3e5e8; } svg .threshold { stroke: #c62828; stroke-dasharray: 5 3; stroke-width: 2; }
svg .track { fill: #e8eaed; } svg .chart-title { font-weight: 600; font-size: 12px; }
details > summary { cursor: pointer; color: var(--muted); }
.charts { display:flex; flex-wrap: wrap; gap: 12px; }
a { color: #0b57d0; }
/* A wide table scrolls inside its own box; long names and ids wrap instead of widening the page. */
.scroll { overflow-x: auto; max-width: 100%; }
td code, td a, .meta b { overflow-wrap: anywhere; word-break: break-word; }
table.students td, table.students th { padding: 5px 6px; }
table.students th.num { white-space: nowrap; }
"""


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><style>{CSS}</style></head>\n'
            f'<body><main>\n{body}\n</main></body></html>\n')


def badge(status: str) -> str:
    label = STATUS_LABELS.get(status, status)
    return f'<span class="badge st-{escape(status)}">{escape(label)}</span>'


def points(score: float, max_score: float) -> str:
    return f"{score:g} / {max_score:g}"


def percent(score: float, max_score: float) -> float:
    return 100.0 * score / max_score if max_score else 0.0


def bar(fraction: float, colour: str = "") -> str:
    """A horizontal progress bar; red below one half, amber below four fifths, green above."""
    fraction = min(1.0, max(0.0, fraction))
    colour = colour or ("var(--bad)" if fraction < 0.5 else "var(--warn)" if fraction < 0.8 else "var(--ok)")
    return f'<div class="bar"><span style="width:{100 * fraction:.1f}%;background:{colour}"></span></div>'


def pre(text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<pre{klass}>{escape(text)}</pre>"


def first_line(text: str, limit: int = 160) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def png_data_uri(data: Any) -> str | None:
    """A data: URI for base64 PNG data from a test's metrics, or None when it is not a sane PNG."""
    if not isinstance(data, str) or len(data) > MAX_FIGURE_BYTES * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(PNG_MAGIC) or _checked_png(raw) is None:
        return None
    # Re-encode so that only the base64 alphabet ever reaches the attribute.
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _checked_png(raw: bytes) -> bytes | None:
    """The PNG when PIL verifies it within the size and pixel budget (a hostile file is never embedded)."""
    from cnngrade.graderkit.figures import checked_png

    return checked_png(raw, max_bytes=MAX_FIGURE_BYTES)


def meta_line(items: dict[str, Any]) -> str:
    """'label: value' pairs for the header; empty values are left out."""
    cells = [f"<span>{escape(k)}: <b>{escape(str(v))}</b></span>" for k, v in items.items() if v not in ("", None)]
    return f'<div class="meta">{"".join(cells)}</div>'


def scroll(table: str) -> str:
    """A table in a box of its own that scrolls sideways when the window is too narrow for it."""
    return f'<div class="scroll">{table}</div>'


def profile_items(profile: dict[str, Any]) -> dict[str, str]:
    """The profile's plain values for the header ('profile device: cpu'); nested ones get a line of their own."""
    return {f"profile {k}": str(v) for k, v in profile.items()
            if v not in ("", None) and isinstance(v, (str, int, float)) and not isinstance(v, bool)}


def profile_note(profile: dict[str, Any], *, for_student: bool) -> str:
    """One sentence on what the training checks ran on, and the calibration the thresholds come from."""
    known = Profile.from_report(profile)   # report.json's entry; a partial or older one gets no note
    if known is None:
        return ""
    if known.name == "cpu":
        sizes = SYNTHETIC.search(known.dataset)
        side = int(sizes[3] or 32) if sizes else 0
        counts = (f"{int(sizes[1]):,} training and {int(sizes[2]):,} held-out images of {side}x{side} pixels" if sizes
                  else "a few thousand small images")
        what = (f"The training checks (ex6, ex8) used the <b>cpu</b> profile: cnngrade's generated data set of coloured "
                f"shapes in ten classes ({counts}), a few epochs on the CPU; their accuracy thresholds are set for "
                "that data set, not for CIFAR-10.")
    else:
        what = ("The training checks (ex6, ex8) used the <b>gpu</b> profile: CIFAR-10 (50,000 training images; "
                "the held-out images are drawn from its test set by a secret of this grading run) with the handout's "
                "recipe on a GPU.")
    return f'<p class="small muted">{what}{calibration_line(known.calibration, for_student=for_student)}</p>'


def calibration_line(calibration: Any, *, for_student: bool) -> str:
    """' Thresholds calibrated: date <date>; device <device>; torch <version>; seeds <...>; file <name>; ...' or ''.

    ``calibration`` is the profile's entry (profiles.with_calibration); every value is escaped.
    """
    if not isinstance(calibration, dict) or not calibration:
        return ""
    parts = []
    for key in CALIBRATION_KEYS:
        value = calibration.get(key)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value[:12]) + (", …" if len(value) > 12 else "")
        value = str(value)
        if key == "file" and for_student:
            value = PurePath(value).name   # where it lies on the grading machine is not the student's business
        parts.append(f"{key} {escape(first_line(value, 120))}")
    return f" Thresholds calibrated: {'; '.join(parts)}." if parts else ""
