"""The pytest plugin that runs grader tests for one student: fixtures, verdict capture, manual items.

Grader tests are ordinary pytest functions under graders/<exercise>/ that take the
``submission`` fixture (a ``client.Submission`` whose calls run in the sandboxed worker).
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
import hashlib
import re
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from cnngrade.sandbox import cgroups
from cnngrade.training import profiles
from cnngrade.sandbox.client import Handle, Submission, Worker, Zygote
from cnngrade.config import ExerciseConfig
from cnngrade.errors import StudentError, SubmissionFault, SubmissionImportError
from cnngrade.sandbox.launch import Limits

HYPOTHESIS_PROFILE = "cnngrade"
LOAD = ""                                  # the output slice printed while the module loaded (no grader input)
CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")  # module constants: ANSWERS, DESIGN, RESULTS, EXPLANATIONS...
MAX_CONSTANTS = 16                         # read at load besides the free-text answers


def register_hypothesis_profile() -> None:
    """Regrading gives the same score and counterexample: derandomized, no example database, no deadline
    (the worker's time limits apply instead). Loaded before the graders are imported, because ``@given``
    takes the default settings at decoration time."""
    from hypothesis import HealthCheck, Phase, settings

    # No explain phase: it re-runs a failing test many times to annotate the counterexample, which costs
    # seconds per failing property (every property of a stub fails) for little the student needs.
    settings.register_profile(
        HYPOTHESIS_PROFILE, derandomize=True, database=None, deadline=None, print_blob=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])
    settings.load_profile(HYPOTHESIS_PROFILE)


def apply_max_examples(item: pytest.Item, max_examples: int) -> None:
    """Give a property test its exercise's example count, unless the grader chose settings of its own."""
    from hypothesis import settings

    fn = getattr(item, "obj", None)
    current = getattr(fn, "_hypothesis_internal_use_settings", None)
    if getattr(fn, "is_hypothesis_test", False) and current is settings.default:
        fn._hypothesis_internal_use_settings = settings(current, max_examples=max_examples)  # type: ignore[union-attr]


def _leaf(exc: BaseException) -> BaseException:
    """The first real failure inside a (hypothesis) exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _notes(exc: BaseException) -> str:
    notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith("You can reproduce")]
    return "\n".join(notes)


def classify(exc: BaseException) -> tuple[str, str, bool]:
    """(status, message for the student, grader_error) for an exception raised by a grader test."""
    leaf = _leaf(exc)
    notes = _notes(leaf) or _notes(exc)
    tail = f"\n{notes}" if notes else ""
    if isinstance(leaf, StudentError):
        if leaf.not_implemented:
            return "failed", f"Not implemented yet: your code raises NotImplementedError.{tail}", False
        where = f"\n{leaf.traceback.rstrip()}" if leaf.traceback else ""
        return "failed", f"Your code raised {leaf}{where}{tail}", False
    if isinstance(leaf, SubmissionFault):
        return leaf.status, f"{leaf}{tail}", False
    if isinstance(leaf, AssertionError):
        return "failed", f"{leaf}{tail}".strip() or "assertion failed", False
    name = type(leaf).__name__
    if name in ("Flaky", "FlakyFailure", "FlakyReplay"):
        return "failed", f"Your code gave different results for the same input.{tail}", False
    if isinstance(leaf, pytest.fail.Exception):
        return "failed", f"{leaf.msg}{tail}", False
    detail = "".join(traceback.format_exception(leaf)[-6:])
    return "error", f"internal grader error ({name}); this is not the student's fault:\n{detail}", True


class GradingPlugin:
    """Holds one worker per exercise for one student and records every test's verdict."""

    def __init__(self, module_dirs: dict[str, Path], configs: dict[str, ExerciseConfig], *,
                 isolation: str = "rlimits", limits: Limits = Limits(), profile: dict[str, Any] | None = None):
        self.module_dirs = module_dirs
        self.configs = configs
        self.isolation, self.limits = isolation, limits
        self.profile_info = profile or {"name": "cpu", "device": "cpu"}
        self.workers: dict[str, Worker] = {}
        self.zygote: Zygote | None = None                     # the student's sandbox, shared by their exercises
        self.outcomes: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in configs}
        self.collected: dict[str, list[str]] = {e: [] for e in configs}
        self.manual: dict[str, dict[str, Any]] = {}
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
        """One sandbox per student that imports torch once and forks each exercise's worker (client.Zygote).

        Only with cgroups: they are what kills everything a timed-out exercise started without touching the
        student's other exercises. Without them (or without pidfds) each exercise gets a sandbox of its own.
        """
        if self.zygote is None and cgroups.active()[0] is not None and Zygote.supported():
            self.zygote = Zygote(isolation=self.isolation, limits=self.limits, gpu=profiles.uses_gpu(self.profile_info))
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
    def profile(self) -> dict[str, Any]:
        """The grading profile (name, device, data set, training settings)."""
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
        zygote = self._zygote() if self.configs else None
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
                self._record(item, "passed", "", False)
            return report
        if call.excinfo.errisinstance(pytest.skip.Exception):
            self._record(item, "error", "the grader skipped this test, so it scores nothing", True)
        else:
            self._record(item, *classify(call.excinfo.value))
        return report

    def _record(self, item: pytest.Item, status: str, output: str, grader_error: bool) -> None:
        self.outcomes[self.exercise_of(item.path)][item.name] = {
            "status": status, "output": output, "grader_error": grader_error,
            "duration": round(time.monotonic() - item.stash.get(STARTED, time.monotonic()), 3),
            "metrics": item.stash.get(METRICS, {}),
        }

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
                    self.outcomes[exercise][name]["printed"] = text
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


def holds_handle(value: Any) -> bool:
    """Whether decoded worker data holds a Handle anywhere (a handle dies with its process: never cached)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Handle):
            return True
        if isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple)):
            stack += list(item)
    return False


def unread(fatal: BaseException | None) -> dict[str, Any]:
    """The record of an answer that could not be read: the student's error when their module does not
    import, a grader error (to grade again) for anything else."""
    first = str(fatal).strip().splitlines()[0] if fatal is not None and str(fatal).strip() else ""
    if isinstance(fatal, SubmissionImportError):
        return {"answer": None, "status": "error", "grader_error": False,
                "problem": f"the answer could not be read because the module does not import ({first})"}
    why = f" ({first})" if first else ""
    return {"answer": None, "status": "error", "grader_error": True,
            "problem": f"the answer could not be read{why}; this is not the student's fault: grade again"}


def manual_answer(path: str, names: list[str], values: dict[str, Any],
                  failure: tuple[str, BaseException] | None) -> dict[str, Any]:
    """A free-text answer (``NAME`` or ``NAME.key``) from the values read at load."""
    root, _, key = path.partition(".")
    if root not in values:
        if root not in names:
            return {"answer": None, "problem": f"{root} is not defined"}
        return unread(failure[1] if failure else None)
    value = values[root]
    if isinstance(value, StudentError):
        return {"answer": None, "problem": f"{root} could not be read: {value}"}
    if key and value is not None:
        if not isinstance(value, dict):
            return {"answer": None, "problem": f"{root} should be a dict of texts, got {type_name(value)}"}
        value = value.get(key)
    if value is None or isinstance(value, str):
        return {"answer": value, "problem": ""}
    return {"answer": None, "problem": f"expected text, got {type_name(value)}"}


def type_name(value: Any) -> str:
    return value.type_name if isinstance(value, Handle) else type(value).__name__


STARTED = pytest.StashKey[float]()
METRICS = pytest.StashKey[dict]()
