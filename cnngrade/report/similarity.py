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

import dataclasses
import hashlib
import io
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from cnngrade.config import EXERCISES, PROJECT_ROOT
from cnngrade.errors import InputError, UsageError
from cnngrade.intake.collect import StudentSubmission, collect_class

if TYPE_CHECKING:
    import numpy as np
    from copydetect import CodeFingerprint

STUBS_DIR = PROJECT_ROOT / "exercises"
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


def _fingerprint(doc: Document) -> CodeFingerprint:
    """copydetect's fingerprint of the whole text: every k-gram of the normalised tokens (window 1)."""
    from copydetect import CodeFingerprint

    return CodeFingerprint(f"{doc.student}/{doc.exercise}.py", NOISE, 1, None, fp=io.StringIO(doc.text),
                           language="python")


def _drop(fingerprint: CodeFingerprint, hashes: set[np.int64]) -> None:
    """Remove stub or common fingerprints (copydetect's own boilerplate filter, done after the fact so that the
    common-code count can reuse one fingerprinting pass)."""
    from copydetect.utils import get_token_coverage

    gone = fingerprint.hashes & hashes
    if gone:
        fingerprint.hashes = fingerprint.hashes - gone
        for h in gone:
            fingerprint.hash_idx.pop(h, None)
        fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, NOISE, len(fingerprint.filtered_code))


def stub_hashes(exercise: str, stubs_dir: Path = STUBS_DIR) -> set[np.int64]:
    stub = stubs_dir / f"{exercise}.py"
    if not stub.is_file():
        return set()
    return set(_fingerprint(Document("stub", exercise, stub.name, stub.read_text(encoding="utf-8"))).hashes)


def _spans(slices: np.ndarray, length: int) -> list[tuple[int, int]]:
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


def _compare(exercise: str, a: Document, b: Document, fa: CodeFingerprint, fb: CodeFingerprint) -> Pair | None:
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


def exercise_order(names: Collection[str]) -> list[str]:
    known = [e for e in EXERCISES if e in names]
    return known + sorted(n for n in names if n not in known)
