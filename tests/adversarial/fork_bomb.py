# expect: zero
"""A fork bomb at import time: every process forks forever and ignores failures."""
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
