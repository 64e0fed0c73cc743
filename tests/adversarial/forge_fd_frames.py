# expect: zero
"""Writes made-up successful replies to every file descriptor that might be the protocol pipe."""
import json
import os
import struct


def _forge(value):
    for rid in range(0, 64):
        header = json.dumps({"id": rid, "ok": True, "value": value, "blobs": []}).encode()
        frame = struct.pack(">I", len(header)) + header
        for fd in range(3, 40):
            try:
                os.write(fd, frame)
            except OSError:
                pass


def conv_output_size(size, kernel_size, padding=0, stride=1):
    _forge(24)
    return -1
