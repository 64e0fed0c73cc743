import math

def conv_output_size(size, kernel_size, padding=0, stride=1):
    if min(size, kernel_size, stride) < 1 or padding < 0:
        raise ValueError("bad hyper-parameters")
    span = size + 2 * padding - kernel_size
    if span < 0:
        raise ValueError("kernel does not fit")
    return math.floor(span / stride) + 1

ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
