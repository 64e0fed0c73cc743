"""Similar code across a class, per exercise: pairs of students for a person to review, never a score change.

The matching is copydetect's (https://github.com/blingenf/copydetect): pygments tokenises the code, every
identifier becomes one letter (variables V, functions F, classes O), strings become S, comments and layout
vanish, and the k-grams of what is left are fingerprinted with winnowing, the algorithm MOSS uses. So renamed
variables, rewritten comments and docstrings and reordered functions do not hide a copy, and fingerprints of
the stub (exercises/<exercise>.py, the code every student starts from) are removed before comparing.
Alternatives weighed: pycode_similar diffs normalised ASTs function by function with difflib (robust to
renaming too) but is a one-file tool with no boilerplate removal, and a file that does not parse cannot be
compared at all (a lexer copes with broken code); a plain difflib ratio on the text is defeated by renaming and
reordering; Dolos (also winnowing, well kept) needs Node.js, an extra runtime for instructors; MOSS itself is a
remote service that would receive the students' code. copydetect is a maintained PyPI package
with a small API (fingerprint a text, compare two fingerprints) that returns the shared regions of each file,
which the side-by-side pages need; its own HTML report is not used (cnngrade writes escaped, script-free pages
like its other reports).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from html import escape
from pathlib import Path

from cnngrade.intake.collect import StudentSubmission, collect_class
from cnngrade.config import EXERCISES, PROJECT_ROOT
from cnngrade.errors import InputError, UsageError
from cnngrade.report.files import atomic_write
from cnngrade.report.html import anchor
from cnngrade.report.page import meta_line, page

STUBS_DIR = PROJECT_ROOT / "exercises"
FOLDER = "similarity"                 # DIR/similarity/ holds every page of this command
DEFAULT_THRESHOLD = 0.6               # tests/submissions: honest variants reach 0.52, disguised copies 0.82 or more
NOISE = 40                            # k: a match shorter than 40 normalised characters (two statements) is noise
MIN_SHARED = 80                       # a pair is flagged only when it shares at least this many normalised characters
DEFAULT_IGNORE_COMMON = 10            # like MOSS's -m: code found in more students' files than this is common ground
MAX_SOURCE_BYTES = 1 << 20            # a larger exercise file is not hand-written code; it is left out
SHOWN_BELOW = 5                       # closest pairs under the threshold listed for context (no page)
BANNER = ("Similar code is a signal for a person to review, never a score change: cnngrade changes no points "
          "because of it. Code can be alike for honest reasons (the exercise forces it, shared course material, "
          "working together where that was allowed); read both files before concluding anything.")


@dataclasses.dataclass
class Document:
    """One student's code for one exercise, as compared: a notebook's code cells, or the .py file."""

    student: str
    exercise: str
    label: str      # what the student handed in, e.g. "ex3_receptive_fields.ipynb (code cells)"
    text: str


@dataclasses.dataclass
class Pair:
    """Two students' files for one exercise; ``spans_*`` are the shared regions, as character ranges of ``text``."""

    exercise: str
    a: Document
    b: Document
    similarity_a: float   # share of a's own code (stub and common code left out) found in b
    similarity_b: float
    shared: int           # normalised characters in common (the smaller of the two sides)
    spans_a: list[tuple[int, int]]
    spans_b: list[tuple[int, int]]

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)

    @property
    def page(self) -> str:
        """The pair's page, relative to DIR/similarity/: only safe characters, stable across runs."""
        digest = hashlib.sha256(f"{self.exercise}\0{self.a.student}\0{self.b.student}".encode()).hexdigest()[:10]
        return f"{self.exercise}/{_slug(self.a.student)}--{_slug(self.b.student)}-{digest}.html"

    def row(self) -> dict:
        return {"student_a": self.a.student, "student_b": self.b.student, "similarity": round(self.similarity, 4),
                "similarity_a": round(self.similarity_a, 4), "similarity_b": round(self.similarity_b, 4),
                "shared_chars": self.shared, "file_a": self.a.label, "file_b": self.b.label, "page": self.page}


