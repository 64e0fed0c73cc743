"""A correct ex7 built from a VGG-style config list, whose .features ends in a global AdaptiveAvgPool2d.

The config-list builder follows the idea of torchvision's ``torchvision.models.vgg.make_layers`` (widths and
"M" for a 2x2 max pool; BSD-3-Clause), written here for this exercise. With the global pool inside .features,
one output unit sees the whole image, so the receptive field is the image itself.
"""
import torch.nn as nn

CFG = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"]


def make_layers(cfg, batch_norm=False):
    layers = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGGRetina(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.features = nn.Sequential(make_layers(CFG), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes=5):
    return VGGRetina(num_classes)


DESIGN = {
    "conv_layers": 8,
    "filters": [v for v in CFG if v != "M"],
    "final_feature_map": (256, 1, 1),
    "feature_extractor_params": 1172256,   # the reference's eight convs; pools have no parameters
    "receptive_field": 512,                # the global average pool: every pixel of the 512 x 512 image
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Max pooling keeps the strongest small-lesion response at no parameter cost.",
    "dropout": "Dropout right before the single linear layer, where a small data set overfits first.",
    "batchnorm": "make_layers can add BatchNorm after every conv; left out here to keep the reference's numbers.",
}
