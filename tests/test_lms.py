"""Grades out: Gradescope results.json, the Canvas gradebook CSV, and the manual grading round trip."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cnngrade.cli import main
from cnngrade.config import load_exercise
from cnngrade.records import ExerciseResult, StudentReport
from cnngrade.records import TestResult as Result
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.lms import canvas_csv, gradescope_results

EX5 = "ex5_alexnet_analysis"


def make_report(student: str, passed: bool, info: dict | None = None) -> StudentReport:
    """A report shaped like the pipeline's: ex5's tests from its YAML, its free-text items pending."""
    cfg = load_exercise(EX5)
    tests = [Result(t.name, t.points if passed else 0.0, t.points, "passed" if passed else "failed",
                        "" if passed else "wrong", t.visibility) for t in cfg.tests]
    tests += [Result(m.name, 0.0, m.points, "manual", "Awaiting review by course staff.", "public",
                         answer=f"{student} explains {m.name}") for m in cfg.manual]
    return StudentReport(student, {EX5: ExerciseResult(EX5, cfg.title, tests)}, {"name": "cpu"}, "test",
                         info=info or {})


def test_gradescope_results_follow_the_autograder_schema():
    report = make_report("alice", True)
    report.duration_s = 12.5
    results = gradescope_results(report)
    auto = [t for t in report.exercises[EX5].tests if t.status != "manual"]
    assert results["score"] == pytest.approx(sum(t.score for t in auto))
    assert results["execution_time"] == pytest.approx(12.5)
    assert len(results["tests"]) == len(report.exercises[EX5].tests)
    described = {t.name: t.description for t in load_exercise(EX5).tests}
    for entry, test in zip(results["tests"], report.exercises[EX5].tests):
        assert {"name", "output", "visibility"} <= set(entry)
        assert entry["visibility"] == ("visible" if test.visibility == "public" else "after_published")
        if test.status == "manual":
            # Pending: informational per the spec (no score, no status), so neither failed nor counted.
            assert not {"score", "max_score", "status"} & set(entry)
            assert "pending review" in entry["name"] and "not yet counted" in entry["output"]
        else:
            assert entry["status"] == "passed" and entry["score"] == test.score
            assert entry["name"] == f"{EX5}: {described[test.name] or test.name}"
    assert gradescope_results(report, hidden="hidden")["tests"][0]["visibility"] in ("visible", "hidden")
    with pytest.raises(ValueError):
        gradescope_results(report, hidden="public")


def test_gradescope_names_fall_back_to_the_pytest_id_and_output_is_escaped():
    report = make_report("bob", False)
    report.notes.append("handed in <b>both</b> .py & .ipynb")
    results = gradescope_results(report, descriptions={})
    first = report.exercises[EX5].tests[0]
    assert results["tests"][0]["name"] == f"{EX5}: {first.name}" and results["tests"][0]["status"] == "failed"
    assert "&lt;b&gt;both&lt;/b&gt; .py &amp; .ipynb" in results["output"] and "<b>" not in results["output"]
    assert results["output_format"] == "simple_format" and "await review" in results["output"]
    json.dumps(results)


def test_canvas_csv_has_points_possible_and_ids():
    reports = [make_report("340934", True, {"canvas_id": "340934", "name": "smithbob"}), make_report("bob", False)]
    rows = list(csv.reader(io.StringIO(canvas_csv(reports, "CNN week", "777"))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "CNN week (777)"]
    assert rows[1][0].strip() == "Points Possible" and float(rows[1][5]) == reports[0].total["max_score"]
    assert rows[2][:2] == ["smithbob", "340934"] and float(rows[2][5]) == reports[0].total["score"]
    assert rows[3][:2] == ["bob", ""] and float(rows[3][5]) == 0


@pytest.fixture
def graded(tmp_path):
    out = tmp_path / "reports"
    reports = [make_report("alice", True), make_report("bob", False)]
    for r in reports:
        write_student_report(out, r)
    write_class_outputs(out, reports, [EX5])
    return out


def read_rows(path):
    return list(csv.DictReader(path.open()))


def test_manual_round_trip(graded, capsys):
    assert main(["manual", "export", str(graded)]) == 0
    sheet = graded / "manual_grading.csv"
    rows = read_rows(sheet)
    cfg = load_exercise(EX5)
    assert len(rows) == 2 * len(cfg.manual)
    prompts = {m.name: m.prompt for m in cfg.manual}
    for row in rows:
        assert row["points"] == "" and row["rubric"] == prompts[row["question"]]
        assert row["answer"] == f"{row['student']} explains {row['question']}"
    rows[0]["points"], rows[0]["comment"] = rows[0]["max_points"], "clear"
    rows[1]["points"] = "0.5"
    with sheet.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["manual", "import", str(sheet), "--out", str(graded)]) == 0

    report = json.loads((graded / rows[0]["student"] / "report.json").read_text())
    items = {t["name"]: t for t in report["exercises"][EX5]["tests"]}
    full, half = items[rows[0]["question"]], items[rows[1]["question"]]
    assert (full["status"], full["score"]) == ("passed", float(rows[0]["max_points"]))
    assert (half["status"], half["score"]) == ("failed", 0.5) and "Reviewed" in half["output"]
    auto = sum(t["score"] for t in items.values() if t["name"] not in prompts)
    assert report["total"]["score"] == pytest.approx(auto + full["score"] + 0.5)
    assert report["total"]["manual_pending"] == pytest.approx(len(cfg.manual) - 2)
    results = json.loads((graded / rows[0]["student"] / "results.json").read_text())
    assert results["score"] == pytest.approx(report["total"]["score"])
    gradebook = {r["student"]: r for r in read_rows(graded / "gradebook.csv")}
    assert float(gradebook[rows[0]["student"]]["total"]) == pytest.approx(report["total"]["score"])
    canvas = list(csv.reader((graded / "canvas_gradebook.csv").open()))
    assert float({r[0]: r[5] for r in canvas[2:]}[rows[0]["student"]]) == pytest.approx(report["total"]["score"])
    # Exported again, the reviewed answers are gone from the to-do list.
    assert main(["manual", "export", str(graded), "--file", str(graded / "again.csv")]) == 0
    assert len(read_rows(graded / "again.csv")) == 2 * len(cfg.manual) - 2


@pytest.mark.parametrize("change,message", [
    ({"points": "7"}, "outside"), ({"points": "-1"}, "outside"), ({"points": "lots"}, "not a number"),
    ({"student": "mallory"}, "unknown student"), ({"question": "EXPLANATIONS.nope"}, "no free-text question"),
    ({"exercise": "ex9_missing"}, "no exercise"),
])
def test_manual_import_rejects_bad_rows_and_writes_nothing(graded, capsys, change, message):
    assert main(["manual", "export", str(graded)]) == 0
    sheet = graded / "manual_grading.csv"
    rows = read_rows(sheet)
    rows[0]["points"] = "1"                 # a valid row first: it must not be applied either
    rows[1].update({"points": "1", **change})
    with sheet.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = {p: p.read_bytes() for p in graded.rglob("*") if p.is_file() and p != sheet}
    capsys.readouterr()
    assert main(["manual", "import", str(sheet), "--out", str(graded)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnngrade: error: manual_grading.csv line 3") and message in err and "\n" not in err
    assert {p: p.read_bytes() for p in graded.rglob("*") if p.is_file() and p != sheet} == before
