"""Grades out: Gradescope results.json, Canvas's gradebook CSV and Moodle's worksheet read back as each LMS reads
them, and the manual grading round trip."""
from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil

import pytest

from cnngrade.cli import main
from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.records import ExerciseResult, StudentReport
from cnngrade.records import TestResult as Result
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.lms import LmsSettings, member_reports, parse_canvas_assignment, read_id_map, save_settings
from cnngrade.report.lms_gradebooks import canvas_csv, moodle_worksheet, read_worksheet
from cnngrade.report.lms_gradescope import gradescope_results

EX5 = "ex5_alexnet_analysis"
EX1 = "ex1_output_size"


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
    rows = list(csv.reader(io.StringIO(canvas_csv(reports, "CNN week", "777", count_pending=True))))
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
    with path.open() as fh:
        return list(csv.DictReader(fh))


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
    # Still pending for both students: neither is in the Canvas import (no Canvas ids here: no notes about it).
    assert [r[0] for r in csv.reader(io.StringIO((graded / "canvas_gradebook.csv").read_text()))][2:] == []
    assert (graded / "lms_notes.txt").read_text() == ""
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


# -- Canvas and Moodle round trips ----------------------------------------------------------------------------
ASSIGNMENT_COLUMN = re.compile(r"(?P<title>.+) \((?P<id>\d+)\)")


def canvas_import(text: str) -> dict:
    """Read a gradebook CSV as Canvas's importer does (GradebookImporter): the student columns by their header,
    the assignment by its '(id)', an optional Points Possible row, then students by ID (else by name)."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert "Student" in header[0] and "ID" in header[1] and "Section" in header[4], header
    assert len(header) == 6, "one assignment column: any other column would be a new assignment"
    column = ASSIGNMENT_COLUMN.fullmatch(header[5])
    body = rows[1:]
    possible = float(body.pop(0)[5]) if body and "Points Possible" in body[0][0] else None
    scores = {}
    for row in body:
        key = row[1] or f"name:{row[0]}"
        assert key not in scores, f"{key} twice"
        scores[key] = float(row[5])   # numeric: a score cell is never a formula-escaped text
    return {"title": column["title"] if column else header[5], "id": column["id"] if column else None,
            "possible": possible, "scores": scores}


def auto_report(student: str, score_all: bool, info: dict | None = None) -> StudentReport:
    """A report with ex5's automatic tests only (nothing pending)."""
    report = make_report(student, score_all, info)
    ex = report.exercises[EX5]
    ex.tests = [t for t in ex.tests if t.status != "manual"]
    return report


def test_canvas_round_trip_with_ids_pending_partners_and_id_map():
    partners = json.dumps([{"student": "ann", "name": "Ann Lee", "email": "ann@uni.edu", "sid": ""}])
    reports = [auto_report("340934", True, {"canvas_id": "340934", "name": "smithbob"}),
               make_report("340935", True, {"canvas_id": "340935", "name": "doejane"}),      # answers pending
               auto_report("jane", False, {"name": "Jane Doe", "group_members": partners}),
               auto_report("=cmd", True)]
    notes: list[str] = []
    id_map = {"jane": "501", "ann": "502", "absent": "503"}
    text = canvas_csv(member_reports(reports), "CNN week", "123456", id_map=id_map, notes=notes)
    got = canvas_import(text)
    assert (got["title"], got["id"]) == ("CNN week", "123456")
    assert got["possible"] == pytest.approx(reports[1].total["max_score"])   # the most any student can earn
    full = reports[0].total["score"]
    assert got["scores"] == {"340934": full, "501": 0.0, "502": 0.0, "name:'=cmd": full, "503": 0.0}
    assert "340935" not in got["scores"]    # pending: left out until reviewed
    joined = "\n".join(notes)
    assert "left out until their free-text answers are reviewed" in joined and "340935" in joined
    assert "matched by name only" in joined and "=cmd" in joined and "handed in nothing" in joined
    # --count-pending posts the points so far; without an id the column makes a new assignment, and says so.
    notes = []
    got = canvas_import(canvas_csv(reports, count_pending=True, notes=notes))
    assert got["id"] is None and got["scores"]["340935"] == reports[1].total["score"]
    assert any("creates a new assignment" in n for n in notes)


