"""The `cnngrade` command line: a thin layer over the pipeline's keyword-only functions."""
from __future__ import annotations

import argparse
import importlib
import sys

import cnngrade
from cnngrade.errors import CnngradeError, ExitCode

# Subcommands in the order `cnngrade --help` lists them; each module has register(subparsers).
COMMANDS = ["grade", "validate", "notebooks"]

EPILOG = """exit status: 0 the batch finished (whatever the students scored), 1 validation found a wrong
verdict, 2 bad arguments, 3 unreadable input or unwritable output, 4 inconsistent grader settings,
5 the requested isolation cannot start, 70 a bug in cnngrade."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnngrade", description="Autograder for the CNN course week: grade a class, check your own work.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"cnngrade {cnngrade.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cnngrade.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.USAGE_ERROR
    try:
        return int(args.func(args))
    except CnngradeError as exc:
        print(f"cnngrade: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("cnngrade: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
