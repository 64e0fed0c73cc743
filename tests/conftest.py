"""Shared fixtures: grade folders of variant submissions through the real pipeline."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT
from cnngrade.pipeline import grade_class
from cnngrade.records import StudentReport

SUBMISSIONS = Path(__file__).parent / "submissions"
EXPECT = re.compile(r"^#\s*expect-fail:\s*(.+)$", re.M)


def variants(exercise: str) -> list[Path]:
    """The variant files of one exercise: good_*.py must earn every automatic point, bad_*.py must not."""
    return sorted((SUBMISSIONS / exercise).glob("*.py"))


def expected_failures(path: Path) -> set[str]:
    """Tests a bad variant must fail, from its '# expect-fail: test_a, test_b' line (may be empty)."""
    found = EXPECT.findall(path.read_text())
    return {name.strip() for line in found for name in line.split(",") if name.strip()}


def grade_variants(exercise: str, out: Path, extra: dict[str, Path] | None = None) -> dict[str, StudentReport]:
    """Grade every variant of ``exercise`` as one class (a student per variant); reports by variant name."""
    klass = out / "class"
    for path in variants(exercise):
        student = klass / path.stem
        student.mkdir(parents=True)
        shutil.copy(path, student / f"{exercise}.py")
        for name, source in (extra or {}).items():
            shutil.copy(source, student / name)
    reports = grade_class(klass, out / "reports", [exercise], jobs=2, graders_dir=GRADERS_DIR)
    return {r.student: r for r in reports}


def assert_verdict(report: StudentReport, exercise: str, path: Path) -> None:
    """good_* earn every automatic point; bad_* lose points, on at least the tests they declare."""
    ex = report.exercises[exercise]
    auto = [t for t in ex.tests if t.status != "manual"]
    lost = {t.name for t in auto if t.score < t.max_score}
    assert not any(t.grader_error for t in auto), [(t.name, t.output) for t in auto if t.grader_error]
    if path.stem.startswith("good"):
        assert not lost, {t.name: t.output for t in auto if t.name in lost}
    else:
        assert lost, f"{path.name} earned every automatic point"
        missing = expected_failures(path) - lost
        assert not missing, f"{path.name} should fail {sorted(missing)}; it lost only {sorted(lost)}"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
