# expect: zero
"""Rewrites builtins in the worker so that type checks and comparisons lie."""
import builtins

builtins.isinstance = lambda obj, cls: True
builtins.type = lambda *args: int
builtins.int = lambda *args, **kwargs: 0
builtins.len = lambda obj: 0


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return 0


ANSWERS = {"a": 0, "b": 0, "c": 0, "d": 0}
