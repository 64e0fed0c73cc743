"""Submissions as they arrive: student zips (safe or hostile), notebooks, and Canvas, Moodle and Gradescope downloads."""
from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.grading.pipeline import grade_class
from cnngrade.intake.archives import ArchiveError, ArchiveLimits, safe_extract
from cnngrade.intake.collect import collect_class
from cnngrade.intake.entries import module_name
from cnngrade.intake.layouts import detect_layout
from cnngrade.intake.notebooks import NOTE, neutralise_magics, notebook_to_source
from cnngrade.intake.stub_notebooks import notebook_text, stub_notebook_text

EX1 = "ex1_output_size"
SOLUTION = PROJECT_ROOT / "solutions" / f"{EX1}.py"
STUB = PROJECT_ROOT / "exercises" / f"{EX1}.py"


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def magic_notebook() -> str:
    """The reference solution as a notebook, with line magics, a shell escape and a %%bash cell added."""
    nb = nbformat.reads(notebook_text(SOLUTION.read_text()), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("%matplotlib inline\n!touch /tmp/cnngrade-magic-ran\nimport math"))
    nb.cells.append(nbformat.v4.new_code_cell("%%bash\ntouch /tmp/cnngrade-cell-magic-ran"))
    nb.cells.append(nbformat.v4.new_code_cell("if True:\n    %time math.sqrt(4)\nfiles = !ls"))
    return nbformat.writes(nb)


# -- archives ---------------------------------------------------------------------------------

def test_safe_extract_keeps_ordinary_files(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"sub/ex1_output_size.py": b"x = 1\n", "__MACOSX/._junk": b"?"})
    written = safe_extract(archive, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["sub/ex1_output_size.py"]
    assert not (tmp_path / "out" / "__MACOSX").exists()


@pytest.mark.parametrize("members,links,why", [
    ({"../escape.py": b"x"}, None, "leaves its folder"),
    ({"/etc/evil.py": b"x"}, None, "absolute path"),
    ({"ok.py": b"x"}, {"link.py": "/etc/passwd"}, "symbolic link"),
    ({"big.py": b"0" * (3 << 20)}, None, "expands more than"),
], ids=["dotdot", "absolute", "symlink", "ratio"])
def test_safe_extract_refuses_hostile_archives(tmp_path, members, links, why):
    archive = make_zip(tmp_path / "bad.zip", members, links)
    with pytest.raises(ArchiveError, match=why):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "a refused archive must leave nothing behind"
    assert not (tmp_path / "escape.py").exists()


def test_safe_extract_counts_real_bytes_and_files(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.py": b"y" * 1000 for i in range(20)})
    with pytest.raises(ArchiveError, match="entries"):
        safe_extract(archive, tmp_path / "a", ArchiveLimits(max_files=10))
    with pytest.raises(ArchiveError, match="expands past"):
        safe_extract(archive, tmp_path / "b", ArchiveLimits(max_bytes=5000))
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError, match="not a readable"):
        safe_extract(tmp_path / "junk.zip", tmp_path / "c")
    encrypted = make_zip(tmp_path / "locked.zip", {"a.py": b"x = 1\n"})
    data = bytearray(encrypted.read_bytes())
    for at in (6, data.rfind(b"PK\x01\x02") + 8):     # set the 'encrypted' flag in both headers
        data[at] |= 1
    encrypted.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="not a readable"):
        safe_extract(encrypted, tmp_path / "d")


# -- notebooks --------------------------------------------------------------------------------

def test_magics_become_inert_and_python_is_untouched():
    plain = 'text = """\n%not a magic inside a string\n"""\nx = 5 % 3\n'
    assert neutralise_magics(plain) == plain
    out = neutralise_magics("import os\n%matplotlib inline\n!rm -rf /\nif True:\n    !ls\n")
    compile(out, "<cell>", "exec")
    assert out.count(NOTE) == 3 and "import os" in out
    bash = neutralise_magics("%%bash\nrm -rf /\necho done")
    assert all(line.startswith("#") for line in bash.splitlines())
    timed = neutralise_magics("%%time\ny = sum(range(10))")
    assert "y = sum(range(10))" in timed.splitlines()


def test_future_import_in_a_later_cell_is_hoisted():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import math"),
                                         nbformat.v4.new_code_cell("from __future__ import annotations\nx: int = 1")])
    source = notebook_to_source(nb)
    assert source.startswith("from __future__ import annotations\n")
    compile(source, "<nb>", "exec")


