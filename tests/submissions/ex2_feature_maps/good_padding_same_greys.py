"""A correct ex2 written another way: padding='same', manual_seed without fork_rng, a normalised Greys plot."""
import torch
import torchvision.transforms.functional as TF
from PIL import Image


def load_grayscale(path):
    with Image.open(path) as img:
        return TF.to_tensor(img.convert("L")).unsqueeze(0)


def make_conv(seed):
    torch.manual_seed(seed)
    return torch.nn.Conv2d(1, 8, 3, padding="same")


def feature_maps(conv, image):
    with torch.no_grad():
        out = conv(image)
    return out


def plot_feature_maps(maps):
    from matplotlib.figure import Figure

    fig = Figure()
    for i in range(8):
        ax = fig.add_subplot(1, 8, i + 1)
        m = maps[0, i]
        m = (m - m.min()) / (m.max() - m.min())  # rescaled to [0, 1]: the picture imshow draws is the same
        ax.imshow(m.numpy(), cmap="Greys")
    return fig
