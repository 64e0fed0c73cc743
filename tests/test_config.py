"""grader.yaml is validated whole at load: a typo stops the batch before anyone is graded."""
from __future__ import annotations

import shutil

import pytest
import yaml

from cnngrade.config import GRADERS_DIR, load_exercise
from cnngrade.errors import GraderConfigError

EXERCISE = "ex6_cifar10_training"   # it has tests of every kind and a profiles: section


@pytest.fixture
def grader(tmp_path):
    shutil.copytree(GRADERS_DIR / EXERCISE, tmp_path / EXERCISE)
    path = tmp_path / EXERCISE / "grader.yaml"
    return path, yaml.safe_load(path.read_text())


def load_with(tmp_path, path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_exercise(EXERCISE, tmp_path)


def test_every_shipped_grader_loads_and_says_each_tests_kind():
    for folder in sorted(GRADERS_DIR.glob("*/grader.yaml")):
        cfg = load_exercise(folder.parent.name)
        raw = yaml.safe_load(folder.read_text())["tests"]
        assert all("kind" in spec for spec in raw.values()), [n for n, s in raw.items() if "kind" not in s]
        assert all(t.points == 0 for t in cfg.tests if t.kind == "advice"), cfg.exercise


@pytest.mark.parametrize("change, message", [
    (lambda d: d["profiles"]["cpu"].update(treshold=0.7), "unknown key(s) treshold"),
    (lambda d: d["profiles"].update(cpx=d["profiles"].pop("cpu")), "unknown key(s) cpx"),
    (lambda d: d["profiles"]["cpu"].update(epochs="4"), "profiles.cpu.epochs: expected a number"),
    (lambda d: d["profiles"]["gpu"].update(threshold=65), "threshold in (0, 1]"),
    (lambda d: d["profiles"]["cpu"].pop("epochs"), "missing key(s) epochs"),
    (lambda d: next(iter(d["tests"].values())).update(kind="vibes"), "kind must be one of"),
    (lambda d: next(iter(d["tests"].values())).update(kind="advice"), "an advice test scores nothing"),
], ids=["profile-typo", "profile-name", "profile-type", "profile-range", "profile-missing", "kind", "advice-points"])
def test_a_mistake_in_grader_yaml_is_refused_at_load(tmp_path, grader, change, message):
    path, data = grader
    change(data)
    with pytest.raises(GraderConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        load_with(tmp_path, path, data)
