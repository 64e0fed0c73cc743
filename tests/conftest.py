"""Shared fixtures; the grading harness itself is tests/harness.py (``from tests.harness import ...``)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnngrade.config import PROJECT_ROOT

if TYPE_CHECKING:   # the harness imports the pipeline: only the sessions that grade pay for it
    from tests.harness import ClassBatches, Key


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


def wanted_batch(item: pytest.Item) -> Key | None:
    """The (exercise, grader files) batch a selected test will read: the training harness's class, a hostile
    file's own grader files, else the exercise's variant files."""
    from tests.harness import TRAINING_KEY, hostile_grader_files, variant_files

    if "training_class" in getattr(item, "fixturenames", ()):
        return TRAINING_KEY
    params = getattr(getattr(item, "callspec", None), "params", {})
    exercise = params.get("exercise")
    if exercise is None:
        return None
    path = params.get("path")
    if isinstance(path, Path) and path.parent.name == exercise and path.parent.parent.name == "adversarial":
        return exercise, hostile_grader_files(path)
    return exercise, variant_files(exercise)


@pytest.fixture(scope="session")
def class_batches(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ClassBatches:
    """Variant and hostile reports (tests/harness.py ClassBatches): every batch the selected tests ask for is
    graded in one class at the first request, so `-k ex4` grades ex4 alone and a full run grades all at once."""
    from tests.harness import ClassBatches

    users = [i for i in request.session.items if "class_batches" in getattr(i, "fixturenames", ())]
    wanted = {key for key in map(wanted_batch, users) if key is not None}
    with_variants = {key[0] for i in users if i.path.name == "test_graders.py" and (key := wanted_batch(i))}
    return ClassBatches(tmp_path_factory.mktemp("classes"), wanted, with_variants)


@pytest.fixture(scope="session")
def training_class(class_batches: ClassBatches) -> dict:
    """The training harness's class (tests/test_training.py), graded with the hostile files of the training
    checks: reports by student."""
    return class_batches.training()