def test_stub_notebooks_are_in_sync_with_the_stubs(tmp_path):
    """exercises/<name>.ipynb is what `cnngrade notebooks build` makes from exercises/<name>.py."""
    stubs = sorted((PROJECT_ROOT / "exercises").glob("ex*.py"))
    assert len(stubs) == 8
    for stub in stubs:
        committed = stub.with_suffix(".ipynb")
        assert committed.is_file(), f"{committed.name} is missing: run `cnngrade notebooks build`"
        assert committed.read_text() == stub_notebook_text(stub), \
            f"{committed.name} is out of date: run `cnngrade notebooks build`"


# -- LMS layouts ------------------------------------------------------------------------------

def test_canvas_download_grouped_by_user_id(tmp_path):
    root = tmp_path / "canvas"
    root.mkdir()
    (root / "smithbob_340934_1001_ex1_output_size.py").write_text("a = 1\n")
    (root / "smithbob_340934_1002_ex3_receptive_fields-1.py").write_text("b = 1\n")
    (root / "doejane_LATE_340935_1003_ex1_output_size-2.ipynb").write_text(notebook_text(STUB.read_text()))
    (root / "anon_Xy12_1004_ex1_output_size.py").write_text("c = 1\n")
    (root / "smithbob_340934_text.html").write_text("<p>hi</p>")
    assert detect_layout(root) == "canvas"
    subs = {s.student: s for s in collect_class(root, [EX1, "ex3_receptive_fields"], layout="auto",
                                                 staging=tmp_path / "stage")}
    assert sorted(subs) == ["340934", "340935", "anon_Xy12"]
    bob, jane = subs["340934"], subs["340935"]
    assert bob.modules[EX1].read_text() == "a = 1\n"
    assert bob.modules["ex3_receptive_fields"].name == "ex3_receptive_fields.py"
    assert bob.info == {"canvas_id": "340934", "name": "smithbob"}
    assert jane.info["late"] == "yes" and EX1 in jane.modules  # the notebook, staged as a .py
    assert subs["anon_Xy12"].info["canvas_id"] == ""


def test_a_zipped_download_is_unwrapped_unless_it_is_one_students_folder(tmp_path):
    from cnngrade.intake.layouts import class_entries

    wrapped = make_zip(tmp_path / "canvas.zip", {f"dl/smithbob_340934_1001_{EX1}.py": b"a = 1\n",
                                                 f"dl/doejane_340935_1002_{EX1}.py": b"b = 1\n"})
    assert [e.student for e in class_entries(wrapped, "auto", tmp_path / "s1")] == ["340934", "340935"]
    single = make_zip(tmp_path / "one.zip", {f"alice/{EX1}.py": b"a = 1\n"})
    assert [e.student for e in class_entries(single, "auto", tmp_path / "s2")] == ["alice"]


def test_module_name_strips_only_canvas_resubmission_suffixes():
    assert module_name("ex1_output_size-1.py") == "ex1_output_size.py"
    assert module_name("ex4_shape_tracking-12.ipynb") == "ex4_shape_tracking.ipynb"
    assert module_name("helper-1.py") == "helper-1.py"


def test_moodle_folders_grouped_by_participant(tmp_path):
    root = tmp_path / "moodle"
    (root / "Bob Smith_12345_assignsubmission_file_").mkdir(parents=True)
    (root / "Bob Smith_12345_assignsubmission_file_" / f"{EX1}.py").write_text("a = 1\n")
    (root / "Jane Doe_12346_assignsubmission_file_").mkdir()
    make_zip(root / "Jane Doe_12346_assignsubmission_file_" / "work.zip", {f"hw/{EX1}.py": b"b = 2\n"})
    (root / "Jane Doe_12346_assignsubmission_onlinetext_").mkdir()
    (root / "Jane Doe_12346_assignsubmission_onlinetext_" / "onlinetext.html").write_text("notes")
    assert detect_layout(root) == "moodle"
    subs = {s.student: s for s in collect_class(root, [EX1], staging=tmp_path / "stage")}
    assert sorted(subs) == ["12345", "12346"]
    assert subs["12346"].modules[EX1].read_text() == "b = 2\n"
    assert subs["12345"].info["name"] == "Bob Smith"


