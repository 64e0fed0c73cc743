"""A correct ex7: widths growing to 320, F.relu inside a custom features module and one pool module reused."""
import torch.nn.functional as F
from torch import nn

WIDTHS = [16, 24, 32, 48, 64, 96, 128, 320]


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        ins = [3] + WIDTHS[:-1]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in zip(ins, WIDTHS))
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        for n, conv in enumerate(self.convs, start=1):
            x = F.relu(conv(x))
            if n % 2 == 0:
                x = self.pool(x)
        return x


class RetinaModel(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.features = Features()
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4),
                                        nn.Linear(WIDTHS[-1], num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes=5):
    return RetinaModel(num_classes)


DESIGN = {
    "conv_layers": 8,
    "filters": WIDTHS,
    "final_feature_map": (320, 32, 32),
    # sum of (in * out * 9 + out) over the eight convs
    "feature_extractor_params": 3 * 16 * 9 + 16 + 16 * 24 * 9 + 24 + 24 * 32 * 9 + 32 + 32 * 48 * 9 + 48
    + 48 * 64 * 9 + 64 + 64 * 96 * 9 + 96 + 96 * 128 * 9 + 128 + 128 * 320 * 9 + 320,
    "receptive_field": 76,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Pooling after every second conv, because it costs no parameters at this resolution.",
    "dropout": "Dropout before the linear layer guards against memorising a small set of fundus photos.",
    "batchnorm": "Not needed for eight layers; it could be added after each conv if training were slow.",
}
