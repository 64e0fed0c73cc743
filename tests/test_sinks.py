"""Hostile data on the trusted side: budgets, CSV and terminal sinks, ids, notebooks, printed output, paths."""
from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile

import nbformat
import pytest
import yaml

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT, ManualSpec, load_exercise
from cnngrade.errors import SubmissionImportError, WorkerTimeout
from cnngrade.grading.answers import manual_answer, unread
from cnngrade.grading.pipeline import grade_class
from cnngrade.grading.score import exercise_result, manual_result
from cnngrade.intake import notebooks
from cnngrade.intake.collect import collect_class
from cnngrade.intake.notebooks import NotebookError, notebook_to_source
from cnngrade.intake.stub_notebooks import notebook_text
from cnngrade.records import Answer, ExerciseResult, StudentReport
from cnngrade.records import TestResult as Result
from cnngrade.report.files import gradebook_csv
from cnngrade.report.lms_gradebooks import canvas_csv
from cnngrade.report.manual import apply_csv, export_csv
from cnngrade.report.table import score_table
from cnngrade.sinks import ANSWER_CHARS, clip, csv_cell, csv_value, fit_report, scrub_paths, student_id, terminal_text

EX1 = "ex1_output_size"
SOLUTION = PROJECT_ROOT / "solutions" / f"{EX1}.py"
FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=x", "'=x", "'", "plain", "a\nb"]


# -- the pieces --------------------------------------------------------------------------------------

def test_clip_keeps_head_and_tail_and_says_how_much_went():
    text = "A" * 50_000 + "Z"
    out = clip(text, 4_000)
    assert len(out) <= 4_000 and out.startswith("A") and out.endswith("Z") and "characters cut" in out
    assert clip("short", 10) == "short"


@pytest.mark.parametrize("value", FORMULAS)
def test_csv_cells_are_text_and_read_back_unchanged(value):
    cell = csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert csv_value(cell) == value


def test_carriage_returns_cannot_break_rows():
    assert csv_cell("\r=x") == "\n=x" and csv_cell("line\r\nnext\rlast") == "line\nnext\nlast"


def test_terminal_text_shows_escapes_instead_of_acting():
    shown = terminal_text("al\x1b[2Jice\u202e\x07")
    assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
    assert "\\x1b[2J" in shown and "ice" in shown


@pytest.mark.parametrize("raw, expected", [
    ("alice", "alice"), ("José", "José"), ("Jose\u0301", "José"), ("a b", "a_b"), ("\x1b[31malice", "__31malice"),
    ("../x", "_x"), ("-rf", "rf"), ("...", "unknown"), ("index.html", "student-index.html"), ("=1+2", "_1_2"),
])
def test_student_ids_are_normalised(raw, expected):
    assert student_id(raw) == expected


def test_machine_paths_leave_file_name_and_line():
    text = ('Traceback (most recent call last):\n'
            '  File "/tmp/cnngrade-worker-x1/submission/ex1_output_size.py", line 12, in conv_output_size\n'
            '  File "/usr/lib/python3/dist-packages/torch/nn/modules/conv.py", line 454, in forward\n'
            "FileNotFoundError: '/rt/cnngrade/worker/img.png' see https://pytorch.org/docs/stable/nn.html, 3/4")
    out = scrub_paths(text)
    assert '"ex1_output_size.py", line 12' in out and '"conv.py", line 454' in out
    assert "/tmp" not in out and "/usr" not in out and "/rt" not in out and "dist-packages" not in out
    assert "https://pytorch.org/docs/stable/nn.html" in out and "3/4" in out


# -- free-text answers ---------------------------------------------------------------------------------

def test_a_huge_answer_is_cut_with_a_note():
    result = manual_result(ManualSpec("NOTES", 1.0), Answer("word " * 2_000_000))
    assert result.status == "manual" and len(result.answer) <= ANSWER_CHARS
    assert "cut to" in result.output and "characters cut" in result.answer


def test_an_unread_answer_is_an_error_never_no_answer():
    spec = ManualSpec("EXPLANATIONS.relu", 1.0)
    lost = manual_result(spec, manual_answer(spec.name, ["EXPLANATIONS"], {}, ("EXPLANATIONS", WorkerTimeout("x"))))
    assert (lost.status, lost.grader_error) == ("error", True)
    config = load_exercise("ex5_alexnet_analysis")
    never = exercise_result(config, {}, {})   # answers a plugin never read: errors of the grader, not "no answer"
    assert {(t.status, t.grader_error) for t in never.tests if t.name.startswith("EXPLANATIONS")} == {("error", True)}
    broken = manual_result(spec, unread(SubmissionImportError("importing ex5.py raised SyntaxError")))
    assert (broken.status, broken.grader_error) == ("error", False) and "does not import" in broken.output
    undefined = manual_result(spec, manual_answer(spec.name, [], {}, None))
    # Nothing to read is not "pending review": it scores 0 at once, and stays a free-text item (score.unanswered).
    assert (undefined.status, undefined.score, undefined.unanswered, undefined.free_text) == ("failed", 0.0, True, True)
    assert "not defined" in undefined.output
    good = manual_result(spec, manual_answer(spec.name, ["EXPLANATIONS"], {"EXPLANATIONS": {"relu": "x" * 50}}, None))
    assert good.status == "manual" and good.answer == "x" * 50


