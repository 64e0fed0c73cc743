# expect: zero
"""Answers the grader itself with a header nested 200000 levels deep."""
import os
import struct
import sys

header = b"[" * 200000 + b"]" * 200000
os.write(int(sys.argv[2]), struct.pack(">I", len(header)) + header)
