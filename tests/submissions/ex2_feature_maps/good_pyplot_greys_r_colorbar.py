"""A correct ex2 in pyplot style: plt.subplots(2, 4), cmap="Greys_r", origin="lower", a colorbar beside every map,
a suptitle and numpy scaling instead of ToTensor. The colorbars are grey strips, not extra feature-map panels."""
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image


def load_grayscale(path):
    img = Image.open(path).convert("L")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.tensor(arr)[None, None]


def make_conv(seed):
    torch.manual_seed(seed)
    return torch.nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1)


def feature_maps(conv, image):
    with torch.no_grad():
        return conv(image)


def plot_feature_maps(maps):
    maps = maps.squeeze(0).detach().numpy()
    fig, axes = plt.subplots(2, 4, figsize=(12, 6))
    for i, ax in enumerate(axes.flatten()):
        im = ax.imshow(maps[i], cmap="Greys_r", origin="lower")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(f"Feature map {i + 1}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Conv2d(1, 8, 3) feature maps")
    return fig
