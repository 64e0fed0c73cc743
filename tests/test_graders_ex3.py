"""The ex3 grader on correct variants written differently from the reference, and on plausible mistakes."""
from __future__ import annotations

import pytest

from conftest import assert_verdict, grade_variants, variants

EXERCISE = "ex3_receptive_fields"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return grade_variants(EXERCISE, tmp_path_factory.mktemp(EXERCISE))


@pytest.mark.slow
@pytest.mark.parametrize("path", variants(EXERCISE), ids=lambda p: p.stem)
def test_variant(reports, path):
    assert_verdict(reports[path.stem], EXERCISE, path)
