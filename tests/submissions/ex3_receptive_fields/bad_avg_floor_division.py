# expect-fail: test_pool_defaults[avg], test_pool_matches_torch[avg]
# Integer (floor) division for the mean: 4.75 becomes 4.
def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def _windows(grid, size, stride):
    if size < 1 or stride < 1 or size > min(len(grid), len(grid[0])):
        raise ValueError("window does not fit")
    return [[[grid[i + a][j + b] for a in range(size) for b in range(size)]
             for j in range(0, len(grid[0]) - size + 1, stride)] for i in range(0, len(grid) - size + 1, stride)]


def max_pool2d(grid, size=2, stride=2):
    return [[float(max(w)) for w in row] for row in _windows(grid, size, stride)]


def avg_pool2d(grid, size=2, stride=2):
    return [[float(sum(w) // len(w)) for w in row] for row in _windows(grid, size, stride)]


ANSWERS = {"rf_five_convs": 11, "rf_with_pools": 24, "max_pool": max_pool2d([[2, 8, 4, 1], [6, 3, 7, 2], [0, 5, 9, 3], [4, 1, 6, 8]])}
