"""A correct ex2 written without ToTensor: numpy scaling, a private torch.Generator, pyplot subplots."""
import numpy as np
import torch
from PIL import Image


def load_grayscale(path):
    img = Image.open(path)
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    img.close()
    return torch.from_numpy(grey).unsqueeze(0).unsqueeze(0)


def make_conv(seed):
    gen = torch.Generator().manual_seed(seed)
    conv = torch.nn.Conv2d(in_channels=1, out_channels=8, kernel_size=(3, 3), stride=1, padding=(1, 1), bias=True)
    bound = 1.0 / 3.0  # 1 / sqrt(fan_in), fan_in = 1 * 3 * 3
    with torch.no_grad():
        conv.weight.copy_(torch.rand(conv.weight.shape, generator=gen) * 2 * bound - bound)
        conv.bias.copy_(torch.rand(conv.bias.shape, generator=gen) * 2 * bound - bound)
    return conv


def feature_maps(conv, image):
    return conv(image).detach()


def plot_feature_maps(maps):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(10, 5))
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(maps[0, i].cpu().numpy(), cmap="gray")
        ax.set_axis_off()
    return fig
