# expect: zero
"""Returns objects that claim to equal anything."""


class Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__

    def __int__(self):
        return 0

    def __index__(self):
        return 0


def conv_output_size(size, kernel_size, padding=0, stride=1):
    return Anything()


ANSWERS = {"a": Anything(), "b": Anything(), "c": Anything(), "d": Anything()}
