"""The shared test harness: grade folders of variant and hostile submissions through the real pipeline.

Imported as ``from tests.harness import ...``; fixtures stay in conftest.py (``class_batches``: the variant
and hostile files of every exercise a session asks for, graded as one class).
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT
from cnngrade.grading.pipeline import grade_class
from cnngrade.records import StudentReport
from cnngrade.training import profiles

SUBMISSIONS = Path(__file__).parent / "submissions"
HOSTILE = Path(__file__).parent / "adversarial"
EXPECT = re.compile(r"^#\s*expect-fail:\s*(.+)$", re.MULTILINE)
GRADERS_LINE = re.compile(r"^#\s*graders:\s*(.+)$", re.MULTILINE)
ANCHORS = ("reference_solution", "starter_stub")   # student names of the two anchors in every variant batch
# The training thresholds of ex6/ex8 have their own harness (tests/test_training.py); variants are graded with
# the other checks, these files.
VARIANT_FILES = {"ex6_cifar10_training": ("test_ex6_cifar10_training.py",), "ex8_ablation": ("test_ex8_ablation.py",)}
# The training thresholds' own grader file, and the training harness's class (tests/test_training.py): the reference
# solutions as one student, ex6's again (two gradings must agree), and every train_good_*/train_bad_* variant.
TRAINING_FILES = ("test_training.py",)
TRAINING_EXERCISES = ("ex6_cifar10_training", "ex8_ablation")
TRAINING_CLASS = "training"   # the key's exercise that stands for the training harness's class
# Costliest exercises first in a shared class (students are graded in name order), so that the batch does not
# end on one long student while the other job idles.
COST_ORDER = ("ex7_retina_design", "ex2_feature_maps", "ex8_ablation", "ex6_cifar10_training", "ex4_shape_tracking",
              "ex3_receptive_fields", "ex5_alexnet_analysis", "ex1_output_size")


def variants(exercise: str) -> list[Path]:
    """The variant files of one exercise: good_*.py must earn every automatic point, bad_*.py must not.

    Other files there (the training checks' train_good_*/train_bad_*) belong to other harnesses.
    """
    folder = SUBMISSIONS / exercise
    return sorted([*folder.glob("good_*.py"), *folder.glob("bad_*.py")])


def expected_failures(path: Path) -> set[str]:
    """Tests a bad variant must fail, from its '# expect-fail: test_a, test_b' line (may be empty)."""
    found = EXPECT.findall(path.read_text())
    return {name.strip() for line in found for name in line.split(",") if name.strip()}


def graders_subset(exercise: str, files: list[str], dest: Path, *, manual: bool = True) -> Path:
    """A graders folder holding only ``files`` of the exercise's grader and the YAML entries of their tests.

    An exercise's grader may span files owned by different checks (ex6's training threshold lives in
    test_training.py); a harness of one check grades its variants with its own file only. ``manual=False``
    leaves the free-text items out too, so that a report holds only the tests of those files.
    """
    source = GRADERS_DIR / exercise
    target = dest / exercise
    target.mkdir(parents=True)
    defined: set[str] = set()
    for name in files:
        text = (source / name).read_text()
        defined |= set(re.findall(r"^def (test_\w+)\(", text, re.MULTILINE))
        (target / name).write_text(text)
    config = yaml.safe_load((source / "grader.yaml").read_text())
    config["tests"] = {k: v for k, v in config["tests"].items() if k.split("[")[0] in defined}
    if not manual:
        config.pop("manual", None)
    (target / "grader.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def all_grader_files(exercise: str) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in (GRADERS_DIR / exercise).glob("test_*.py")))


def variant_files(exercise: str) -> tuple[str, ...]:
    """The grader files the variants of ``exercise`` are graded with."""
    return VARIANT_FILES.get(exercise) or all_grader_files(exercise)


def hostile_cases(exercises: Iterable[str]) -> list[tuple[str, Path]]:
    """(exercise, file) of every hostile submission of tests/adversarial/<exercise>/."""
    return [(e, p) for e in exercises for p in sorted((HOSTILE / e).glob("*.py"))]


def hostile_grader_files(path: Path) -> tuple[str, ...]:
    """The grader files a hostile file is graded with: its '# graders:' line, else all of its exercise's."""
    found = GRADERS_LINE.findall(path.read_text())
    if not found:
        return all_grader_files(path.parent.name)
    return tuple(sorted(name.strip() for name in found[0].split(",") if name.strip()))


