# expect-fail: test_matches_conv2d
def conv_output_size(size, kernel_size, padding=0, stride=1):
    if min(size, kernel_size, stride) < 1 or padding < 0 or kernel_size > size + 2 * padding:
        raise ValueError("bad")
    return (size + 2 * padding - kernel_size) / stride + 1

ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
