"""Pools with numpy's sliding windows (which raise ValueError by themselves when the window does not fit)."""
from itertools import accumulate
from operator import mul

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def receptive_field(layers):
    strides = [s for _, s in layers]
    jumps = [1, *accumulate(strides, mul)]  # the jump before each layer
    return 1 + sum((k - 1) * j for (k, _), j in zip(layers, jumps))


def _pool(grid, size, stride, reduce):
    if size < 1 or stride < 1:
        raise ValueError("size and stride must be positive")
    windows = sliding_window_view(np.asarray(grid, dtype=float), (size, size))[::stride, ::stride]
    return reduce(windows, axis=(2, 3)).tolist()


def max_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, np.max)


def avg_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, np.mean)


ANSWERS = {"rf_five_convs": np.int64(11), "rf_with_pools": 24, "max_pool": [[8, 7], [5, 9]]}
