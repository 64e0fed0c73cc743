"""Calibrate the training thresholds: train the reference models with the grader's trusted trainer over several seeds.

    python bench/calibrate.py --profile cpu --seeds 0-7 [--jobs 8] [--data DIR] [--out results.md]

Prints, for each training check (ex6 MiniAlexNet, ex8 baseline and sigmoid), the held-out
accuracy of every seed and their mean, spread (min-max) and standard deviation, with the
device, torch version and seed count: the figures a grader.yaml threshold comment cites.
Does what the graders do (cnngrade.training.train_and_score): the reference solution's model,
built under the seed, gives its initial weights to cnngrade.reference.MiniAlexNet, which is
trained by cnngrade.trainer and scored on a held-out set drawn from a fresh secret per run. One
seed per process, one torch thread each (``--threads`` to change).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKS = {"ex6": ("ex6_cifar10_training", None), "ex8-baseline": ("ex8_ablation", "baseline"),
          "ex8-sigmoid": ("ex8_ablation", "sigmoid")}


def one_run(check: str, seed: int, profile: dict, threads: int = 1) -> tuple[str, int, float, float]:
    """(check, seed, accuracy, seconds) for one training run of a reference model."""
    import importlib
    import time

    import torch

    sys.path.insert(0, str(ROOT / "solutions"))
    from cnngrade import reference
    from cnngrade.config import load_exercise
    from cnngrade.profiles import training_settings
    from cnngrade.training import train_and_score

    torch.set_num_threads(threads)
    exercise, variant = CHECKS[check]
    settings = training_settings(load_exercise(exercise), profile)
    module = importlib.import_module(exercise)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, augment = (module.MiniAlexNet(), True) if variant is None else module.build_variant(variant, seed)
    # The solution's modules hold their layers in the reference's order, so the state dicts pair by name.
    network = reference.MiniAlexNet(activation="sigmoid" if variant == "sigmoid" else "relu")
    network.load_state_dict(model.state_dict())
    started = time.perf_counter()
    run = train_and_score(network, settings, profile, seed=seed, augment=augment, threads=threads)
    return check, seed, run.accuracy, time.perf_counter() - started


def seeds_of(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--data", help="CIFAR-10 folder (gpu profile)")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--checks", default=",".join(CHECKS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from cnngrade.profiles import select_profile

    profile = select_profile(args.profile, args.data)
    runs = [(c, s) for c in args.checks.split(",") for s in seeds_of(args.seeds)]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        results = list(pool.map(one_run, *zip(*[(c, s, profile, args.threads) for c, s in runs])))
    import torch

    lines = [(f"profile {profile['name']}, device {profile.get('gpu', profile['device'])}, data {profile['dataset']}, "
             f"torch {torch.__version__}, {os.cpu_count()} cores, {args.jobs} run(s) at a time"), "",
             "| check | seeds | mean | min | max | std | s/run | accuracies |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for check in args.checks.split(","):
        accs = [a for c, _, a, _ in results if c == check]
        secs = [t for c, _, _, t in results if c == check]
        lines.append(f"| {check} | {len(accs)} | {statistics.mean(accs):.4f} | {min(accs):.4f} | {max(accs):.4f} | "
                     f"{statistics.pstdev(accs):.4f} | {statistics.mean(secs):.1f} | "
                     f"{' '.join(f'{a:.3f}' for a in accs)} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
