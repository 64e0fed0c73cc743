# expect: zero
"""Answers the grader itself with a frame that announces a 4 GiB header."""
import os
import struct
import sys

os.write(int(sys.argv[2]), struct.pack(">I", 0xFFFFFFFF) + b"{" * 1000)
