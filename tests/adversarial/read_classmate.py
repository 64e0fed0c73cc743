# expect: zero
"""Copies a classmate's work from the class folder."""
namespace = {}
try:
    text = open("@@CLASS@@/honest/ex1_output_size.py").read()
    print("CLASSMATE:", text)
    exec(text, namespace)
except OSError as exc:
    print("no classmate:", exc)


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if "conv_output_size" in namespace:
        return namespace["conv_output_size"](size, kernel_size, padding, stride)
    return -1


ANSWERS = namespace.get("ANSWERS", {})
