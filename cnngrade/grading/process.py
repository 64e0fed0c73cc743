"""Run the grader tests of one student in a trusted process of its own, and check graders against their YAML.

``python -m cnngrade.grading.process SPEC OUT`` grades one student: SPEC is a JSON job (module folders,
exercises, isolation, limits, profile), OUT receives the exercise results as JSON. The
pipeline starts one such process per student, so a grader crash costs one student's report,
never the batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from cnngrade.config import ExerciseConfig, load_exercise
from cnngrade.errors import GraderConfigError
from cnngrade.records import Outcome, Status
from cnngrade.sandbox import cgroup_setup, cgroups, memory, reaping
from cnngrade.sandbox.launch import Limits
from cnngrade.training.profiles import Profile, select_profile

PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--assert=plain", "--import-mode=importlib",
               "--no-header", "--tb=no", "-o", "addopts=", "-o", "python_files=test_*.py",
               "-W", "ignore::pytest.PytestAssertRewriteWarning",
               # Its clean-up runs gc.collect() five times over torch's heap (seconds per run); nothing here reads
               # the unraisable exceptions it would report.
               "-p", "no:unraisableexception"]


@dataclasses.dataclass
class Job:
    """One student's grading job, as it crosses to the trusted grading process."""

    module_dirs: dict[str, str]
    graders_dir: str
    isolation: str = "rlimits"
    limits: dict[str, int] = dataclasses.field(default_factory=dict)
    profile: Profile = dataclasses.field(default_factory=lambda: select_profile("cpu"))
    public_only: bool = False    # run only the tests the YAML marks public (`cnngrade check`)
    cgroup: dict[str, Any] | None = None   # where workers' cgroups are made (cgroups.Base), None: no cgroups
    cgroup_problem: str = ""     # why there are none
    grader_procs: list[str] = dataclasses.field(default_factory=list)   # this process's own (memory) cgroup
    device: str | None = None    # the CUDA device this process holds (devices.acquire_device)
    nursery: dict[str, str] | None = None   # the class's nursery (sandbox.nursery): its socket and class folder

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "profile": self.profile.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> Job:
        """The job ``to_json`` wrote (job.json); ValueError for unknown keys or a malformed profile."""
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or not set(data) <= known:
            raise ValueError(f"job.json: expected an object with keys among {sorted(known)}")
        return cls(**{**data, "profile": Profile.from_json(data.get("profile"))})


def _pytest_main(args: list[str], plugin: Any) -> int:
    import pytest

    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        return int(pytest.main(args, plugins=[plugin]))


def grade_job(job: Job) -> list[dict[str, Any]]:
    """Run the graders of every exercise in the job; returns ExerciseResult dicts."""
    from cnngrade.grading.plugin import GradingPlugin
    from cnngrade.grading.score import exercise_result
    from cnngrade.grading.verdicts import register_hypothesis_profile

    graders = Path(job.graders_dir)
    configs = {e: load_exercise(e, graders) for e in job.module_dirs}
    if job.public_only:
        configs = {e: public_part(c) for e, c in configs.items()}
    register_hypothesis_profile()
    # Parallelism comes from grading several students at once; inside one grading process, torch's own
    # threads only fight over the cores (small trusted-side ops ran far slower with them on a busy machine).
    import torch

    torch.set_num_threads(1)
    plugin = GradingPlugin({e: Path(d) for e, d in job.module_dirs.items()}, configs, isolation=job.isolation,
                           limits=Limits(**job.limits), profile=job.profile, nursery=job.nursery)
    files = [str(f) for cfg in configs.values() for f in cfg.test_files]
    if files:
        _pytest_main([*files, *PYTEST_ARGS, "--rootdir", str(graders), "-c", os.devnull], plugin)
    flag_overloaded(plugin.outcomes)
    return [exercise_result(cfg, plugin.outcomes[e], plugin.manual.get(e, {}), plugin.outputs.get(e, ""),
                            plugin.collected.get(e, [])).to_dict()
            for e, cfg in configs.items()]


def flag_overloaded(outcomes: dict[str, dict[str, Outcome]]) -> None:
    """Tests that timed out only because the machine starved the worker are grader errors (regraded by --resume).

    Their message is the trusted side's own (client.MachineOverloaded); a student's text never starts a
    test's message, which begins with the grader's words or "Your code raised".
    """
    from cnngrade.sandbox.overload import OVERLOADED

    for tests in outcomes.values():
        for name, outcome in tests.items():
            if outcome.status == Status.ERROR and outcome.output.startswith(OVERLOADED):
                tests[name] = dataclasses.replace(outcome, grader_error=True)


def public_part(cfg: ExerciseConfig) -> ExerciseConfig:
    """The exercise as students may run it: public tests and the free-text items, no hidden tests.

    The plugin runs only declared tests, so hidden test functions left in a test file are
    deselected, and a student bundle may ship its test files with or without them.
    """
    return dataclasses.replace(cfg, tests=tuple(t for t in cfg.tests if t.visibility == "public"))


