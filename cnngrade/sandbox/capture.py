"""What the student's code printed: one capture file per worker process, handed out per test within a budget."""
from __future__ import annotations

import codecs
import os


class OutputCapture:
    """The capture files of one worker's processes (a restart starts a new one), read as one stream.

    ``budget`` bytes are kept across every file; what the grading plugin takes at test boundaries (``take``)
    is the slice printed while that test ran, so students see the slices of public tests and the instructor all.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.path: str | None = None
        self._read = 0              # bytes of the current file already taken
        self._kept = 0              # bytes taken from every file, against the budget
        self._carried = ""          # taken from an earlier process's file, not yet handed out
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def new_file(self, path: str) -> str:
        """A fresh capture file per start, so a restart's output is its own; the previous one's is kept."""
        self._carried += self._read_new()   # the previous process's output outlives its file
        self._read, self._decoder = 0, codecs.getincrementaldecoder("utf-8")("replace")
        self.path = path
        return path

    def whole(self) -> str:
        """What the current process printed (capped)."""
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as fh:
            data = fh.read(self.budget + 1)
        text = data[: self.budget].decode("utf-8", "replace")
        return text + ("\n[output truncated]" if len(data) > self.budget else "")

    def take(self) -> str:
        """What was printed since the last call, across restarts, within the budget."""
        text = self._carried + self._read_new()
        self._carried = ""
        return text

    def _read_new(self) -> str:
        if not self.path or not os.path.exists(self.path):
            return ""
        with open(self.path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end <= self._read:
                return ""
            fh.seek(self._read)
            allowed = max(0, self.budget - self._kept)
            data = fh.read(min(end - self._read, allowed))
        truncated = end - self._read > len(data) and allowed > 0 and len(data) == allowed
        self._read = end
        self._kept += len(data)
        text = self._decoder.decode(data)
        return text + ("\n[output truncated]" if truncated else "")
