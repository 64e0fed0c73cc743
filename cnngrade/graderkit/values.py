"""Strict readers for data that came back from the worker: right type, right keys, bounded sizes, or a failure.

Everything the worker returns was produced by the student's interpreter. A grader never indexes
it directly: it passes it through one of these readers, which either return a plain, trusted
value (a ``float``, an ``int``, a ``dict``, a ``list``, a CPU tensor) or raise ``BadValue``, an
``AssertionError`` that scores the test as *failed* with a message the student can act on (never
an internal grader error). Numbers are accepted by value: ``3``, ``3.0``, ``numpy.int64(3)`` and a
0-d tensor holding 3 are the same answer wherever the task asks for a number.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from cnngrade.graderkit.checks import show

MAX_ITEMS = 100_000          # longest list or dict a grader reads back
MAX_TENSOR_ELEMENTS = 50_000_000   # about 200 MB of float32, far above any tensor a test asks for


class BadValue(AssertionError):
    """A value from the worker is not of the form the task asks for (the student's failure)."""


def _fail(call: str, value: Any, expected: str) -> BadValue:
    return BadValue(f"{call} returned {show(value)} ({type(value).__name__}); expected {expected}")


def _scalar(value: Any) -> Any:
    """A one-element tensor or numpy array as its Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return value.item()
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "size", None) == 1 and type(value).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def number(value: Any, call: str, *, finite: bool = True) -> float:
    """A real number (int, float, numpy scalar, one-element tensor) as a float; bools are not numbers."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(call, value, "a number")
    out = float(value)
    if finite and not math.isfinite(out):
        raise _fail(call, value, "a finite number")
    return out


def integer(value: Any, call: str) -> int:
    """A whole number given as an int, an integral float (``np.sum`` gives ``0.0``), a numpy scalar or a 0-d tensor."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(call, value, "a whole number")
    if isinstance(value, numbers.Integral):
        return int(value)
    as_float = float(value)
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise _fail(call, value, "a whole number")
    return int(as_float)


def mapping(value: Any, call: str, *, keys: Sequence[str] = (), max_items: int = MAX_ITEMS) -> dict:
    """A dict (any mapping that crossed as one) holding at least ``keys``."""
    if not isinstance(value, Mapping):
        raise _fail(call, value, "a dict" + (f" with keys {', '.join(map(repr, keys))}" if keys else ""))
    if len(value) > max_items:
        raise BadValue(f"{call} returned a dict of {len(value)} entries; expected at most {max_items}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise BadValue(f"{call} returned a dict without the key(s) {', '.join(map(repr, missing))} "
                       f"(it has {show(sorted(map(str, value))[:20])})")
    return dict(value)


def sequence(value: Any, call: str, *, length: int | None = None, max_items: int = MAX_ITEMS) -> list:
    """A list or tuple (any sequence that crossed as one), optionally of exactly ``length`` items."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(call, value, "a list" + (f" of {length} items" if length is not None else ""))
    if len(value) > max_items:
        raise BadValue(f"{call} returned a list of {len(value)} items; expected at most {max_items}")
    if length is not None and len(value) != length:
        raise BadValue(f"{call} returned {len(value)} items ({show(value)}); expected {length}")
    return list(value)


def numbers_list(value: Any, call: str, *, length: int | None = None) -> list[float]:
    """A list of real numbers (each as ``number`` accepts it)."""
    items = sequence(value, call, length=length)
    return [number(v, f"{call}[{i}]") for i, v in enumerate(items)]


def shape(value: Any, call: str) -> tuple[int, ...] | None:
    """A tuple or list of whole numbers as a tuple; None when it is not one (the caller words the failure)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) > 16:
        return None
    try:
        dims = tuple(integer(d, call) for d in value)
    except BadValue:
        return None
    return dims if all(not isinstance(d, bool) for d in value) else None


def tensor(value: Any, call: str, *, shape: Sequence[int] | None = None, floating: bool = False,
           max_elements: int = MAX_TENSOR_ELEMENTS) -> torch.Tensor:
    """A tensor of bounded size (of ``shape`` when given, floating point when asked), finite when floating."""
    if not isinstance(value, torch.Tensor):
        raise _fail(call, value, "a tensor" + (f" of shape {tuple(shape)}" if shape is not None else ""))
    if value.numel() > max_elements:
        raise BadValue(f"{call} returned a tensor of {value.numel():,} elements; expected at most {max_elements:,}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise BadValue(f"{call} returned a tensor of shape {tuple(value.shape)}; expected {tuple(shape)}")
    if floating and not (value.is_floating_point() and not value.is_complex()):
        raise BadValue(f"{call} returned a tensor of dtype {value.dtype}; expected floating-point values")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise BadValue(f"{call} returned a tensor holding NaN or infinite values")
    return value


def text(value: Any, call: str, *, max_chars: int = 20_000) -> str:
    if not isinstance(value, str):
        raise _fail(call, value, "a str")
    return value[:max_chars]


def answers(submission: Any, name: str = "ANSWERS") -> dict:
    """The module's answer dict (``ANSWERS`` by default), read and checked to be a dict."""
    return mapping(submission.value(name), name)