class _Collector:
    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.errors: list[str] = []

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        for item in items:
            self.names.setdefault(Path(item.path).parent.name, []).append(item.name)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {str(report.longrepr).strip().splitlines()[-1]}")


def check_graders(configs: list[ExerciseConfig], graders_dir: Path, context: Any = None) -> None:
    """Every test a grader defines has points in its YAML and every YAML test exists; else GraderConfigError.

    ``context``: a multiprocessing context (backends.grading_context) to collect the graders in a child of, whose
    fork server has imported torch and pytest already; None: collect them in this process.
    """
    files = [str(f) for cfg in configs for f in cfg.test_files]
    for cfg in configs:
        if not cfg.test_files:
            raise GraderConfigError(f"{cfg.directory}: no test_*.py grader file")
    if context is None:
        names, errors = collect_tests(files, str(graders_dir))
    else:
        names, errors = _collect_in_child(context, files, str(graders_dir))
    if errors:
        raise GraderConfigError(f"a grader does not import: {errors[0]}")
    for cfg in configs:
        match_tests(cfg, names.get(cfg.exercise, []))


def collect_tests(files: list[str], graders_dir: str) -> tuple[dict[str, list[str]], list[str]]:
    """The test ids of each exercise's grader files, and why any of them could not be collected."""
    collector = _Collector()
    _pytest_main([*files, *PYTEST_ARGS, "--collect-only", "--rootdir", graders_dir, "-c", os.devnull], collector)
    return collector.names, collector.errors


def _collect_child(files: list[str], graders_dir: str, out: str) -> None:
    Path(out).write_text(json.dumps(collect_tests(files, graders_dir)))


def _collect_in_child(context: Any, files: list[str], graders_dir: str) -> tuple[dict[str, list[str]], list[str]]:
    with tempfile.TemporaryDirectory(prefix=reaping.scratch_prefix("collect")) as tmp:
        out = os.path.join(tmp, "tests.json")
        proc = context.Process(target=_collect_child, args=(files, graders_dir, out))
        proc.start()
        proc.join()
        if proc.exitcode != 0 or not os.path.exists(out):
            raise GraderConfigError(f"the graders could not be collected (the collecting process ended with exit "
                                    f"{proc.exitcode})")
        names, errors = json.loads(Path(out).read_text())
    return names, errors


def match_tests(cfg: ExerciseConfig, found: list[str]) -> None:
    """The collected test ids against grader.yaml: every id covered by one entry (``test_x`` covers the cases
    ``test_x[a]``, ``test_x[b]`` of a parametrized test), every entry covering something, case counts as
    declared; else a one-line GraderConfigError naming the file and the test."""
    where = cfg.directory / "grader.yaml"
    extra = sorted(n for n in found if not any(t.covers(n) for t in cfg.tests))
    if extra:
        raise GraderConfigError(f"{where}: tests: gives no points to test(s) {', '.join(extra)}")
    absent = [t.name for t in cfg.tests if not any(t.covers(n) for n in found)]
    if absent:
        raise GraderConfigError(f"{where}: tests: lists test(s) that do not exist: {', '.join(absent)}")
    for t in cfg.tests:
        count = sum(1 for n in found if t.covers(n) and n != t.name)
        if t.cases is not None and count != t.cases:
            raise GraderConfigError(f"{where}: tests.{t.name}.cases: says {t.cases}, the grader has {count} case(s)")


def child_main(spec_path: str, out_path: str, err_path: str, cohort: dict[str, Any] | None = None) -> None:
    """Entry point of a grading process started by the pipeline; a failure leaves its traceback in err_path.

    ``cohort``: the batch's cohort service (address and authkey, cohort_service), passed here rather than in the
    job file so that its key is never on disk.
    """
    try:
        from cnngrade.training import cohort_service

        cohort_service.use(cohort)
        main([spec_path, out_path])
    except BaseException:
        Path(err_path).write_text(traceback.format_exc()[-4000:])
        sys.stdout.flush()
        os._exit(1)


def contain(job: Job) -> None:
    """Before any grading: join this process's cgroup (its memory bound), else cap its address space; take the
    batch's cgroup base for the workers; see only the GPU this process holds.

    A runaway in the trusted process (hostile data it reads back) then ends this student's grading, as a
    grader error, instead of taking the machine's memory from the whole batch.
    """
    for path in job.grader_procs:
        Path(path).write_text(str(os.getpid()))
    cgroup_setup.use(cgroups.Base.from_dict(job.cgroup) if job.cgroup else None, job.cgroup_problem)
    gpu = job.profile.uses_gpu
    if not job.grader_procs and not gpu:   # CUDA maps a huge address space: there only a cgroup can bound memory
        memory.bound_memory_without_cgroup(Limits(**job.limits).grader_memory_bytes)
    if job.device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = job.device   # before anything in this process starts CUDA


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    job = Job.from_json(json.loads(Path(spec_path).read_text()))
    contain(job)
    results = grade_job(job)
    tmp = out_path + ".tmp"
    Path(tmp).write_text(json.dumps(results))
    os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
