"""A correct ex7 whose custom features module pools with F.max_pool2d(x, 3, 2, 1) in its forward (no pool modules)."""
import torch.nn.functional as F
from torch import nn

WIDTHS = [16, 32, 32, 64, 64, 128, 128, 256]


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, padding=1) for c_in, c_out in zip([3] + WIDTHS, WIDTHS))

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        return x


class Net(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = Features()
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(0.5),
                                        nn.Linear(WIDTHS[-1], num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes=5):
    return Net(num_classes)


DESIGN = {
    "conv_layers": 8,
    "filters": WIDTHS,
    "final_feature_map": (256, 32, 32),   # each overlapping pool halves 512: 256, 128, 64, 32
    "feature_extractor_params": sum(9 * i * o + o for i, o in zip([3] + WIDTHS, WIDTHS)),
    # rf += (k - 1) * jump: 3, 5, pool 7 (jump 2), 11, 15, pool 19 (jump 4), 27, 35, pool 43 (jump 8), 59, 75,
    # pool 91 (jump 16)
    "receptive_field": 91,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Overlapping 3x3 max pools, as in AlexNet, keep lesions that straddle a window edge.",
    "dropout": "Dropout before the linear layer, which would otherwise memorise the few training images.",
    "batchnorm": "Not used: with eight layers and small batches of large images it adds little.",
}
