"""Every exception cnngrade raises, and the exit codes of the command line.

Two families, kept apart so that an instructor never reads a crash of cnngrade as a
student's zero:

    CnngradeError                 cnngrade itself cannot do what was asked (one-line message)
    ├── UsageError                bad command-line arguments                     exit 2
    ├── InputError                a folder or file cannot be read or written     exit 3
    ├── GraderConfigError         a grader's YAML or tests are inconsistent      exit 4
    ├── IsolationUnavailable      the requested sandbox cannot start here        exit 5
    └── ValidationFailed          `cnngrade validate` found a wrong verdict      exit 1

    SubmissionFault               raised inside a grader test: the student's code is at fault
    ├── StudentError              student code raised an exception (type, message, traceback)
    ├── SubmissionImportError     the student's module failed to import
    ├── WorkerCrashed             the worker died or broke the protocol
    └── WorkerTimeout             a call or the whole exercise ran past its time limit
"""
from __future__ import annotations

import enum

from cnngrade.records import Status


class ExitCode(enum.IntEnum):
    """Exit status of the `cnngrade` command."""

    OK = 0                     # the batch finished, whatever the students scored
    VALIDATION_FAILED = 1      # validate: a reference lost points or a stub earned some
    USAGE_ERROR = 2            # bad arguments
    INPUT_ERROR = 3            # unreadable input, unwritable output
    GRADER_CONFIG_ERROR = 4    # grader YAML and tests disagree
    ISOLATION_UNAVAILABLE = 5  # the sandbox asked for cannot start
    INTERNAL_ERROR = 70        # a bug in cnngrade
    INTERRUPTED = 130          # Ctrl-C (SIGINT)
    TERMINATED = 143           # SIGTERM (a scheduler's time limit, `kill`)


class CnngradeError(Exception):
    """cnngrade cannot do what was asked; ``str()`` is one line that says what to do."""

    exit_code = ExitCode.INTERNAL_ERROR


class UsageError(CnngradeError):
    exit_code = ExitCode.USAGE_ERROR


class InputError(CnngradeError):
    exit_code = ExitCode.INPUT_ERROR


class GraderConfigError(CnngradeError):
    exit_code = ExitCode.GRADER_CONFIG_ERROR


class IsolationUnavailable(CnngradeError):
    exit_code = ExitCode.ISOLATION_UNAVAILABLE


class ValidationFailed(CnngradeError):
    exit_code = ExitCode.VALIDATION_FAILED


class SubmissionFault(Exception):
    """Raised inside a grader test when the submission, not the grader, is at fault."""

    status = Status.ERROR


class StudentError(SubmissionFault):
    """Student code raised ``type_name``; ``mro`` lists its classes so graders can test for ValueError."""

    status = Status.FAILED

    def __init__(self, type_name: str, message: str, traceback: str = "", mro: list[str] | None = None):
        self.type_name = type_name
        self.message = message
        self.traceback = traceback
        self.mro = list(mro or [type_name])
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def is_a(self, name: str) -> bool:
        return name in self.mro

    @property
    def not_implemented(self) -> bool:
        return self.is_a("NotImplementedError")


class SubmissionImportError(SubmissionFault):
    """The student's module raised while being imported."""


class WorkerCrashed(SubmissionFault):
    """The worker process died, was killed for a limit, or broke the protocol."""


class WorkerTimeout(SubmissionFault):
    """A call, or the exercise as a whole, ran past its wall-clock limit."""

    status = Status.TIMEOUT
