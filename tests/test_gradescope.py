"""`cnngrade export gradescope`: the zip's run_autograder, run against a fake /autograder, agrees with `cnngrade grade`."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cnngrade.cli import main
from cnngrade.errors import IsolationUnavailable
from cnngrade.export.gradescope import GRADERS, SETTINGS, STUDENT
from cnngrade.export.release import wheel_name
from cnngrade.grading.validate import SOLUTIONS_DIR
from cnngrade.sandbox.preflight import check_isolation
from tests.test_readme import doc_argv, instructor_commands

EXERCISE = "ex1_output_size"


def isolation_here() -> str:
    """The zip ships rlimits; where this machine's Python is unreadable to the sandbox uid, bwrap stands in."""
    try:
        check_isolation("rlimits")
        return "rlimits"
    except IsolationUnavailable:
        return "bwrap"


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    wheel = tmp / wheel_name()
    wheel.write_bytes(b"not installed by these tests")   # setup.sh is not run here; run_autograder is
    (command,) = [c for c in instructor_commands() if c.startswith("cnngrade export gradescope")]
    assert main([*doc_argv(command, OUT=str(tmp / "out")), "--exercises", "ex1", "--wheel", str(wheel)]) == 0
    return tmp / "out" / "gradescope" / "autograder.zip"


def test_zip_holds_the_scripts_the_wheel_and_every_grader(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        setup, run = zf.read("setup.sh").decode(), zf.read("run_autograder").decode()
        settings = json.loads(zf.read(SETTINGS))
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
    assert {"setup.sh", "run_autograder", wheel_name(), f"{GRADERS}/{EXERCISE}/grader.yaml"} <= names
    assert f"{GRADERS}/{EXERCISE}/test_{EXERCISE}.py" in names          # hidden tests too: they stay root's
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and wheel_name() in setup
    assert "cnngrade.export.gradescope run" in run
    assert settings == {"exercises": [EXERCISE], "isolation": "rlimits", "timeout_s": settings["timeout_s"],
                        "jobs": 1, "profile": "cpu"}
    for script in (setup, run):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def fake_root(tmp_path: Path, autograder_zip: Path, submission: Path) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, run_autograder beside it, the student's files."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    shutil.copytree(submission, root / "submission")
    (root / "submission_metadata.json").write_text("{}")
    return root


def run_autograder(root: Path, isolation: str) -> dict:
    env = {**os.environ, "CNNGRADE_AUTOGRADER_ROOT": str(root), "CNNGRADE_PYTHON": sys.executable,
           "CNNGRADE_ISOLATION": isolation}
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


def comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k != "execution_time"}


@pytest.mark.slow
def test_run_autograder_writes_what_cnngrade_grade_writes(tmp_path, autograder_zip):
    submission = tmp_path / "class" / STUDENT
    submission.mkdir(parents=True)
    shutil.copy(SOLUTIONS_DIR / f"{EXERCISE}.py", submission)
    isolation = isolation_here()
    root = fake_root(tmp_path, autograder_zip, submission)
    ours = run_autograder(root, isolation)
    assert main(["grade", str(submission.parent), "--out", str(tmp_path / "out"), "--exercises", "ex1",
                 "--isolation", isolation, "--jobs", "1", "--profile", "cpu", "--quiet"]) == 0
    theirs = json.loads((tmp_path / "out" / STUDENT / "results.json").read_text())
    assert comparable(ours) == comparable(theirs)
    auto = [t for t in ours["tests"] if "score" in t]
    assert ours["score"] == pytest.approx(sum(t["max_score"] for t in auto)) and ours["score"] > 0
    assert "execution_time" in ours
    # The graders and the results are root's alone: the student's uid can read the one and write the other
    # neither.
    for folder in ("source", "results"):
        assert stat.S_IMODE((root / folder).stat().st_mode) == 0o700


@pytest.mark.slow
def test_a_grading_failure_still_writes_valid_results(tmp_path, autograder_zip):
    submission = tmp_path / "files"
    submission.mkdir()
    (submission / f"{EXERCISE}.py").write_text("def conv_output_size(*a):\n    return 0\n")
    root = fake_root(tmp_path, autograder_zip, submission)
    results = run_autograder(root, "no-such-isolation")   # cnngrade grade refuses it: a usage error
    assert results["score"] == 0 and results["tests"][0]["status"] == "failed"
    assert "could not grade" in results["output"]
