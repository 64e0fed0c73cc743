# expect-fail: test_pool_defaults[avg], test_pool_defaults[max], test_pool_matches_torch[avg], test_pool_matches_torch[max]
# Loops over columns on the outside, so the result comes back transposed.
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
    return [[float(reduce([grid[i + a][j + b] for a in range(size) for b in range(size)]))
             for i in range(0, h - size + 1, stride)] for j in range(0, w - size + 1, stride)]


def max_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, max)


def avg_pool2d(grid, size=2, stride=2):
    return _pool(grid, size, stride, lambda v: sum(v) / len(v))


ANSWERS = {"rf_five_convs": 11, "rf_with_pools": 24, "max_pool": [[8, 7], [5, 9]]}
