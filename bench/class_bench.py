"""What a student's six CPU exercises cost through `cnngrade grade`, and one exercise through the otter route, in
bare ``import torch`` times measured in the same run.

Every student of the class is the reference solutions of ex1-ex5 and ex7. The class is graded with
``cnngrade grade --jobs J --profile cpu`` (the whole pipeline: intake, the trusted grading process per
student, one sandbox per student whose zygote imports torch once, every grader test); the figure is the
batch's wall time per student divided by the median of bare ``python -c 'import torch'`` runs. The otter
route exports ex1 with ``cnngrade export otter`` and times ``otter run`` of its reference notebook (the
kernel runs the notebook, then cnngrade grades it outside the kernel), per exercise.

    python bench/class_bench.py --students 6 --jobs 2 --otter-runs 2

``--slope A,B`` also grades classes of A and B students (B > A) and prints the cost of one more student (the
difference of their wall times over B - A: what a large class costs per student, without the fixed start of a
batch, the fork server's and the nursery's imports among them) and that fixed start.

``--per-student-sandbox`` also grades the same class with the class's nursery turned off (each student's
sandbox imports torch, torchvision and matplotlib itself, as before the nursery), in the same run, first.

``--cpu-split`` also prints the CPU time each student's processes used, from the cgroups the batch makes (polled
while it runs): its trusted grading process, its zygote and its exercise workers (the student's code and the worker
helpers), in seconds and in bare imports per core (the workers' share is the part no change to the grading side can
remove), and the grading processes' memory peak.

``--breakdown N`` also prints where the first student's time went: the N slowest grader tests of its
report.json (each test's own seconds) and the rest of its grading (process start, collection, worker starts).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
CPU_EXERCISES = ("ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
                 "ex5_alexnet_analysis", "ex7_retina_design")


def timed(argv: list[str], **kwargs) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - t0


def bare_import(repeat: int) -> float:
    return statistics.median(timed([sys.executable, "-c", "import torch"]) for _ in range(repeat))


def breakdown(report_path: Path, count: int) -> None:
    """The slowest tests of one student's report and what the tests leave of its grading time."""
    report = json.loads(report_path.read_text())
    tests = [(t.get("duration") or 0.0, name, t["name"]) for name, ex in report["exercises"].items()
             for t in ex["tests"]]
    spent = sum(d for d, _, _ in tests)
    total = report.get("duration_s") or 0.0
    print(f"one student's grading: {total:.1f} s, of which its tests {spent:.1f} s "
          f"(the rest: grading process, collection, worker starts, reports)")
    per_exercise: dict[str, float] = {}
    for d, name, _ in tests:
        per_exercise[name] = per_exercise.get(name, 0.0) + d
    print("  per exercise: " + ", ".join(f"{n.split('_')[0]} {d:.1f} s" for n, d in per_exercise.items()))
    for d, name, test in sorted(tests, reverse=True)[:count]:
        print(f"  {d:6.2f} s  {name.split('_')[0]} {test}")


# The class graded with no nursery: what grading did before it (a sandbox, and its imports, per student).
WITHOUT_NURSERY = ("import sys; from cnngrade.sandbox import nursery; nursery.usable = lambda *a: False; "
                   "from cnngrade.cli import main; sys.exit(main(sys.argv[1:]))")


def grade_class(tmp: Path, students: int, jobs: int, *, nursery: bool = True, name: str = "class") -> float:
    klass = tmp / name
    for i in range(students):
        folder = klass / f"s{i:03d}"
        if folder.exists():
            continue
        folder.mkdir(parents=True)
        for exercise in CPU_EXERCISES:
            shutil.copy(ROOT / "solutions" / f"{exercise}.py", folder / f"{exercise}.py")
    out = tmp / (("reports" if nursery else "reports-per-student") + name.removeprefix("class"))
    command = [sys.executable, *(["-m", "cnngrade"] if nursery else ["-c", WITHOUT_NURSERY])]
    seconds = timed([*command, "grade", str(klass), "--out", str(out), "--jobs", str(jobs),
                     "--profile", "cpu", "--exercises", ",".join(e.split("_")[0] for e in CPU_EXERCISES)])
    gradebook = (out / "gradebook.csv").read_text().splitlines()
    assert len(gradebook) == students + 1, gradebook
    return seconds


