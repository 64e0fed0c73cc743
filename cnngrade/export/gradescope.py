"""`cnngrade export gradescope OUT`: a native Gradescope autograder zip whose run_autograder runs `cnngrade grade`."""
from __future__ import annotations

import html
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Where Gradescope puts everything (its autograder contract); the variable lets a test point at a fake root.
ROOT_ENV = "CNNGRADE_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"
PYTHON_ENV = "CNNGRADE_PYTHON"         # the interpreter run_autograder uses (default: the venv setup.sh makes)
ISOLATION_ENV = "CNNGRADE_ISOLATION"   # overrides the zip's isolation, e.g. for a test on a machine with bwrap
VENV = "/opt/cnngrade"
SETTINGS = "cnngrade_autograder.json"
GRADERS = "graders"
STUDENT = "submission"                 # the student id inside the one-student class graded per run
# Gradescope's default limit is 10 minutes and the most it allows is 40: the training exercises need the most.
DEFAULT_TIMEOUT_S = 2300

SETUP_SH = """#!/usr/bin/env bash
# cnngrade's Gradescope autograder: runs once, when Gradescope builds the image (with network).
# Nothing is downloaded at grading time: run_autograder only runs what this script installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE="$(cd "$(dirname "$0")" && pwd)"

# cnngrade needs Python 3.11 or newer. Gradescope's Ubuntu 24.04 base image has 3.12; on 22.04, python3.11 comes
# from Ubuntu's own archive.
apt-get update
if python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY=python3
    apt-get install -y python3-venv
else
    PY=python3.11
    apt-get install -y python3.11 python3.11-venv
fi
# A virtual environment under /opt, readable by every user: with --isolation rlimits the student's code runs
# as an unprivileged uid that must be able to start this Python (and nothing under /autograder/source).
"$PY" -m venv {venv}
chmod -R a+rX {venv}
# The CPU build of torch from PyTorch's CPU wheel index (about 200 MB, no CUDA: Gradescope has no GPU), then
# cnngrade from the wheel inside this zip; pip keeps the torch already installed.
{venv}/bin/pip install --no-cache-dir torch torchvision --index-url https://download.pytorch.org/whl/cpu
{venv}/bin/pip install --no-cache-dir "$SOURCE"/{wheel}
chmod -R a+rX {venv}
""".replace("{venv}", VENV)

RUN_AUTOGRADER = """#!/usr/bin/env bash
# cnngrade's Gradescope autograder: grade /autograder/submission with `cnngrade grade` and write
# /autograder/results/results.json. Settings: source/cnngrade_autograder.json. CNNGRADE_AUTOGRADER_ROOT and
# CNNGRADE_PYTHON point it elsewhere (tests); CNNGRADE_ISOLATION overrides the isolation.
ROOT="${CNNGRADE_AUTOGRADER_ROOT:-/autograder}"
PY="${CNNGRADE_PYTHON:-{venv}/bin/python}"
exec "$PY" -m cnngrade.export.gradescope run "$ROOT"
""".replace("{venv}", VENV)


def zip_files(wheel: Path, graders_dir: Path, exercises: list[str], *, isolation: str = "rlimits",
              timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, bytes]:
    """Every file of the autograder zip, by name: scripts, settings, the wheel and the graders (hidden ones too)."""
    files = {"setup.sh": SETUP_SH.replace("{wheel}", wheel.name).encode(),
             "run_autograder": RUN_AUTOGRADER.encode(), wheel.name: wheel.read_bytes(),
             SETTINGS: (json.dumps({"exercises": exercises, "isolation": isolation, "timeout_s": timeout,
                                    "jobs": 1, "profile": "cpu"}, indent=2) + "\n").encode()}
    for exercise in exercises:
        folder = graders_dir / exercise
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{GRADERS}/{exercise}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    return files


