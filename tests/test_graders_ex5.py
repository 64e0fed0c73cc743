"""The ex5 grader on correct variants written differently from the reference, and on plausible mistakes."""
from __future__ import annotations

import pytest

from conftest import assert_verdict, grade_variants, variants

EXERCISE = "ex5_alexnet_analysis"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return grade_variants(EXERCISE, tmp_path_factory.mktemp(EXERCISE))


@pytest.mark.slow
@pytest.mark.parametrize("path", variants(EXERCISE), ids=lambda p: p.stem)
def test_variant(reports, path):
    assert_verdict(reports[path.stem], EXERCISE, path)


@pytest.mark.slow
def test_explanations_are_manual(reports):
    """The three explanations wait for a person: status manual, no points yet, the text carried into the report."""
    tests = {t.name: t for t in reports["good_reuse_linear"].exercises[EXERCISE].tests}
    for key in ("relu", "dropout", "augmentation"):
        item = tests[f"EXPLANATIONS.{key}"]
        assert (item.status, item.score) == ("manual", 0.0)
        assert item.answer and "Awaiting review" in item.output