def test_moodle_flat_download_grouped_by_participant(tmp_path):
    """'Download submissions in folders' off: every file at the top, prefixed with name, id and plugin."""
    root = tmp_path / "moodle-flat"
    root.mkdir()
    (root / f"Bob Smith_12345_assignsubmission_file_{EX1}.py").write_text("a = 1\n")
    (root / "Bob Smith_12345_assignsubmission_file_ex3_receptive_fields-1.py").write_text("c = 3\n")
    make_zip(root / "Jane Doe_12346_assignsubmission_file_work.zip", {f"hw/{EX1}.py": b"b = 2\n"})
    (root / "Jane Doe_12346_assignsubmission_onlinetext_onlinetext.html").write_text("<p>notes</p>")
    (root / f"Ann Lee_12347_assignsubmission_onlinetext_{EX1}.py").write_text("not the file plugin\n")
    assert detect_layout(root) == "moodle"
    subs = {s.student: s for s in collect_class(root, [EX1, "ex3_receptive_fields"], staging=tmp_path / "stage")}
    assert sorted(subs) == ["12345", "12346", "12347"]
    bob, jane, ann = subs["12345"], subs["12346"], subs["12347"]
    assert bob.modules[EX1].read_text() == "a = 1\n" and bob.modules["ex3_receptive_fields"].read_text() == "c = 3\n"
    assert bob.info == {"moodle_id": "12345", "name": "Bob Smith"}
    assert jane.modules[EX1].read_text() == "b = 2\n" and not ann.modules and not ann.error


def test_canvas_text_only_student_gets_an_entry(tmp_path):
    root = tmp_path / "canvas"
    root.mkdir()
    (root / f"smithbob_340934_1001_{EX1}.py").write_text("a = 1\n")
    (root / "smithbob_340934_text.html").write_text("<p>also text</p>")
    (root / "doejane_LATE_340935_text.html").write_text("<p>my essay</p>")
    (root / "leeann_340936_link.html").write_text("<a href='x'>x</a>")
    subs = {s.student: s for s in collect_class(root, [EX1], staging=tmp_path / "stage")}
    assert sorted(subs) == ["340934", "340935", "340936"]
    jane = subs["340935"]
    assert jane.info["canvas_id"] == "340935" and not jane.modules and not jane.error and not jane.problems
    assert any("text or URL entry" in n for n in jane.notes)
    assert subs["340934"].modules and not any("text or URL" in n for n in subs["340934"].notes)
    assert "text_entry" not in subs["340934"].info


def test_gradescope_export_uses_submission_metadata(tmp_path):
    root = tmp_path / "gs"
    for sid in ("111", "222"):
        (root / f"submission_{sid}").mkdir(parents=True)
        (root / f"submission_{sid}" / f"{EX1}.py").write_text(f"who = {sid}\n")
    meta = {"submission_111": {":submitters": [{":name": "Bob Smith", ":sid": "s1", ":email": "bob@uni.edu"}]},
            "submission_222": {":submitters": [{":name": "Jane Doe", ":email": "jane@uni.edu"},
                                               {":name": "Ann Lee", ":email": "ann@uni.edu"}]}}
    (root / "submission_metadata.yml").write_text(yaml.safe_dump(meta))
    subs = {s.student: s for s in collect_class(root, [EX1], layout="gradescope", staging=tmp_path / "stage")}
    assert sorted(subs) == ["jane", "s1"]
    assert subs["s1"].modules[EX1].read_text() == "who = 111\n"
    assert subs["jane"].info["gradescope_submission"] == "222"
    assert any("Ann Lee" in n for n in subs["jane"].notes)
    # The partner is known by the same rule as the submitter; the gradebooks give her the group's row.
    assert json.loads(subs["jane"].info["group_members"]) == [
        {"student": "ann", "name": "Ann Lee", "email": "ann@uni.edu", "sid": ""}]
    assert "group_members" not in subs["s1"].info


# -- end to end: one class, every kind of bad entry, the rest still graded -----------------------

