"""A correct ex7 made of ResNet basic blocks, whose stride-2 blocks add a 1x1 stride-2 shortcut convolution.

The block is written after torchvision's ``torchvision.models.resnet.BasicBlock`` (two 3x3 convs with
BatchNorm, the input added back through a 1x1 conv + BatchNorm "downsample" when the shape changes;
BSD-3-Clause), adapted here: no pooling at all, the features halve the resolution in four blocks.
"""
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class RetinaResNet(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        stem = [nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True)]
        blocks = [BasicBlock(32, 32), BasicBlock(32, 64, 2), BasicBlock(64, 128, 2), BasicBlock(128, 256, 2),
                  BasicBlock(256, 256, 2)]
        self.features = nn.Sequential(*stem, *blocks)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                                        nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_retina_cnn(num_classes=5):
    return RetinaResNet(num_classes)


# Receptive field along the main path (the shortcuts see less): stem 3; block 1: 5, 7; block 2 (stride 2):
# 9, 13; block 3: 17, 25; block 4: 33, 49; block 5: 65, 97.
DESIGN = {
    "conv_layers": 15,   # the stem, two per block, and the four 1x1 shortcut convs
    "filters": [32, 32, 32, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256, 256],
    "final_feature_map": (256, 32, 32),
    "feature_extractor_params": 2473120,   # sum(p.numel() for p in model.features.parameters())
    "receptive_field": 97,
}

ANSWERS = {"min_conv_layers": 8}

JUSTIFICATION = {
    "pooling_vs_strided_conv": "Strided 3x3 convs inside residual blocks downsample while learning what to keep.",
    "dropout": "Only before the final linear layer; the residual body is regularised by BatchNorm.",
    "batchnorm": "After every conv, as in ResNet: it keeps the fifteen-conv stack trainable from scratch.",
}