# -- CSV and terminal sinks -------------------------------------------------------------------------------

def _report(student: str, answer: str, name: str = "") -> StudentReport:
    tests = [Result("test_a", 1.0, 1.0, "passed"),
             Result("NOTES", 0.0, 2.0, "manual", output="Awaiting review", visibility="public", answer=answer)]
    return StudentReport(student, {EX1: ExerciseResult(EX1, "t", tests)}, {"name": "cpu"}, "0",
                         info={"name": name} if name else {})


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_every_csv_sink_neutralises_formulas_and_manual_import_reads_them_back(tmp_path):
    reports = [_report(f"@id{i}", value, name=value) for i, value in enumerate(FORMULAS)]
    for text in (gradebook_csv(reports, [EX1]), canvas_csv(reports), export_csv(reports, tmp_path)):
        assert not [c for c in _cells(text) if c.startswith(("=", "+", "-", "@", "\t", "\r"))], text
    exported = export_csv(reports, tmp_path)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [csv_value(r["answer"]) for r in rows] == FORMULAS
    for row in rows:
        row["points"], row["comment"] = "1.5", "=looks fine"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    merged = apply_csv(reports, buf.getvalue(), "manual_grading.csv")
    notes = [t for r in merged for t in r.exercises[EX1].tests if t.name == "NOTES"]
    assert all(t.score == 1.5 for t in notes)   # every "@id" student was found again
    assert all(t.metrics["comment"] == "=looks fine" for t in notes)


def test_score_table_shows_escape_sequences_in_ids():
    table = score_table([_report("evil\x1b[2J\x1b]0;pwned\x07", "x")], [EX1])
    assert "\x1b" not in table and "\x07" not in table and "\\x1b" in table


def test_a_report_over_its_budget_is_cut():
    report = _report("alice", "x" * 10)
    report.exercises[EX1].student_output = "y" * 300_000
    report.exercises[EX1].tests[0].metrics["figure_png"] = "A" * 300_000
    assert fit_report(report, limit=200_000)
    assert len(json.dumps(report.to_dict())) <= 200_000


# -- intake ------------------------------------------------------------------------------------------------

def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_two_entries_with_one_id_are_refused_by_name(tmp_path, capsys):
    klass = tmp_path / "class"
    (klass / "alice").mkdir(parents=True)
    shutil.copy(SOLUTION, klass / "alice" / f"{EX1}.py")
    _zip(klass / "alice.zip", {f"{EX1}.py": SOLUTION.read_bytes()})
    (klass / "bob").mkdir()
    shutil.copy(SOLUTION, klass / "bob" / f"{EX1}.py")
    (klass / "c\x1bd").mkdir()
    subs = {s.student: s for s in collect_class(klass, [EX1], staging=tmp_path / "stage")}
    assert sorted(subs) == ["alice", "bob", "c_d"]
    assert "'alice'" in subs["alice"].error and "'alice.zip'" in subs["alice"].error
    assert not subs["bob"].error and EX1 in subs["bob"].modules
    err = capsys.readouterr().err
    assert "alice.zip" in err and "\x1b" not in err


def test_gradescope_ids_are_normalised_and_collisions_refused(tmp_path):
    root = tmp_path / "gs"
    meta = {}
    for folder, sid in (("submission_1", "s\x1b[2J1"), ("submission_2", "=dup"), ("submission_3", "+dup")):
        (root / folder).mkdir(parents=True)
        shutil.copy(SOLUTION, root / folder / f"{EX1}.py")
        meta[folder] = {":submitters": [{":name": "=HYPERLINK(1)", ":sid": sid}]}
    (root / "submission_metadata.yml").write_text(yaml.safe_dump(meta))
    subs = {s.student: s for s in collect_class(root, [EX1], layout="gradescope", staging=tmp_path / "stage")}
    assert sorted(subs) == ["_dup", "s__2J1"]
    assert "submission_2" in subs["_dup"].error and "submission_3" in subs["_dup"].error
    assert not subs["s__2J1"].error


