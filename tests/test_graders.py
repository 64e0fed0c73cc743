"""Every grader on correct variants written differently from the reference (full points) and on plausible
mistakes (each loses points), one batch per exercise (tests/submissions/<exercise>/good_*.py, bad_*.py),
graded in one class with the hostile files of tests/test_hostile_verdicts.py (conftest.py class_batches)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnngrade.config import EXERCISES
from cnngrade.records import StudentReport
from tests.harness import ANCHORS, ClassBatches, assert_verdict, variant_files, variants

CASES = [(e, p) for e in EXERCISES for p in variants(e)]


def graded(batches: ClassBatches, exercise: str) -> dict[str, StudentReport]:
    """Reports by variant name of the exercise's batch (its variants with the two anchors)."""
    return batches.reports(exercise, variant_files(exercise))


def test_every_exercise_has_good_and_bad_variants():
    for exercise in EXERCISES:
        stems = [p.stem for p in variants(exercise)]
        assert any(s.startswith("good") for s in stems) and sum(s.startswith("bad") for s in stems) >= 3, exercise


@pytest.mark.slow
@pytest.mark.parametrize("exercise, path", CASES, ids=[f"{e.split('_')[0]}-{p.stem}" for e, p in CASES])
def test_variant(class_batches, exercise: str, path: Path):
    assert_verdict(graded(class_batches, exercise)[path.stem], exercise, path)


@pytest.mark.slow
@pytest.mark.parametrize("exercise", ["ex5_alexnet_analysis"])
def test_free_text_answers_wait_for_a_person(class_batches, exercise: str):
    """ex5's three explanations: status manual, no points yet, the text carried into the report."""
    tests = {t.name: t for t in graded(class_batches, exercise)["good_reuse_linear"].exercises[exercise].tests}
    for key in ("relu", "dropout", "augmentation"):
        item = tests[f"EXPLANATIONS.{key}"]
        assert (item.status, item.score) == ("manual", 0.0)
        assert item.answer and "Awaiting review" in item.output


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_solution_full_and_stub_zero_in_the_variant_batch(class_batches, exercise: str):
    """The same batch that grades the variants gives the reference solution every automatic point and the stub none."""
    solution, stub = (graded(class_batches, exercise)[name].exercises[exercise] for name in ANCHORS)
    auto = [t for t in solution.tests if t.status != "manual"]
    assert auto and all(t.score == t.max_score for t in auto), {t.name: t.output[:300] for t in auto if t.score < t.max_score}
    assert not any(t.grader_error for t in [*auto, *stub.tests]), [t.name for t in [*auto, *stub.tests] if t.grader_error]
    assert stub.score == 0, {t.name: t.status for t in stub.tests if t.score}
