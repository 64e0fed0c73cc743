"""The pytest plugin that runs grader tests for one student: fixtures, verdict capture, manual items.

Grader tests are ordinary pytest functions under graders/<exercise>/ that take the
``submission`` fixture (a ``client.Submission`` whose calls run in the sandboxed worker).
Points and visibility come from the exercise's YAML; this plugin only records what happened.
"""
from __future__ import annotations

import hashlib
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from cnngrade import profiles
from cnngrade.client import Submission, Worker
from cnngrade.config import ExerciseConfig
from cnngrade.errors import StudentError, SubmissionFault
from cnngrade.sandbox import Limits

HYPOTHESIS_PROFILE = "cnngrade"


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
        self.outcomes: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in configs}
        self.collected: dict[str, list[str]] = {e: [] for e in configs}
        self.manual: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, str] = {}

    @staticmethod
    def exercise_of(path: Path) -> str:
        return Path(path).parent.name

    def worker(self, exercise: str) -> Worker:
        if exercise not in self.workers:
            cfg = self.configs[exercise]
            self.workers[exercise] = Worker(self.module_dirs[exercise], exercise, isolation=self.isolation, limits=self.limits,
                                            call_timeout=cfg.call_timeout,
                                            budget=profiles.exercise_time_limit(cfg, self.profile_info),
                                            gpu=profiles.uses_gpu(self.profile_info))
        return self.workers[exercise]

    # -- fixtures -------------------------------------------------------------------------------
    @pytest.fixture
    def submission(self, request: pytest.FixtureRequest) -> Submission:
        """The student's module for this test file's exercise."""
        sub = Submission(self.worker(self.exercise_of(request.path)))
        sub.ensure_loaded()
        return sub

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
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        # Only tests the exercise's settings declare run: a public-only run (`cnngrade check`) declares
        # no hidden test, so hidden tests in the same file are left out here.
        declared = {e: {t.name for t in cfg.tests} for e, cfg in self.configs.items()}
        keep = [i for i in items if i.name in declared.get(self.exercise_of(i.path), ())]
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
        for exercise, cfg in self.configs.items():
            self.manual[exercise] = {m.name: self._manual_answer(exercise, m.name) for m in cfg.manual}
        for exercise, worker in self.workers.items():
            self.outputs[exercise] = worker.output()
            worker.close()

    def _manual_answer(self, exercise: str, path: str) -> dict[str, Any]:
        """Read a free-text answer (``NAME`` or ``NAME.key``) from the student's module."""
        worker = self.worker(exercise)
        worker.begin_test()
        root, _, key = path.partition(".")
        try:
            value = Submission(worker).value(root)
            if key:
                value = value.get(key) if isinstance(value, dict) else None
        except StudentError as exc:
            return {"answer": None, "problem": f"{root} is not defined" if exc.is_a("AttributeError") else str(exc)}
        except SubmissionFault as exc:
            return {"answer": None, "problem": f"the answer could not be read: {str(exc).splitlines()[0]}"}
        return {"answer": value if isinstance(value, str) else None,
                "problem": "" if isinstance(value, str) or value is None else f"expected text, got {type(value).__name__}"}


STARTED = pytest.StashKey[float]()
METRICS = pytest.StashKey[dict]()