def test_a_surprise_in_one_students_step_is_their_error(tmp_path, monkeypatch):
    klass = tmp_path / "class"
    for name in ("alice", "bob"):
        (klass / name).mkdir(parents=True)
    (klass / "alice" / f"{EX1}.ipynb").write_text(notebook_text(SOLUTION.read_text()))
    shutil.copy(SOLUTION, klass / "bob" / f"{EX1}.py")
    _zip(klass / "carol.zip", {f"{EX1}.py": b"x = 1\n"})

    def explode(*args, **kwargs):
        raise MemoryError("nobody saw this coming")

    monkeypatch.setattr("cnngrade.intake.collect.stage_notebook", explode)
    monkeypatch.setattr("cnngrade.intake.entries.safe_extract", lambda *a, **k: (_ for _ in ()).throw(RecursionError()))
    subs = {s.student: s for s in collect_class(klass, [EX1], staging=tmp_path / "stage")}
    assert "MemoryError" in subs["alice"].problems[EX1]
    assert "RecursionError" in subs["carol"].error
    assert EX1 in subs["bob"].modules


# -- notebooks ------------------------------------------------------------------------------------------------

def deep_json_notebook() -> str:
    return '{"cells": ' + "[" * 200_000 + "]" * 200_000 + ', "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def code_notebook(*cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def ipython_notebook() -> str:
    """The reference solution as a notebook that uses IPython-only syntax, markdown and raw cells."""
    nb = nbformat.reads(notebook_text(SOLUTION.read_text()), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("import torch.nn as nn\nnn.Conv2d?\n%matplotlib inline\n"
                                                 "!pip install x\nfiles = !ls\n??nn.Linear"))
    nb.cells.append(nbformat.v4.new_markdown_cell("What is `x?` here? %magic !bang"))
    nb.cells.append(nbformat.v4.new_raw_cell("this is not = python ("))
    nb.cells.append(nbformat.v4.new_code_cell("display(conv_output_size(28, 5))\nquestion = 'why?'"))
    return nbformat.writes(nb)


def test_deep_json_and_compile_bombs_are_refused_without_crashing(tmp_path):
    cases = {"deep.ipynb": deep_json_notebook(),
             "nested.ipynb": code_notebook("x = " + "(" * 5_000 + "1" + ")" * 5_000),
             "long.ipynb": code_notebook("x = " + "+".join(["1"] * 300_000))}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(NotebookError) as info:
            notebooks.stage_notebook(tmp_path / name, tmp_path / "out", EX1)
        assert name in str(info.value)


def test_ipython_syntax_is_inert_and_the_rest_is_python():
    nb = nbformat.reads(ipython_notebook(), as_version=4)
    source = notebook_to_source(nb)
    namespace: dict = {}
    exec(compile(source, "m", "exec"), namespace)   # noqa: S102 - our own conversion of our own notebook
    assert namespace["conv_output_size"](28, 5) == 24 and namespace["files"] is None
    assert "get_ipython()" not in source and "this is not = python" not in source and "%magic" not in source
    assert "question = 'why?'" in source


# -- end to end: one ex1 class -----------------------------------------------------------------------------

PRINTING = SOLUTION.read_text() + '''
print("IMPORT-MARK")
_conv = conv_output_size
_seen = []


def conv_output_size(size, kernel_size, padding=0, stride=1):
    if size < 1 or kernel_size < 1 or padding < 0 or stride < 1:
        print("HIDDEN-MARK", size, kernel_size, padding, stride)
    elif not _seen:                     # valid arguments: only public tests use them
        _seen.append(print("PUBLIC-MARK"))
    return _conv(size, kernel_size, padding, stride)


NOTES = "=HYPERLINK(\\"http://evil\\")" + " padding" * 10_000
'''
CRASHING = SOLUTION.read_text() + '''
def conv_output_size(size, kernel_size, padding=0, stride=1):
    open("/no/such/folder/file.txt")
'''


