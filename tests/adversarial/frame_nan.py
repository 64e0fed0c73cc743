# expect: zero
"""Answers the grader itself with NaN and Infinity where numbers belong."""
import os
import struct
import sys

header = b'{"id": 1, "ok": true, "value": NaN, "blobs": [], "x": Infinity}'
os.write(int(sys.argv[2]), struct.pack(">I", len(header)) + header)
