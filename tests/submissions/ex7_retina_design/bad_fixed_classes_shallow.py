"""Wrong ex7: a consistent six-conv design whose receptive field (36) is below 64, and a head fixed at 5 classes."""
# expect-fail: test_num_classes, test_receptive_field_covers_lesions
from __future__ import annotations

import torch
from torch import nn

FILTERS = [32, 32, 64, 64, 128, 128]


class RetinaCNN(nn.Module):
    """Six 3x3 convs with a 2x2 max pool after every second one, then a pooled linear head."""

    def __init__(self, num_classes: int = 5, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for i, out_channels in enumerate(FILTERS):
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(FILTERS[-1], 5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes: int = 5) -> nn.Module:
    """Return the retina network: (N, 3, 512, 512) -> (N, num_classes)."""
    return RetinaCNN(num_classes)


DESIGN = {
    "conv_layers": 6,
    "filters": list(FILTERS),
    "final_feature_map": (128, 64, 64),  # 512 halved by three pools
    "feature_extractor_params": 287008,
    "receptive_field": 36,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": (
        "Max pooling halves the resolution with no parameters and keeps the strongest local "
        "response, which suits small bright or dark lesions such as microaneurysms. A strided "
        "convolution would learn its own downsampling but adds parameters and compute on very "
        "large 512x512 maps; with limited medical data the fixed, parameter-free pool is the "
        "safer choice."
    ),
    "dropout": (
        "Labelled retinal images are scarce, so the model can memorise the training set. Global "
        "average pooling already keeps the head to a single small linear layer, and dropout "
        "before it stops the classifier from depending on a few feature channels."
    ),
    "batchnorm": (
        "Batch normalisation after each convolution would stabilise and speed up training of "
        "this eight-layer stack and allow higher learning rates. Batches of 512x512 images are "
        "small on one GPU, though, so its batch statistics are noisy; the reference leaves it "
        "out to stay close to the handout, and it is the first addition worth trying."
    ),
}
