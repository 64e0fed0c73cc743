"""`cnngrade calibrate`: run the graders' training checks on the reference solutions over several seeds, and suggest
thresholds for a calibration file that `cnngrade grade --calibration FILE` applies.

Each seed runs what the graders run (``cnngrade.training.run_check.train_and_score``): the reference solution's model, built
under the seed, gives its initial weights to the trusted reference network, which is checked not to be trained
already, trained with the profile's recipe (``cnngrade.training.trainer``) and scored on a held-out draw. Only the held-out
secret differs from grading: it is fixed per seed (a grading run draws a fresh one), so a calibration can be
repeated. Two checks with the same initial weights and recipe (ex6 and ex8's baseline on the cpu profile) share one
training run.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import importlib.util
import math
import os
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cnngrade
from cnngrade.config import PROJECT_ROOT, load_exercise, resolve_exercises
from cnngrade.errors import InputError, UsageError
from cnngrade.training.profiles import CALIBRATED, training_settings

SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
# The suggested value of every threshold: K_STD standard deviations under the mean over the seeds, and at least SLACK
# under the worst seed, rounded down to 0.01. Both bounds, because a handful of seeds measures the spread loosely;
# with the cpu profile's 8-seed figures (0.8745 mean, std 0.018, worst 0.848) it gives 0.76.
K_STD, SLACK = 6, 0.05
RULE = f"mean - {K_STD} std over the seeds, and at least {SLACK:g} under the worst seed, rounded down to 0.01"
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


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A value a training check compares with, and the per-seed figure an honest submission must keep above it."""

    exercise: str
    key: str
    what: str
    checks: tuple[str, ...]   # one: that check's accuracy; two: the first's accuracy minus the second's

    @property
    def name(self) -> str:
        return f"{self.exercise}.{self.key}"

    def measure(self, accuracies: dict[str, float]) -> float:
        if len(self.checks) == 1:
            return accuracies[self.checks[0]]
        return accuracies[self.checks[0]] - accuracies[self.checks[1]]


# test_training_reaches_threshold: accuracy >= threshold; test_baseline_reaches_threshold: accuracy >= threshold;
# test_sigmoid_below_baseline: sigmoid <= baseline - margin, i.e. baseline - sigmoid >= margin.
THRESHOLDS = (Threshold("ex6_cifar10_training", "threshold", "held-out accuracy of MiniAlexNet", ("ex6",)),
              Threshold("ex8_ablation", "threshold", "held-out accuracy of the baseline", ("ex8-baseline",)),
              Threshold("ex8_ablation", "margin", "baseline minus sigmoid accuracy", ("ex8-baseline", "ex8-sigmoid")))


@dataclasses.dataclass(frozen=True)
class SeedResult:
    seed: int
    accuracies: dict[str, float]
    seconds: dict[str, float]
    shared: dict[str, str]    # check -> the earlier check whose training run it reused


@dataclasses.dataclass(frozen=True)
class Stats:
    threshold: Threshold
    current: float            # the grader.yaml value for this profile
    values: list[float]
    suggested: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values)


@dataclasses.dataclass
class Calibration:
    profile: dict[str, Any]
    seeds: list[int]
    results: list[SeedResult]
    stats: list[Stats]
    meta: dict[str, Any]
    warnings: list[str]


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


def run_seed(seed: int, profile: dict[str, Any], check_names: list[str], threads: int) -> SeedResult:
    """Every selected check for one seed; a check with the same initial weights and recipe as an earlier one shares
    its training run (same seed, data and threads give the same result on the CPU)."""
    from cnngrade.training.run_check import train_and_score

    accuracies, seconds, shared, done = {}, {}, {}, {}
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


