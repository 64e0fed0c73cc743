"""The layers are built, but forward() never looks at the image: the output is a learned constant."""
# expect-fail: test_training_reaches_threshold
import torch
from torch import nn


class MiniAlexNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 4)))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1) + 0 * self.features(x).sum()
