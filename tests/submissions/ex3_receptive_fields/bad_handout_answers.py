# expect-fail: test_answer_max_pool, test_answer_rf[rf_five_convs], test_answer_rf[rf_with_pools], test_pool_defaults[avg], test_pool_defaults[max], test_pool_matches_torch[avg], test_pool_matches_torch[max], test_pool_window_too_large_raises[avg], test_pool_window_too_large_raises[max]
# Copies the handout's misprinted receptive fields and gives the average-pooled grid for max pooling.
def receptive_field(layers):
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def max_pool2d(grid, size=2, stride=2):
    raise NotImplementedError


def avg_pool2d(grid, size=2, stride=2):
    raise NotImplementedError


ANSWERS = {"rf_five_convs": 47, "rf_with_pools": 47, "max_pool": [[4.75, 3.5], [2.5, 6.5]]}
