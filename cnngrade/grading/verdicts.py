"""How a grader test's run becomes a verdict: the hypothesis profile every grader runs under, and exceptions
classified as the student's failure or an internal grader error."""
from __future__ import annotations

import traceback

import pytest

from cnngrade.errors import StudentError, SubmissionFault
from cnngrade.records import Status

HYPOTHESIS_PROFILE = "cnngrade"


def register_hypothesis_profile() -> None:
    """Regrading gives the same score and counterexample: derandomized, no example database, no deadline
    (the worker's time limits apply instead). Loaded before the graders are imported, because ``@given``
    takes the default settings at decoration time."""
    from hypothesis import HealthCheck, Phase, settings

    # No explain phase: it re-runs a failing test many times to annotate the counterexample, which costs
    # seconds per failing property (every property of a stub fails) for little the student needs.
    settings.register_profile(
        HYPOTHESIS_PROFILE, derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
    settings.load_profile(HYPOTHESIS_PROFILE)


def apply_max_examples(item: pytest.Item, max_examples: int) -> None:
    """Give a property test its exercise's example count, unless the grader chose settings of its own."""
    from hypothesis import settings

    fn = getattr(item, "obj", None)
    current = getattr(fn, "_hypothesis_internal_use_settings", None)
    if getattr(fn, "is_hypothesis_test", False) and current is settings.default:
        fn._hypothesis_internal_use_settings = settings(current, max_examples=max_examples)  # type: ignore[union-attr]


def _leaf(exc: BaseException) -> BaseException:
    """The first real failure inside a (hypothesis) exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _notes(exc: BaseException) -> str:
    notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith("You can reproduce")]
    return "\n".join(notes)


def classify(exc: BaseException) -> tuple[Status, str, bool]:
    """(status, message for the student, grader_error) for an exception raised by a grader test."""
    leaf = _leaf(exc)
    notes = _notes(leaf) or _notes(exc)
    tail = f"\n{notes}" if notes else ""
    if isinstance(leaf, StudentError):
        if leaf.not_implemented:
            return Status.FAILED, f"Not implemented yet: your code raises NotImplementedError.{tail}", False
        where = f"\n{leaf.traceback.rstrip()}" if leaf.traceback else ""
        return Status.FAILED, f"Your code raised {leaf}{where}{tail}", False
    if isinstance(leaf, SubmissionFault):
        return Status(leaf.status), f"{leaf}{tail}", False
    if isinstance(leaf, AssertionError):
        return Status.FAILED, f"{leaf}{tail}".strip() or "assertion failed", False
    name = type(leaf).__name__
    if name in ("Flaky", "FlakyFailure", "FlakyReplay"):
        return Status.FAILED, f"Your code gave different results for the same input.{tail}", False
    if isinstance(leaf, pytest.fail.Exception):
        return Status.FAILED, f"{leaf.msg}{tail}", False
    detail = "".join(traceback.format_exception(leaf)[-6:])
    return Status.ERROR, f"internal grader error ({name}); this is not the student's fault:\n{detail}", True
