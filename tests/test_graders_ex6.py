"""The ex6 grader's non-training checks on correct variants written differently, and on plausible mistakes."""
from __future__ import annotations

import pytest

from conftest import assert_verdict, grade_variants, variants

EXERCISE = "ex6_cifar10_training"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    # The training threshold (test_training.py) has its own harness; this one grades the behaviour checks.
    return grade_variants(EXERCISE, tmp_path_factory.mktemp(EXERCISE), grader_files=["test_ex6_cifar10_training.py"])


@pytest.mark.slow
@pytest.mark.parametrize("path", variants(EXERCISE), ids=lambda p: p.stem)
def test_variant(reports, path):
    assert_verdict(reports[path.stem], EXERCISE, path)
