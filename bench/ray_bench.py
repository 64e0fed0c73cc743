"""The same class graded by the local pool and on a 2-node Ray cluster on this machine: wall times, identical reports.

    python bench/ray_bench.py --students 40 --exercises ex1 --jobs 2 --node-cpus 1 --out /tmp/ray-bench

Students cycle through the variants of tests/submissions/<exercise>/ (good and bad). Reports are compared with
cnngrade.grading.pipeline.comparable (everything but timing and secret-drawn training figures), and the gradebooks byte
for byte. Prints a Markdown summary for bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnngrade.config import resolve_exercises
from cnngrade.grading.pipeline import comparable, grade_class


def make_class(where: Path, students: int, exercises: list[str]) -> Path:
    klass = where / "class"
    shutil.rmtree(klass, ignore_errors=True)
    variants = {e: sorted((ROOT / "tests" / "submissions" / e).glob("*.py")) for e in exercises}
    for i in range(students):
        folder = klass / f"s{i:02d}"
        folder.mkdir(parents=True)
        for e, files in variants.items():
            shutil.copy(files[i % len(files)], folder / f"{e}.py")
    return klass


def reports(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/report.json"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--exercises", default="ex1")
    ap.add_argument("--jobs", type=int, default=2, help="local students at once; each student's share on Ray too")
    ap.add_argument("--node-cpus", type=int, default=1, help="CPUs of each of the 2 Ray nodes")
    ap.add_argument("--out", type=Path, default=Path("/tmp/ray-bench"))
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster

    from cnngrade.grading.ray_backend import RayBackend

    exercises = resolve_exercises(args.exercises)
    args.out.mkdir(parents=True, exist_ok=True)
    klass = make_class(args.out, args.students, exercises)
    load = os.getloadavg()
    t0 = time.monotonic()
    grade_class(klass, args.out / "local", exercises, jobs=args.jobs)
    local_s = time.monotonic() - t0

    t0 = time.monotonic()
    node = {"num_cpus": args.node_cpus, "object_store_memory": 100 << 20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    start_s = time.monotonic() - t0
    backend = RayBackend(cluster.address)
    try:
        t0 = time.monotonic()
        grade_class(klass, args.out / "ray", exercises, jobs=args.jobs, backend=backend)
        ray_s = time.monotonic() - t0
    finally:
        ray.shutdown()
        cluster.shutdown()
    mine, theirs = reports(args.out / "local"), reports(args.out / "ray")
    differ = sorted(s for s in mine if comparable(mine[s]) != comparable(theirs.get(s, {})))
    same_books = (args.out / "local" / "gradebook.csv").read_bytes() == (args.out / "ray" / "gradebook.csv").read_bytes()
    nodes = len(set(backend.graded_on.values()))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, load average {load[0]:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; Python {platform.python_version()}, ray {ray.__version__}")
    print(f"class: {args.students} students, exercises {', '.join(exercises)}, --jobs {args.jobs}; "
          f"Ray: 2 nodes of {args.node_cpus} CPU(s), students graded on {nodes} node(s)\n")
    print("| backend | wall time | students/s |\n| --- | --- | --- |")
    print(f"| local pool (--jobs {args.jobs}) | {local_s:.1f} s | {args.students / local_s:.3f} |")
    print(f"| Ray, 2-node local cluster | {ray_s:.1f} s (+ {start_s:.1f} s cluster start) | "
          f"{args.students / ray_s:.3f} |")
    identical = not differ and len(mine) == len(theirs) == args.students and same_books
    print(f"\nreports identical: {'yes' if identical else 'no'} ({len(mine)} local, {len(theirs)} on Ray, "
          f"gradebooks {'equal' if same_books else 'different'}{', differ: ' + ', '.join(differ) if differ else ''})")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
