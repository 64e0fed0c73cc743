# expect: zero
"""Floods stdout and stderr, trying to fill the grading machine's disk."""
import sys

line = "flood " * 2000 + "\n"
while True:
    sys.stdout.write(line)
    sys.stderr.write(line)
