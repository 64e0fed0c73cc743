"""Exercise 1: compute the spatial output size of a convolution or pooling layer.

A layer with a square kernel of side K, zero padding P on every side and stride S slides
over an input of side H. The number of positions the kernel fits in is

    output = floor((H + 2*P - K) / S) + 1

Work with integers only (use ``//``, not ``math.floor`` on a float), so the answer is exact.

Fill in ``conv_output_size`` and the four numbers in ``ANSWERS``. Do not import torch here;
this exercise is plain Python.
"""
from __future__ import annotations


def conv_output_size(size: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Return the output side length of a convolution, as a Python int.

    Args:
        size: input height (or width), H. Must be at least 1.
        kernel_size: kernel side, K. Must be at least 1.
        padding: zeros added on each side, P. Must be 0 or more.
        stride: step between kernel positions, S. Must be at least 1.

    Returns:
        floor((H + 2*P - K) / S) + 1 as an ``int``.

    Raises:
        ValueError: if size < 1, kernel_size < 1, padding < 0 or stride < 1, or if the
            kernel does not fit even once, i.e. K > H + 2*P.

    Example:
        conv_output_size(32, 3, padding=1, stride=1) == 32
        conv_output_size(32, 2, stride=2) == 16
        conv_output_size(2, 5) raises ValueError (a 5-wide kernel cannot fit in 2 pixels)
    """
    raise NotImplementedError("conv_output_size: apply the output-size formula and validate the inputs")


# Output side length for each (H, K, P, S); each value a Python int.
#   a: (28, 5, 0, 1)   b: (64, 3, 1, 1)   c: (128, 3, 0, 2)   d: (224, 7, 3, 2)
ANSWERS = {
    "a": None,
    "b": None,
    "c": None,
    "d": None,
}
