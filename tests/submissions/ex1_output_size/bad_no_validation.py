# expect-fail: test_kernel_larger_than_input_raises, test_invalid_arguments_raise[stride0]
def conv_output_size(size, kernel_size, padding=0, stride=1):
    return (size + 2 * padding - kernel_size) // max(stride, 1) + 1

ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
