"""`cnngrade calibrate`: run the graders' training checks on the reference solutions over several seeds, and suggest
thresholds for a calibration file that `cnngrade grade --calibration FILE` applies.

Each seed runs what the graders run (``cnngrade.training.run_check.train_and_score``): the reference solution's model, built
under the seed, gives its initial weights to the trusted reference network, which is checked not to be trained
already, trained with the profile's recipe (``cnngrade.training.trainer``) and scored on a held-out draw. Only the held-out
secret differs from grading: it is fixed per seed (a grading run draws a fresh one), so a calibration can be
repeated. Two checks with the same initial weights and recipe (ex6 and ex8's baseline on the cpu profile) share one
training run. What is measured, the suggestion rule and the file written are in ``calibration``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnngrade.config import PROJECT_ROOT, load_exercise, resolve_exercises
from cnngrade.errors import InputError, UsageError
from cnngrade.training.calibration import THRESHOLDS, Calibration, SeedResult, Stats, metadata, suggest
from cnngrade.training.profiles import CALIBRATED, Profile, training_settings

SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
MIN_SEEDS, MAX_SEEDS = 2, 100
CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Check:
    """One training run a grader makes: the reference solution's model, the network it must compute, the recipe."""

    name: str
    exercise: str
    variant: str | None     # ex8's build_variant name; None: ex6's MiniAlexNet()
    activation: str
    augment: bool = True


CHECKS = (Check("ex6", "ex6_cifar10_training", None, "relu"),
          Check("ex8-baseline", "ex8_ablation", "baseline", "relu"),
          Check("ex8-sigmoid", "ex8_ablation", "sigmoid", "sigmoid"))


# -- arguments ----------------------------------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """'0-4', '0,3,7' or '0-2,9' as a list of distinct seeds, at least MIN_SEEDS of them."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d{1,9})\s*(?:-\s*(\d{1,9})\s*)?", part)
        if not match:
            raise UsageError(f"--seeds {text!r}: expected whole numbers >= 0 as a range or a list, e.g. 0-4 or 0,2,5")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low or high - low >= MAX_SEEDS:
            raise UsageError(f"--seeds {text!r}: the range {part.strip()} is empty or longer than {MAX_SEEDS} seeds")
        seeds += [s for s in range(low, high + 1) if s not in seeds]
    if not MIN_SEEDS <= len(seeds) <= MAX_SEEDS:
        raise UsageError(f"--seeds {text!r} gives {len(seeds)} seed(s); a calibration needs {MIN_SEEDS} to "
                         f"{MAX_SEEDS} (one seed measures no spread)")
    return seeds


def exercises_of(selection: str | None) -> list[str]:
    """The exercises to calibrate: every one with a training check, or those of --exercises (all must have one)."""
    if selection is None:
        return list(CALIBRATED)
    chosen = resolve_exercises(selection)
    other = [e for e in chosen if e not in CALIBRATED]
    if other:
        raise UsageError(f"{other[0]} has no training check to calibrate; choose from "
                         f"{', '.join(e.split('_')[0] for e in CALIBRATED)}")
    return chosen


def check_out(path: Path, force: bool) -> None:
    """Refuse an --out that exists (without --force), is a folder, or cannot be written, before any training."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; name the calibration file to write")
    if path.exists() and not force:
        raise UsageError(f"--out {path} exists; add --force to replace it")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"--out {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--out {path}: cannot write in {folder}")


# -- the runs -----------------------------------------------------------------------------------------------------
def held_out_secret(seed: int) -> int:
    """The held-out draw of one seed: fixed, so a calibration can be repeated, and unrelated to the training set's."""
    return int.from_bytes(hashlib.sha256(f"cnngrade calibrate {seed}".encode()).digest()[:7], "big")


