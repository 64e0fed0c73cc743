"""What `cnngrade calibrate` measures and writes: the thresholds it calibrates, the figures of each seed, the rule
that suggests a value, and the calibration file (a table as comments, then YAML) that `cnngrade grade --calibration
FILE` reads (``profiles.with_calibration``).
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import os
import statistics
from pathlib import Path
from typing import Any

import cnngrade
from cnngrade.training.profiles import Profile

# The suggested value of every threshold: K_STD standard deviations under the mean over the seeds, and at least SLACK
# under the worst seed, rounded down to 0.01. Both bounds, because a handful of seeds measures the spread loosely;
# with the cpu profile's 8-seed figures (0.8745 mean, std 0.018, worst 0.848) it gives 0.76.
K_STD, SLACK = 6, 0.05
RULE = f"mean - {K_STD} std over the seeds, and at least {SLACK:g} under the worst seed, rounded down to 0.01"


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
    profile: Profile
    seeds: list[int]
    results: list[SeedResult]
    stats: list[Stats]
    meta: dict[str, Any]
    warnings: list[str]


# -- figures ------------------------------------------------------------------------------------------------------
def suggest(threshold: Threshold, values: list[float]) -> float:
    """RULE, kept inside the range grader.yaml accepts (threshold in (0, 1], margin in [0, 1))."""
    raw = min(statistics.fmean(values) - K_STD * statistics.stdev(values), min(values) - SLACK)
    value = math.floor(round(raw * 100, 6)) / 100   # round first: 0.87 - 0.06 is 0.80999... in floating point
    return min(1.0, max(0.01, value)) if threshold.key == "threshold" else min(0.99, max(0.0, value))


def device_name(profile: Profile) -> str:
    if profile.uses_gpu:
        return profile.gpu or "cuda"
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return f"cpu{' ' + model if model else ''}, {os.cpu_count()} cores"


def metadata(profile: Profile, seeds: list[int], threads: int) -> dict[str, Any]:
    """The ``calibration:`` block of the file: what `cnngrade grade` checks against its profile and names in reports."""
    import torch

    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"profile": profile.name, "date": date, "seeds": list(seeds), "device": device_name(profile),
            "torch": str(torch.__version__), "dataset": profile.dataset, "threads": threads,
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
