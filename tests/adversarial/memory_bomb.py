# expect: zero
"""Hoards memory without end while being imported, a gibibyte at a time."""
hoard = []
while True:
    hoard.append(bytes(1 << 30))
