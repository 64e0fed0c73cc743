# expect-fail: test_answer_rf[rf_with_pools], test_receptive_field_convs, test_receptive_field_with_pools
# The jump is updated before the layer's own kernel is added, so a layer's stride inflates its own growth.
def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        jump *= s
        rf += (k - 1) * jump
    return rf


def max_pool2d(grid, size=2, stride=2):
    if size > min(len(grid), len(grid[0])) or size < 1 or stride < 1:
        raise ValueError("no fit")
    return [[float(max(grid[i + a][j + b] for a in range(size) for b in range(size)))
             for j in range(0, len(grid[0]) - size + 1, stride)] for i in range(0, len(grid) - size + 1, stride)]


def avg_pool2d(grid, size=2, stride=2):
    if size > min(len(grid), len(grid[0])) or size < 1 or stride < 1:
        raise ValueError("no fit")
    return [[sum(grid[i + a][j + b] for a in range(size) for b in range(size)) / size ** 2
             for j in range(0, len(grid[0]) - size + 1, stride)] for i in range(0, len(grid) - size + 1, stride)]


ANSWERS = {"rf_five_convs": receptive_field([(3, 1)] * 5),
           "rf_with_pools": receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)]),
           "max_pool": [[8.0, 7.0], [5.0, 9.0]]}
