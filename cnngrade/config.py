"""Grader settings: the exercises, and each exercise's YAML (points, visibility, limits), validated at load."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from cnngrade.errors import GraderConfigError, UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GRADERS_DIR = PROJECT_ROOT / "graders"
# libyaml's safe loader where PyYAML was built with it (every grading process reads each grader.yaml): the same
# documents, about ten times faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TEST_NAME = re.compile(r"test_\w+(\[[^\]\n]+\])?")   # a test function, or one case of a parametrized one
VISIBILITIES = ("public", "hidden")
# What a test's verdict rests on. behaviour: the student's code run on inputs the grader chose, compared with a
# trusted recomputation; answer: a value the student wrote down (ANSWERS), compared with a trusted computation;
# advice: something only the worker itself can observe (a mode, autograd state): shown, never scored.
KINDS = ("behaviour", "answer", "advice")


@dataclasses.dataclass(frozen=True)
class TestSpec:
    """One automatic test: its points and whether students may see it before grading."""

    __test__ = False   # not a pytest test class, whatever its name
    name: str
    points: float                    # the entry's whole worth (a parametrized test's, all cases together)
    visibility: str = "hidden"
    description: str = ""
    kind: str = "behaviour"
    cases: int | None = None         # points_per_case entries: how many cases the parametrized test has

    def covers(self, item: str) -> bool:
        """Whether a collected test id (``test_x`` or ``test_x[case]``) is this entry's."""
        return item == self.name or ("[" not in self.name and item.startswith(f"{self.name}["))


def case_points(points: float, count: int) -> list[float]:
    """An entry's points split over its ``count`` cases in hundredths, exactly: the first cases take the
    remainder (1 point over 3 cases: 0.34, 0.33, 0.33), so the cases always add up to the entry's worth."""
    base, extra = divmod(round(points * 100), count)
    return [(base + (i < extra)) / 100 for i in range(count)]


@dataclasses.dataclass(frozen=True)
class ManualSpec:
    """One free-text answer, graded by a person: where it lives in the module and what it is worth."""

    name: str            # e.g. "AVG_VS_MAX" or "EXPLANATIONS.relu"
    points: float
    min_chars: int = 20
    prompt: str = ""


PROFILE_NAMES = ("cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How one exercise's training check runs under one profile (from grader.yaml ``profiles.<name>``)."""

    epochs: int
    threshold: float            # test accuracy the trained model must reach
    batch_size: int = 128
    lr: float = 1e-3
    margin: float = 0.0         # ex8: how far below the baseline the sigmoid variant must stay
    train_timeout: float = 300.0
    time_limit: float | None = None   # the exercise's total time under this profile (default: the YAML's time_limit)


def training_settings_from(where: str, raw: Any) -> TrainingSettings:
    """One ``profiles.<name>`` entry, validated: unknown, missing or out-of-range keys are a GraderConfigError."""
    fields = {f.name: f for f in dataclasses.fields(TrainingSettings)}
    raw = _check_keys(where, raw, set(fields), {"epochs", "threshold"})
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GraderConfigError(f"{where}.{key}: expected a number, got {value!r}")
    settings = TrainingSettings(**raw)
    if not (settings.epochs >= 1 and int(settings.epochs) == settings.epochs and settings.batch_size >= 1
            and int(settings.batch_size) == settings.batch_size and settings.lr > 0
            and 0 < settings.threshold <= 1 and 0 <= settings.margin < 1 and settings.train_timeout > 0
            and (settings.time_limit is None or settings.time_limit > 0)):
        raise GraderConfigError(f"{where}: epochs and batch_size must be whole numbers >= 1, lr > 0, threshold in "
                                "(0, 1], margin in [0, 1), train_timeout and time_limit > 0")
    return settings


@dataclasses.dataclass(frozen=True)
class ExerciseConfig:
    """Everything the YAML of one exercise declares."""

    exercise: str
    title: str
    directory: Path
    tests: tuple[TestSpec, ...]
    manual: tuple[ManualSpec, ...] = ()
    time_limit: float = 300.0
    call_timeout: float = 30.0
    max_examples: int = 50
    profiles: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests) + sum(m.points for m in self.manual)

    @property
    def test_files(self) -> list[Path]:
        return sorted(self.directory.glob("test_*.py"))


