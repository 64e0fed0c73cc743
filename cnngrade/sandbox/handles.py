"""Objects that stay in the worker (a model, a figure), held on the trusted side as ``Handle``s."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnngrade.errors import WorkerCrashed
from cnngrade.worker import codec

if TYPE_CHECKING:   # the worker makes its handles with decode(): only the type is needed here
    from cnngrade.sandbox.client import Worker


class Handle:
    """An object that lives in the worker; calling it or its methods runs there."""

    def __init__(self, worker: Worker, hid: int, type_name: str, generation: int):
        self._worker, self.id, self.type_name, self._generation = worker, hid, type_name, generation

    def __repr__(self) -> str:
        return f"<handle {self.id} to a {self.type_name}>"

    def tag(self) -> dict:
        if self._generation != self._worker.generation:
            raise WorkerCrashed("an object from a worker that has since been restarted was used")
        return {"$handle": self.id}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._worker.request("call", {"target": self, "args": list(args), "kwargs": kwargs})

    def method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._worker.request("method", {"obj": self, "args": list(args), "kwargs": kwargs}, name=name)

    def attr(self, name: str) -> Any:
        return self._worker.request("getattr", {"obj": self}, name=name)


def encode(obj: Any) -> Any:
    """What the codec sends for an argument it cannot send as data: only a handle, as its tag."""
    if isinstance(obj, Handle):
        return obj.tag()
    raise TypeError(f"the grader cannot send a {type(obj).__name__} to the worker")


def decode(worker: Worker, node: dict) -> Handle:
    """The handle a reply names, checked strictly: a malformed one breaks the protocol."""
    hid, type_name = node.get("$handle"), node.get("type", "?")
    if type(hid) is not int or type(type_name) is not str:
        raise codec.ProtocolError("malformed handle")
    return Handle(worker, hid, type_name[:200], worker.generation)
