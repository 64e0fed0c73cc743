"""Small assertions shared by the graders, each failing with a message a student can act on."""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from cnngrade.errors import StudentError


def show(value: Any) -> str:
    """A short, readable rendering of a value that came back from the student."""
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def is_integral(value: Any) -> bool:
    """A Python int or numpy integer, not a bool or a float that happens to be whole."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def expect_int(value: Any, expected: int, call: str) -> None:
    """A whole number equal to ``expected``, judged by value: 24, 24.0, numpy.int64(24) and a 0-d tensor alike."""
    from cnngrade.graderkit.values import BadValue, integer

    try:
        got = integer(value, call)
    except BadValue:
        raise AssertionError(f"{call} returned {show(value)} ({type(value).__name__}); "
                             f"expected the whole number {expected}") from None
    assert got == expected, f"{call} returned {got}, expected {expected}"


def expect_close(value: Any, expected: float, call: str, *, abs_tol: float = 1e-6) -> None:
    """A number (by value, as ``graderkit.values.number`` reads it) within ``abs_tol`` of ``expected``."""
    from cnngrade.graderkit.values import BadValue, number

    try:
        got = number(value, call, finite=False)
    except BadValue:
        raise AssertionError(f"{call} returned {show(value)} ({type(value).__name__}); expected a number "
                             f"close to {expected:g}") from None
    assert math.isfinite(got) and abs(got - expected) <= abs_tol, \
        f"{call} returned {got:g}, expected {expected:g} (tolerance {abs_tol:g})"


def expect_raises(exc_name: str, fn: Callable[..., Any], *args: Any, call: str, **kwargs: Any) -> None:
    """The student's function must raise ``exc_name`` (or a subclass) for these arguments."""
    try:
        got = fn(*args, **kwargs)
    except StudentError as exc:
        if exc.not_implemented:
            raise
        assert exc.is_a(exc_name), f"{call} raised {exc.type_name}: {exc.message}; expected {exc_name}"
        return
    raise AssertionError(f"{call} returned {show(got)}; expected it to raise {exc_name}")


def call_text(name: str, *args: Any, **kwargs: Any) -> str:
    """How a call looks in a message: conv_output_size(size=28, kernel_size=5)."""
    parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"
