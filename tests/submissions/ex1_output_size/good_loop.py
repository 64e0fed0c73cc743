"""Counts kernel positions one by one, and asserts instead of if-raise for one case."""

def conv_output_size(size: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    for name, value, low in (("size", size, 1), ("kernel", kernel_size, 1), ("padding", padding, 0), ("stride", stride, 1)):
        if value < low:
            raise ValueError(f"{name} too small")
    positions, start = 0, 0
    while start + kernel_size <= size + 2 * padding:
        positions += 1
        start += stride
    if positions == 0:
        raise ValueError("no output")
    return positions

ANSWERS = dict(a=conv_output_size(28, 5), b=conv_output_size(64, 3, 1), c=conv_output_size(128, 3, 0, 2),
               d=conv_output_size(224, 7, 3, 2))
