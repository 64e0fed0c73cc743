"""`cnngrade notebooks build`: write each stub's notebook (exercises/<name>.ipynb) from its .py, the one source of truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnngrade.errors import ExitCode, InputError, ValidationFailed
from cnngrade.grading.validate import STUBS_DIR
from cnngrade.intake.stub_notebooks import stub_notebook_text
from cnngrade.report.files import atomic_write


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notebooks", help="build the stub notebooks from the stub .py files",
                       description="Write exercises/<name>.ipynb from exercises/<name>.py: the module docstring "
                       "and a how-to as markdown, %%matplotlib inline, a markdown cell per question and its code "
                       "cell, a marked cell per free-text answer (questions from grader.yaml) and the stub's "
                       "__main__ block as an experiment cell (not run at grading). With --check, change nothing and "
                       "fail when a notebook is missing or out of date.")
    p.add_argument("action", choices=["build"], help="what to do (build)")
    p.add_argument("--check", action="store_true", help="only report notebooks that are missing or stale")
    p.add_argument("--dir", type=Path, default=STUBS_DIR, metavar="DIR", help="folder of stubs (default: exercises/)")
    p.set_defaults(func=run)


def build(folder: Path, *, check: bool = False) -> list[Path]:
    """Notebooks that were (or, with ``check``, would be) rewritten."""
    stubs = sorted(folder.glob("ex*_*.py"))
    if not stubs:
        raise InputError(f"{folder} holds no exN_*.py stub")
    changed = []
    for stub in stubs:
        target = stub.with_suffix(".ipynb")
        try:
            text = stub_notebook_text(stub)
        except SyntaxError as exc:
            raise InputError(f"{stub}: not valid Python (line {exc.lineno}: {exc.msg})") from None
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        changed.append(target)
        if not check:
            atomic_write(target, text)
    return changed


def run(args: argparse.Namespace) -> int:
    changed = build(args.dir, check=args.check)
    if args.check and changed:
        raise ValidationFailed(f"{len(changed)} notebook(s) out of date ({', '.join(p.name for p in changed)}); "
                               "run `cnngrade notebooks build`")
    verb = "out of date" if args.check else "written"
    print(f"{len(changed)} notebook(s) {verb} in {args.dir}" + (": " + ", ".join(p.name for p in changed) if changed else ""))
    return ExitCode.OK
