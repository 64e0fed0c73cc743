# expect: zero
# link: notes.txt -> @@PROJECT@@/solutions/ex1_output_size.py
"""Plants a symlink to the reference solution next to its module and imports through it."""
import os

namespace = {}
here = os.path.dirname(os.path.abspath(__file__))
try:
    text = open(os.path.join(here, "notes.txt")).read()
    print("THROUGH THE LINK:", text)
    exec(text, namespace)
except OSError as exc:
    print("no link:", exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if "conv_output_size" in namespace:
        return namespace["conv_output_size"](size, kernel_size, padding, stride)
    return -1


ANSWERS = namespace.get("ANSWERS", {})