@pytest.mark.slow
def test_bad_entries_are_per_student_errors_in_one_batch(tmp_path):
    klass = tmp_path / "class"
    (klass / "magic_nb").mkdir(parents=True)
    (klass / "magic_nb" / f"{EX1}.ipynb").write_text(magic_notebook())
    (klass / "broken_nb").mkdir()
    (klass / "broken_nb" / f"{EX1}.ipynb").write_text('{"cells": [ oops')
    (klass / "not_nb").mkdir()
    (klass / "not_nb" / f"{EX1}.ipynb").write_text(json.dumps({"hello": "world"}))
    make_zip(klass / "dotdot.zip", {f"../{EX1}.py": SOLUTION.read_bytes()})
    make_zip(klass / "symlink.zip", {"a.py": b"x"}, {f"{EX1}.py": "/etc/passwd"})
    make_zip(klass / "bomb.zip", {f"{EX1}.py": b"#" * (20 << 20)})
    make_zip(klass / "zipped.zip", {f"{EX1}.py": STUB.read_bytes()})
    for marker in ("/tmp/cnngrade-magic-ran", "/tmp/cnngrade-cell-magic-ran"):
        Path(marker).unlink(missing_ok=True)
    reports = {r.student: r for r in grade_class(klass, tmp_path / "out", [EX1], jobs=2)}
    assert sorted(reports) == ["bomb", "broken_nb", "dotdot", "magic_nb", "not_nb", "symlink", "zipped"]

    def outcome(student):
        ex = reports[student].exercises[EX1]
        return ex.score, {t.status for t in ex.tests}, ex.tests[0].output

    auto_max = sum(t.points for t in load_exercise(EX1).tests)
    assert outcome("magic_nb")[0] == auto_max        # graded like the .py, magics commented out
    assert not Path("/tmp/cnngrade-magic-ran").exists() and not Path("/tmp/cnngrade-cell-magic-ran").exists()
    assert outcome("zipped")[0] == 0 and "missing" not in outcome("zipped")[1]   # the stub, graded
    for student, why in [("broken_nb", "not valid JSON"), ("not_nb", "not a Jupyter notebook"),
                         ("dotdot", "leaves its folder"), ("symlink", "symbolic link"), ("bomb", "expands")]:
        score, statuses, output = outcome(student)
        assert (score, statuses) == (0, {"error"}), (student, statuses)
        assert why in output, (student, output)
    # The LMS files sit next to the reports.
    results = json.loads((tmp_path / "out" / "magic_nb" / "results.json").read_text())
    assert results["score"] == auto_max
    assert sum(t["max_score"] for t in results["tests"]) == reports["magic_nb"].total["max_score"]
    assert (tmp_path / "out" / "canvas_gradebook.csv").is_file()


def test_oversized_notebook_is_refused(tmp_path, monkeypatch):
    from cnngrade.intake import notebooks

    path = tmp_path / f"{EX1}.ipynb"
    path.write_text(notebook_text(STUB.read_text()))
    monkeypatch.setattr(notebooks, "MAX_NOTEBOOK_BYTES", path.stat().st_size - 1)
    with pytest.raises(notebooks.NotebookError, match="not graded"):
        notebooks.read_notebook(path)


@pytest.mark.slow
def test_grade_command_takes_a_canvas_zip(tmp_path, capsys):
    """`cnngrade grade download.zip` on Canvas's bulk download: reports per user id, Canvas ids in its CSV."""
    from cnngrade.cli import main

    download = make_zip(tmp_path / "course-cnn_submissions.zip", {
        f"smithbob_340934_1001_{EX1}-1.py": STUB.read_bytes(),
        f"doejane_340935_1002_{EX1}.ipynb": b"{ not json",
        "leeann_340936_text.html": b"<p>only text</p>",
    })
    out = tmp_path / "out"
    assert main(["grade", str(download), "--out", str(out), "--exercises", "ex1", "--quiet",
                 "--canvas-assignment", "CNN week (123456)"]) == 0
    bob = json.loads((out / "340934" / "report.json").read_text())
    assert bob["info"]["canvas_id"] == "340934" and bob["exercises"][EX1]["tests"][0]["status"] == "failed"
    jane = json.loads((out / "340935" / "report.json").read_text())
    assert {t["status"] for t in jane["exercises"][EX1]["tests"]} == {"error"}
    rows = (out / "canvas_gradebook.csv").read_text().splitlines()
    assert rows[0].endswith(",Section,CNN week (123456)") and "Points Possible" in rows[1]
    assert rows[2].startswith("smithbob,340934,") and rows[3].startswith("doejane,340935,")
    assert rows[4] == "leeann,340936,,,,0"    # handed in only a text entry: a row, every exercise missing
    assert json.loads((out / "340935" / "results.json").read_text())["score"] == 0