def _check_keys(where: str, data: Any, allowed: set[str], required: frozenset[str] | set[str] = frozenset()) -> dict:
    if not isinstance(data, dict):
        raise GraderConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise GraderConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(data)
    if missing:
        raise GraderConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    return data


def _entries(where: str, data: Any) -> dict:
    """A section of named entries (``tests:``, ``manual:``): a mapping, or nothing."""
    return _check_keys(where, data or {}, set(data) if isinstance(data, dict) else set())


def _number(where: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise GraderConfigError(f"{where}: expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _whole(where: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GraderConfigError(f"{where}: expected a whole number >= {minimum}, got {value!r}")
    return value


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise GraderConfigError(f"{where}: expected text, got {value!r}")
    return value


def _points(where: str, value: Any) -> float:
    points = _number(where, value)
    if abs(points * 100 - round(points * 100)) > 1e-9:   # cases share points in hundredths (case_points)
        raise GraderConfigError(f"{where}: points are counted in hundredths, got {value!r}")
    return points


def _test_spec(path: Path, name: Any, spec: Any, docstrings: dict[str, str]) -> TestSpec:
    """One ``tests:`` entry, validated; its description defaults to the test function's docstring."""
    where = f"{path}: tests.{name}"
    if not isinstance(name, str) or not TEST_NAME.fullmatch(name):
        raise GraderConfigError(f"{where}: a test entry is named test_<name> or test_<name>[<case>]")
    spec = _check_keys(where, spec, {"points", "points_per_case", "cases", "visibility", "description", "kind"})
    per_case = "points_per_case" in spec
    if per_case == ("points" in spec):
        raise GraderConfigError(f"{where}: give exactly one of points (the whole entry's, split over its cases) "
                                "and points_per_case")
    if per_case != ("cases" in spec) or (per_case and "[" in name):
        raise GraderConfigError(f"{where}: points_per_case goes with cases: N (how many cases the parametrized "
                                f"test {name} has), so the maximum is known before grading")
    visibility = spec.get("visibility", "hidden")
    if visibility not in VISIBILITIES:
        raise GraderConfigError(f"{where}.visibility: must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    kind = spec.get("kind", "behaviour")
    if kind not in KINDS:
        raise GraderConfigError(f"{where}.kind: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if per_case:
        cases = _whole(f"{where}.cases", spec["cases"], 1)
        points = _points(f"{where}.points_per_case", spec["points_per_case"]) * cases
    else:
        cases, points = None, _points(f"{where}.points", spec["points"])
    if kind == "advice" and points != 0:
        raise GraderConfigError(f"{where}: an advice test scores nothing: set points: 0")
    description = _text(f"{where}.description", spec.get("description", "")) or docstrings.get(name.split("[")[0], "")
    return TestSpec(name, round(points, 6), visibility, description, kind, cases)


def docstrings(directory: Path) -> dict[str, str]:
    """The first docstring line of every test function in a grader's files, read without importing them."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue   # check_graders reports a grader that does not import
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                doc = (ast.get_docstring(node) or "").strip()
                if doc:
                    found[node.name] = doc.splitlines()[0]
    return found


def load_exercise(exercise: str, graders_dir: Path = GRADERS_DIR) -> ExerciseConfig:
    """Read and validate graders/<exercise>/grader.yaml whole; any mistake is a one-line GraderConfigError that
    names the file and the key."""
    directory = graders_dir / exercise
    path = directory / "grader.yaml"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except OSError as exc:
        raise GraderConfigError(f"{path}: cannot read the grader settings ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise GraderConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    top = _check_keys(str(path), data, {"title", "tests", "manual", "time_limit", "call_timeout",
                                        "max_examples", "profiles"}, {"title", "tests"})
    title = _text(f"{path}: title", top["title"]).strip()
    if not title:
        raise GraderConfigError(f"{path}: title: must not be empty")
    raw_tests = _entries(f"{path}: tests", top["tests"])
    if not raw_tests:
        raise GraderConfigError(f"{path}: tests: declare at least one test")
    docs = docstrings(directory)
    tests = [_test_spec(path, name, spec, docs) for name, spec in raw_tests.items()]
    for spec in tests:
        overlap = [t.name for t in tests if t is not spec and spec.covers(t.name)]
        if overlap:
            raise GraderConfigError(f"{path}: tests.{spec.name}: already covers {', '.join(overlap)}; keep one entry")
    manual = []
    raw_manual = _entries(f"{path}: manual", top.get("manual"))
    for name, raw in raw_manual.items():
        where = f"{path}: manual.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*(\.\w+)?", name):
            raise GraderConfigError(f"{where}: a free-text answer is named CONSTANT or CONSTANT.key")
        entry = _check_keys(where, raw, {"points", "min_chars", "prompt"}, {"points"})
        manual.append(ManualSpec(name, _points(f"{where}.points", entry["points"]),
                                 _whole(f"{where}.min_chars", entry.get("min_chars", 20)),
                                 _text(f"{where}.prompt", entry.get("prompt", ""))))
    # Validated here, at load, so a typo stops the batch before grading instead of failing every student after.
    profiles = _check_keys(f"{path}: profiles", top.get("profiles") or {}, set(PROFILE_NAMES))
    for name, prof in profiles.items():
        training_settings_from(f"{path}: profiles.{name}", prof)
    return ExerciseConfig(
        exercise=exercise, title=title, directory=directory, tests=tuple(tests), manual=tuple(manual),
        time_limit=_number(f"{path}: time_limit", top.get("time_limit", 300), 1),
        call_timeout=_number(f"{path}: call_timeout", top.get("call_timeout", 30), 0.1),
        max_examples=_whole(f"{path}: max_examples", top.get("max_examples", 50), 1),
        profiles=dict(profiles),
    )


def _course_order(name: str) -> tuple[int, str]:
    m = re.match(r"ex(\d+)", name)
    return (int(m[1]) if m else 1 << 30, name)


def discover_exercises(graders_dir: Path = GRADERS_DIR) -> tuple[str, ...]:
    """Every exercise with a grader: the folders of graders_dir holding a grader.yaml, in course order
    (ex2 before ex10)."""
    if not graders_dir.is_dir():
        return ()
    return tuple(sorted((p.parent.name for p in graders_dir.glob("*/grader.yaml")), key=_course_order))


# The shipped exercises; a new folder under graders/ with a grader.yaml is one more (DEVELOPING.md).
EXERCISES = discover_exercises()


def available_exercises(graders_dir: Path = GRADERS_DIR) -> list[str]:
    """Exercises that have a grader in graders_dir, in course order."""
    return list(discover_exercises(graders_dir))


def resolve_exercises(selection: str | None, graders_dir: Path = GRADERS_DIR) -> list[str]:
    """Turn 'ex1,ex3' (or full module names) into exercise names; None means every graded exercise."""
    available = available_exercises(graders_dir)
    if selection is None:
        return available
    chosen = []
    for item in (s.strip() for s in selection.split(",")):
        if not item:
            continue
        match = [e for e in available if e == item or e.split("_")[0] == item]
        if not match:
            raise UsageError(f"unknown exercise {item!r}; choose from {', '.join(e.split('_')[0] for e in available)}")
        if match[0] not in chosen:
            chosen.append(match[0])
    if not chosen:
        raise UsageError("--exercises selects no exercise")
    return chosen