def test_group_partners_get_the_groups_row_in_every_gradebook(tmp_path):
    partners = [{"student": "ann", "name": "Ann Lee", "email": "ann@uni.edu", "sid": ""},
                {"student": "bob", "name": "Bob (own submission)", "email": "", "sid": ""}]
    group = auto_report("jane", True, {"name": "Jane Doe", "group_members": json.dumps(partners)})
    reports = [group, auto_report("bob", False)]
    out = tmp_path / "reports"
    for r in reports:
        write_student_report(out, r)
    write_class_outputs(out, reports, [EX5])
    book = {r["student"]: r for r in read_rows(out / "gradebook.csv")}
    assert sorted(book) == ["ann", "bob", "jane"]     # bob keeps the row of his own submission
    assert book["ann"]["total"] == book["jane"]["total"] and float(book["bob"]["total"]) == 0
    assert canvas_import((out / "canvas_gradebook.csv").read_text())["scores"]["name:Ann Lee"] == \
        pytest.approx(group.total["score"])
    assert not (out / "ann").exists()    # one report for the group


@pytest.mark.parametrize("value", ["CNN week", "CNN week (12a)", "(123)", "CNN\nweek (12)", ""])
def test_canvas_assignment_must_be_name_and_id(tmp_path, capsys, value):
    assert parse_canvas_assignment("CNN week (123456)") == ("CNN week", "123456")
    assert parse_canvas_assignment("CNN (part 1) (77)") == ("CNN (part 1)", "77")
    (tmp_path / "class").mkdir()
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", "ex1",
                 "--canvas-assignment", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnngrade: error: --canvas-assignment") and "Name (id)" in err and err.count("\n") == 0
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,message", [
    ("name,id\nalice,1\n", "must name the columns student,lms_id"),
    ("", "must name the columns"),
    ("student,lms_id\n", "lists no student"),
    ("student,lms_id\nalice,1\nalice,2\n", "line 3: student 'alice' is listed twice"),
    ("student,lms_id\nalice,1\nbob,1\n", "line 3: LMS id 1 is given to both 'alice' and 'bob'"),
    ("student,lms_id\nalice,12x\n", "line 2: expected a student id and a numeric LMS id"),
    ("student,lms_id\n,12\n", "line 2: expected"),
])
def test_id_map_is_read_strictly(tmp_path, capsys, content, message):
    good = tmp_path / "good.csv"
    good.write_bytes("\ufeffStudent,Name,LMS_ID\nalice,Alice A,11\n\nbob,,12\n".encode())
    assert read_id_map(good) == {"alice": "11", "bob": "12"}
    bad = tmp_path / "ids.csv"
    bad.write_text(content)
    (tmp_path / "class").mkdir()
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", "ex1",
                 "--id-map", str(bad)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnngrade: error: --id-map ids.csv") and message in err and "\n" not in err


# A worksheet as Moodle writes it (PHP's fputcsv quotes cells with spaces; a byte-order mark; an online-text
# column holding commas, quotes and a line break; CRLF line ends).
WORKSHEET = ('\ufeffIdentifier,"Full name","Email address",Status,Grade,"Maximum Grade","Grade can be changed",'
             '"Last modified (submission)","Online text","Last modified (grade)","Feedback comments"\r\n'
             '"Participant 12345","Bob Smith",bob@uni.edu,"Submitted for grading",,10.00,Yes,'
             '"Monday, 2 March 2026, 10:00 AM","<p>see ""ex1"", line 2\r\nthanks</p>",-,\r\n'
             '"Participant 12346","Jane Doe",jane@uni.edu,"No submission",7.50,10.00,Yes,-,,'
             '"Tuesday, 3 March 2026, 9:00 AM","=keep me"\r\n'
             '"Participant 12347","Ann Lee",ann@uni.edu,"Submitted for grading",,10.00,Yes,-,,-,\r\n')