def run_seeds(profile: dict[str, Any], seeds: list[int], check_names: list[str], *, jobs: int, threads: int,
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


# -- figures ------------------------------------------------------------------------------------------------------
def suggest(threshold: Threshold, values: list[float]) -> float:
    """RULE, kept inside the range grader.yaml accepts (threshold in (0, 1], margin in [0, 1))."""
    raw = min(statistics.fmean(values) - K_STD * statistics.stdev(values), min(values) - SLACK)
    value = math.floor(round(raw * 100, 6)) / 100   # round first: 0.87 - 0.06 is 0.80999... in floating point
    return min(1.0, max(0.01, value)) if threshold.key == "threshold" else min(0.99, max(0.0, value))


def calibrate(profile: dict[str, Any], seeds: list[int], exercises: list[str], *, jobs: int = 1, threads: int = 1,
              on_seed: Callable[[SeedResult], None] = lambda r: None) -> Calibration:
    """Run the checks of ``exercises`` for every seed; figures and suggestions for each of their thresholds."""
    if "calibration" in profile:
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


def warnings_of(profile: dict[str, Any], stats: list[Stats], results: list[SeedResult]) -> list[str]:
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


def device_name(profile: dict[str, Any]) -> str:
    if profile.get("device") == "cuda":
        return str(profile.get("gpu") or "cuda")
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return f"cpu{' ' + model if model else ''}, {os.cpu_count()} cores"


def metadata(profile: dict[str, Any], seeds: list[int], threads: int) -> dict[str, Any]:
    """The ``calibration:`` block of the file: what `cnngrade grade` checks against its profile and names in reports."""
    import torch

    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"profile": profile["name"], "date": date, "seeds": list(seeds), "device": device_name(profile),
            "torch": str(torch.__version__), "dataset": str(profile["dataset"]), "threads": threads,
            "cnngrade": cnngrade.__version__, "rule": RULE}


# -- output -------------------------------------------------------------------------------------------------------
def seed_line(result: SeedResult, done: int, total: int) -> str:
    parts = [f"{c} {a:.3f}" + (f" (the {result.shared[c]} run)" if c in result.shared else "")
             for c, a in result.accuracies.items()]
    spent = sum(s for c, s in result.seconds.items() if c not in result.shared)
    return f"calibrate: seed {result.seed} ({done}/{total}): {', '.join(parts)}; {spent:.0f} s"


def table(cal: Calibration) -> str:
    """The figures as a Markdown table, one row per threshold, and the warnings."""
    m = cal.meta
    lines = [(f"{m['profile']} profile, {len(cal.seeds)} seeds ({seeds_text(cal.seeds)}), {m['device']}, torch "
             f"{m['torch']}, data {m['dataset']}, {m['threads']} torch thread(s) per run"), "",
             "| threshold | measures | grader.yaml | mean | min | max | std | mean - yaml | min - yaml | suggested |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in cal.stats:
        lines.append(f"| {s.threshold.name} | {s.threshold.what} | {s.current:.2f} | {s.mean:.4f} | {min(s.values):.4f} "
                     f"| {max(s.values):.4f} | {s.std:.4f} | {s.mean - s.current:+.3f} | "
                     f"{min(s.values) - s.current:+.3f} | {s.suggested:.2f} |")
    lines += ["", f"suggested: {RULE}."]
    lines += [f"warning: {w}" for w in cal.warnings]
    return "\n".join(lines)


def seeds_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def override_yaml(cal: Calibration) -> str:
    """The calibration file: the table as comments, then calibration, thresholds and the per-seed figures."""
    import yaml

    name = cal.meta["profile"]
    header = [f"Training-check thresholds for the {name} profile, written by `cnngrade calibrate` on {cal.meta['date']}.",
              f"Apply them with: cnngrade grade SUBMISSIONS --out DIR --profile {name} --calibration THIS_FILE",
              "Every report then names this file. Edit a threshold by hand if you prefer another value.", "",
              *table(cal).splitlines()]
    thresholds: dict[str, dict[str, float]] = {}
    for s in cal.stats:
        thresholds.setdefault(s.threshold.exercise, {})[s.threshold.key] = s.suggested
    measured = {s.threshold.name: {"what": s.threshold.what, "grader_yaml": s.current, "mean": round(s.mean, 4),
                                   "min": round(min(s.values), 4), "max": round(max(s.values), 4),
                                   "std": round(s.std, 4), "values": [round(v, 4) for v in s.values]}
                for s in cal.stats}
    body = yaml.safe_dump({"calibration": cal.meta, "thresholds": thresholds, "measured": measured},
                          sort_keys=False, default_flow_style=None, width=120)
    return "".join(f"# {line}".rstrip() + "\n" for line in header) + body
