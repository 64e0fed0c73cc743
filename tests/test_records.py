"""The typed records that cross stages: Status, Outcome, Answer, TestResult's review flags and the grading Profile,
with their JSON round trips and strict rejection of malformed data."""
from __future__ import annotations

import dataclasses
import json

import pytest

from cnngrade.records import (
    OUTCOME_STATUSES,
    STATUSES,
    Answer,
    ExerciseResult,
    Outcome,
    Status,
    StudentReport,
    TestResult,
)
from cnngrade.training.profiles import Profile

CPU = Profile("cpu", "cpu", "synthetic-shapes-2560/1000-16px", None, "bwrap")
CALIBRATION = {"file": "cal.yaml", "sha256": "0123456789abcdef", "seeds": [0, 1], "date": "2026-11-30T17:00:00Z",
               "device": "cpu", "torch": "2.14.1", "threads": 1,
               "thresholds": {"ex6_cifar10_training": {"threshold": 0.7}, "ex8_ablation": {"margin": 0.05}}}


# -- Status ---------------------------------------------------------------------------------------------------------
def test_status_values_are_the_words_report_json_uses():
    assert [str(s) for s in Status] == ["passed", "failed", "error", "timeout", "manual", "missing", "advice"]
    assert STATUSES == tuple(Status) and set(OUTCOME_STATUSES) <= set(Status)
    # A str: comparisons with text, JSON and f-strings give the plain word.
    assert Status.PASSED == "passed" and json.dumps({"s": Status.TIMEOUT}) == '{"s": "timeout"}'
    assert f"[{Status.MANUAL}]" == "[manual]" and {"error": 1}[Status.ERROR] == 1


def test_a_test_result_takes_text_for_its_status_and_refuses_an_unknown_one():
    assert TestResult("t", 1.0, 1.0, "passed").status is Status.PASSED
    with pytest.raises(ValueError, match="unknown status"):
        TestResult("t", 0.0, 1.0, "skipped")


# -- Outcome --------------------------------------------------------------------------------------------------------
def test_an_outcome_survives_a_json_round_trip():
    outcome = Outcome(Status.FAILED, "expected 3, got 4", False, 0.25, {"accuracy": 0.5, "train_loss": [1.0, 0.5]},
                      "printed text")
    back = Outcome.from_json(json.loads(json.dumps(outcome.to_json())))
    assert back == outcome and back.status is Status.FAILED
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = Status.PASSED  # type: ignore[misc]


