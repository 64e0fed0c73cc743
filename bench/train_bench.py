"""Benchmark the grader's training loop against the handout's way of training, on one device in one run.

    python bench/train_bench.py [--device cuda] [--n 50000] [--epochs 2] [--workers 0,4] [--out results.md]

Both train the reference MiniAlexNet with Adam(1e-3), batch 128, cross-entropy, random crop
(padding 4) + horizontal flip + Normalize(0.5), on the same uint8 images (cnngrade's
generated shapes, CIFAR-10's size and layout):

- grader: cnngrade.training.trainer.train, the trusted trainer (data and batched augmentation resident on
  the device, channels_last, no DataLoader; fused Adam and cudnn.benchmark on CUDA);
- handout: solutions/ex6 train_one_epoch over a torchvision-style DataLoader whose Dataset
  makes a PIL image per sample and applies build_transforms(True), once per worker count.

Each variant gets one warm-up epoch, then ``--epochs`` timed epochs (CUDA synchronized).
Prints and writes a markdown table of seconds per epoch and images per second.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solutions"))
sys.path.insert(0, str(ROOT))

from cnngrade.data import synthetic
from cnngrade.training.trainer import train


class PilImages(torch.utils.data.Dataset):
    """What a CIFAR10 Dataset does per sample: a PIL image from the uint8 array, then the transforms."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_grader(x, y, device: str, epochs: int) -> float:
    from ex6_cifar10_training import MiniAlexNet

    model = MiniAlexNet()
    train(model, x, y, epochs=1, batch_size=128, lr=1e-3, seed=0, device=device)   # warm-up (cudnn.benchmark picks)
    sync(device)
    started = time.perf_counter()
    train(model, x, y, epochs=epochs, batch_size=128, lr=1e-3, seed=1, device=device)
    sync(device)
    return (time.perf_counter() - started) / epochs


def time_handout(x, y, device: str, epochs: int, workers: int) -> float:
    from ex6_cifar10_training import MiniAlexNet, build_transforms, train_one_epoch

    model = MiniAlexNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(PilImages(x.numpy(), y.numpy(), build_transforms(True)), batch_size=128,
                                         shuffle=True, num_workers=workers, pin_memory=device.startswith("cuda"),
                                         persistent_workers=workers > 0)
    train_one_epoch(model, loader, optimizer, device)                   # warm-up
    sync(device)
    started = time.perf_counter()
    for _ in range(epochs):
        train_one_epoch(model, loader, optimizer, device)
    sync(device)
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", default="0,4")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, labels = synthetic.generate(args.n, synthetic.TRAIN_SEED)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    rows = [("grader loop (resident data, batched augmentation)", time_grader(x, y, args.device, args.epochs))]
    for w in (int(v) for v in args.workers.split(",")):
        rows.append((f"handout: DataLoader + PIL transforms, num_workers={w}",
                     time_handout(x, y, args.device, args.epochs, w)))
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    lines = [(f"device {args.device} ({name}), {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
              f"torch {torch.__version__}, {args.n} images, batch 128, {args.epochs} timed epoch(s) after 1 warm-up"),
             "",
             "| pipeline | s/epoch | images/s | vs grader |", "| --- | --- | --- | --- |"]
    base = rows[0][1]
    for label, seconds in rows:
        lines.append(f"| {label} | {seconds:.2f} | {args.n / seconds:,.0f} | {seconds / base:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