class CpuSampler:
    """The last CPU usage and memory peak seen of every cgroup the batch makes (cnngrade-<pid>-<kind><n> in this
    machine's cgroup base, v1 or v2), polled while it runs: a group is removed when its process ends, so at most one
    poll interval of its CPU is missed. Groups are flat, so no usage counts twice."""

    def __init__(self, interval: float = 0.02) -> None:
        from cnngrade.sandbox import cgroup_setup, cgroups

        self.cgroups, self.base = cgroups, cgroup_setup.active()[0]
        self.interval, self.cpu, self.peak = interval, {}, {}
        self.before = set(self.names())   # left by earlier runs: not this batch's
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def names(self) -> list[str]:
        return self.cgroups.stale_groups(self.base) if self.base is not None else []

    def poll(self) -> None:
        while not self.stop.is_set():
            for name in set(self.names()) - self.before:
                group = self.cgroups.Group(self.base, name)
                used, peak = group.cpu_seconds(), group.memory_peak()
                if used is not None:
                    self.cpu[name] = used
                if peak is not None:
                    self.peak[name] = max(peak, self.peak.get(name, 0))
            time.sleep(self.interval)

    @staticmethod
    def machine() -> tuple[int, int]:
        """(busy, all) jiffies of every core since boot, from /proc/stat."""
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]) - idle, sum(fields[:8])

    def __enter__(self) -> Self:
        self.start = self.machine()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        end = self.machine()
        self.busy = (end[0] - self.start[0]) / max(1, end[1] - self.start[1])

    @staticmethod
    def kind(name: str) -> str:
        """g, z, w (or probe: cgroup_setup's check) from cnngrade-<pid>-<kind><n>."""
        return name.split("-", 2)[-1].rstrip("0123456789").rstrip("-")

    def by_kind(self) -> dict[str, float]:
        kinds: dict[str, float] = {}
        for name, used in self.cpu.items():
            kinds[self.kind(name)] = kinds.get(self.kind(name), 0.0) + used
        return kinds

    def peaks(self, kind: str) -> list[int]:
        return [peak for name, peak in self.peak.items() if self.kind(name) == kind]


def cpu_split(sampler: CpuSampler, students: int, unit: float) -> None:
    names = {"g": "grading process", "z": "zygote", "w": "exercise workers"}
    kinds = sampler.by_kind()
    cores = os.cpu_count() or 1
    total = sum(kinds.values())
    if not total:
        print("CPU per student: no cnngrade cgroups were seen (cgroups off on this machine?)")
        return
    parts = ", ".join(f"{names.get(k, k)} {v / students:.2f} s" for k, v in sorted(kinds.items()))
    workers = kinds.get("w", 0.0) / students
    print(f"CPU per student (cgroups): {total / students:.2f} s = {total / students / cores / unit:.2f} imports of "
          f"wall on {cores} cores ({parts}); the exercise workers alone: {workers / cores / unit:.2f} imports")
    print(f"  the machine's cores were busy {sampler.busy:.0%} of the batch (/proc/stat)")
    graders = sampler.peaks("g")
    if graders:
        print(f"  grading process memory peak: {statistics.median(graders) / 2**20:.0f} MiB median, "
              f"{max(graders) / 2**20:.0f} MiB at most")


