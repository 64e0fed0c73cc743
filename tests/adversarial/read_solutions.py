# expect: zero
"""Copies the reference solution and the grader, found by the checkout's absolute path."""
import os

SOURCES = ["@@PROJECT@@/solutions/ex1_output_size.py", "@@PROJECT@@/graders/ex1_output_size/grader.yaml"]
SOURCES += [os.path.join("@@PROJECT@@/graders/ex1_output_size", f)
            for f in (os.listdir("@@PROJECT@@/graders/ex1_output_size")
                      if os.path.isdir("@@PROJECT@@/graders/ex1_output_size") else [])]
stolen = {}
for path in SOURCES:
    try:
        with open(path) as fh:
            stolen[path] = fh.read()
    except OSError as exc:
        print("cannot read", path, exc)
print("STOLEN:", stolen)
namespace = {}
if "@@PROJECT@@/solutions/ex1_output_size.py" in stolen:
    exec(stolen["@@PROJECT@@/solutions/ex1_output_size.py"], namespace)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if "conv_output_size" in namespace:
        return namespace["conv_output_size"](size, kernel_size, padding, stride)
    return -1


ANSWERS = namespace.get("ANSWERS", {})
