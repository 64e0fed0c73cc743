"""Hostile submissions that stay inside the sandbox but try to earn points they did not compute.

tests/adversarial/<exercise>/<name>.py is one student's file for that exercise. Its
``# expect-fail: test_a, test_b`` line names exactly the tests that must lose points (the others
must pass: a hostile file is an honest solution plus one attack, so any other loss would hide
what the attack changed). An optional ``# graders: test_x.py, test_y.py`` line grades it with only
those files of the exercise's grader (the training checks of ex6/ex8 live apart). Every batch also
grades the reference solution as an honest classmate, who must earn every automatic point, and no
verdict may be blamed on cnngrade.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cnngrade.config import EXERCISES, GRADERS_DIR, PROJECT_ROOT
from cnngrade.grading.pipeline import grade_class
from tests.harness import expected_failures, graders_subset

HOSTILE = Path(__file__).parent / "adversarial"
GRADERS_LINE = re.compile(r"^#\s*graders:\s*(.+)$", re.MULTILINE)
CASES = [(e, p) for e in EXERCISES for p in sorted((HOSTILE / e).glob("*.py"))]


def grader_files(path: Path) -> tuple[str, ...]:
    found = GRADERS_LINE.findall(path.read_text())
    if not found:
        return tuple(sorted(p.name for p in (GRADERS_DIR / path.parent.name).glob("test_*.py")))
    return tuple(sorted(name.strip() for name in found[0].split(",") if name.strip()))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Reports by (exercise, grader files), each batch graded once: its hostile files plus the honest solution."""
    cache: dict = {}

    def reports(exercise: str, files: tuple[str, ...]) -> dict:
        key = (exercise, files)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"hostile-{exercise}")
            klass = root / "class"
            members = [p for e, p in CASES if e == exercise and grader_files(p) == files]
            for path in [*members, PROJECT_ROOT / "solutions" / f"{exercise}.py"]:
                student = klass / ("honest" if path.parent.name == "solutions" else path.stem)
                student.mkdir(parents=True)
                shutil.copy(path, student / f"{exercise}.py")
            graders = graders_subset(exercise, list(files), root / "graders")
            cache[key] = {r.student: r for r in grade_class(klass, root / "reports", [exercise], jobs=2,
                                                            graders_dir=graders)}
        return cache[key]

    return reports


@pytest.mark.slow
@pytest.mark.parametrize("exercise, path", CASES, ids=[f"{e.split('_')[0]}-{p.stem}" for e, p in CASES])
def test_hostile_earns_nothing_it_did_not_compute(graded, exercise: str, path: Path):
    reports = graded(exercise, grader_files(path))
    honest = [t for t in reports["honest"].exercises[exercise].tests if t.status != "manual"]
    assert all(t.score == t.max_score for t in honest), {t.name: t.output[:300] for t in honest if t.score < t.max_score}
    auto = [t for t in reports[path.stem].exercises[exercise].tests if t.status != "manual"]
    assert not any(t.grader_error for t in auto), [(t.name, t.output[:300]) for t in auto if t.grader_error]
    lost = {t.name for t in auto if t.score < t.max_score}
    expected = expected_failures(path)
    assert expected, f"{path.name} needs an '# expect-fail:' line naming the tests its attack must lose"
    assert lost == expected, {"should lose": sorted(expected - lost), "lost too": sorted(lost - expected),
                              "outputs": {t.name: t.output[:200] for t in auto if t.name in lost ^ expected}}
