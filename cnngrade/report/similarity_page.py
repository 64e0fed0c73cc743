"""The pages of `cnngrade similarity`: DIR/similarity/index.html, one page per flagged pair, summary.csv and summary.json."""
from __future__ import annotations

import csv
import io
import json
from html import escape
from pathlib import Path

from cnngrade.config import EXERCISES
from cnngrade.report.files import atomic_write
from cnngrade.report.html import anchor
from cnngrade.report.page import meta_line, page
from cnngrade.report.similarity import BANNER, MIN_SHARED, NOISE, Document, ExerciseSimilarity, Pair

FOLDER = "similarity"                 # DIR/similarity/ holds every page of this command


def summary(results: list[ExerciseSimilarity], threshold: float, ignore_common: int) -> dict:
    """What summary.json holds (and the dashboard reads): settings, and per exercise the flagged pairs."""
    import copydetect

    return {
        "note": BANNER, "tool": f"copydetect {copydetect.__version__}", "threshold": threshold,
        "noise_chars": NOISE, "min_shared_chars": MIN_SHARED, "ignore_common": ignore_common,
        "exercises": {r.exercise: {"files": r.files, "pairs_compared": r.compared, "notes": r.notes,
                                   "flagged": [p.row() for p in r.flagged]} for r in results},
    }