def moodle_upload(text: str) -> dict[str, str]:
    """Read a worksheet as Moodle's upload does (assignfeedback_offline): columns found by their English header,
    the participant number at the end of Identifier, the Grade as written."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.removeprefix("\ufeff") for h in rows[0]]
    at = {c: header.index(c) for c in ("Identifier", "Grade", "Last modified (grade)")}
    return {re.search(r"\d+$", r[at["Identifier"]])[0]: r[at["Grade"]] for r in rows[1:] if r}


def test_moodle_worksheet_round_trip_changes_only_grade_cells(tmp_path):
    source = tmp_path / "worksheet.csv"
    source.write_bytes(WORKSHEET.encode())
    settings = LmsSettings(moodle_worksheet=read_worksheet(source), worksheet_name="worksheet.csv",
                           id_map={"ann": "12347"})
    reports = [auto_report("12345", True, {"moodle_id": "12345", "name": "Bob Smith"}),
               make_report("12346", True, {"moodle_id": "12346", "name": "Jane Doe"}),    # pending
               auto_report("12399", True, {"moodle_id": "12399", "name": "Not Enrolled"})]
    notes: list[str] = []
    out = moodle_worksheet(reports, settings, notes)
    before, after = (list(csv.reader(io.StringIO(t, newline=""))) for t in (WORKSHEET, out))
    grade = before[0].index("Grade")
    changed = {(i, j) for i, (a, b) in enumerate(zip(before, after)) for j, (x, y) in enumerate(zip(a, b)) if x != y}
    assert changed == {(1, grade), (3, grade)} and len(before) == len(after)
    assert out.startswith("\ufeffIdentifier,") and out.count("\r\n") == WORKSHEET.count("\r\n")
    # Byte for byte the worksheet once the two filled-in grades are emptied again.
    assert out.replace(f",{after[1][grade]},10.00", ",,10.00", 1).replace(",0,10.00", ",,10.00", 1) == WORKSHEET
    uploaded = moodle_upload(out)
    assert float(uploaded["12345"]) == pytest.approx(reports[0].total["score"])
    assert uploaded["12346"] == "7.50"       # pending review: the grade Moodle had stays
    assert uploaded["12347"] == "0"          # in the id map, handed in nothing
    joined = "\n".join(notes)
    assert "Not Enrolled" in joined and "not in the worksheet" in joined and "12346" in joined
    # Without a worksheet: only what the upload reads, for the participants Moodle's download named.
    scratch = moodle_upload(moodle_worksheet(reports, LmsSettings(), []))
    assert scratch == {"12345": uploaded["12345"], "12399": uploaded["12345"]}


@pytest.mark.parametrize("content,message", [
    ("Identifier,Grade\nParticipant 1,\n", "no column 'Last modified (grade)'"),
    ('Identifier,Grade,Last modified (grade)\n"Participant 1,\n', "can fill in safely"),
    (b"Identifier,Grade,Last modified (grade)\n\xff\n", "not UTF-8"),
])
def test_moodle_worksheet_is_checked_before_grading(tmp_path, capsys, content, message):
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "class").mkdir()
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"), "--exercises", "ex1",
                 "--moodle-worksheet", str(sheet)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnngrade: error:") and message in err and "\n" not in err


def test_manual_import_keeps_the_lms_settings_and_posts_reviewed_students(graded):
    save_settings(graded, LmsSettings(canvas_title="CNN week", canvas_id="42", id_map={"alice": "7", "bob": "8"}))
    assert main(["manual", "export", str(graded)]) == 0
    sheet = graded / "manual_grading.csv"
    rows = read_rows(sheet)
    for row in rows:
        row["points"] = row["max_points"] if row["student"] == "alice" else ""
    with sheet.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["manual", "import", str(sheet), "--out", str(graded)]) == 0
    got = canvas_import((graded / "canvas_gradebook.csv").read_text())
    alice = json.loads((graded / "alice" / "report.json").read_text())
    assert got["id"] == "42" and got["scores"] == {"7": pytest.approx(alice["total"]["score"])}   # bob: pending
    assert "bob" in (graded / "lms_notes.txt").read_text()


# -- docs/instructors.md's "Send grades back" commands, run with grading replaced by a stand-in -----------------
def doc_commands() -> list[list[str]]:
    text = (PROJECT_ROOT / "docs" / "instructors.md").read_text()
    section = text[text.index("## 5. Send grades back"):text.index("## Similar code")]
    blocks = re.findall(r"```\n(.*?)\n```", section, re.DOTALL)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


def stand_in_grading(monkeypatch) -> None:
    """Every exercise handed in earns full points, every other is missing: no worker, no sandbox, milliseconds."""
    from cnngrade.grading import backends, pipeline
    from cnngrade.grading.score import unavailable_result

    def grade(task, sub):
        results = {}
        for exercise, cfg in task.configs.items():
            results[exercise] = unavailable_result(cfg, "missing", "not handed in")
            if exercise in sub.modules:
                for t in results[exercise].tests:
                    t.score, t.status = t.max_score, "passed"
        return StudentReport(sub.student, results, task.profile.to_json(), "test", sub.error, info=dict(sub.info),
                             notes=list(sub.notes))

    monkeypatch.setattr(backends.StudentTask, "__call__", grade)
    monkeypatch.setattr(backends.LocalPool, "check", lambda self, isolation: None)
    monkeypatch.setattr(pipeline, "check_graders", lambda *args: None)   # a pytest run each


@pytest.mark.slow
def test_every_send_grades_back_command_of_the_docs_is_run(tmp_path, monkeypatch, capsys):
    from tests.test_intake import make_zip

    stand_in_grading(monkeypatch)
    code = b"def conv_output_size(*a):\n    return 1\n"
    paths = {
        "canvas-download.zip": make_zip(tmp_path / "canvas.zip", {
            f"smithbob_340934_1001_{EX1}.py": code, "doejane_340935_text.html": b"<p>essay</p>"}),
        "moodle-download.zip": make_zip(tmp_path / "moodle.zip", {
            f"Bob Smith_12345_assignsubmission_file_{EX1}.py": code,
            "Jane Doe_12346_assignsubmission_onlinetext_onlinetext.html": b"<p>hi</p>"}),
        "ids.csv": tmp_path / "ids.csv", "worksheet.csv": tmp_path / "worksheet.csv",
        "submissions/": tmp_path / "submissions", "reports/": tmp_path / "reports"}
    (tmp_path / "submissions" / "alice").mkdir(parents=True)
    (tmp_path / "submissions" / "alice" / f"{EX1}.py").write_bytes(code)
    (tmp_path / "ids.csv").write_text("student,lms_id\nalice,501\ncarol,502\n")
    (tmp_path / "worksheet.csv").write_bytes(WORKSHEET.encode())
    commands = doc_commands()
    assert [c[:2] for c in commands] == [["cnngrade", "grade"]] * 3
    assert {"--canvas-assignment", "--id-map", "--moodle-worksheet"} <= {w for c in commands for w in c}
    full = sum(t.points for t in load_exercise(EX1).tests)
    outcomes = []
    for command in commands:
        shutil.rmtree(tmp_path / "reports", ignore_errors=True)
        argv = [str(paths.get(w, w)) for w in command[1:]] + ["--exercises", "ex1", "--profile", "cpu"]
        assert main(argv) == 0, command
        out = tmp_path / "reports"
        settings = json.loads((out / "lms_settings.json").read_text())
        moodle = (out / "moodle_grades.csv").read_text() if (out / "moodle_grades.csv").exists() else ""
        outcomes.append((canvas_import((out / "canvas_gradebook.csv").read_text()), moodle, settings))
    (canvas, _, _), (folders, _, _), (moodle_canvas, moodle, settings) = outcomes
    # A Canvas download: user ids in the ID column, the text-only student a row of 0.
    assert canvas["id"] == "123456" and canvas["scores"] == {"340934": full, "340935": 0.0}
    # A folder class with the id map: ids from the map, the student who handed in nothing posted as 0.
    assert folders["scores"] == {"501": full, "502": 0.0}
    # A Moodle download with the worksheet: Bob's grade filled in, Jane (only online text) 0, the rest as it was.
    uploaded = moodle_upload(moodle)
    assert float(uploaded["12345"]) == full and uploaded["12346"] == "0" and uploaded["12347"] == ""
    assert settings["worksheet_name"] == "worksheet.csv" and moodle_canvas["id"] is None
