# expect: full
"""An honest student: the batch must grade it in full whatever its classmates do."""
# classmate secret: @@MARK@@-classmate


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1 or padding < 0 or stride < 1:
        raise ValueError("invalid layer")
    if kernel_size > size + 2 * padding:
        raise ValueError("kernel larger than the padded input")
    return (size + 2 * padding - kernel_size) // stride + 1


ANSWERS = {"a": conv_output_size(28, 5), "b": conv_output_size(64, 3, 1), "c": conv_output_size(128, 3, 0, 2),
           "d": conv_output_size(224, 7, 3, 2)}
