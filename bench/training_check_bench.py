"""Cost of the ex6/ex8 training checks on the cpu profile: this tree against another checkout, side by side in one run.

    git archive OLD_COMMIT | tar -x -C /tmp/old          # the tree to compare with (read-only for git)
    python bench/training_check_bench.py --old-tree /tmp/old [--rounds 1] [--out results.md]
    python bench/training_check_bench.py --old-tree /tmp/old --direct [--rounds 2] [--epochs 1]
    python bench/training_check_bench.py --all-tests [--rounds 2]    # this tree alone, every ex6 + ex8 test

``--direct`` times the two loops alone in this process, alternating old and new each round: the old
tree's in-worker ``train_recipe`` + ``predict`` on the reference solution's model, against this
tree's ``training.train_and_score`` (refusal check, trusted training, scoring) on the reference
network holding the same initial weights; same data, seed and thread count. It leaves out what
differs around them (worker calls, the equivalence check), and is steady on a shared machine
where starting workers is not.

Each round grades the reference solutions of ex6 and ex8 with only their training tests
(test_training.py and its grader.yaml entries and profiles), one student, ``--jobs 1``, in each tree
in turn, and times a bare ``python -c "import torch"`` before each grading: on a machine shared with
other work the absolute seconds move with the load, the ratio to that import much less. Prints the
seconds each training test reports (its ``seconds`` metric: everything the check does on the trusted
side), the grading's wall time, and their ratio to the median import. ``--all-tests`` grades every test of
ex6 and ex8 (architecture proofs, figures, seeds, the training checks): one student's whole ex6 + ex8, the
figure issue 13 asks to stay under 8 bare imports on the cpu profile; without ``--old-tree`` only this tree runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = {"ex6_cifar10_training": ["test_training_reaches_threshold"],
             "ex8_ablation": ["test_baseline_reaches_threshold", "test_sigmoid_below_baseline"]}

# Run inside the tree under test (its own cnngrade on PYTHONPATH); prints one JSON line.
GRADE = r'''
import json, shutil, sys, time, yaml
from pathlib import Path

def main():
    tree, work, exercises = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    from cnngrade.training import profiles
    from cnngrade.grading.pipeline import grade_class
    klass, graders = work / "class" / "reference", work / "graders"
    klass.mkdir(parents=True)
    for exercise, tests in exercises.items():
        shutil.copy(tree / "solutions" / f"{exercise}.py", klass / f"{exercise}.py")
        real = yaml.safe_load((tree / "graders" / exercise / "grader.yaml").read_text())
        (graders / exercise).mkdir(parents=True)
        shutil.copy(tree / "graders" / exercise / "test_training.py", graders / exercise / "test_training.py")
        spec = {k: real[k] for k in ("title", "time_limit", "profiles") if k in real}
        spec["tests"] = {name: real["tests"][name] for name in tests} if tests else real["tests"]
        if not tests:   # every grader file of the exercise
            for source in (tree / "graders" / exercise).glob("test_*.py"):
                shutil.copy(source, graders / exercise / source.name)
        (graders / exercise / "grader.yaml").write_text(yaml.safe_dump(spec))
    started = time.monotonic()
    reports = grade_class(work / "class", work / "out", list(exercises), jobs=1, graders_dir=graders,
                          profile=profiles.select_profile("cpu"))
    wall = time.monotonic() - started
    graded = [(e, t) for r in reports for e, ex in r.exercises.items() for t in ex.tests if t.status != "manual"]
    tests = {t.name: {"status": t.status, "seconds": t.metrics.get("seconds"), "accuracy": t.metrics.get("accuracy")}
             for _, t in graded}
    slowest = sorted(graded, key=lambda et: -et[1].duration)[:8]
    print(json.dumps({"wall": round(wall, 1), "tests": tests, "passed": sum(t.status == "passed" for _, t in graded),
                      "graded": len(graded), "test_seconds": round(sum(t.duration for _, t in graded), 1),
                      "slowest": [[e, t.name, round(t.duration, 2)] for e, t in slowest]}))

if __name__ == "__main__":
    main()
'''


def import_torch_seconds(repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def grade(tree: Path, exercises: dict[str, list[str]]) -> dict:
    with tempfile.TemporaryDirectory(prefix="training-bench-") as work:
        script = Path(work) / "grade.py"
        script.write_text(GRADE)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run([sys.executable, str(script), str(tree), work, json.dumps(exercises)], cwd=tree, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"grading in {tree} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def old_recipe(tree: Path):
    """The old tree's worker/recipe.py as a plain module (its helper registry replaced by no-ops)."""
    import types

    source = (tree / "cnngrade" / "worker" / "recipe.py").read_text()
    source = source.replace("from .helpers import _module, helper", "_module = helper = (lambda f: f)")
    module = types.ModuleType("old_recipe")
    exec(compile(source, str(tree / "cnngrade/worker/recipe.py"), "exec"), module.__dict__)  # noqa: S102 - our own old code
    return module


