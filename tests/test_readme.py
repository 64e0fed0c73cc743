"""The README opens with the two set-up commands, and CI runs the second one verbatim."""
from __future__ import annotations

import re

from cnngrade.config import PROJECT_ROOT


def setup_commands() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)[:2]


def test_readme_starts_with_two_single_line_commands():
    first, second = setup_commands()
    assert "\n" not in first and "\n" not in second
    assert first.endswith("cnngrade demo") and "pip install" in first
    assert second.endswith("python -m pytest") and "pip install" in second


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert setup_commands()[1] in ci