def write_zip(target: Path, files: dict[str, bytes]) -> None:
    """A deterministic zip; the two scripts executable (Gradescope runs them as they are)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buf.getvalue())


def export_gradescope(out: Path, exercises: list[str], *, graders_dir: Path, wheel: Path | None = None,
                      isolation: str = "rlimits") -> Path:
    """Write OUT/gradescope/autograder.zip (building cnngrade's wheel unless ``wheel`` is given)."""
    from cnngrade.export.release import build_wheel

    with tempfile.TemporaryDirectory(prefix="cnngrade-wheel-") as tmp:
        wheel = wheel or build_wheel(Path(tmp))
        target = out / "gradescope" / "autograder.zip"
        write_zip(target, zip_files(wheel, graders_dir, exercises, isolation=isolation))
    return target


# -- run_autograder: runs inside Gradescope's container, as root ------------------------------------------------
def lock_down(root: Path) -> None:
    """The student's code runs as an unprivileged uid (rlimits mode): keep the graders and results root's alone.

    source/ holds the hidden tests and results/ the verdicts; the uid may read neither and write no results.
    """
    (root / "results").mkdir(parents=True, exist_ok=True)
    for folder in (root / "source", root / "results"):
        os.chmod(folder, stat.S_IRWXU)


def grade_command(class_dir: Path, out: Path, source: Path, settings: dict) -> list[str]:
    isolation = os.environ.get(ISOLATION_ENV) or settings.get("isolation", "rlimits")
    command = [sys.executable, "-m", "cnngrade", "grade", str(class_dir), "--out", str(out),
               "--graders", str(source / GRADERS), "--isolation", isolation,
               "--jobs", str(settings.get("jobs", 1)), "--profile", settings.get("profile", "cpu"),
               "--layout", "folders", "--quiet"]
    if settings.get("exercises"):
        command += ["--exercises", ",".join(settings["exercises"])]
    return command


def failure_results(why: str) -> dict:
    """What Gradescope shows when cnngrade could not grade at all: a visible explanation, no points yet."""
    return {"score": 0, "output": html.escape("The autograder could not grade this submission; course staff "
                                              f"will look at it. ({why})"),
            "output_format": "simple_format", "stdout_visibility": "hidden",
            "tests": [{"name": "cnngrade", "status": "failed", "score": 0, "max_score": 0, "visibility": "visible",
                       "output": why}]}


def run(root: Path) -> int:
    """Grade root/submission as one student and write root/results/results.json; 0 when results were written."""
    from cnngrade.records import StudentReport
    from cnngrade.report.lms_gradescope import gradescope_results, test_descriptions

    source = root / "source"
    settings = json.loads((source / SETTINGS).read_text(encoding="utf-8"))
    lock_down(root)
    results_path = root / "results" / "results.json"
    with tempfile.TemporaryDirectory(prefix="cnngrade-gradescope-") as tmp:   # 0700: the student's uid sees nothing
        class_dir = Path(tmp) / "class" / STUDENT
        shutil.copytree(root / "submission", class_dir, symlinks=True)
        out = Path(tmp) / "out"
        try:
            proc = subprocess.run(grade_command(class_dir.parent, out, source, settings), check=False,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=float(settings.get("timeout_s", DEFAULT_TIMEOUT_S)))
            sys.stdout.write(proc.stdout + proc.stderr)   # Gradescope keeps stdout for instructors only
            why = f"cnngrade grade exited with status {proc.returncode}"
        except subprocess.TimeoutExpired:
            why = "cnngrade grade ran out of time"
        report_path = out / STUDENT / "report.json"
        if report_path.is_file():
            report = StudentReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
            results = gradescope_results(report, descriptions=test_descriptions(report.exercises, source / GRADERS))
        else:
            results = failure_results(why)
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "run":
        print(f"usage: python -m cnngrade.export.gradescope run ROOT (default {DEFAULT_ROOT})", file=sys.stderr)
        return 2
    return run(Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
