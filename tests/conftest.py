"""Shared fixtures; the grading harness itself is tests/harness.py (``from tests.harness import ...``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnngrade.config import PROJECT_ROOT


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
