"""What starting a student's workers costs, in bare ``import torch`` times: a sandbox per exercise, one shared
interpreter, or one zygote per student that forks each exercise's worker.

Every student loads the six CPU exercises of the reference solutions (ex1-ex5, ex7) the way the grading
plugin does (a worker per exercise, its module loaded, a constant read) and closes them; ``--jobs`` students
at a time, each in a fresh process, as ``cnngrade grade --jobs`` runs them. The figure is the batch's wall
time per student divided by the median of bare ``python -c 'import torch'`` runs timed in the same run.

Routes:
  sandbox  a bubblewrap sandbox per exercise, each importing torch (cnngrade before the zygote)
  shared   one sandbox per student whose one interpreter imports all six modules (exercises share state)
  zygote   one sandbox per student; its zygote imports torch once and forks a fresh worker per exercise

    python bench/import_bench.py --jobs 2 --students 4 --rounds 2
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnngrade.sandbox import launch as sandbox
from cnngrade.sandbox import preflight
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.submission import Submission
from cnngrade.sandbox.zygote import Zygote

EXERCISES = ("ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
             "ex5_alexnet_analysis", "ex7_retina_design")
ROUTES = ("sandbox", "shared", "zygote")


def bare_import() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def make_student(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in EXERCISES:
        shutil.copy(ROOT / "solutions" / f"{name}.py", folder / f"{name}.py")
    (folder / "all_six.py").write_text("".join(f"import {name}  # noqa: F401\n" for name in EXERCISES))
    return folder


def _load(worker: Worker) -> float:
    """Start the worker, load its module, read a constant; seconds it took."""
    t0 = time.perf_counter()
    sub = Submission(worker)
    sub.ensure_loaded()
    for name in worker.names:
        if name.isupper():
            sub.value(name)
            break
    return time.perf_counter() - t0


def student(args: tuple[str, str, str]) -> list[float]:
    """One student's six exercises by ``route``: the seconds each worker took to start and load."""
    route, folder, isolation = args
    zygote = Zygote(isolation=isolation) if route == "zygote" else None
    modules = ["all_six"] if route == "shared" else list(EXERCISES)
    workers = [Worker(Path(folder), m, isolation=isolation, zygote=zygote) for m in modules]
    try:
        return [_load(w) for w in workers]
    finally:
        for w in workers:
            w.close()
        if zygote is not None:
            zygote.close()


def batch(route: str, folders: list[Path], jobs: int, isolation: str) -> tuple[float, list[list[float]]]:
    ctx = multiprocessing.get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(jobs, maxtasksperchild=1) as pool:   # a fresh process per student, as the pipeline forks one
        loads = pool.map(student, [(route, str(f), isolation) for f in folders], chunksize=1)
    return time.perf_counter() - t0, loads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1, help="each route this many times, interleaved")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--isolation", default="bwrap", choices=sandbox.ISOLATIONS)
    args = parser.parse_args()
    routes = [r for r in args.routes.split(",") if r]
    preflight.check_isolation(args.isolation)
    work = Path(tempfile.mkdtemp(prefix="cnngrade-import-bench-"))
    os.chmod(work, 0o755)
    try:
        folders = [make_student(work / f"s{i}") for i in range(args.students)]
        bare_import()   # warm the page cache
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"uid {os.getuid()}, isolation {args.isolation}, --jobs {args.jobs}, {args.students} students, "
              f"load average {os.getloadavg()[0]:.1f}")
        print()
        print("| round | route | bare import s | wall s / student | imports / student | first worker s "
              "| later workers s (median) |")
        print("|---|---|---|---|---|---|---|")
        for rnd in range(args.rounds):
            for route in routes:
                bare = statistics.median(bare_import() for _ in range(3))
                wall, loads = batch(route, folders, args.jobs, args.isolation)
                per = wall / len(folders)
                later = [t for ls in loads for t in ls[1:]]
                print(f"| {rnd} | {route} | {bare:.2f} | {per:.2f} | {per / bare:.2f} | "
                      f"{statistics.median(ls[0] for ls in loads):.2f} | "
                      f"{statistics.median(later) if later else float('nan'):.2f} |", flush=True)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
