"""The table of worker helpers by name: each helper module registers into it, and the server looks names up here.

Kept apart from the helpers themselves so that helper modules depend on it and not on each other.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTRY: dict[str, Callable[..., Any]] = {}


def helper(fn: Callable[..., Any]) -> Callable[..., Any]:
    REGISTRY[fn.__name__] = fn
    return fn