def summary_csv(results: list[ExerciseSimilarity]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = ["student_a", "student_b", "similarity", "similarity_a", "similarity_b", "shared_chars", "page"]
    writer.writerow(["exercise", *columns])
    for r in results:
        for p in r.flagged:
            row = p.row()
            writer.writerow([r.exercise, *(_cell(row[c]) for c in columns)])
    return buf.getvalue()


def _cell(value: object) -> str:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: a student id must not."""
    text = str(value)
    return "'" + text if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def load_summary(out_dir: Path) -> dict | None:
    """DIR/similarity/summary.json when `cnngrade similarity` wrote one there, else None."""
    try:
        data = json.loads((out_dir / FOLDER / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("exercises"), dict) else None


CSS = """
.banner { border-left-color: var(--warn); background: #fff8e1; }
.sbs { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; }
.sbs h3 { margin: 0 0 4px; overflow-wrap: anywhere; }
pre.code { white-space: pre; overflow-x: auto; }
pre.code .ln { display: inline-block; width: 3.5em; color: var(--muted); user-select: none; }
mark { background: #ffd54f; }
"""


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _banner() -> str:
    return f'<p class="callout banner" role="note"><b>For review only.</b> {escape(BANNER)}</p>'


def _settings(threshold: float, ignore_common: int) -> dict[str, str]:
    import copydetect

    common = f"in more than {ignore_common} students' files" if ignore_common else "off"
    return {"matcher": f"copydetect {copydetect.__version__} (winnowing, as MOSS)", "threshold": _pct(threshold),
            "shortest match": f"{NOISE} normalised characters", "common code ignored": common,
            "stub code ignored": "exercises/<exercise>.py"}


def code_html(text: str, spans: list[tuple[int, int]]) -> str:
    """The file, escaped, with line numbers and the shared regions in <mark>."""
    pieces, pos = [], 0
    for start, end in spans:
        pieces += [(text[pos:start], False), (text[start:end], True)]
        pos = end
    pieces.append((text[pos:], False))
    lines: list[list[str]] = [[]]
    for chunk, marked in pieces:
        for k, part in enumerate(chunk.split("\n")):
            if k:
                lines.append([])
            if part:
                lines[-1].append(f"<mark>{escape(part)}</mark>" if marked else escape(part))
    rows = "".join(f'<span class="ln">{i}</span>{"".join(parts)}\n' for i, parts in enumerate(lines, 1))
    return f'<pre class="code">{rows}</pre>'


def _side(doc: Document, spans: list[tuple[int, int]], share: float, other: str) -> str:
    return (f"<div><h3>{escape(doc.student)}</h3><div class=\"small muted\">{escape(doc.label)}: "
            f"{_pct(share)} of this student's own code is also in {escape(other)}'s</div>{code_html(doc.text, spans)}"
            "</div>")


def pair_page(pair: Pair, threshold: float, ignore_common: int) -> str:
    title = f"Similar code: {pair.exercise}: {pair.a.student} and {pair.b.student}"
    facts = {"exercise": pair.exercise, "similarity": _pct(pair.similarity),
             "shared": f"{pair.shared} normalised characters", **_settings(threshold, ignore_common)}
    body = (f'<header class="card"><div class="muted small"><a href="../index.html">all similar pairs</a></div>'
            f"<h1>{escape(pair.a.student)} and {escape(pair.b.student)}</h1>{meta_line(facts)}{_banner()}</header>"
            f'<section><h2>Shared regions, side by side</h2><p class="small muted">Highlighted: code found in both '
            f"files after renaming every identifier to one letter and dropping comments and layout, stub code "
            f'left out. Regions can appear in a different order in each file.</p><div class="sbs">'
            f"{_side(pair.a, pair.spans_a, pair.similarity_a, pair.b.student)}"
            f"{_side(pair.b, pair.spans_b, pair.similarity_b, pair.a.student)}</div></section>")
    return page(title, f"<style>{CSS}</style>{body}")


def _pair_row(rank: int, p: Pair, link: bool) -> str:
    cell = f'<a href="{escape(p.page)}">side by side</a>' if link else ""
    return (f'<tr><td class="num">{rank}</td><td>{escape(p.a.student)}</td><td>{escape(p.b.student)}</td>'
            f'<td class="num"><b>{_pct(p.similarity)}</b></td><td class="num">{_pct(p.similarity_a)} / '
            f'{_pct(p.similarity_b)}</td><td class="num">{p.shared}</td><td>{cell}</td></tr>')


PAIR_HEAD = ('<tr><th class="num">#</th><th>student A</th><th>student B</th><th class="num">similarity</th>'
             '<th class="num">A in B / B in A</th><th class="num">shared chars</th><th></th></tr>')


def _exercise_section(r: ExerciseSimilarity, threshold: float) -> str:
    head = (f'<section id="ex-{anchor(r.exercise)}"><h2>{escape(r.exercise)}</h2><p class="small muted">{r.files} '
            f"file(s), {r.compared} pair(s) compared, <b>{len(r.flagged)}</b> at or above {_pct(threshold)}.</p>")
    flagged = (f'<table>{PAIR_HEAD}{"".join(_pair_row(i, p, True) for i, p in enumerate(r.flagged, 1))}</table>'
               if r.flagged else '<p class="muted">No pair above the threshold.</p>')
    below = (f"<details><summary>closest pairs below the threshold</summary><table>{PAIR_HEAD}"
             f'{"".join(_pair_row(i, p, False) for i, p in enumerate(r.below, 1))}</table></details>'
             if r.below else "")
    notes = "".join(f"<li>{escape(n)}</li>" for n in r.notes)
    return head + flagged + below + (f'<ul class="small">{notes}</ul>' if notes else "") + "</section>"


def _not_compared(results: list[ExerciseSimilarity]) -> str:
    if not results:
        return ""
    items = "".join(f"<li>{escape(r.exercise)}: {r.files} file(s)"
                    + "".join(f"<br><span class=\"small\">{escape(n)}</span>" for n in r.notes) + "</li>"
                    for r in results)
    return f'<section><h2>Not compared</h2><p class="small muted">Fewer than two files handed in.</p><ul>{items}</ul></section>'


def index_page(results: list[ExerciseSimilarity], threshold: float, ignore_common: int, *,
               dashboard: bool = False) -> str:
    total = sum(len(r.flagged) for r in results)
    back = '<div class="muted small"><a href="../index.html">class dashboard</a></div>' if dashboard else ""
    body = (f'<header class="card">{back}<div class="muted small">cnngrade similarity</div>'
            f"<h1>{total} pair(s) of students with similar code</h1>{meta_line(_settings(threshold, ignore_common))}"
            f"{_banner()}<p class=\"small\">Ranked per exercise by similarity: the larger of the two shares of a "
            f"student's own code (stub left out) found in the other's file. Also in summary.csv and summary.json."
            f"</p></header>{''.join(_exercise_section(r, threshold) for r in results if r.files >= 2)}"
            f"{_not_compared([r for r in results if r.files < 2])}")
    return page("cnngrade: similar code", f"<style>{CSS}</style>{body}")


def write_pages(out_dir: Path, results: list[ExerciseSimilarity], threshold: float,
                ignore_common: int) -> Path:
    """Write DIR/similarity/ atomically; pair pages of an earlier run that are no longer flagged are removed."""
    folder = out_dir / FOLDER
    data = summary(results, threshold, ignore_common)
    written = set()
    for r in results:
        for p in r.flagged:
            atomic_write(folder / p.page, pair_page(p, threshold, ignore_common))
            written.add(folder / p.page)
    for exercise in EXERCISES:
        for old in (folder / exercise).glob("*.html") if (folder / exercise).is_dir() else []:
            if old not in written:
                old.unlink(missing_ok=True)
    atomic_write(folder / "summary.json", json.dumps(data, indent=2) + "\n")
    atomic_write(folder / "summary.csv", summary_csv(results))
    index = folder / "index.html"
    atomic_write(index, index_page(results, threshold, ignore_common, dashboard=(out_dir / "index.html").is_file()))
    return index
