"""Export an exercise to otter-grader: an Otter Assign master notebook scored by cnngrade's plugin, via `otter assign`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from cnngrade.config import GRADERS_DIR, ExerciseConfig, load_exercise
from cnngrade.errors import InputError, UsageError
from cnngrade.export.otter_bridge import GRADERS_FOLDER, PLUGIN
from cnngrade.grading.validate import SOLUTIONS_DIR, STUBS_DIR
from cnngrade.intake.stub_notebooks import source_cells

OTTER_HINT = ("otter-grader is not installed: pip install -e '.[otter]' in the cnngrade checkout (it also needs "
              "ipykernel)")


def _raw(text: str):
    import nbformat

    return nbformat.v4.new_raw_cell(text)


def _config_cell(header: str, config: dict) -> object:
    return _raw(f"# {header}\n" + yaml.safe_dump(config, sort_keys=False).rstrip())


def case_function_name(test: str) -> str:
    """A Python name for a cnngrade test (``test_answer[a]`` → ``test_answer_a``)."""
    return re.sub(r"\W+", "_", test).strip("_")


def case_cell(exercise: str, test: str, points: float, *, hidden: bool = True) -> str:
    """One otter test case standing for cnngrade's test ``test``: otter's kernel does not decide it.

    The case fails wherever it runs; cnngrade's plugin (otter_bridge) replaces its result with
    cnngrade's verdict, graded outside the kernel. Cases of public cnngrade tests are public, so
    Gradescope's "Public Tests" summary reflects them; students check with `cnngrade check`.
    """
    config = yaml.safe_dump({"hidden": hidden, "points": points}, sort_keys=False).rstrip()
    message = f"cnngrade grades {exercise} {test} outside this notebook; run `cnngrade check` to see it"
    return (f'""" # BEGIN TEST CONFIG\n{config}\n""" # END TEST CONFIG\n'
            f"def {case_function_name(test)}():\n"
            f"    raise AssertionError({message!r})\n")


def _hidden_solution(code: str) -> str:
    """Mark a whole reference cell as solution, so `otter assign` keeps it out of the student notebook."""
    return f"# BEGIN SOLUTION NO PROMPT\n{code}\n# END SOLUTION"


def master_notebook(cfg: ExerciseConfig, stub_source: str, solution_source: str, *, requirements: bool = False,
                    wheel: str = "", isolation: str = "rlimits"):
    """The Otter Assign master notebook of one exercise: prompt (the stub), solution (the reference), tests.

    The score comes from cnngrade's otter plugin (``otter_bridge.CnngradePlugin``), which grades the
    submitted file in its own process; ``wheel``: cnngrade's wheel, shipped with the autograder files.
    """
    import nbformat

    doc, stub_cells = source_cells(stub_source)
    _, solution_cells = source_cells(solution_source)
    points = round(sum(t.points for t in cfg.tests), 6)
    assignment = {
        "name": cfg.exercise, "init_cell": False, "check_all_cell": False, "export_cell": False,
        "run_tests": False, "tests": {"files": False, "ok_format": False},
        "autograder_files": [GRADERS_FOLDER, *([wheel] if wheel else [])],
        "generate": {"show_stdout": False, "show_hidden": True},
        "plugins": [{PLUGIN: {"exercise": cfg.exercise, "isolation": isolation}}],
    }
    if requirements:
        # Gradescope's image installs these; cnngrade itself must be among them for the plugin to load there.
        assignment["requirements"] = "requirements.txt"
    question = {"name": cfg.exercise, "points": points, "check_cell": False}
    cells = [_config_cell("ASSIGNMENT CONFIG", assignment), nbformat.v4.new_markdown_cell(doc or cfg.title),
             _config_cell("BEGIN QUESTION", question),
             nbformat.v4.new_markdown_cell(f"**{cfg.title}** ({points:g} points, graded by cnngrade). "
                                           "Fill in the code cells below."),
             _raw("# BEGIN PROMPT"), *(nbformat.v4.new_code_cell(c) for c in stub_cells), _raw("# END PROMPT"),
             _raw("# BEGIN SOLUTION"), *(nbformat.v4.new_code_cell(_hidden_solution(c)) for c in solution_cells),
             _raw("# END SOLUTION"), _raw("# BEGIN TESTS"),
             *(nbformat.v4.new_code_cell(case_cell(cfg.exercise, t.name, t.points, hidden=t.visibility != "public"))
               for t in cfg.tests),
             _raw("# END TESTS"), _raw("# END QUESTION")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


REQUIREMENTS = """\
# cnngrade's otter autograder on Gradescope. The CPU build of torch from PyTorch's CPU wheel index (its +cpu
# versions sort above PyPI's CUDA ones, so pip takes them; Gradescope has no GPU), then cnngrade from its wheel,
# shipped in the autograder zip. All installed when Gradescope builds the image, nothing at grading time.
--extra-index-url https://download.pytorch.org/whl/cpu
torch
torchvision
/autograder/source/files/{wheel}
"""
# Appended to otter's setup.sh. With --isolation rlimits the student's code runs as an unprivileged uid, which must
# be able to start otter's Python (Miniforge under /root, 0700 by default): /root becomes traversable, not listable.
# The same uid must not read the hidden graders shipped in source/files: source/ becomes root's alone.
SETUP_TAIL = """
# cnngrade: let the sandbox uid run otter's Python, and keep the graders from it (see cnngrade/export/otter.py).
chmod 711 /root
chmod -R a+rX /root/miniforge3
chmod 700 /autograder/source
"""


def open_python_to_sandbox_uid(zip_path: Path) -> None:
    """Rewrite the autograder zip with SETUP_TAIL appended to otter's setup.sh."""
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            if info.filename == "setup.sh":
                data = data.rstrip(b"\n") + b"\n" + SETUP_TAIL.encode()
            zf.writestr(info, data)


def otter_command() -> list[str]:
    """How to call otter: its console script beside this Python, else ``python -m otter``."""
    try:
        import otter  # noqa: F401
    except ImportError:
        raise UsageError(OTTER_HINT) from None
    script = Path(sys.executable).with_name("otter")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "otter"]


