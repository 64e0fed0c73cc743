# expect-fail: test_pool_defaults[avg], test_pool_defaults[max], test_pool_matches_torch[avg], test_pool_matches_torch[max]
# Keeps the partial windows at the right and bottom edges (ceil mode) instead of dropping them.
import math


def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def _pool(grid, size, stride, reduce):
    h, w = len(grid), len(grid[0])
    if size < 1 or stride < 1 or size > min(h, w):
        raise ValueError("window does not fit")
    out_h, out_w = math.ceil((h - size) / stride) + 1, math.ceil((w - size) / stride) + 1
    return [[float(reduce([grid[r][c] for r in range(i * stride, min(i * stride + size, h))
                          for c in range(j * stride, min(j * stride + size, w))])) for j in range(out_w)]
            for i in range(out_h)]


def max_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, max)


def avg_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, lambda v: sum(v) / len(v))


ANSWERS = {"rf_five_convs": 11, "rf_with_pools": 24, "max_pool": [[8, 7], [5, 9]]}
