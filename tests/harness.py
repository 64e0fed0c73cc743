"""The shared test harness: grade folders of variant submissions through the real pipeline.

Imported as ``from tests.harness import ...``; fixtures stay in conftest.py.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT
from cnngrade.report.manual import is_manual
from cnngrade.grading.pipeline import grade_class
from cnngrade.records import StudentReport

SUBMISSIONS = Path(__file__).parent / "submissions"
EXPECT = re.compile(r"^#\s*expect-fail:\s*(.+)$", re.MULTILINE)
ANCHORS = ("reference_solution", "starter_stub")   # student names of the two anchors in every variant batch


def variants(exercise: str) -> list[Path]:
    """The variant files of one exercise: good_*.py must earn every automatic point, bad_*.py must not.

    Other files there (the training checks' train_good_*/train_bad_*) belong to other harnesses.
    """
    folder = SUBMISSIONS / exercise
    return sorted([*folder.glob("good_*.py"), *folder.glob("bad_*.py")])


def expected_failures(path: Path) -> set[str]:
    """Tests a bad variant must fail, from its '# expect-fail: test_a, test_b' line (may be empty)."""
    found = EXPECT.findall(path.read_text())
    return {name.strip() for line in found for name in line.split(",") if name.strip()}


def graders_subset(exercise: str, files: list[str], dest: Path) -> Path:
    """A graders folder holding only ``files`` of the exercise's grader and the YAML entries of their tests.

    An exercise's grader may span files owned by different checks (ex6's training threshold lives in
    test_training.py); a harness of one check grades its variants with its own file only.
    """
    source = GRADERS_DIR / exercise
    target = dest / exercise
    target.mkdir(parents=True)
    defined: set[str] = set()
    for name in files:
        text = (source / name).read_text()
        defined |= set(re.findall(r"^def (test_\w+)\(", text, re.MULTILINE))
        (target / name).write_text(text)
    config = yaml.safe_load((source / "grader.yaml").read_text())
    config["tests"] = {k: v for k, v in config["tests"].items() if k.split("[")[0] in defined}
    (target / "grader.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def grade_variants(exercise: str, out: Path, grader_files: list[str] | None = None) -> dict[str, StudentReport]:
    """Grade every variant of ``exercise`` as one class (a student per variant); reports by variant name.

    ``grader_files``: grade with only these test files of the exercise's grader (default: all of them).
    """
    klass = out / "class"
    # The reference solution and the untouched stub sit in every batch: full and zero points, graded alike.
    anchors = [PROJECT_ROOT / "solutions" / f"{exercise}.py", PROJECT_ROOT / "exercises" / f"{exercise}.py"]
    for path, name in [*((p, p.stem) for p in variants(exercise)), *zip(anchors, ANCHORS)]:
        student = klass / name
        student.mkdir(parents=True)
        shutil.copy(path, student / f"{exercise}.py")
    graders = GRADERS_DIR if grader_files is None else graders_subset(exercise, grader_files, out / "graders")
    reports = grade_class(klass, out / "reports", [exercise], jobs=2, graders_dir=graders)
    return {r.student: r for r in reports}


def assert_verdict(report: StudentReport, exercise: str, path: Path) -> None:
    """good_* earn every automatic point; bad_* lose points on exactly the tests their expect-fail line names.

    Exactly, not at least: a bad variant that loses more than its mistake explains shows a grader that
    over-penalises, which is a wrong verdict too.
    """
    ex = report.exercises[exercise]
    auto = [t for t in ex.tests if not is_manual(t)]
    lost = {t.name for t in auto if t.score < t.max_score}
    assert not any(t.grader_error for t in auto), [(t.name, t.output) for t in auto if t.grader_error]
    if path.stem.startswith("good"):
        assert not lost, {t.name: t.output for t in auto if t.name in lost}
    else:
        assert lost, f"{path.name} earned every automatic point"
        expected = expected_failures(path)
        if expected == {"all"}:   # a file that cannot be used at all (it does not import)
            expected = {t.name for t in auto}
        assert lost == expected, (f"{path.name} should lose exactly {sorted(expected)}; it lost {sorted(lost)} "
                                  f"(unexpected: { {t.name: t.output[:200] for t in auto if t.name in lost - expected} })")
