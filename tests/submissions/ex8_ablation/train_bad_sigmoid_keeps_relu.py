"""The sigmoid variant forgets to swap the activation: it trains as well as the baseline."""
# expect-fail: test_sigmoid_below_baseline
import torch
from torch import nn

VARIANTS = ("baseline", "no_dropout", "sigmoid", "no_augmentation")


class MiniAlexNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(dropout), nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_variant(name: str, seed: int = 42):
    if name not in VARIANTS:
        raise ValueError(name)
    torch.manual_seed(seed)
    return MiniAlexNet(dropout=0.0 if name == "no_dropout" else 0.5), name != "no_augmentation"
