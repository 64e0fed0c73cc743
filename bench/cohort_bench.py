"""Images per second of the cohort trainer (K networks at once) against the solo trainer and the handout's recipe.

    python bench/cohort_bench.py [--device cpu|cuda] [--sizes 1,4,16] [--n 1280] [--size 16] [--epochs 1]
                                 [--workers 0] [--ex6-check] [--class-size 200] [--out results.md]

On one device, in one run, after one warm-up pass of each (CUDA synchronized):

- cohort K: ``cnngrade.training.cohort.train_cohort`` on K reference MiniAlexNets (one vmapped step for all K), counted
  as member-images per second (K x images x epochs / seconds);
- solo: ``cnngrade.training.trainer.train`` on one network (the trusted trainer the graders use one student at a time);
- handout: the reference solution's ``train_one_epoch`` over a DataLoader whose Dataset makes a PIL image per
  sample and applies torchvision's transforms (``build_transforms(True)``), once per ``--workers`` count.

A bare ``python -c 'import torch'`` is timed first (median of 3), and every time is also given as a ratio to it,
so that figures from a shared machine can be compared. ``--ex6-check`` also times ex6's whole training check on
this device (``--check-epochs`` epochs of ``--n`` images with the solo trainer) and projects a class of
``--class-size`` students' ex6 + ex8 training (20 + 10 + 10 epochs each by default, ``--class-epochs``) from the
largest cohort's throughput; ``--class-run`` runs that class for real instead of projecting it.

GPU (not run here: no GPU on the 2-core development machines):

    python bench/cohort_bench.py --device cuda --n 50000 --size 32 --sizes 1,8,32,100,200 --workers 0,8 \\
        --ex6-check --check-epochs 20 --class-size 200 --out cohort-gpu.md
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solutions"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from cnngrade.data import synthetic
from cnngrade.training import cohort, trainer
from cnngrade.training import networks as reference

RECIPE = {"batch_size": 128, "lr": 1e-3, "seed": 0, "augment": True}


def import_torch_seconds(repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def networks(count: int, activation: str = "relu") -> list[torch.nn.Module]:
    out = []
    for seed in range(count):
        torch.manual_seed(seed)
        out.append(reference.MiniAlexNet(activation=activation))
    return out


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def time_cohort(x, y, k: int, device: str, epochs: int) -> float:
    """Seconds for ``epochs`` epochs of a cohort of ``k`` (after a one-epoch warm-up on other networks)."""
    cohort.train_cohort(networks(k), x, y, epochs=1, device=device, chunk=k, **RECIPE)
    sync(device)
    nets = networks(k)
    seconds = timed(lambda: (cohort.train_cohort(nets, x, y, epochs=epochs, device=device, chunk=k, **RECIPE),
                             sync(device)))
    return seconds


def time_solo(x, y, device: str, epochs: int) -> float:
    trainer.train(networks(1)[0], x, y, epochs=1, device=device, **RECIPE)
    sync(device)
    net = networks(1)[0]
    return timed(lambda: (trainer.train(net, x, y, epochs=epochs, device=device, **RECIPE), sync(device)))


def time_handout(x, y, device: str, epochs: int, workers: int) -> float:
    """The handout's way: the reference solution's train_one_epoch over a DataLoader of per-sample PIL images
    through torchvision's RandomCrop(size, padding=size // 8) + flip + ToTensor + Normalize(0.5) (the handout's
    RandomCrop(32, padding=4) at 32x32)."""
    from ex6_cifar10_training import MiniAlexNet, train_one_epoch
    from torchvision import transforms as T
    from train_bench import PilImages

    size = x.shape[1]
    transform = T.Compose([T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.5,) * 3, (0.5,) * 3)])
    model = MiniAlexNet().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(PilImages(x.numpy(), y.numpy(), transform), batch_size=128, shuffle=True,
                                         num_workers=workers, pin_memory=device.startswith("cuda"),
                                         persistent_workers=workers > 0)
    train_one_epoch(model, loader, optimizer, device)                   # warm-up
    sync(device)
    return timed(lambda: ([train_one_epoch(model, loader, optimizer, device) for _ in range(epochs)], sync(device)))


def class_seconds(x, y, device: str, students: int, chunk: int, epochs: tuple[int, int, int]) -> float:
    """A class's ex6 + ex8 (baseline, sigmoid) training, cohorts of ``chunk``: what grading would run."""
    started = time.perf_counter()
    for count, activation in ((epochs[0], "relu"), (epochs[1], "relu"), (epochs[2], "sigmoid")):
        for start in range(0, students, chunk):
            nets = networks(min(chunk, students - start), activation)
            cohort.train_cohort(nets, x, y, epochs=count, device=device, chunk=len(nets), **RECIPE)
    sync(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="1,4,16", help="cohort sizes K")
    parser.add_argument("--n", type=int, default=1280, help="training images")
    parser.add_argument("--size", type=int, default=16, help="image side (16: the cpu profile, 32: CIFAR-10)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per measurement")
    parser.add_argument("--workers", default="0", help="DataLoader workers for the handout's recipe ('' to skip)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--ex6-check", action="store_true", help="time ex6's check and project a class")
    parser.add_argument("--check-epochs", type=int, default=20)
    parser.add_argument("--class-size", type=int, default=200)
    parser.add_argument("--class-epochs", default="20,10,10", help="ex6, ex8 baseline, ex8 sigmoid epochs")
    parser.add_argument("--class-run", action="store_true", help="run the class instead of projecting it")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    unit = import_torch_seconds()
    images, labels = synthetic.generate(args.n, synthetic.TRAIN_SEED, args.size)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    work = args.n * args.epochs
    rows = []   # (label, member-images per timed run, seconds)
    sizes = [int(k) for k in args.sizes.split(",") if k]
    for k in sizes:
        how = "vmap" if k > 1 else "a cohort of one is the solo trainer"
        rows.append((f"cohort K={k} (train_cohort, {how})", k * work, time_cohort(x, y, k, args.device, args.epochs)))
        print(rows[-1], flush=True)
    rows.append(("solo (trainer.train, resident data)", work, time_solo(x, y, args.device, args.epochs)))
    print(rows[-1], flush=True)
    for w in (int(v) for v in args.workers.split(",") if v):
        rows.append((f"handout: DataLoader + PIL transforms, num_workers={w}", work,
                     time_handout(x, y, args.device, args.epochs, w)))
        print(rows[-1], flush=True)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    lines = [(f"device {args.device} ({name}), {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
              f"torch {torch.__version__}, {args.n} images of {args.size}x{args.size}, batch 128, {args.epochs} timed "
              f"epoch(s) after a warm-up; bare `import torch` {unit:.2f} s; load average before: "
              f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}"), "",
             "| trainer | seconds | x import | member-images/s | vs solo |", "| --- | --- | --- | --- | --- |"]
    solo = next(w / s for label, w, s in rows if label.startswith("solo"))
    for label, images_done, seconds in rows:
        rate = images_done / seconds
        lines.append(f"| {label} | {seconds:.2f} | {seconds / unit:.2f} | {rate:,.0f} | {rate / solo:.2f}x |")
    if args.ex6_check:
        net = networks(1)[0]
        check = timed(lambda: (trainer.train(net, x, y, epochs=args.check_epochs, device=args.device, **RECIPE),
                               sync(args.device)))
        lines += ["", (f"ex6 check: {args.check_epochs} epochs of {args.n} images, solo trainer: {check:.1f} s "
                       f"({check / unit:.1f}x import)")]
        epochs = tuple(int(e) for e in args.class_epochs.split(","))
        best = max(sizes)
        if args.class_run:
            seconds = class_seconds(x, y, args.device, args.class_size, best, epochs)
            lines.append(f"class of {args.class_size}: ex6 + ex8 training in cohorts of {best}: {seconds:.0f} s (run)")
        else:
            rate = next(w / s for label, w, s in rows if label.startswith(f"cohort K={best} "))
            seconds = args.class_size * sum(epochs) * args.n / rate
            lines.append(f"class of {args.class_size}: ex6 + ex8 training ({'+'.join(map(str, epochs))} epochs) at "
                         f"K={best}'s {rate:,.0f} member-images/s: {seconds:.0f} s (projected)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
