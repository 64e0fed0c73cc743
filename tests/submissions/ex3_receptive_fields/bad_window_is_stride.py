# expect-fail: test_pool_matches_torch[avg], test_pool_matches_torch[max], test_pool_window_too_large_raises[avg], test_pool_window_too_large_raises[max]
# Confuses the two parameters: the window is stride x stride and it moves by size.
def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def _pool(grid, size, stride, reduce):
    size, stride = stride, size
    if size < 1 or stride < 1 or size > min(len(grid), len(grid[0])):
        raise ValueError("window does not fit")
    return [[float(reduce([grid[i + a][j + b] for a in range(size) for b in range(size)]))
             for j in range(0, len(grid[0]) - size + 1, stride)] for i in range(0, len(grid) - size + 1, stride)]


def max_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, max)


def avg_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, lambda v: sum(v) / len(v))


ANSWERS = {"rf_five_convs": 11, "rf_with_pools": 24, "max_pool": [[8, 7], [5, 9]]}
