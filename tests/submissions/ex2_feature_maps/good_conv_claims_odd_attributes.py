"""A correct ex2 whose layer describes itself wrongly: it computes the 3x3, padding-1, stride-1 convolution, but its
attributes claim kernel_size 65 and stride 400. Judged by what it computes, it earns every point, and the grader
allocates nothing from those numbers (the old check read them and ran out of memory). Plot with add_subplot."""
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.transforms import functional as TF


class SeededConv(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=1, padding=1)


def load_grayscale(path):
    with Image.open(path) as img:
        return TF.to_tensor(img.convert("L"))[None]


def make_conv(seed):
    g = torch.Generator().manual_seed(seed)
    conv = SeededConv(1, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.empty(8, 1, 3, 3).uniform_(-1 / 3, 1 / 3, generator=g))
        conv.bias.copy_(torch.empty(8).uniform_(-1 / 3, 1 / 3, generator=g))
    conv.kernel_size, conv.stride, conv.padding = (65, 65), (400, 400), (0, 0)
    return conv


def feature_maps(conv, image):
    with torch.no_grad():
        return conv(image)


def plot_feature_maps(maps):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    for i in range(8):
        ax = fig.add_subplot(2, 4, i + 1)
        ax.imshow(maps[0, i], cmap="gray", interpolation="nearest")
        ax.axis("off")
    return fig
