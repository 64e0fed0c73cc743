"""Correct: conv blocks built by a helper, then exposed again as self.block1..3 next to self.body
(the same modules under two names); parameters counted with numpy, which gives 0.0 for none."""
import numpy as np
import torch
from torch import nn


def conv_block(c_in, c_out, pool):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=True), pool)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(conv_block(3, 16, nn.MaxPool2d(2)), conv_block(16, 32, nn.MaxPool2d(2)),
                                  conv_block(32, 64, nn.AdaptiveAvgPool2d(1)))
        self.block1, self.block2, self.block3 = self.body  # aliases for inspection in the notebook

    def forward(self, x):
        return self.body(x)


def build_cnn():
    return Net()


def trace_shapes(model, x):
    records = []

    def hook(module, inputs, output):
        records.append(tuple(output.shape))

    handles = [m.register_forward_hook(hook) for m in model.modules() if len(m._modules) == 0]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return records


def count_params(model):
    return np.sum([p.numel() for p in model.parameters()])


ANSWERS = {"total_params": 23584, "final_shape": (4, 64, 1, 1)}
