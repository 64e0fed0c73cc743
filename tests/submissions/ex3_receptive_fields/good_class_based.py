"""A pooling object with the reduction as an attribute; max keeps the grid's own numbers (ints stay ints)."""
import statistics


class Pool:
    def __init__(self, reduce):
        self.reduce = reduce

    def __call__(self, grid, size=2, stride=2):
        height, width = len(grid), len(grid[0]) if grid else 0
        if not (1 <= size <= min(height, width)) or stride < 1:
            raise ValueError(f"a {size}x{size} window with stride {stride} does not fit a {height}x{width} grid")
        out = []
        i = 0
        while i + size <= height:
            row = []
            j = 0
            while j + size <= width:
                row.append(self.reduce([grid[i + a][j + b] for b in range(size) for a in range(size)]))
                j += stride
            out.append(row)
            i += stride
        return out


max_pool2d = Pool(max)
avg_pool2d = Pool(statistics.fmean)


def receptive_field(layers):
    jump = 1
    rf = 1
    for layer in layers:
        kernel, stride = layer
        rf = rf + jump * (kernel - 1)
        jump = jump * stride
    return rf


ANSWERS = dict(max_pool=[[8.0, 7.0], [5.0, 9.0]], rf_five_convs=11, rf_with_pools=24)
AVG_VS_MAX = None
