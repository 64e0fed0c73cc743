# expect-fail: test_matches_conv2d, test_answer[b], test_answer[d]
def conv_output_size(size, kernel_size, padding=0, stride=1):
    if min(size, kernel_size, stride) < 1 or padding < 0 or kernel_size > size + padding:
        raise ValueError("bad")
    return (size + padding - kernel_size) // stride + 1

ANSWERS = {"a": 24, "b": 63, "c": 63, "d": 110}
