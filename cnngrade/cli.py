"""The `cnngrade` command line: a thin layer over the pipeline's keyword-only functions."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

import cnngrade
from cnngrade.errors import CnngradeError, ExitCode

# Subcommands in the order `cnngrade --help` lists them; each module has register(subparsers).
COMMANDS = ["check", "grade", "demo", "validate", "notebooks", "export", "manual", "similarity", "release", "data",
            "calibrate"]

EPILOG = """exit status: 0 the batch finished (whatever the students scored), 1 validation found a wrong
verdict, 2 bad arguments, 3 unreadable input or unwritable output, 4 inconsistent grader settings,
5 the requested isolation cannot start, 70 a bug in cnngrade, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM): reports written so far are kept, `cnngrade grade --resume` continues. `cnngrade check` exits 1 when a
public test fails."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors that point at the command's --help (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE_ERROR, f"cnngrade: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cnngrade", description="Autograder for the CNN course week: grade a class, check your own work. "
        "Run 'cnngrade COMMAND --help' for the options of each command.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"cnngrade {cnngrade.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cnngrade.commands.{name}").register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that it stops a batch the way Ctrl-C does: the grading processes
    are killed, queued students are not started, the sandboxes and temporary folders are removed."""


def _terminate(signum: int, frame: object) -> NoReturn:
    raise Terminated


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """SIGTERM raises Terminated while this lasts (main thread only; the previous handler is put back)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.USAGE_ERROR
    with sigterm_stops():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except CnngradeError as exc:
        print(f"cnngrade: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:  # a file the user named vanished or is unreadable: their problem, not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cnngrade: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return int(ExitCode.INPUT_ERROR)
    except Terminated:
        print("cnngrade: terminated", file=sys.stderr)
        return int(ExitCode.TERMINATED)
    except KeyboardInterrupt:
        print("cnngrade: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
