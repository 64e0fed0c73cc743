# expect-fail: test_answer_rf[rf_five_convs], test_answer_rf[rf_with_pools], test_pool_defaults[avg], test_pool_defaults[max], test_pool_matches_torch[avg], test_pool_matches_torch[max], test_pool_window_too_large_raises[avg], test_pool_window_too_large_raises[max], test_receptive_field_convs, test_receptive_field_with_pools
# Off by one: the receptive field starts at 0 instead of 1 pixel.
def receptive_field(layers):
    rf, jump = 0, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def max_pool2d(grid, size=2, stride=2):
    raise NotImplementedError


def avg_pool2d(grid, size=2, stride=2):
    raise NotImplementedError


ANSWERS = {"rf_five_convs": receptive_field([(3, 1)] * 5),
           "rf_with_pools": receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)]),
           "max_pool": [[8, 7], [5, 9]]}
