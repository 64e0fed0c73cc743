"""Plain records passed between stages (run → score → report), JSON fields only."""
from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any


class Status(enum.StrEnum):
    """A test's (or free-text item's) status; a ``str``, so JSON files and comparisons with text keep working."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"         # the test could not give a verdict (grader_error says whose fault)
    TIMEOUT = "timeout"
    MANUAL = "manual"       # a free-text answer waiting for course staff: its points are pending
    MISSING = "missing"     # the exercise's file was not handed in
    ADVICE = "advice"       # a check that scores nothing did not hold; its message is feedback for the student


STATUSES = tuple(Status)
# What a grader test can end with (score.verdict makes a failed advice test ADVICE).
OUTCOME_STATUSES = (Status.PASSED, Status.FAILED, Status.ERROR, Status.TIMEOUT)
# Metrics keys older report.json files used for what are now TestResult fields (read by TestResult.from_dict).
OLD_FLAGS = {"reviewed": "reviewed", "free_text": "unanswered"}


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _json_dict(value: Any, where: str) -> dict[str, Any]:
    """A JSON object with text keys, or ValueError."""
    _expect(isinstance(value, dict) and all(isinstance(k, str) for k in value),
            f"{where}: expected an object with text keys, got {type(value).__name__}")
    return value


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the pytest plugin saw of one test, before points: ``score.verdict`` turns it into a TestResult."""

    status: Status
    output: str = ""
    grader_error: bool = False      # True when cnngrade, not the student, failed
    duration: float = 0.0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    printed: str = ""               # what the student's code printed during the test

    def __post_init__(self) -> None:
        # Only the status here: the plugin builds outcomes inside pytest's hooks, where anything raised would end the
        # whole session; from_json checks every field of what comes back from elsewhere.
        _expect(self.status in OUTCOME_STATUSES, f"outcome status {self.status!r} is not one of {OUTCOME_STATUSES}")
        object.__setattr__(self, "status", Status(self.status))

    def to_json(self) -> dict[str, Any]:
        return {"status": str(self.status), "output": self.output, "grader_error": self.grader_error,
                "duration": float(self.duration), "metrics": dict(self.metrics), "printed": self.printed}

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        """The outcome ``to_json`` wrote; ValueError for anything else (unknown or missing keys, wrong types)."""
        data = _json_dict(data, "outcome")
        fields = {f.name for f in dataclasses.fields(cls)}
        _expect(set(data) <= fields, f"outcome: unknown key(s) {sorted(set(data) - fields)}")
        _expect("status" in data, "outcome: missing key status")
        outcome = cls(**data)
        _expect(isinstance(outcome.output, str) and isinstance(outcome.printed, str), "outcome output must be text")
        _expect(isinstance(outcome.grader_error, bool), f"outcome grader_error must be a bool, got "
                f"{outcome.grader_error!r}")
        duration = outcome.duration
        _expect(isinstance(duration, (int, float)) and not isinstance(duration, bool) and math.isfinite(duration)
                and duration >= 0, f"outcome duration {duration!r}")
        _json_dict(outcome.metrics, "outcome metrics")
        return outcome


@dataclasses.dataclass(frozen=True)
class Answer:
    """A free-text answer as the plugin read it at load: its text (None: there is none) and why not, or that it
    could not be read at all (``unread``: an error, never an empty answer; ``grader_error`` says whose)."""

    text: str | None = None
    problem: str = ""
    unread: bool = False
    grader_error: bool = False

    def __post_init__(self) -> None:
        _expect(self.text is None or isinstance(self.text, str), f"answer text must be text or None, got "
                f"{type(self.text).__name__}")
        _expect(isinstance(self.problem, str), "answer problem must be text")


@dataclasses.dataclass
class TestResult:
    """The verdict of one test (or one manual item) for one student."""

    __test__ = False   # not a pytest test class, whatever its name
    name: str
    score: float
    max_score: float
    status: Status
    output: str = ""
    visibility: str = "hidden"
    grader_error: bool = False      # True when cnngrade, not the student, failed
    duration: float = 0.0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    answer: str = ""                # the student's text, for manual items
    reviewed: bool = False          # a free-text item course staff gave points to (`cnngrade manual import`)
    unanswered: bool = False        # a free-text item with no answer: 0 at once, nothing to review (score.unanswered)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        self.status = Status(self.status)
        if not 0 <= self.score <= self.max_score:
            raise ValueError(f"score {self.score} outside [0, {self.max_score}] for {self.name}")

    @property
    def free_text(self) -> bool:
        """A free-text item, listed with the answers: pending, reviewed, or scored 0 because it was not answered."""
        return self.status == Status.MANUAL or self.reviewed or self.unanswered

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestResult:
        """A test of report.json; the flags older files kept in ``metrics`` (OLD_FLAGS) become the fields."""
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        metrics = dict(values.get("metrics") or {})
        for key, field in OLD_FLAGS.items():
            if key in metrics:
                values[field] = bool(values.get(field)) or bool(metrics.pop(key))
        values["metrics"] = metrics
        return cls(**values)


@dataclasses.dataclass
class ExerciseResult:
    """All tests of one exercise for one student."""

    exercise: str
    title: str
    tests: list[TestResult]
    student_output: str = ""        # what the student's code printed, capped

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    @property
    def manual_pending(self) -> float:
        return round(sum(t.max_score for t in self.tests if t.status == Status.MANUAL), 6)

    def to_dict(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "title": self.title, "score": self.score, "max_score": self.max_score,
                "manual_pending": self.manual_pending, "tests": [t.to_dict() for t in self.tests],
                "student_output": self.student_output}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExerciseResult:
        return cls(data["exercise"], data.get("title", ""), [TestResult.from_dict(t) for t in data["tests"]],
                   data.get("student_output", ""))


@dataclasses.dataclass
class StudentReport:
    """Everything cnngrade says about one student; serialised as report.json."""

    student: str
    exercises: dict[str, ExerciseResult]
    profile: dict[str, Any]
    version: str
    error: str = ""                 # a problem with the whole submission (unreadable entry)
    started_at: str = ""
    duration_s: float = 0.0
    info: dict[str, str] = dataclasses.field(default_factory=dict)   # name and LMS ids from the download
    notes: list[str] = dataclasses.field(default_factory=list)      # e.g. "both .py and .ipynb handed in"
    warning: str = ""               # loud: the grading was weaker than it should be (e.g. no bubblewrap)

    @property
    def total(self) -> dict[str, float]:
        ex = self.exercises.values()
        return {"score": round(sum(e.score for e in ex), 6), "max_score": round(sum(e.max_score for e in ex), 6),
                "manual_pending": round(sum(e.manual_pending for e in ex), 6)}

    @property
    def grader_errors(self) -> int:
        return sum(t.grader_error for e in self.exercises.values() for t in e.tests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "warning": self.warning,
            "cnngrade_version": self.version,
            "profile": self.profile,
            "total": self.total,
            "error": self.error,
            "grader_errors": self.grader_errors,
            "exercises": {name: e.to_dict() for name, e in self.exercises.items()},
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "info": self.info,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentReport:
        return cls(data["student"], {k: ExerciseResult.from_dict(v) for k, v in data["exercises"].items()},
                   data.get("profile", {}), data.get("cnngrade_version", ""), data.get("error", ""),
                   data.get("started_at", ""), data.get("duration_s", 0.0), dict(data.get("info", {})),
                   list(data.get("notes", [])), str(data.get("warning", "")))
