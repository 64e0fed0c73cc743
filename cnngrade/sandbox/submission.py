"""What a grader test holds: the student's module, reached through its worker.

``sub.conv_output_size(28, 5)`` runs the student's function in the worker and returns plain data;
``sub.value("ANSWERS")`` reads a module constant; objects that cannot cross (a model, a figure) come back as
``Handle``s. Everything that comes back is the student's data: read it with ``cnngrade.graderkit.values``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnngrade.sandbox.client import Worker


class Submission:
    """What a grader test holds: the student's module, reached through its worker."""

    def __init__(self, worker: Worker):
        self._worker = worker

    def __repr__(self) -> str:
        return f"<your {self._worker.module}.py>"

    @property
    def module(self) -> str:
        return self._worker.module

    def ensure_loaded(self) -> None:
        if self._worker.proc is None and self._worker.fatal is None:
            self._worker.request("ping", None)

    def has(self, name: str) -> bool:
        self.ensure_loaded()
        return name in self._worker.names

    def value(self, name: str) -> Any:
        """A module-level constant, such as ANSWERS."""
        return self._worker.request("get", None, name=name)

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._worker.request("call", {"target": name, "args": list(args), "kwargs": kwargs}, timeout=timeout)

    def helper(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Run one of cnngrade.worker.helpers inside the worker."""
        return self._worker.request("helper", {"args": list(args), "kwargs": kwargs}, timeout=timeout, name=name)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per worker process, reused by later tests of the exercise.

        For results that cost a lot to obtain and depend only on the student's code (ex7 traces a 512x512
        forward pass once for five tests), or an object several of them must share. A restarted worker
        starts with an empty memo, so a handle kept here never outlives its process.
        """
        self.ensure_loaded()  # restart a worker that died in an earlier test before reading its memo
        if key not in self._worker.memo:
            self._worker.memo[key] = compute()
        return self._worker.memo[key]

    def output(self) -> str:
        return self._worker.output()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, **kwargs)

        remote.__name__ = name
        return remote
