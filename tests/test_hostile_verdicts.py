"""Hostile submissions that stay inside the sandbox but try to earn points they did not compute.

tests/adversarial/<exercise>/<name>.py is one student's file for that exercise. Its
``# expect-fail: test_a, test_b`` line names exactly the tests that must lose points (the others
must pass: a hostile file is an honest solution plus one attack, so any other loss would hide
what the attack changed). An optional ``# graders: test_x.py, test_y.py`` line grades it with only
those files of the exercise's grader (the training checks of ex6/ex8 live apart). Every batch also
grades the reference solution as an honest classmate, who must earn every automatic point, and no
verdict may be blamed on cnngrade. The batches are graded in one class with the variants of tests/test_graders.py
that use the same grader files (conftest.py class_batches).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cnngrade.config import EXERCISES
from tests.harness import ANCHORS, expected_failures, hostile_cases, hostile_grader_files

CASES = hostile_cases(EXERCISES)


@pytest.mark.slow
@pytest.mark.parametrize("exercise, path", CASES, ids=[f"{e.split('_')[0]}-{p.stem}" for e, p in CASES])
def test_hostile_earns_nothing_it_did_not_compute(class_batches, exercise: str, path: Path):
    reports = class_batches.reports(exercise, hostile_grader_files(path))
    honest = [t for t in reports[ANCHORS[0]].exercises[exercise].tests if t.status != "manual"]
    assert all(t.score == t.max_score for t in honest), {t.name: t.output[:300] for t in honest if t.score < t.max_score}
    auto = [t for t in reports[path.stem].exercises[exercise].tests if t.status != "manual"]
    assert not any(t.grader_error for t in auto), [(t.name, t.output[:300]) for t in auto if t.grader_error]
    lost = {t.name for t in auto if t.score < t.max_score}
    expected = expected_failures(path)
    assert expected, f"{path.name} needs an '# expect-fail:' line naming the tests its attack must lose"
    assert lost == expected, {"should lose": sorted(expected - lost), "lost too": sorted(lost - expected),
                              "outputs": {t.name: t.output[:200] for t in auto if t.name in lost ^ expected}}
