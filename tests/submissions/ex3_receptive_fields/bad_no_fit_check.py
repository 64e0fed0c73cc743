# expect-fail: test_pool_window_too_large_raises[max], test_pool_window_too_large_raises[avg]
# Returns an empty result instead of raising when the window does not fit.
def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def _pool(grid, size, stride, reduce):
    return [[float(reduce([grid[i + a][j + b] for a in range(size) for b in range(size)]))
             for j in range(0, len(grid[0]) - size + 1, stride)] for i in range(0, len(grid) - size + 1, stride)]


def max_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, max)


def avg_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, lambda v: sum(v) / len(v))


ANSWERS = {"rf_five_convs": 11, "rf_with_pools": 24, "max_pool": [[8, 7], [5, 9]]}
