"""`cnngrade calibrate` and `cnngrade grade --calibration`: seeds, the suggestion rule, the calibration file (written,
read strictly, applied to the training checks, named in the reports) and docs/instructors.md's commands."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from cnngrade.cli import main
from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.errors import InputError, UsageError
from cnngrade.training import calibrate, calibration, profiles
from tests.harness import graders_subset
from tests.test_readme import doc_argv, instructor_commands

SECTION = ("### Calibrating thresholds", "### Reading the dashboard")
CPU = profiles.select_profile("cpu")
PROFILES = {"cpu": CPU, "gpu": profiles.Profile("gpu", "cuda", "cifar10")}


def documented(prefix: str) -> str:
    (command,) = [c for c in instructor_commands(*SECTION) if c.startswith(prefix)]
    return command


def test_the_docs_section_lists_the_commands_these_tests_run():
    assert instructor_commands(*SECTION) == [
        "cnngrade calibrate --profile cpu --seeds 0-4 --out calibration.yaml",
        "cnngrade grade submissions/ --out reports/ --profile cpu --calibration calibration.yaml",
        "cnngrade calibrate --profile gpu --data /data/cifar10 --seeds 0-4 --out calibration-gpu.yaml"]


# -- arguments ----------------------------------------------------------------------------------------------------
def test_seeds_syntax():
    assert calibrate.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert calibrate.parse_seeds("3, 1,7-8") == [3, 1, 7, 8]
    assert calibrate.parse_seeds("0-1,1-2") == [0, 1, 2]
    for bad in ("", "x", "1-", "-1", "4-2", "1.5,2", "3", "0-100000", "2,2"):
        with pytest.raises(UsageError) as info:
            calibrate.parse_seeds(bad)
        assert "\n" not in str(info.value) and "--seeds" in str(info.value)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:   # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "0"], ["--seeds", "one seed"]),
    (["--seeds", "a-b"], ["--seeds"]),
    (["--exercises", "ex1"], ["ex1_output_size", "no training check"]),
    (["--profile", "tpu"], ["invalid choice"]),
    (["--jobs", "0"], ["--jobs"]),
])
def test_bad_arguments_are_one_line(argv, words, capsys):
    code, _, err = run_cli(["calibrate", "--profile", "cpu", *argv], capsys)
    assert code == 2 and err.startswith("cnngrade: error: ") and err.count("\n") == 1, err
    assert all(w in err for w in words), err


def test_out_is_checked_before_any_training(tmp_path, capsys):
    taken = tmp_path / "taken.yaml"
    taken.write_text("x")
    cases = [(taken, 2, "--force"), (tmp_path, 2, "folder"), (tmp_path / "no" / "f.yaml", 3, "does not exist")]
    for out, expected, word in cases:
        code, _, err = run_cli(["calibrate", "--profile", "cpu", "--out", str(out)], capsys)
        assert code == expected and word in err and err.count("\n") == 1, err
    assert taken.read_text() == "x"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the gpu form would train")
def test_the_documented_gpu_form_refuses_without_cuda(capsys, tmp_path):
    argv = doc_argv(documented("cnngrade calibrate --profile gpu"), **{"calibration-gpu.yaml": str(tmp_path / "g")})
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "CUDA" in err and err.count("\n") == 1, err
    assert not (tmp_path / "g").exists()


# -- what is calibrated, and the rule -----------------------------------------------------------------------------
def test_every_calibrated_threshold_is_one_a_grader_uses():
    measured = {}
    for t in calibration.THRESHOLDS:
        measured.setdefault(t.exercise, []).append(t.key)
        for name in profiles.NAMES:   # grader.yaml has the value that the file replaces
            assert getattr(profiles.training_settings(load_exercise(t.exercise), PROFILES[name]), t.key) > 0
    assert {e: tuple(k) for e, k in measured.items()} == profiles.CALIBRATED
    for exercise, keys in profiles.CALIBRATED.items():
        text = "".join(p.read_text() for p in (PROJECT_ROOT / "graders" / exercise).glob("test_*.py"))
        assert all(f"settings.{k}" in text for k in keys)


def test_the_suggestion_is_conservative():
    acc = next(t for t in calibration.THRESHOLDS if t.key == "threshold")
    margin = next(t for t in calibration.THRESHOLDS if t.key == "margin")
    # Tight seeds: 0.05 under the worst one; loose seeds: 6 standard deviations under the mean; rounded down.
    assert calibration.suggest(acc, [0.90, 0.90, 0.91]) == 0.85
    assert calibration.suggest(acc, [0.80, 0.90]) < 0.5
    assert calibration.suggest(margin, [0.10, 0.40]) == 0.0          # kept in grader.yaml's range
    assert calibration.suggest(acc, [0.02, 0.03]) == 0.01


# -- the file, with the training replaced by fixed figures -------------------------------------------------------
FIGURES = {0: {"ex6": 0.86, "ex8-baseline": 0.86, "ex8-sigmoid": 0.10},
           1: {"ex6": 0.88, "ex8-baseline": 0.88, "ex8-sigmoid": 0.11},
           2: {"ex6": 0.87, "ex8-baseline": 0.87, "ex8-sigmoid": 0.10}}


@pytest.fixture
def fake_training(monkeypatch):
    def run_seed(seed, profile, check_names, threads):
        acc = {c: FIGURES[seed][c] for c in check_names}
        return calibration.SeedResult(seed, acc, {c: 1.0 for c in check_names}, {})

    monkeypatch.setattr(calibrate, "run_seed", run_seed)


def test_calibrate_writes_a_file_that_grade_reads(fake_training, tmp_path, capsys):
    out = tmp_path / "cal.yaml"
    code, stdout, err = run_cli(["calibrate", "--profile", "cpu", "--seeds", "0-2", "--out", str(out)], capsys)
    assert code == 0, err
    assert err.count("calibrate: seed ") == 3 and "(3/3)" in err
    assert "| ex8_ablation.margin |" in stdout and "suggested" in stdout
    data = yaml.safe_load(out.read_text())
    assert data["thresholds"] == {"ex6_cifar10_training": {"threshold": 0.81}, "ex8_ablation": {"threshold": 0.81,
                                                                                                "margin": 0.71}}
    assert data["calibration"]["seeds"] == [0, 1, 2] and data["calibration"]["torch"] == torch.__version__
    assert data["measured"]["ex8_ablation.margin"]["values"] == [0.76, 0.77, 0.77]
    entry = profiles.load_calibration(out, CPU)
    assert entry["file"] == "cal.yaml" and entry["thresholds"] == data["thresholds"] and entry["seeds"] == [0, 1, 2]
    # Applied where the graders read their settings; grader.yaml's other settings stay.
    profile = profiles.with_calibration(CPU, out)
    # It crosses to the grading process (job.json) and into report.json as JSON, and reads back the same.
    assert profiles.Profile.from_json(json.loads(json.dumps(profile.to_json()))) == profile
    for exercise, keys in data["thresholds"].items():
        settings = profiles.training_settings(load_exercise(exercise), profile)
        assert {k: getattr(settings, k) for k in keys} == keys
        assert settings.epochs == profiles.training_settings(load_exercise(exercise), CPU).epochs
    # Without --out the file goes to stdout; an existing --out needs --force.
    code, stdout, _ = run_cli(["calibrate", "--profile", "cpu", "--seeds", "0,2", "--exercises", "ex6", "-q"], capsys)
    assert code == 0 and set(yaml.safe_load(stdout)["thresholds"]) == {"ex6_cifar10_training"}
    code, _, err = run_cli(["calibrate", "--profile", "cpu", "--seeds", "0-1", "--out", str(out)], capsys)
    assert code == 2 and "--force" in err
    assert run_cli(["calibrate", "--profile", "cpu", "--seeds", "0-1", "--out", str(out), "--force", "-q"],
                   capsys)[0] == 0
    assert yaml.safe_load(out.read_text())["calibration"]["seeds"] == [0, 1]


def valid_file() -> dict:
    return {"calibration": {"profile": "cpu", "date": "2026-11-30T17:00:00Z", "seeds": [0, 1], "device": "cpu",
                            "torch": "2.14.1", "dataset": CPU.dataset},
            "thresholds": {"ex6_cifar10_training": {"threshold": 0.8}, "ex8_ablation": {"margin": 0.5}}}


def edited(path, change) -> None:
    data = valid_file()
    change(data)
    path.write_text(yaml.safe_dump(data))


BROKEN = [
    ("other profile", lambda d: d["calibration"].update(profile="gpu"), "calibration.profile"),
    ("other data set", lambda d: d["calibration"].update(dataset="cifar10"), "calibration.dataset"),
    ("unknown exercise", lambda d: d["thresholds"].update(ex1_output_size={"threshold": 0.5}), "ex1_output_size"),
    ("unknown threshold", lambda d: d["thresholds"]["ex6_cifar10_training"].update(margin=0.1), "margin"),
    ("typo", lambda d: d["thresholds"]["ex6_cifar10_training"].update(treshold=0.1), "treshold"),
    ("out of range", lambda d: d["thresholds"]["ex6_cifar10_training"].update(threshold=1.5), "threshold"),
    ("text", lambda d: d["thresholds"]["ex8_ablation"].update(margin="0.3"), "margin"),
    ("no seeds", lambda d: d["calibration"].update(seeds=[3]), "calibration.seeds"),
    ("missing torch", lambda d: d["calibration"].pop("torch"), "calibration.torch"),
    ("unknown key", lambda d: d.update(profile="cpu"), "profile"),
    ("no thresholds", lambda d: d.update(thresholds={}), "thresholds"),
    ("not a mapping", lambda d: d.update(thresholds=[0.5]), "thresholds"),
]


@pytest.mark.parametrize("case, change, word", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_malformed_file_is_a_one_line_error_naming_file_and_key(tmp_path, case, change, word):
    path = tmp_path / "cal.yaml"
    edited(path, change)
    with pytest.raises(UsageError) as info:
        profiles.with_calibration(CPU, path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and word in message, message


def test_unreadable_or_not_yaml(tmp_path):
    with pytest.raises(InputError):
        profiles.with_calibration(CPU, tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("thresholds: [1, 2\n")
    with pytest.raises(UsageError, match="bad.yaml"):
        profiles.with_calibration(CPU, tmp_path / "bad.yaml")
    edited(tmp_path / "ok.yaml", lambda d: None)
    assert profiles.with_calibration(CPU, tmp_path / "ok.yaml").calibration["thresholds"]["ex8_ablation"] == {
        "margin": 0.5}
    assert profiles.with_calibration(CPU, None) is CPU


def test_grade_rejects_a_bad_file_before_grading(tmp_path, capsys):
    edited(tmp_path / "gpu.yaml", lambda d: d["calibration"].update(profile="gpu"))
    (tmp_path / "class" / "s").mkdir(parents=True)
    code, _, err = run_cli(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--profile", "cpu",
                            "--calibration", str(tmp_path / "gpu.yaml")], capsys)
    assert code == 2 and "gpu.yaml" in err and err.count("\n") == 1, err
    assert not list((tmp_path / "out").glob("*/report.json"))


# -- the real thing: docs/instructors.md's commands, on fewer seeds ---------------------------------------------
@pytest.mark.slow
def test_the_documented_calibration_is_honoured_by_grade(tmp_path, capsys):
    cal = tmp_path / "calibration.yaml"
    argv = doc_argv(documented("cnngrade calibrate --profile cpu"), **{"calibration.yaml": str(cal)})
    code, _, err = run_cli([*argv, "--seeds", "0-1", "--exercises", "ex6"], capsys)   # two runs of ex6
    assert code == 0, err
    data = yaml.safe_load(cal.read_text())
    measured = data["measured"]["ex6_cifar10_training.threshold"]
    assert len(measured["values"]) == 2 and min(measured["values"]) > 0.5
    assert data["thresholds"]["ex6_cifar10_training"]["threshold"] <= min(measured["values"]) - calibration.SLACK
    # Set above anything the reference reaches: the reference solution must now fail the check, by that threshold.
    data["thresholds"]["ex6_cifar10_training"]["threshold"] = 0.99
    cal.write_text(yaml.safe_dump(data, sort_keys=False))
    klass = tmp_path / "class"
    (klass / "reference").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / "ex6_cifar10_training.py", klass / "reference")
    graders = graders_subset("ex6_cifar10_training", ["test_training.py"], tmp_path / "graders")
    argv = doc_argv(documented("cnngrade grade"), **{"submissions/": str(klass), "reports/": str(tmp_path / "out"),
                                                     "calibration.yaml": str(cal)})
    code, _, err = run_cli([*argv, "--exercises", "ex6", "--graders", str(graders), "-q"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "reference" / "report.json").read_text())
    named = report["profile"]["calibration"]
    assert named["file"] == "calibration.yaml" and named["seeds"] == [0, 1] and named["torch"] == torch.__version__
    (test,) = [t for t in report["exercises"]["ex6_cifar10_training"]["tests"]
               if t["name"] == "test_training_reaches_threshold"]
    assert test["status"] == "failed" and test["metrics"]["threshold"] == 0.99, test
    assert "99.0%" in test["output"]
