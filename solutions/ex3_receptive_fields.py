"""Reference solution for exercise 3: receptive fields and pooling by hand."""
from __future__ import annotations

from collections.abc import Callable


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Return the receptive field of one output unit of a stack of (kernel_size, stride) layers."""
    rf, jump = 1, 1
    for kernel_size, stride in layers:
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got ({kernel_size}, {stride})")
        rf += (kernel_size - 1) * jump
        jump *= stride
    return rf


def _pool2d(
    grid: list[list[float]], size: int, stride: int, reduce: Callable[[list[float]], float]
) -> list[list[float]]:
    """Slide a size x size window with the given stride (no padding, floor mode) and reduce it."""
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1, got size={size}, stride={stride}")
    if not grid or not grid[0] or any(len(row) != len(grid[0]) for row in grid):
        raise ValueError("grid must be a non-empty rectangular list of lists")
    height, width = len(grid), len(grid[0])
    if size > height or size > width:
        raise ValueError(f"window {size} is larger than the grid {height}x{width}")
    out_h = (height - size) // stride + 1
    out_w = (width - size) // stride + 1

    def window(i: int, j: int) -> list[float]:
        return [grid[i * stride + di][j * stride + dj] for di in range(size) for dj in range(size)]

    return [[float(reduce(window(i, j))) for j in range(out_w)] for i in range(out_h)]


def max_pool2d(grid: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    """Max pooling of a 2-D grid, returned as a list of lists of floats."""
    return _pool2d(grid, size, stride, max)


def avg_pool2d(grid: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    """Average pooling of a 2-D grid, returned as a list of lists of floats."""
    return _pool2d(grid, size, stride, lambda window: sum(window) / len(window))


ANSWERS = {
    "rf_five_convs": 11,  # 1 + 5 * 2
    "rf_with_pools": 24,  # 3, 5, pool 6 (jump 2), 10, 14, pool 16 (jump 4), 24
    "max_pool": [[8.0, 7.0], [5.0, 9.0]],
}

AVG_VS_MAX = (
    "Max pooling keeps only the strongest response in each 2x2 window, so it reports whether a "
    "feature was present somewhere in that region: [[8, 7], [5, 9]]. Average pooling of the same "
    "grid gives [[4.75, 3.5], [2.5, 6.5]], which mixes the peak with its weaker neighbours and so "
    "measures how strong the feature is on average over the region rather than whether it fired. "
    "A single strong activation survives max pooling intact but is diluted by averaging."
)
