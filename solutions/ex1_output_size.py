"""Reference solution for exercise 1: the spatial output size of a convolution."""
from __future__ import annotations


def conv_output_size(size: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Return floor((size + 2*padding - kernel_size) / stride) + 1 as a Python int.

    Raises ValueError for size < 1, kernel_size < 1, padding < 0, stride < 1, or a kernel
    larger than the padded input (no output position exists).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    padded = size + 2 * padding
    if kernel_size > padded:
        raise ValueError(f"kernel_size {kernel_size} is larger than the padded input {padded}")
    return int((padded - kernel_size) // stride + 1)


ANSWERS = {
    "a": 24,  # (28 - 5) / 1 + 1
    "b": 64,  # (64 + 2 - 3) / 1 + 1
    "c": 63,  # floor((128 - 3) / 2) + 1
    "d": 112,  # floor((224 + 6 - 7) / 2) + 1
}
