# expect: zero
"""Leaves in the middle of a call: SystemExit for bad arguments, a hard exit otherwise."""
import os
import sys


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1:
        sys.exit("bye")
    os._exit(0)