@pytest.mark.parametrize("data, words", [
    ([], "expected an object"),
    ({"output": "x"}, "missing key status"),
    ({"status": "passed", "score": 3}, "unknown key"),
    ({"status": "manual"}, "outcome status"),          # scoring decides that, never the plugin
    ({"status": "advice"}, "outcome status"),
    ({"status": "passed", "output": 3}, "must be text"),
    ({"status": "passed", "grader_error": "yes"}, "grader_error"),
    ({"status": "passed", "duration": float("nan")}, "duration"),
    ({"status": "passed", "duration": True}, "duration"),
    ({"status": "passed", "metrics": [1, 2]}, "metrics"),
    ({"status": "passed", "metrics": {1: 2}}, "metrics"),
    ({"status": "passed", "printed": None}, "must be text"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_malformed_outcome_is_refused(data, words):
    with pytest.raises(ValueError, match=words):
        Outcome.from_json(data)


def test_an_answer_is_text_or_none():
    assert Answer("text").text == "text" and Answer().text is None and not Answer().unread
    with pytest.raises(ValueError):
        Answer(3)  # type: ignore[arg-type]


# -- reviewed and unanswered: fields, read from the metrics of older report.json files -------------------------------
def test_free_text_items_are_told_by_their_fields():
    pending = TestResult("NOTES", 0.0, 2.0, "manual")
    reviewed = TestResult("NOTES", 1.0, 2.0, "failed", reviewed=True)
    unanswered = TestResult("NOTES", 0.0, 2.0, "failed", unanswered=True)
    automatic = TestResult("test_a", 0.0, 1.0, "failed")
    assert pending.free_text and reviewed.free_text and unanswered.free_text and not automatic.free_text
    data = json.loads(json.dumps(reviewed.to_dict()))
    assert data["reviewed"] is True and data["status"] == "failed" and "reviewed" not in data["metrics"]
    assert TestResult.from_dict(data) == reviewed


def test_old_report_json_flags_in_metrics_become_the_fields():
    old = {"name": "NOTES", "score": 1.0, "max_score": 2.0, "status": "failed",
           "metrics": {"reviewed": True, "comment": "fine"}}
    test = TestResult.from_dict(old)
    assert test.reviewed and test.free_text and test.metrics == {"comment": "fine"}
    gone = TestResult.from_dict({"name": "NOTES", "score": 0.0, "max_score": 2.0, "status": "failed",
                                 "metrics": {"free_text": True}})
    assert gone.unanswered and not gone.reviewed and gone.metrics == {}
    report = StudentReport("amy", {"ex5": ExerciseResult("ex5", "t", [test, gone])}, CPU.to_json(), "0")
    back = StudentReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert [(t.reviewed, t.unanswered) for t in back.exercises["ex5"].tests] == [(True, False), (False, True)]


# -- Profile --------------------------------------------------------------------------------------------------------
def test_a_profile_survives_a_json_round_trip_and_is_frozen():
    gpu = Profile("gpu", "cuda", "cifar10", "/data/cifar", "bwrap", "H200", CALIBRATION)
    for profile in (CPU, gpu):
        assert Profile.from_json(json.loads(json.dumps(profile.to_json()))) == profile
    assert set(CPU.to_json()) == {"name", "device", "dataset", "data_dir", "isolation"}   # as reports always had
    assert gpu.uses_gpu and not CPU.uses_gpu
    with pytest.raises(dataclasses.FrozenInstanceError):
        CPU.name = "gpu"  # type: ignore[misc]


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(name="tpu"), "name"),
    (lambda d: d.update(device="cuda"), "device"),
    (lambda d: d.pop("dataset"), "missing key"),
    (lambda d: d.update(dataset=3), "dataset"),
    (lambda d: d.update(data_dir=["/x"]), "data_dir"),
    (lambda d: d.update(isolation=None), "isolation"),
    (lambda d: d.update(extra=1), "unknown key"),
    (lambda d: d.update(calibration={"file": "x"}), "calibration"),
    (lambda d: d.update(calibration={**CALIBRATION, "thresholds": {"ex1_output_size": {"threshold": 0.5}}}),
     "calibration.thresholds"),
    (lambda d: d.update(calibration={**CALIBRATION, "thresholds": {"ex8_ablation": {"margin": 7}}}),
     "calibration.thresholds"),
    (lambda d: d.update(calibration={**CALIBRATION, "seeds": ["0"]}), "calibration.seeds"),
], ids=["name", "device", "missing", "dataset", "data_dir", "isolation", "unknown", "calibration",
        "threshold-exercise", "threshold-range", "seeds"])
def test_a_malformed_profile_is_refused(change, words):
    data = CPU.to_json()
    change(data)
    with pytest.raises(ValueError, match=words):
        Profile.from_json(data)


def test_the_grading_job_carries_the_profile_as_json():
    from cnngrade.grading.process import Job

    job = Job({"ex1_output_size": "/tmp/s"}, "/graders", "bwrap", {"threads": 1}, CPU)
    back = Job.from_json(json.loads(json.dumps(job.to_json())))
    assert back == job and isinstance(back.profile, Profile)
    with pytest.raises(ValueError, match="job.json"):
        Job.from_json({**job.to_json(), "surprise": True})
    with pytest.raises(ValueError, match="grading profile"):
        Job.from_json({**job.to_json(), "profile": {"name": "cpu"}})


def test_a_report_names_its_profile_beside_keys_of_its_own():
    check_report = {**CPU.to_json(), "tests": "public only", "checked_at_grading": {}}
    assert Profile.from_report(check_report) == CPU
    assert Profile.from_report({"name": "cpu"}) is None and Profile.from_report(None) is None
