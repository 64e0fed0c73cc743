"""Exercise 3: receptive fields of stacked layers, and pooling done by hand.

Receptive field. Describe a stack of layers, from input to output, as a list of
(kernel_size, stride) pairs; convolutions and pooling layers are treated the same way
(no dilation). Start with rf = 1 and jump = 1 (the distance, in input pixels, between
neighbouring units of the current layer). For each layer in order:

    rf   = rf + (kernel_size - 1) * jump
    jump = jump * stride

The final rf is the side length of the input patch that one output unit can see.
Example: two 3x3 stride-1 convs -> rf 3, then 5.

Pooling. A k x k pooling with stride s slides a k x k window over a 2-D grid in steps of
s, with no padding, and keeps only windows that fit completely (floor mode); each window
is replaced by its maximum (max pooling) or its mean (average pooling).

Plain Python only: do not import torch or numpy in this file.
"""
from __future__ import annotations


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Return the theoretical receptive field (an int) of one output unit of ``layers``.

    Args:
        layers: (kernel_size, stride) pairs from input to output. An empty list means no
            layer at all, so the answer is 1.

    Example:
        receptive_field([(3, 1), (3, 1), (2, 2)]) == 6
    """
    raise NotImplementedError("receptive_field: apply the rf/jump recurrence")


def max_pool2d(grid: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    """Max pooling of a rectangular grid (a list of rows), without padding.

    The output has floor((rows - size) / stride) + 1 rows and
    floor((cols - size) / stride) + 1 columns. Return a list of lists of floats
    (convert with ``float``). Raise ``ValueError`` if size or stride is below 1 or the
    window does not fit in the grid.

    Example:
        max_pool2d([[1, 2], [3, 4]]) == [[4.0]]
    """
    raise NotImplementedError("max_pool2d: take the maximum of each window")


def avg_pool2d(grid: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    """Average pooling: like ``max_pool2d`` but each window becomes the mean of its values.

    Example:
        avg_pool2d([[1, 2], [3, 4]]) == [[2.5]]
    """
    raise NotImplementedError("avg_pool2d: take the mean of each window")


# rf_five_convs: five 3x3 stride-1 convs (an int).
# rf_with_pools: the same five convs with a 2x2 stride-2 max pool after conv 2 and after conv 4.
# max_pool: 2x2 stride-2 max pooling of [[2, 8, 4, 1], [6, 3, 7, 2], [0, 5, 9, 3], [4, 1, 6, 8]],
#           as a list of lists of numbers.
ANSWERS = {
    "rf_five_convs": None,
    "rf_with_pools": None,
    "max_pool": None,
}

# A few sentences: what would average pooling of the grid above give, and why does it
# describe the region differently from max pooling?
AVG_VS_MAX = None