@dataclasses.dataclass
class ExerciseSimilarity:
    """The outcome for one exercise: how many files, every flagged pair (most similar first), the closest others."""

    exercise: str
    files: int
    compared: int
    flagged: list[Pair]
    below: list[Pair]
    notes: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:30] or "student"


def read_class(submissions: Path, exercises: list[str], *, layout: str = "auto",
               ) -> tuple[dict[str, list[Document]], dict[str, list[str]], int]:
    """Every student's code per exercise, collected like `cnngrade grade` does (folders, zips, LMS downloads,
    notebooks as their code cells); also what could not be compared, and how many students there are."""
    docs: dict[str, list[Document]] = {e: [] for e in exercises}
    notes: dict[str, list[str]] = {e: [] for e in exercises}
    with tempfile.TemporaryDirectory(prefix="cnngrade-similarity-") as tmp:
        staging = Path(tmp)
        students = collect_class(submissions, exercises, layout=layout, staging=staging)
        for sub in students:
            for exercise in exercises:
                doc, problem = _document(sub, exercise, staging)
                if doc is not None:
                    docs[exercise].append(doc)
                elif problem:
                    notes[exercise].append(f"{sub.student}: not compared ({problem})")
    return docs, notes, len(students)


def _document(sub: StudentSubmission, exercise: str, staging: Path) -> tuple[Document | None, str]:
    if sub.error or exercise not in sub.modules:
        return None, sub.error or sub.problems.get(exercise, "")
    path = sub.modules[exercise]
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None, f"{path.name} is over {MAX_SOURCE_BYTES >> 20} MiB"
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        return None, f"{path.name} cannot be read: {exc.strerror}"
    from_notebook = staging / "notebooks" in path.parents
    label = f"{exercise}.ipynb (code cells)" if from_notebook else str(path.relative_to(sub.path)) \
        if path.is_relative_to(sub.path) else path.name
    return Document(sub.student, exercise, label, text), ""


def _fingerprint(doc: Document):
    """copydetect's fingerprint of the whole text: every k-gram of the normalised tokens (window 1)."""
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{doc.student}/{doc.exercise}.py", NOISE, 1, None, fp=io.StringIO(doc.text),
                           language="python")


def _drop(fingerprint, hashes: set) -> None:
    """Remove stub or common fingerprints (copydetect's own boilerplate filter, done after the fact so that the
    common-code count can reuse one fingerprinting pass)."""
    from copydetect.utils import get_token_coverage

    gone = fingerprint.hashes & hashes
    if gone:
        fingerprint.hashes = fingerprint.hashes - gone
        for h in gone:
            fingerprint.hash_idx.pop(h, None)
        fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, NOISE, len(fingerprint.filtered_code))


def stub_hashes(exercise: str, stubs_dir: Path = STUBS_DIR) -> set:
    stub = stubs_dir / f"{exercise}.py"
    if not stub.is_file():
        return set()
    return set(_fingerprint(Document("stub", exercise, stub.name, stub.read_text(encoding="utf-8"))).hashes)