Key = tuple[str, tuple[str, ...]]   # (exercise, grader files)
TRAINING_KEY: Key = (TRAINING_CLASS, ())


def training_students() -> dict[str, dict[str, Path]]:
    """The training harness's class: student -> {exercise: source}."""
    solutions = PROJECT_ROOT / "solutions"
    return {"reference": {e: solutions / f"{e}.py" for e in TRAINING_EXERCISES},
            "reference_again": {"ex6_cifar10_training": solutions / "ex6_cifar10_training.py"},
            **{p.stem: {p.parent.name: p} for p in sorted(SUBMISSIONS.glob("*/train_*.py"))}}


def is_training(key: Key) -> bool:
    return key == TRAINING_KEY or (key[0] in TRAINING_EXERCISES and key[1] == TRAINING_FILES)


class ClassBatches:
    """Reports of variant and hostile submissions, by (exercise, grader files) and file stem.

    Every batch holds the files graded with those grader files plus the two anchors (``ANCHORS``: the reference
    solution, which must earn every automatic point, and the stub). The keys that the session's selected tests
    will ask for (``wanted``) are graded together at the first request, as one class of one-exercise students: one
    warm start and one isolation check for all, the reference solution graded once per key, and both jobs busy
    until the end. A key nobody announced is graded alone when asked for. The training checks' keys go with
    the training harness's class (``TRAINING_KEY``, ``training()``) when it is wanted too, its reference student
    then being their honest classmate.
    """

    def __init__(self, root: Path, wanted: Iterable[Key], with_variants: Iterable[str] = (), jobs: int = 2):
        self.root, self.jobs = root, jobs
        self.pending = set(wanted)
        self.announced = set(self.pending)
        self.with_variants = set(with_variants)   # exercises whose variant tests are selected
        self.cache: dict[Key, dict[str, StudentReport]] = {}
        self.failed: dict[Key, Exception] = {}

    def reports(self, exercise: str, files: tuple[str, ...]) -> dict[str, StudentReport]:
        key = (exercise, tuple(sorted(files)))
        if key in self.failed:   # a batch that broke is not graded again for every test that reads it
            raise RuntimeError(f"the class holding {key} could not be graded") from self.failed[key]
        if key not in self.cache:
            keys = self._companions(key)
            self.pending -= keys
            try:
                self._grade(sorted(keys))
            except Exception as exc:
                self.failed.update(dict.fromkeys(keys, exc))
                raise
        return self.cache[key]

    def training(self) -> dict[str, StudentReport]:
        """The training harness's class, by student (``training_students``)."""
        return self.reports(*TRAINING_KEY)

    def _companions(self, key: Key) -> set[Key]:
        """``key`` and the pending keys of its kind (variant files, training checks, other) that can share its
        class: one graders folder holds one set of files per exercise."""
        if key not in self.pending:
            return {key}

        def kind(k: Key) -> str:
            return "training" if is_training(k) else "variants" if k[1] == variant_files(k[0]) else "other"

        group = {key}
        for other in sorted(self.pending):
            if kind(other) == kind(key) and other[0] not in {e for e, _ in group}:
                group.add(other)
        return group

    def members(self, key: Key, honest: bool = True) -> list[tuple[str, Path]]:
        """(stem, file) of the key's one-exercise students; ``honest``: with the two anchors (the training checks:
        the reference solution alone). Variants only where their tests are selected (or the key was not announced)."""
        exercise, files = key
        wanted = exercise in self.with_variants or key not in self.announced
        found = [(p.stem, p) for p in variants(exercise)] if wanted and files == variant_files(exercise) else []
        found += [(p.stem, p) for e, p in hostile_cases([exercise]) if hostile_grader_files(p) == files]
        anchors = [PROJECT_ROOT / "solutions" / f"{exercise}.py", PROJECT_ROOT / "exercises" / f"{exercise}.py"]
        anchors = anchors[:1] if is_training(key) else anchors
        return [*found, *zip(ANCHORS, anchors)] if honest else found

    def _grade(self, keys: list[Key]) -> None:
        out = self.root / f"batch{len(list(self.root.iterdir()))}"
        klass, graders = out / "class", out / "graders"
        training = is_training(keys[0])   # companions are all of one kind
        names = self._place_training_class(klass, keys) if TRAINING_KEY in keys else {}
        exercises = sorted({e for key in keys for e in (TRAINING_EXERCISES if key == TRAINING_KEY else [key[0]])})
        for exercise in exercises:
            files = TRAINING_FILES if training else next(k[1] for k in keys if k[0] == exercise)
            graders_subset(exercise, list(files), graders, manual=not training)
        for key in keys:
            if key != TRAINING_KEY:
                names.update(self._place_members(klass, key, with_training_class=TRAINING_KEY in keys))
        profile = profiles.select_profile("cpu") if training else None
        for report in grade_class(klass, out / "reports", exercises, jobs=self.jobs, graders_dir=graders,
                                  profile=profile):
            for student, (key, stem) in names.items():
                if student.partition("@")[0] == report.student:
                    self.cache.setdefault(key, {})[stem] = report

    @staticmethod
    def _place_training_class(klass: Path, keys: list[Key]) -> dict[str, tuple[Key, str]]:
        """The training harness's students, under their own names; its reference, with both exercises, is also
        the honest classmate of the training checks' hostile files (``reference@<exercise>``)."""
        names: dict[str, tuple[Key, str]] = {}
        for student, files in training_students().items():
            names[student] = (TRAINING_KEY, student)
            (klass / student).mkdir(parents=True)
            for exercise, source in files.items():
                shutil.copy(source, klass / student / f"{exercise}.py")
        names.update({f"reference@{key[0]}": (key, ANCHORS[0]) for key in keys if key != TRAINING_KEY})
        return names

    def _place_members(self, klass: Path, key: Key, *, with_training_class: bool) -> dict[str, tuple[Key, str]]:
        """The key's one-exercise students, named so that name order puts the costliest exercises first (after
        the training class's students, whose reference trains three networks)."""
        exercise = key[0]
        rank = COST_ORDER.index(exercise) if exercise in COST_ORDER else len(COST_ORDER)
        names: dict[str, tuple[Key, str]] = {}
        for stem, path in self.members(key, honest=not with_training_class):
            student = f"{'s' if with_training_class else ''}{rank}-{exercise}-{stem}"
            assert student not in names, f"two files named {stem} for {exercise}"
            names[student] = (key, stem)
            (klass / student).mkdir(parents=True)
            shutil.copy(path, klass / student / f"{exercise}.py")
        return names


def assert_verdict(report: StudentReport, exercise: str, path: Path) -> None:
    """good_* earn every automatic point; bad_* lose points on exactly the tests their expect-fail line names.

    Exactly, not at least: a bad variant that loses more than its mistake explains shows a grader that
    over-penalises, which is a wrong verdict too.
    """
    ex = report.exercises[exercise]
    auto = [t for t in ex.tests if not t.free_text]
    lost = {t.name for t in auto if t.score < t.max_score}
    assert not any(t.grader_error for t in auto), [(t.name, t.output) for t in auto if t.grader_error]
    if path.stem.startswith("good"):
        assert not lost, {t.name: t.output for t in auto if t.name in lost}
    else:
        assert lost, f"{path.name} earned every automatic point"
        expected = expected_failures(path)
        if expected == {"all"}:   # a file that cannot be used at all (it does not import)
            expected = {t.name for t in auto}
        assert lost == expected, (f"{path.name} should lose exactly {sorted(expected)}; it lost {sorted(lost)} "
                                  f"(unexpected: { {t.name: t.output[:200] for t in auto if t.name in lost - expected} })")
