# expect: zero
"""Answers the grader itself with a frame that declares blobs of a terabyte."""
import os
import struct
import sys

header = b'{"id": 1, "ok": true, "value": {"$bytes": 0}, "blobs": [1099511627776]}'
os.write(int(sys.argv[2]), struct.pack(">I", len(header)) + header)
