"""Grade the reference solutions (every automatic point) and the stubs (none): a grader that disagrees is wrong."""
from __future__ import annotations

import concurrent.futures
from pathlib import Path

from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.grading.backends import grade_student
from cnngrade.grading.pipeline import default_profile
from cnngrade.grading.process import check_graders
from cnngrade.intake.collect import collect_student
from cnngrade.records import Status, StudentReport
from cnngrade.sandbox.launch import Limits, limits_for
from cnngrade.training.profiles import Profile

SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
STUBS_DIR = PROJECT_ROOT / "exercises"


def problems_of(solutions: StudentReport, stubs: StudentReport) -> list[str]:
    """Every test where the reference lost points or a stub earned some."""
    found = []
    for name, ex in solutions.exercises.items():
        for t in ex.tests:
            if t.status != Status.MANUAL and t.score != t.max_score:
                found.append(f"solutions/{name}.py lost {t.max_score - t.score:g} point(s) on {t.name} "
                             f"[{t.status}]: {t.output.strip().splitlines()[0] if t.output.strip() else ''}")
    for name, ex in stubs.exercises.items():
        for t in ex.tests:
            if t.score > 0:
                found.append(f"exercises/{name}.py (the stub) earned {t.score:g} point(s) on {t.name}")
            if t.status == Status.MISSING or t.grader_error:
                found.append(f"exercises/{name}.py: {t.name} is {t.status}: {t.output.strip()[:200]}")
    return found


def validate(exercises: list[str], *, graders_dir: Path, isolation: str, jobs: int = 2,
             solutions_dir: Path = SOLUTIONS_DIR, stubs_dir: Path = STUBS_DIR,
             limits: Limits | None = None,
             profile: Profile | None = None) -> tuple[StudentReport, StudentReport, list[str]]:
    configs = {e: load_exercise(e, graders_dir) for e in exercises}
    check_graders(list(configs.values()), graders_dir)
    profile = profile or default_profile(isolation)
    subs = [collect_student(solutions_dir, exercises), collect_student(stubs_dir, exercises)]
    parallel = max(1, min(2, jobs))
    limits = limits or limits_for(parallel)
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        sol, stub = pool.map(lambda s: grade_student(s, configs, graders_dir=graders_dir, isolation=isolation,
                                                     limits=limits, profile=profile), subs)
    return sol, stub, problems_of(sol, stub)
