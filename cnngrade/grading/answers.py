"""Free-text answers and module constants read from the worker at load: their records, and what may be kept."""
from __future__ import annotations

from typing import Any

from cnngrade.errors import StudentError, SubmissionImportError
from cnngrade.records import Answer
from cnngrade.sandbox.handles import Handle


def holds_handle(value: Any) -> bool:
    """Whether decoded worker data holds a Handle anywhere (a handle dies with its process: never cached)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Handle):
            return True
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple)):
            stack += list(item)
    return False


def unread(fatal: BaseException | None) -> Answer:
    """The record of an answer that could not be read: the student's error when their module does not
    import, a grader error (to grade again) for anything else."""
    first = str(fatal).strip().splitlines()[0] if fatal is not None and str(fatal).strip() else ""
    if isinstance(fatal, SubmissionImportError):
        return Answer(problem=f"the answer could not be read because the module does not import ({first})",
                      unread=True, grader_error=False)
    why = f" ({first})" if first else ""
    return Answer(problem=f"the answer could not be read{why}; this is not the student's fault: grade again",
                  unread=True, grader_error=True)


def manual_answer(path: str, names: list[str], values: dict[str, Any],
                  failure: tuple[str, BaseException] | None) -> Answer:
    """A free-text answer (``NAME`` or ``NAME.key``) from the values read at load."""
    root, _, key = path.partition(".")
    if root not in values:
        if root not in names:
            return Answer(problem=f"{root} is not defined")
        return unread(failure[1] if failure else None)
    value = values[root]
    if isinstance(value, StudentError):
        return Answer(problem=f"{root} could not be read: {value}")
    if key and value is not None:
        if not isinstance(value, dict):
            return Answer(problem=f"{root} should be a dict of texts, got {type_name(value)}")
        value = value.get(key)
    if value is None or isinstance(value, str):
        return Answer(value)
    return Answer(problem=f"expected text, got {type_name(value)}")


def type_name(value: Any) -> str:
    return value.type_name if isinstance(value, Handle) else type(value).__name__