def otter_route(tmp: Path, runs: int) -> float:
    from cnngrade.export.otter import otter_command

    export = tmp / "otter"
    subprocess.run([sys.executable, "-m", "cnngrade", "export", "otter", str(export), "--exercises", "ex1"],
                   check=True, stdout=subprocess.DEVNULL)
    autograder = export / "ex1_output_size" / "autograder"
    samples = []
    for i in range(runs):
        out = tmp / f"otter-run-{i}"
        out.mkdir()
        samples.append(timed([*otter_command(), "run", "-a", str(autograder / "autograder.zip"), "-o", str(out),
                              str(autograder / "ex1_output_size.ipynb")], cwd=out,
                             env={**os.environ, "CNNGRADE_ISOLATION": os.environ.get("CNNGRADE_ISOLATION", "bwrap")}))
        assert (out / "results.json").is_file()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--otter-runs", type=int, default=2, help="0: leave the otter route out")
    parser.add_argument("--imports", type=int, default=5, help="bare torch imports timed (median)")
    parser.add_argument("--breakdown", type=int, default=0, metavar="N",
                        help="print the first student's N slowest tests and the rest of its grading time")
    parser.add_argument("--slope", default="", metavar="A,B",
                        help="also grade classes of A and B students: the cost of one more student, and the fixed start")
    parser.add_argument("--cpu-split", action="store_true",
                        help="also print each student's CPU time by process (grading process, zygote, workers)")
    parser.add_argument("--per-student-sandbox", action="store_true",
                        help="also grade the class without the nursery (a sandbox importing torch per student)")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.python_version()}, no GPU used; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="cnngrade-class-bench-") as tmp:
        before = bare_import(args.imports)
        alone = grade_class(Path(tmp), args.students, args.jobs, nursery=False) if args.per_student_sandbox else None
        with (CpuSampler() if args.cpu_split else contextlib.nullcontext()) as sampler:
            wall = grade_class(Path(tmp), args.students, args.jobs)
        if args.breakdown:
            breakdown(Path(tmp) / "reports" / "s000" / "report.json", args.breakdown)
        sizes = [int(n) for n in args.slope.split(",")] if args.slope else []
        if sizes and (len(sizes) != 2 or not 0 < sizes[0] < sizes[1]):
            parser.error("--slope: expected A,B with 0 < A < B")
        slope = [grade_class(Path(tmp), n, args.jobs, name=f"class{n}") for n in sizes]
        otter = otter_route(Path(tmp), args.otter_runs) if args.otter_runs else None
        after = bare_import(args.imports)
    unit = statistics.mean([before, after])
    per_student = wall / args.students
    print(f"bare import torch: {before:.2f} s before, {after:.2f} s after (unit {unit:.2f} s)")
    print(f"cnngrade grade, six CPU exercises: {wall:.1f} s for {args.students} students with --jobs {args.jobs}: "
          f"{per_student:.2f} s per student = {per_student / unit:.2f} imports "
          f"({per_student / len(CPU_EXERCISES) / unit:.3f} per exercise)")
    if slope:
        more = (slope[1] - slope[0]) / (sizes[1] - sizes[0])
        print(f"  {sizes[0]} students: {slope[0]:.1f} s, {sizes[1]} students: {slope[1]:.1f} s: one more student costs "
              f"{more:.2f} s = {more / unit:.2f} imports ({more / len(CPU_EXERCISES) / unit:.3f} per exercise); "
              f"the batch's fixed start {slope[0] - sizes[0] * more:.1f} s")
    if sampler is not None:
        cpu_split(sampler, args.students, unit)
    if alone is not None:
        print(f"  the same class without the nursery (a sandbox per student): {alone:.1f} s: "
              f"{alone / args.students / unit:.2f} imports per student; the nursery's grading took "
              f"{wall / alone:.2f}x its time")
    if otter is not None:
        print(f"otter run, ex1: {otter:.1f} s per exercise = {otter / unit:.2f} imports; "
              f"cnngrade is {otter / (per_student / len(CPU_EXERCISES)):.1f}x faster per exercise")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
