# expect: zero
"""Spins on the CPU forever while being imported."""
n = 0
while True:
    n += 1