@functools.cache
def solution(exercise: str) -> Any:
    """The reference solution's module, imported here: it is cnngrade's own trusted code."""
    path = SOLUTIONS_DIR / f"{exercise}.py"
    if not path.is_file():
        raise InputError(f"{path} is missing: `cnngrade calibrate` trains the reference solutions of a cnngrade "
                         "checkout")
    spec = importlib.util.spec_from_file_location(f"_cnngrade_solution_{exercise}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path} cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def initial_network(check: Check, seed: int) -> Any:
    """The trusted reference network holding the initial weights the solution's model gets under ``seed``, as the
    graders build it (ex6: MiniAlexNet() under torch.manual_seed(seed); ex8: build_variant(name, seed))."""
    import torch

    from cnngrade.training import networks as reference

    module = solution(check.exercise)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = module.MiniAlexNet() if check.variant is None else module.build_variant(check.variant, seed)[0]
    network = reference.MiniAlexNet(activation=check.activation)
    # The solutions hold their layers in the reference's order, so the state dicts pair by name.
    network.load_state_dict(model.state_dict())
    return network


def weights_digest(network: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_seed(seed: int, profile: Profile, check_names: list[str], threads: int) -> SeedResult:
    """Every selected check for one seed; a check with the same initial weights and recipe as an earlier one shares
    its training run (same seed, data and threads give the same result on the CPU)."""
    from cnngrade.training.run_check import train_and_score

    accuracies: dict[str, float] = {}
    seconds: dict[str, float] = {}
    shared: dict[str, str] = {}
    done: dict[tuple, str] = {}   # (initial weights, recipe) -> the check that trained with them
    for check in (c for c in CHECKS if c.name in check_names):
        settings = training_settings(load_exercise(check.exercise), profile)
        network = initial_network(check, seed)
        key = (weights_digest(network), check.activation, check.augment, settings.epochs, settings.batch_size,
               settings.lr)
        if key in done:
            shared[check.name] = done[key]
            accuracies[check.name], seconds[check.name] = accuracies[done[key]], seconds[done[key]]
            continue
        # No time limit: the accuracy does not depend on it, and a busy machine should still finish; how long each
        # run took is compared with train_timeout in the warnings instead.
        untimed = dataclasses.replace(settings, train_timeout=math.inf)
        run = train_and_score(network, untimed, profile, seed=seed, augment=check.augment, threads=threads,
                              what=f"the reference solution's {check.name} model", secret=held_out_secret(seed))
        done[key] = check.name
        accuracies[check.name], seconds[check.name] = run.accuracy, run.seconds
    return SeedResult(seed, accuracies, seconds, shared)


def run_seeds(profile: Profile, seeds: list[int], check_names: list[str], *, jobs: int, threads: int,
              on_seed: Callable[[SeedResult], None]) -> list[SeedResult]:
    """run_seed for every seed, ``jobs`` processes at a time (one: in this process), in the order of ``seeds``."""
    if jobs <= 1 or len(seeds) == 1:
        results = []
        for seed in seeds:
            results.append(run_seed(seed, profile, check_names, threads))
            on_seed(results[-1])
        return results
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")   # a fresh interpreter per job: no forked torch thread pools
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_seed, s, profile, check_names, threads) for s in seeds]
        for future in concurrent.futures.as_completed(futures):
            on_seed(future.result())
        by_seed = {f.result().seed: f.result() for f in futures}
    return [by_seed[s] for s in seeds]


# -- the calibration ----------------------------------------------------------------------------------------------
def calibrate(profile: Profile, seeds: list[int], exercises: list[str], *, jobs: int = 1, threads: int = 1,
              on_seed: Callable[[SeedResult], None] = lambda r: None) -> Calibration:
    """Run the checks of ``exercises`` for every seed; figures and suggestions for each of their thresholds."""
    if profile.calibration is not None:
        raise UsageError("calibrate against the thresholds of grader.yaml, not against another calibration file")
    chosen = [t for t in THRESHOLDS if t.exercise in exercises]
    check_names = sorted({c for t in chosen for c in t.checks}, key=[c.name for c in CHECKS].index)
    results = run_seeds(profile, seeds, check_names, jobs=jobs, threads=threads, on_seed=on_seed)
    stats = []
    for t in chosen:
        values = [t.measure(r.accuracies) for r in results]
        current = getattr(training_settings(load_exercise(t.exercise), profile), t.key)
        stats.append(Stats(t, current, values, suggest(t, values)))
    return Calibration(profile, seeds, results, stats, metadata(profile, seeds, threads), warnings_of(profile, stats,
                                                                                                      results))


def warnings_of(profile: Profile, stats: list[Stats], results: list[SeedResult]) -> list[str]:
    """What makes a suggestion unsafe to use as it is."""
    from cnngrade.training.run_check import chance_limit, profile_held_out

    held_out = len(profile_held_out(profile, held_out_secret(results[0].seed)).y)
    limit = chance_limit(CLASSES, held_out)
    out = []
    for s in stats:
        if s.threshold.key == "threshold" and s.suggested <= limit:
            out.append(f"{s.threshold.name}: the suggested {s.suggested:.2f} does not separate a trained network from "
                       f"an untrained one (up to {limit:.2f} by chance); this data set or recipe cannot calibrate it")
        if s.threshold.key == "margin" and s.suggested <= 0:
            out.append(f"{s.threshold.name}: the sigmoid variant is not clearly below the baseline here (smallest gap "
                       f"{min(s.values):.3f}); a margin of 0 only checks that it does not beat the baseline")
    for check in (c for c in CHECKS if any(c.name in r.seconds and c.name not in r.shared for r in results)):
        settings = training_settings(load_exercise(check.exercise), profile)
        slowest = max(r.seconds[check.name] for r in results if check.name not in r.shared)
        if slowest > settings.train_timeout / 2:
            out.append(f"{check.name}: a run took {slowest:.0f} s of the {settings.train_timeout:g} s train_timeout; "
                       "graded with several students at once, a training check may time out")
    return out