def _graders_with_notes(dest):
    """ex1's grader plus one free-text item (NOTES), so an ex1 class exercises the manual path."""
    target = dest / EX1
    shutil.copytree(GRADERS_DIR / EX1, target, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((target / "grader.yaml").read_text())
    config["manual"] = {"NOTES": {"points": 1, "min_chars": 10, "prompt": "Anything to add?"}}
    (target / "grader.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    klass, out = root / "class", root / "out"
    students = {"printer": PRINTING, "@SUM(A1)": PRINTING, "crasher": CRASHING}
    for name, text in students.items():
        (klass / name).mkdir(parents=True)
        (klass / name / f"{EX1}.py").write_text(text)
    for name, text in {"deepjson": deep_json_notebook(), "ipython": ipython_notebook(),
                       "bomb": code_notebook("x = " + "(" * 5_000 + "1" + ")" * 5_000)}.items():
        (klass / name).mkdir()
        (klass / name / f"{EX1}.ipynb").write_text(text)
    (klass / "alice").mkdir()
    shutil.copy(SOLUTION, klass / "alice" / f"{EX1}.py")
    _zip(klass / "alice.zip", {f"{EX1}.py": SOLUTION.read_bytes()})
    reports = grade_class(klass, out, [EX1], jobs=2, graders_dir=_graders_with_notes(root / "graders"))
    return out, {r.student: r for r in reports}


def _auto(report):
    return [t for t in report.exercises[EX1].tests if t.name != "NOTES"]


@pytest.mark.slow
def test_hostile_classmates_do_not_stop_the_batch(graded):
    out, reports = graded
    assert sorted(reports) == ["@SUM_A1_", "alice", "bomb", "crasher", "deepjson", "ipython", "printer"]
    for name in ("deepjson", "bomb"):
        assert {t.status for t in reports[name].exercises[EX1].tests} == {"error"}
        assert not reports[name].grader_errors
    assert "alice.zip" in reports["alice"].error
    for name in ("printer", "ipython"):
        auto = _auto(reports[name])
        assert all(t.status == "passed" for t in auto), [(t.name, t.output) for t in auto if t.status != "passed"]
    rows = list(csv.reader(io.StringIO((out / "gradebook.csv").read_text())))
    assert [r[0] for r in rows].count("alice") == 1 and "'@SUM_A1_" in [r[0] for r in rows]


@pytest.mark.slow
def test_answers_are_read_cut_and_neutralised(graded, tmp_path):
    out, reports = graded
    notes = next(t for t in reports["printer"].exercises[EX1].tests if t.name == "NOTES")
    assert notes.status == "manual" and notes.answer.startswith("=HYPERLINK") and len(notes.answer) <= ANSWER_CHARS
    assert "cut to" in notes.output
    exported = export_csv(list(reports.values()), graded_graders(out))
    assert "'=HYPERLINK" in exported
    missing = next(t for t in reports["alice"].exercises[EX1].tests if t.name == "NOTES")
    assert missing.status == "error"   # alice's entry is refused: no answer was read, and it says so


def graded_graders(out):
    return out.parent / "graders"


@pytest.mark.slow
def test_students_see_only_what_they_printed_in_public_tests(graded):
    out, reports = graded
    ex = reports["printer"].exercises[EX1]
    assert "IMPORT-MARK" in ex.student_output and "PUBLIC-MARK" in ex.student_output
    assert "HIDDEN-MARK" not in ex.student_output and "hidden test(s)" in ex.student_output
    hidden = [t for t in ex.tests if t.visibility == "hidden"]
    assert all("HIDDEN-MARK" in t.metrics.get("printed", "") for t in hidden)   # the instructor's view
    for name in ("feedback.html", "results.json"):
        text = (out / "printer" / name).read_text()
        assert "HIDDEN-MARK" not in text
    assert "HIDDEN-MARK" in (out / "printer" / "report.json").read_text()


@pytest.mark.slow
def test_no_machine_path_reaches_a_student(graded):
    out, reports = graded
    crash = [t for t in _auto(reports["crasher"]) if t.status == "failed"]
    assert crash and any("FileNotFoundError" in t.output for t in crash)
    assert any(f'"{EX1}.py", line' in t.output for t in crash)
    for student in ("crasher", "printer", "ipython"):
        for name in ("feedback.html", "results.json"):
            text = (out / student / name).read_text()
            for path in ("/tmp/", "/work/", "site-packages", "dist-packages", "/rt/", str(PROJECT_ROOT)):
                assert path not in text, (student, name, path)


SLEEPER = SOLUTION.read_text() + '''
import time

_conv = conv_output_size


def conv_output_size(size, kernel_size, padding=0, stride=1):
    time.sleep(1)                       # every call is slow: the exercise's whole time goes in the first tests
    return _conv(size, kernel_size, padding, stride)


NOTES = "My written answer, which must survive however slow my code is."
'''


@pytest.mark.slow
def test_answers_survive_an_exercise_whose_time_ran_out(tmp_path):
    graders = _graders_with_notes(tmp_path / "graders")
    config = graders / EX1 / "grader.yaml"
    config.write_text(config.read_text().replace("time_limit: 120", "time_limit: 12"))
    (tmp_path / "class" / "slow").mkdir(parents=True)
    (tmp_path / "class" / "slow" / f"{EX1}.py").write_text(SLEEPER)
    [report] = grade_class(tmp_path / "class", tmp_path / "out", [EX1], graders_dir=graders)
    tests = {t.name: t for t in report.exercises[EX1].tests}
    assert any("total time limit" in t.output for t in tests.values())   # the time really ran out
    assert tests["NOTES"].status == "manual" and tests["NOTES"].answer.startswith("My written answer")
    assert tests["test_answer[a]"].status == "passed"   # ANSWERS was read at load too
