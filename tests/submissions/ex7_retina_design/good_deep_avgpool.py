"""A correct ex7: ten convs and five average pools built in a loop, one shared ReLU module, named attributes."""
import torch.nn as nn

FILTERS = (16, 16, 32, 32, 64, 64, 128, 128, 256, 256)


class Retina(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.relu = nn.ReLU()
        mods = []
        c = 3
        for i, f in enumerate(FILTERS):
            mods.append(nn.Conv2d(c, f, 3, 1, 1))
            mods.append(self.relu)
            if i % 2:
                mods.append(nn.AvgPool2d(2))
            c = f
        self.features = nn.Sequential(*mods)
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c, 64), nn.ReLU(),
                                        nn.Dropout(), nn.Linear(64, num_classes))

    def forward(self, images):
        return self.classifier(self.features(images))


def build_retina_cnn(num_classes=5):
    return Retina(num_classes=num_classes)


DESIGN = {
    "conv_layers": 10,
    "filters": list(FILTERS),
    "final_feature_map": (256, 16, 16),
    # 448 + 2320 + 4640 + 9248 + 18496 + 36928 + 73856 + 147584 + 295168 + 590080 (weights and biases)
    "feature_extractor_params": 1178768,
    # 3, 5, 6, 10, 14, 16, 24, 32, 36, 52, 68, 76, 108, 140, 156
    "receptive_field": 156,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Average pooling smooths noise in the photographs while halving the resolution.",
    "dropout": "Dropout in the two-layer head, the part most likely to memorise a small data set.",
    "batchnorm": "Not used; with batches of only a few 512 x 512 images its statistics would be noisy.",
}
