# expect: zero
"""Answers every request twice, the second time claiming success for the next id it guesses."""
import json
import os
import struct
import sys


def _forge(rid, value):
    header = json.dumps({"id": rid, "ok": True, "value": value, "blobs": []}).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(header)) + header)


for rid in range(1, 50):
    _forge(rid, ["conv_output_size", "ANSWERS"])


def conv_output_size(size, kernel_size, padding=0, stride=1):
    for rid in range(1, 50):
        _forge(rid, 24)
    return -1
