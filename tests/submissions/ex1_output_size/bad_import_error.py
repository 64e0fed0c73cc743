# expect-fail: all
import numpyy

def conv_output_size(size, kernel_size, padding=0, stride=1):
    return (size + 2 * padding - kernel_size) // stride + 1

ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
