"""The pytest plugin that runs grader tests for one student: fixtures, verdict capture, manual items.

How an exception becomes a verdict and the hypothesis profile are in ``verdicts.py``; the records of
free-text answers read at load in ``answers.py``.

Grader tests are ordinary pytest functions under graders/<exercise>/ that take the
``submission`` fixture (a ``submission.Submission`` whose calls run in the sandboxed worker).
Points and visibility come from the exercise's YAML; this plugin only records what happened.

What must not be lost is read first: as soon as an exercise's module has loaded, its free-text
answers and its module constants (ALL_CAPS names) are read, before any test can use up the
exercise's time; graders then get the constants from that first reading. What the student's code
prints is sliced per test, so that students are shown only what it printed while loading and
during public tests (hidden tests' inputs must not reach them); report.json keeps every slice.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cnngrade.config import ExerciseConfig
from cnngrade.errors import StudentError, SubmissionFault
from cnngrade.grading.answers import holds_handle, manual_answer, unread
from cnngrade.grading.verdicts import apply_max_examples, classify
from cnngrade.records import Answer, Outcome, Status
from cnngrade.sandbox import cgroup_setup
from cnngrade.sandbox.client import Worker
from cnngrade.sandbox.launch import Limits
from cnngrade.sandbox.submission import Submission
from cnngrade.sandbox.zygote import Zygote
from cnngrade.training import profiles

LOAD = ""                                  # the output slice printed while the module loaded (no grader input)
CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")  # module constants: ANSWERS, DESIGN, RESULTS, EXPLANATIONS...
MAX_CONSTANTS = 16                         # read at load besides the free-text answers


class GradingPlugin:
    """Holds one worker per exercise for one student and records every test's verdict."""

    def __init__(self, module_dirs: dict[str, Path], configs: dict[str, ExerciseConfig], *,
                 isolation: str = "rlimits", limits: Limits | None = None, profile: profiles.Profile | None = None,
                 nursery: dict[str, str] | None = None):
        self.module_dirs = module_dirs
        self.configs = configs
        self.isolation, self.limits = isolation, limits or Limits()
        self.profile_info = profile or profiles.select_profile("cpu", None, isolation)
        self.workers: dict[str, Worker] = {}
        self.zygote: Zygote | None = None                     # the student's sandbox, shared by their exercises
        self.nursery = nursery                                 # where that sandbox is forked from (None: started)
        self.outcomes: dict[str, dict[str, Outcome]] = {e: {} for e in configs}
        self.collected: dict[str, list[str]] = {e: [] for e in configs}
        self.manual: dict[str, dict[str, Answer]] = {}
        self.outputs: dict[str, str] = {}                      # what the student is shown as printed
        self.constants: dict[str, dict[str, Any]] = {}         # plain constants read at load
        self.printed: dict[str, dict[str, str]] = {e: {} for e in configs}   # test (or LOAD) -> its slice
        self._current: dict[str, str] = {}                     # the test whose slice the output goes to

    @staticmethod
    def exercise_of(path: Path) -> str:
        return Path(path).parent.name

    def worker(self, exercise: str) -> Worker:
        if exercise not in self.workers:
            cfg = self.configs[exercise]
            self.workers[exercise] = Worker(self.module_dirs[exercise], exercise, isolation=self.isolation, limits=self.limits,
                                            call_timeout=cfg.call_timeout,
                                            budget=profiles.exercise_time_limit(cfg, self.profile_info),
                                            gpu=profiles.uses_gpu(self.profile_info), zygote=self._zygote())
        return self.workers[exercise]

    def _zygote(self) -> Zygote | None:
        """One sandbox per student that imports torch once and forks each exercise's worker (zygote.Zygote).

        Only for a student with two exercises or more here, or one forked by the class's nursery (whose preload
        the whole class shares): the zygote preloads torch, torchvision and matplotlib for every exercise, which
        one exercise alone pays for without sharing (ex1 imports none of them), so one exercise gets a plain
        worker, a sandbox of its own. Only with cgroups: they are what
        kills everything a timed-out exercise started without touching the student's other exercises.
        Without them (or without pidfds) each exercise gets a sandbox of its own.
        """
        wanted = len(self.configs) >= 2 or self.nursery is not None   # a fork of the class's nursery costs nothing
        if self.zygote is None and wanted and cgroup_setup.active()[0] is not None and Zygote.supported():
            self.zygote = Zygote(isolation=self.isolation, limits=self.limits, gpu=profiles.uses_gpu(self.profile_info),
                                 nursery=self.nursery)
        return self.zygote

    # -- fixtures -------------------------------------------------------------------------------
    @pytest.fixture
    def submission(self, request: pytest.FixtureRequest) -> Submission:
        """The student's module for this test file's exercise."""
        exercise = self.exercise_of(request.path)
        worker = self.worker(exercise)
        self._take_output(exercise)   # late output of the previous test stays with that test
        self._current[exercise] = request.node.name
        try:
            self._load(exercise, worker)
        except SubmissionFault:
            if exercise not in self.constants:
                raise   # never loaded: the test fails with the reason
            # Loaded before, now dead or out of time: a test that needs only the constants read at load still
            # runs; any call into the worker raises this same fault.
        return LoadedSubmission(worker, self.constants.get(exercise, {}))

    def _load(self, exercise: str, worker: Worker) -> None:
        """Start the worker if needed and, at the first load, read what must not be lost."""
        generation = worker.generation
        try:
            Submission(worker).ensure_loaded()
            if exercise not in self.manual and worker.fatal is None and worker.proc is not None:
                self._read_at_load(exercise, worker)
        finally:
            if worker.generation != generation:   # a (re)start: what it printed while importing
                self._take_output(exercise, LOAD)

    def _take_output(self, exercise: str, slot: str | None = None) -> None:
        worker = self.workers.get(exercise)
        text = worker.take_output() if worker is not None else ""
        if text:
            slot = self._current.get(exercise, LOAD) if slot is None else slot
            self.printed[exercise][slot] = self.printed[exercise].get(slot, "") + text

    @pytest.fixture
    def profile(self) -> profiles.Profile:
        """The grading profile (name, device, data set, calibration); frozen, so no grader can change it."""
        return self.profile_info

    @pytest.fixture
    def exercise_config(self, request: pytest.FixtureRequest) -> ExerciseConfig:
        return self.configs[self.exercise_of(request.path)]

    @pytest.fixture
    def seed(self, request: pytest.FixtureRequest) -> int:
        """A seed fixed per test, so regrading draws the same random inputs."""
        return int.from_bytes(hashlib.sha256(request.node.nodeid.encode()).digest()[:4], "big")

    @pytest.fixture
    def metrics(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        """A dict a test fills with figures (accuracy, threshold, ...) that go into report.json."""
        store: dict[str, Any] = {}
        request.node.stash[METRICS] = store
        return store

    # -- hooks --------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # The student's zygote imports torch while the graders are collected, not after. A failure here is
        # met again, and reported per test, when the first worker needs the zygote.
        zygote = self._zygote()
        if zygote is not None:
            with contextlib.suppress(OSError):   # CgroupError included
                zygote.start()

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        # Only tests the exercise's settings declare run: a public-only run (`cnngrade check`) declares
        # no hidden test, so hidden tests in the same file are left out here.
        declared = {e: cfg.tests for e, cfg in self.configs.items()}
        keep = [i for i in items if any(t.covers(i.name) for t in declared.get(self.exercise_of(i.path), ()))]
        if len(keep) < len(items):
            config.hook.pytest_deselected(items=[i for i in items if i not in keep])
            items[:] = keep
        for item in items:
            exercise = self.exercise_of(item.path)
            self.collected.setdefault(exercise, []).append(item.name)
            apply_max_examples(item, self.configs[exercise].max_examples)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[STARTED] = time.monotonic()
        worker = self.workers.get(self.exercise_of(item.path))
        if worker is not None:
            worker.begin_test()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Any:
        report = yield
        exercise, name = self.exercise_of(item.path), item.name
        if call.when == "teardown":
            self._take_output(exercise, name)
        if call.when == "teardown" or name in self.outcomes[exercise] and call.when == "setup":
            return report
        if call.excinfo is None:
            if call.when == "call":
                self._record(item, Status.PASSED, "", False)
            return report
        if call.excinfo.errisinstance(pytest.skip.Exception):
            self._record(item, Status.ERROR, "the grader skipped this test, so it scores nothing", True)
        else:
            self._record(item, *classify(call.excinfo.value))
        return report

    def _record(self, item: pytest.Item, status: Status, output: str, grader_error: bool) -> None:
        self.outcomes[self.exercise_of(item.path)][item.name] = Outcome(
            status, output, grader_error, round(time.monotonic() - item.stash.get(STARTED, time.monotonic()), 3),
            item.stash.get(METRICS, {}))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for exercise in self.configs:
            if exercise not in self.manual:   # no test of the exercise loaded its module
                self._read_late(exercise)
        for exercise, worker in self.workers.items():
            self._take_output(exercise)
            worker.close()
        if self.zygote is not None:
            self.zygote.close()
        for exercise in self.configs:
            for name, text in self.printed[exercise].items():
                if name in self.outcomes[exercise]:
                    self.outcomes[exercise][name] = dataclasses.replace(self.outcomes[exercise][name], printed=text)
            self.outputs[exercise] = self._student_output(exercise)

    def _read_late(self, exercise: str) -> None:
        """The free-text answers of an exercise no test loaded; unreadable ones are errors, never "no answer"."""
        if not self.configs[exercise].manual:
            self.manual[exercise] = {}   # nothing to read: no worker started for it
            return
        worker = self.worker(exercise)
        worker.begin_test()
        problem: BaseException | None = None
        try:
            self._load(exercise, worker)
        except Exception as exc:  # noqa: BLE001 - whatever stopped the load is said in each answer's record
            problem = exc
        if exercise not in self.manual:
            self.manual[exercise] = {m.name: unread(worker.fatal or problem) for m in self.configs[exercise].manual}

    def _read_at_load(self, exercise: str, worker: Worker) -> None:
        """Read the free-text answers, then the module's other constants, right after the first load."""
        roots = sorted({m.name.partition(".")[0] for m in self.configs[exercise].manual} & set(worker.names))
        others = [n for n in worker.names if CONSTANT.fullmatch(n) and n not in roots][:MAX_CONSTANTS]
        values: dict[str, Any] = {}
        failure: tuple[str, BaseException] | None = None
        sub = Submission(worker)
        for name in roots + others:
            try:
                values[name] = sub.value(name)
            except StudentError as exc:       # the student's object cannot be read: their answer's problem
                values[name] = exc
            except Exception as exc:  # noqa: BLE001 - a dead or overloaded worker: stop reading, it is our failure
                failure = (name, exc)
                worker.begin_test()           # the test that is starting may start it again
                break
        self.constants[exercise] = {k: v for k, v in values.items()
                                    if k not in roots and not isinstance(v, BaseException) and not holds_handle(v)}
        self.manual[exercise] = {m.name: manual_answer(m.name, worker.names, values, failure)
                                 for m in self.configs[exercise].manual}

    def _student_output(self, exercise: str) -> str:
        """What the student is shown as printed: while loading and during public tests, each slice labelled."""
        public = {n for n in [*self.collected.get(exercise, []), *self.printed[exercise]]
                  if any(t.covers(n) for t in self.configs[exercise].tests if t.visibility == "public")}
        printed = self.printed[exercise]
        parts = [f"[while your module was loaded]\n{printed[LOAD]}"] if printed.get(LOAD, "").strip() else []
        parts += [f"[during {name}]\n{printed[name]}" for name in self.collected.get(exercise, [])
                  if name in public and printed.get(name, "").strip()]
        hidden = sum(1 for name, text in printed.items() if name != LOAD and name not in public and text.strip())
        if hidden:
            parts.append(f"[your code also printed during {hidden} hidden test(s); only course staff see that]")
        return "\n".join(p.rstrip("\n") for p in parts)


class LoadedSubmission(Submission):
    """The submission fixture: constants come from their reading at load, so a spent time limit loses none."""

    def __init__(self, worker: Worker, constants: dict[str, Any]):
        super().__init__(worker)
        self._constants = constants

    def value(self, name: str) -> Any:
        if name in self._constants:
            return copy.deepcopy(self._constants[name])   # a grader that edits its copy changes nothing
        return super().value(name)


STARTED = pytest.StashKey[float]()
METRICS = pytest.StashKey[dict]()
