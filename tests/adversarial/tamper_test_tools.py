# expect: zero
"""Imports pytest and hypothesis inside the worker and disarms them, hoping the grader shares them."""
import sys

import hypothesis
import pytest

pytest.raises = lambda *a, **k: None
pytest.fail = lambda *a, **k: None
hypothesis.given = lambda *a, **k: (lambda fn: (lambda *x, **y: None))
hypothesis.assume = lambda *a: True
for name in list(sys.modules):
    if name.startswith(("cnngrade.graderkit.checks", "_pytest")):
        sys.modules[name] = None


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return -1


ANSWERS = {"a": -1, "b": -1, "c": -1, "d": -1}