def direct(tree: Path, rounds: int, epochs: int | None, threads: int) -> str:
    import dataclasses

    import torch

    sys.path.insert(0, str(ROOT / "solutions"))
    from ex6_cifar10_training import MiniAlexNet

    from cnngrade.config import load_exercise
    from cnngrade.training import networks as reference
    from cnngrade.training.profiles import select_profile, training_settings
    from cnngrade.training.run_check import profile_held_out, profile_training_set, train_and_score

    torch.set_num_threads(threads)
    old = old_recipe(tree)
    profile = select_profile("cpu")
    settings = training_settings(load_exercise("ex6_cifar10_training"), profile)
    if epochs:
        settings = dataclasses.replace(settings, epochs=epochs)
    data, test = profile_training_set(profile), profile_held_out(profile)
    lines = [(f"torch {torch.__version__}, {os.cpu_count()} cores, {threads} thread(s), {settings.epochs} epoch(s) of "
             f"{len(data.y)} images, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"), "",
             ("| round | import torch (s) | old: in-worker loop + predict (s) | new: trusted check + loop + score (s) "
             "| new / old |"), "| --- | --- | --- | --- | --- |"]
    for round_ in range(rounds):
        unit = import_torch_seconds()
        torch.manual_seed(round_)
        model = MiniAlexNet()
        network = reference.MiniAlexNet()
        network.load_state_dict(model.state_dict())
        started = time.perf_counter()
        old.train_recipe(model, data.x, data.y, settings.epochs, settings.batch_size, settings.lr, round_, True, "cpu")
        old_acc = float((old.predict(model, test.x) == test.y).float().mean())
        old_s = time.perf_counter() - started
        run = train_and_score(network, settings, profile, seed=round_, augment=True, threads=threads)
        lines.append(f"| {round_} | {unit:.2f} | {old_s:.1f} ({old_s / unit:.1f}x import; acc {old_acc:.3f}) | "
                     f"{run.seconds:.1f} ({run.seconds / unit:.1f}x import; acc {run.accuracy:.3f}) | "
                     f"{run.seconds / old_s:.2f} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", type=Path, help="a checkout of the design to compare with (default: none)")
    parser.add_argument("--all-tests", action="store_true", help="grade every ex6 and ex8 test, not only training")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--direct", action="store_true", help="time the two loops alone, in this process")
    parser.add_argument("--epochs", type=int, help="--direct: epochs per run (default: the profile's)")
    parser.add_argument("--threads", type=int, default=1, help="--direct: torch threads")
    args = parser.parse_args()
    if args.direct:
        if args.old_tree is None:
            parser.error("--direct needs --old-tree")
        text = direct(args.old_tree.resolve(), args.rounds, args.epochs, args.threads)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return
    trees = {"old": args.old_tree.resolve(), "new": ROOT} if args.old_tree else {"new": ROOT}
    exercises = {e: [] for e in EXERCISES} if args.all_tests else EXERCISES
    rows = []
    for round_ in range(args.rounds):
        for label, tree in trees.items():
            load = os.getloadavg()[0]
            unit = import_torch_seconds()
            result = grade(tree, exercises)
            result["load"] = (round(load, 2), round(os.getloadavg()[0], 2))
            rows.append((round_, label, unit, result))
            print(label, f"import torch {unit:.2f} s", json.dumps(result), flush=True)
    import torch

    lines = [(f"torch {torch.__version__}, {os.cpu_count()} cores, load average before: "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"), "",
             "| round | design | import torch (s) | " + " | ".join(t for ts in EXERCISES.values() for t in ts)
             + " | tests passed | grading wall (s) | load before/after |",
             "| --- " * (6 + sum(map(len, EXERCISES.values()))) + "|"]
    for round_, label, unit, result in rows:
        cells = []
        for tests in EXERCISES.values():
            for name in tests:
                t = result["tests"].get(name, {})
                secs = t.get("seconds")
                cells.append(f"{secs:.1f} s ({secs / unit:.1f}x), {t.get('status')}" if secs else str(t.get("status")))
        passed, graded = result.get("passed", "?"), result.get("graded", len(result["tests"]))
        lines.append(f"| {round_} | {label} | {unit:.2f} | " + " | ".join(cells)
                     + f" | {passed}/{graded} | {result['wall']:.1f} ({result['wall'] / unit:.1f}x) | "
                     + " / ".join(f"{x:.1f}" for x in result["load"]) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