def export_exercise(exercise: str, out: Path, *, graders_dir: Path = GRADERS_DIR, stubs_dir: Path = STUBS_DIR,
                    solutions_dir: Path = SOLUTIONS_DIR, requirements: Path | None = None, wheel: Path | None = None,
                    isolation: str = "rlimits", timeout: float = 600) -> dict[str, Path]:
    """Write OUT/<exercise>/{master,autograder,student}; returns the autograder zip and the student notebook.

    ``wheel``: cnngrade's wheel to ship in the zip (default: built here); ``requirements``: a requirements.txt
    for Gradescope's image instead of the generated one (CPU torch, then that wheel).
    """
    import nbformat

    from cnngrade.export.release import build_wheel

    cfg = load_exercise(exercise, graders_dir)
    try:
        stub, solution = ((d / f"{exercise}.py").read_text(encoding="utf-8") for d in (stubs_dir, solutions_dir))
    except OSError as exc:
        raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from None
    base = out / exercise
    if base.exists():
        shutil.rmtree(base)   # otter assign refuses to mix with an earlier export
    master = base / "master"
    shutil.copytree(cfg.directory, master / GRADERS_FOLDER / exercise,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if wheel is None:
        wheel = build_wheel(master)
    else:
        try:
            shutil.copyfile(wheel, master / wheel.name)
        except OSError as exc:
            raise InputError(f"cannot read {wheel}: {exc.strerror}") from None
    try:
        text = requirements.read_text(encoding="utf-8") if requirements else REQUIREMENTS.format(wheel=wheel.name)
    except OSError as exc:
        raise InputError(f"cannot read {requirements}: {exc.strerror}") from None
    (master / "requirements.txt").write_text(text, encoding="utf-8")
    nbformat.write(master_notebook(cfg, stub, solution, requirements=True, wheel=wheel.name, isolation=isolation),
                   master / f"{exercise}.ipynb")
    cmd = [*otter_command(), "assign", "--no-pdfs", f"{exercise}.ipynb", str(base.resolve())]
    proc = subprocess.run(cmd, cwd=master, check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    zips = sorted((base / "autograder").glob(f"{exercise}-autograder_*.zip"))
    if proc.returncode != 0 or not zips:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"otter assign failed for {exercise} (exit {proc.returncode}): {tail[0]}")
    zip_path = base / "autograder" / "autograder.zip"
    zips[-1].replace(zip_path)
    open_python_to_sandbox_uid(zip_path)
    student = base / "student" / f"{exercise}.ipynb"
    nb = nbformat.read(student, as_version=4)
    # The hidden solution cells leave empty answer cells behind in the student's copy.
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or c.source.strip()]
    nbformat.write(nb, student)
    return {"autograder": zip_path, "student": student,
            "reference": base / "autograder" / f"{exercise}.ipynb"}
