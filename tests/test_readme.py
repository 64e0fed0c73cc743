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
    assert "pip install" in second
    # The type check, then both lanes, the fast one first so that a failure shows within a minute, each with its
    # slowest tests.
    assert second.endswith('&& mypy && python -m pytest -m "not slow" --durations=10 '
                           '&& python -m pytest -m slow --durations=25')


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert setup_commands()[1] in ci


# -- docs/instructors.md's release and LMS-export section, docs/students.md (each command is run by a test) --------
def instructor_commands(start: str = "## 1. Before the week", end: str = "## 2. After the deadline") -> list[str]:
    """The commands in the code blocks of one section of docs/instructors.md."""
    text = (PROJECT_ROOT / "docs" / "instructors.md").read_text()
    section = text[text.index(start):text.index(end)]
    blocks = re.findall(r"```\n(.*?)\n```", section, re.DOTALL)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def doc_argv(command: str, **paths: str) -> list[str]:
    """A documented `cnngrade ...` command as main()'s argv, its placeholders (OUT, cnn-week.zip) replaced."""
    words = command.split()
    assert words[0] == "cnngrade", command
    return [paths.get(w, w) for w in words[1:]]


def test_every_release_and_export_command_is_run_by_a_test():
    # test_release runs the first, test_gradescope the second, test_otter the third (each through doc_argv),
    # and test_release runs docs/students.md's bash blocks line by line.
    assert instructor_commands() == ["cnngrade release cnn-week.zip", "cnngrade export gradescope OUT",
                                     "cnngrade export otter OUT"]
    students = (PROJECT_ROOT / "docs" / "students.md").read_text()
    assert len(re.findall(r"```bash\n", students)) == 2
