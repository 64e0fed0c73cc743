"""Plain records passed between stages (run → score → report), JSON fields only."""
from __future__ import annotations

import dataclasses
from typing import Any

# advice: a check that scores nothing did not hold; its message is feedback for the student.
STATUSES = ("passed", "failed", "error", "timeout", "manual", "missing", "advice")


@dataclasses.dataclass
class TestResult:
    """The verdict of one test (or one manual item) for one student."""

    __test__ = False   # not a pytest test class, whatever its name
    name: str
    score: float
    max_score: float
    status: str
    output: str = ""
    visibility: str = "hidden"
    grader_error: bool = False      # True when cnngrade, not the student, failed
    duration: float = 0.0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    answer: str = ""                # the student's text, for manual items

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if not 0 <= self.score <= self.max_score:
            raise ValueError(f"score {self.score} outside [0, {self.max_score}] for {self.name}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TestResult":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


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
        return round(sum(t.max_score for t in self.tests if t.status == "manual"), 6)

    def to_dict(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "title": self.title, "score": self.score, "max_score": self.max_score,
                "manual_pending": self.manual_pending, "tests": [t.to_dict() for t in self.tests],
                "student_output": self.student_output}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExerciseResult":
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
    def from_dict(cls, data: dict[str, Any]) -> "StudentReport":
        return cls(data["student"], {k: ExerciseResult.from_dict(v) for k, v in data["exercises"].items()},
                   data.get("profile", {}), data.get("cnngrade_version", ""), data.get("error", ""),
                   data.get("started_at", ""), data.get("duration_s", 0.0), dict(data.get("info", {})),
                   list(data.get("notes", [])), str(data.get("warning", "")))
