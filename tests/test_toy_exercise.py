"""A ninth exercise added by following DEVELOPING.md alone: its "Adding an exercise" files, then its commands."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT, discover_exercises, load_exercise, resolve_exercises

TOY = "ex9_toy"


def walkthrough() -> tuple[dict[str, str], list[str]]:
    """DEVELOPING.md's "Adding an exercise": the files (a code block whose first line is ``# path``) and the
    commands (its bash block)."""
    text = (PROJECT_ROOT / "DEVELOPING.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding an exercise"):]
    section = section[:section.index("\n## ", 3)]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    files = {body.splitlines()[0][2:].strip(): body.split("\n", 1)[1] for lang, body in blocks
             if lang in ("python", "yaml") and body.startswith("# ")}
    commands = [line for lang, body in blocks if lang == "bash" for line in body.splitlines() if line.strip()]
    return files, commands


def toy_project(root: Path) -> Path:
    """graders/ copied beside the walkthrough's files, written where it says."""
    shutil.copytree(GRADERS_DIR, root / "graders", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    files, _ = walkthrough()
    assert set(files) == {f"exercises/{TOY}.py", f"solutions/{TOY}.py", f"graders/{TOY}/test_{TOY}.py",
                          f"graders/{TOY}/grader.yaml"}, sorted(files)
    for relative, body in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(body)
    return root


def test_the_walkthrough_makes_a_ninth_exercise_that_is_discovered_and_consistent(tmp_path):
    graders = toy_project(tmp_path) / "graders"
    assert discover_exercises(graders)[-1] == TOY and len(discover_exercises(graders)) == 9
    assert resolve_exercises("ex9", graders) == [TOY]
    cfg = load_exercise(TOY, graders)
    assert cfg.max_score == 4
    assert {t.name: t.description for t in cfg.tests}["test_answer"] == 'ANSWERS["clipped"] is clip([-2, 0.5, 3], 0, 1)'
    # The YAML against the tests (check_graders) runs in the slow test: validate and grade check it first.


@pytest.mark.slow
def test_the_walkthrough_commands_validate_and_grade_it(tmp_path):
    root = toy_project(tmp_path)
    student = root / "class" / "ada"
    student.mkdir(parents=True)
    shutil.copy(root / "solutions" / f"{TOY}.py", student / f"{TOY}.py")
    _, commands = walkthrough()
    extra = {"validate": ["--graders", "graders", "--solutions", "solutions", "--stubs", "exercises"],
             "grade": ["--graders", "graders"]}
    assert [c.split()[1] for c in commands] == ["validate", "grade"]
    for command in commands:
        words = [{"CLASS": "class"}.get(w, w) for w in shlex.split(command)]
        argv = [sys.executable, "-m", "cnngrade", *words[1:], *extra[words[1]]]
        done = subprocess.run(argv, check=False, cwd=root, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    report = json.loads((root / "reports" / "ada" / "report.json").read_text())
    toy = report["exercises"][TOY]
    assert (toy["score"], toy["max_score"]) == (4, 4)
    assert sorted(t["name"] for t in toy["tests"]) == [
        "test_answer", "test_clip_matches_torch", "test_low_above_high_raises[half]",
        "test_low_above_high_raises[one-zero]"]