def _spans(slices, length: int) -> list[tuple[int, int]]:
    """copydetect's 2xN start/end array as sorted, merged, in-range (start, end) pairs."""
    if len(slices) == 0 or len(slices[0]) == 0:
        return []
    spans = sorted((max(0, int(s)), min(length, int(e))) for s, e in zip(slices[0], slices[1]))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def compare_exercise(exercise: str, docs: list[Document], *, threshold: float = DEFAULT_THRESHOLD,
                     ignore_common: int = DEFAULT_IGNORE_COMMON, stubs_dir: Path = STUBS_DIR,
                     on_step: Callable[[], None] | None = None) -> ExerciseSimilarity:
    """Every pair of ``docs``: flagged when one side has at least ``threshold`` of its own code in the other.

    ``on_step()`` is called after each file fingerprinted and each pair compared (see ``work_count``).
    """
    prints = []
    for doc in docs:
        prints.append(_fingerprint(doc))
        if on_step:
            on_step()
    ignored = stub_hashes(exercise, stubs_dir)
    notes = []
    if ignore_common and len(docs) > ignore_common:
        counts = Counter(h for p in prints for h in p.hashes - ignored)
        common = {h for h, n in counts.items() if n > ignore_common}
        if common:
            notes.append(f"code found in more than {ignore_common} students' files is treated like the stub "
                         f"({len(common)} fingerprint(s))")
        ignored |= common
    for p in prints:
        _drop(p, ignored)
    pairs = []
    for i in range(len(docs)):
        for j in range(i + 1, len(docs)):
            pair = _compare(exercise, docs[i], docs[j], prints[i], prints[j])
            if pair is not None:
                pairs.append(pair)
            if on_step:
                on_step()
    pairs.sort(key=lambda p: (-p.similarity, -p.shared, p.a.student, p.b.student))
    flagged = [p for p in pairs if p.similarity >= threshold and p.shared >= MIN_SHARED]
    below = [p for p in pairs if not (p.similarity >= threshold and p.shared >= MIN_SHARED)][:SHOWN_BELOW]
    return ExerciseSimilarity(exercise, len(docs), len(docs) * (len(docs) - 1) // 2, flagged, below, notes)


def _compare(exercise: str, a: Document, b: Document, fa, fb) -> Pair | None:
    from copydetect import compare_files

    if not fa.hashes or not fb.hashes:
        return None   # nothing of the student's own beyond the stub
    _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fa, fb)
    if not sim_a and not sim_b:
        return None
    shared = int(min(sim_a * fa.token_coverage, sim_b * fb.token_coverage))
    return Pair(exercise, a, b, float(sim_a), float(sim_b), shared,
                _spans(slices_a, len(a.text)), _spans(slices_b, len(b.text)))


def work_count(docs: dict[str, list[Document]]) -> int:
    """Files to fingerprint plus pairs to compare: the steps of the progress line."""
    return sum(len(d) + len(d) * (len(d) - 1) // 2 for d in docs.values())


def check_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise UsageError(f"--threshold must be above 0 and at most 1 (a share of the code), got {threshold:g}")
    return threshold


def find_similar(submissions: Path, exercises: list[str], *, layout: str = "auto",
                 threshold: float = DEFAULT_THRESHOLD, ignore_common: int = DEFAULT_IGNORE_COMMON,
                 stubs_dir: Path = STUBS_DIR, on_start: Callable[[int], None] | None = None,
                 on_step: Callable[[], None] | None = None) -> list[ExerciseSimilarity]:
    """Read the class and compare every pair of students per exercise; InputError when there is nothing to compare."""
    check_threshold(threshold)
    if not exercises:
        raise UsageError("no exercise selected")
    docs, notes, n_students = read_class(submissions, exercises, layout=layout)
    if n_students < 2:
        raise InputError(f"{submissions} holds {n_students} student(s); comparing needs at least two")
    if not any(len(d) >= 2 for d in docs.values()):
        raise InputError(f"no exercise of {', '.join(exercises)} was handed in by two students or more in {submissions}")
    if on_start:
        on_start(work_count(docs))
    results = []
    for exercise in exercises:
        result = compare_exercise(exercise, docs[exercise], threshold=threshold, ignore_common=ignore_common,
                                  stubs_dir=stubs_dir, on_step=on_step)
        result.notes = notes[exercise] + result.notes
        results.append(result)
    return results


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


def _cell(value) -> str:
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


def exercise_order(names) -> list[str]:
    known = [e for e in EXERCISES if e in names]
    return known + sorted(n for n in names if n not in known)


# ---- pages: DIR/similarity/index.html, one page per flagged pair, summary.csv and summary.json ----

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
