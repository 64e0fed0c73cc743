# expect: full
"""Solves the exercise and tries to write everywhere outside its sandbox: project, classmates, reports, /tmp."""
import os

TARGETS = [
    "@@PROJECT@@/solutions/@@MARK@@",
    "@@PROJECT@@/graders/ex1_output_size/@@MARK@@",
    "@@CLASS@@/honest/ex1_output_size.py",
    "@@CLASS@@/@@MARK@@",
    "@@OUT@@/@@MARK@@",
    "/tmp/@@MARK@@",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "@@MARK@@"),
]
for path in TARGETS:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write("def conv_output_size(*a):\n    return 0\n")
        print("wrote", path)
    except OSError as exc:
        print("cannot write", path, exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1 or padding < 0 or stride < 1 or kernel_size > size + 2 * padding:
        raise ValueError("no output")
    return (size + 2 * padding - kernel_size) // stride + 1


ANSWERS = {"a": 24, "b": 64, "c": 63, "d": 112}
