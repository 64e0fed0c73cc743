"""Receptive field walked backwards from the output unit, recursively; pools by slicing rows."""


def receptive_field(layers):
    # Seen from the output: a unit spanning r positions of a layer's output spans (r - 1) * s + k of its input.
    def span(rest, r):
        if not rest:
            return r
        k, s = rest[-1]
        return span(rest[:-1], (r - 1) * s + k)

    return span(list(layers), 1)


def _windows(grid, size, stride):
    if size < 1 or stride < 1 or size > len(grid) or size > len(grid[0]):
        raise ValueError("the window does not fit in the grid")
    for top in range(0, len(grid) - size + 1, stride):
        rows = grid[top:top + size]
        yield [[c for row in rows for c in row[left:left + size]]
               for left in range(0, len(grid[0]) - size + 1, stride)]


def max_pool2d(grid, size=2, stride=2):
    return [[float(max(w)) for w in line] for line in _windows(grid, size, stride)]


def avg_pool2d(grid, size=2, stride=2):
    return [[sum(w) / len(w) for w in line] for line in _windows(grid, size, stride)]


ANSWERS = {
    "rf_five_convs": receptive_field([(3, 1)] * 5),
    "rf_with_pools": receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1)]),
    "max_pool": max_pool2d([[2, 8, 4, 1], [6, 3, 7, 2], [0, 5, 9, 3], [4, 1, 6, 8]]),
}
AVG_VS_MAX = "Averaging gives [[4.75, 3.5], [2.5, 6.5]]: it blends each peak with its neighbours."
