"""`cnngrade similarity SUBMISSIONS --out DIR`: pairs of students whose code is suspiciously alike, per exercise."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnngrade.config import resolve_exercises
from cnngrade.errors import ExitCode, InputError, UsageError
from cnngrade.intake.layouts import LAYOUTS
from cnngrade.report import similarity, similarity_page
from cnngrade.report.dashboard import class_page
from cnngrade.report.files import atomic_write, check_writable
from cnngrade.report.manual import load_reports
from cnngrade.report.progress import Progress


class PairProgress(Progress):
    """The grading progress line, counting files read and pairs of files compared instead of students graded."""

    STEP = 100   # redraw every this many steps: a large class has tens of thousands of pairs

    def advance(self) -> None:
        self.done += 1
        if self.done % self.STEP == 0 or self.done == self.total:
            self._show()

    def line(self) -> str:
        return f"similarity: {self.done}/{self.total} files read and pairs compared"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "similarity", help="find pairs of students whose code is suspiciously alike (for review, no score change)",
        description="Compare every pair of students' files, per exercise, with copydetect's winnowed fingerprints "
        "(the method of MOSS): identifiers, comments and layout are normalised away, so renaming, rewording and "
        "reordering do not hide a copy, and the stub's own code is left out. Writes DIR/similarity/index.html "
        "(pairs ranked per exercise), one side-by-side page per flagged pair, summary.csv and summary.json. "
        "A flagged pair is a signal for a person to review, never a score change. Run it with the --out of "
        "`cnngrade grade` and the class dashboard links to the pages.")
    p.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                   help="the class, as for `cnngrade grade`: one folder or .zip per student, an LMS bulk download, "
                   "or a .zip of either; notebooks are compared by their code cells")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR", help="the pages go to DIR/similarity/")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how SUBMISSIONS is organised (default: %(default)s, detected from the file names)")
    p.add_argument("--exercises", metavar="LIST", help="comma-separated exercises to compare, e.g. ex1,ex3 "
                   "(default: every exercise that has a grader)")
    p.add_argument("--threshold", type=float, default=similarity.DEFAULT_THRESHOLD, metavar="SHARE",
                   help="flag a pair when at least this share of one student's own code (stub left out) is found in "
                   "the other's, between 0 and 1 (default: %(default)s; independent solutions in cnngrade's own tests reach at most about 0.5, disguised copies 0.8 or more)")
    p.add_argument("--ignore-common", type=int, default=similarity.DEFAULT_IGNORE_COMMON, metavar="N",
                   help="treat code found in more than N students' files like the stub, as MOSS's -m does: code the "
                   "exercise forces on everyone is not evidence (default: %(default)s; 0 keeps everything)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    similarity.check_threshold(args.threshold)
    if args.ignore_common < 0:
        raise UsageError(f"--ignore-common must be 0 or more, got {args.ignore_common}")
    exercises = resolve_exercises(args.exercises)
    check_writable(args.out)
    progress = PairProgress(enabled=False if args.quiet else None)
    try:
        results = similarity.find_similar(args.submissions, exercises, layout=args.layout, threshold=args.threshold,
                                          ignore_common=args.ignore_common, on_start=progress.start,
                                          on_step=progress.advance)
    finally:
        progress.finish()
    index = similarity_page.write_pages(args.out, results, args.threshold, args.ignore_common)
    dashboard = _update_dashboard(args.out, similarity_page.summary(results, args.threshold, args.ignore_common))
    if not args.quiet:
        for r in results:
            if r.files >= 2:
                print(f"{r.exercise}: {len(r.flagged)} pair(s) at or above {args.threshold:g} of {r.compared} compared")
        print(f"\npages: {index} (a signal for review, never a score change)"
              + (f"; the class dashboard {dashboard} links to them" if dashboard else ""))
    return ExitCode.OK


def _update_dashboard(out_dir: Path, summary: dict) -> Path | None:
    """Redraw DIR/index.html with its "Similar code" section when DIR holds a graded class."""
    target = out_dir / "index.html"
    if not target.is_file() or not any(out_dir.glob("*/report.json")):
        return None
    try:
        reports = load_reports(out_dir)
    except InputError as exc:
        print(f"cnngrade: warning: class dashboard not updated: {exc}", file=sys.stderr)
        return None
    exercises = similarity.exercise_order({e for r in reports for e in r.exercises})
    atomic_write(target, class_page(reports, exercises, similarity=summary))
    return target
