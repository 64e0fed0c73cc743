"""Notebook students: the stub notebooks, experiment cells left out at grading, and which of .py/.ipynb is graded."""
from __future__ import annotations

import ast
import json
import os
import re
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from cnngrade import records
from cnngrade.config import PROJECT_ROOT, load_exercise
from cnngrade.intake import collect
from cnngrade.intake.collect import choose_form, collect_student, name_handed_in
from cnngrade.intake.notebooks import (
    EXPERIMENT_MARK,
    EXPERIMENT_TAG,
    convert_notebook,
    notebook_to_source,
    read_notebook,
)
from cnngrade.intake.stub_notebooks import HOW_TO, stub_notebook_text

EX1 = "ex1_output_size"
STUBS = PROJECT_ROOT / "exercises"
SOLUTION = PROJECT_ROOT / "solutions" / f"{EX1}.py"
FOREVER = "while True:\n    pass"


def stub_notebook(exercise: str = EX1):
    return nbformat.reads(stub_notebook_text(STUBS / f"{exercise}.py"), as_version=4)


def pasted(nb, solution: str):
    """The stub notebook with the solution's definitions and answers pasted over the stub's, cell by cell."""
    tree = ast.parse(solution)
    pieces = {}
    for node in tree.body:
        name = getattr(node, "name", "") or next((t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)), "")
        if name:
            pieces[name] = ast.get_source_segment(solution, node)
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.startswith("%"):
            continue
        names = [getattr(n, "name", "") or next((t.id for t in getattr(n, "targets", []) if isinstance(t, ast.Name)), "")
                 for n in ast.parse(cell.source).body]
        if names and all(n in pieces for n in names):
            cell.source = "\n\n".join(pieces[n] for n in names)
    return nb


def with_cells(nb, *cells):
    nb.cells.extend(cells)
    return nbformat.writes(nb)


def experiment_cell(source: str, tagged: bool):
    cell = nbformat.v4.new_code_cell(source if tagged else f"{EXPERIMENT_MARK}\n{source}")
    if tagged:
        cell.metadata["tags"] = [EXPERIMENT_TAG]
    return cell


# -- the stub notebooks ---------------------------------------------------------------------------

@pytest.mark.slow
def test_stub_notebooks_have_questions_magic_answers_and_experiments():
    for stub in sorted(STUBS.glob("ex*_*.py")):
        nb = read_notebook(stub.with_suffix(".ipynb"))   # the committed one, validated by nbformat
        assert nbformat.writes(nb) + "\n" == stub_notebook_text(stub), f"{stub.name}: run `cnngrade notebooks build`"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "%matplotlib inline" in [c.source for c in code[:2]]   # after the imports: __future__ stays first
        markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
        assert markdown[0].startswith("# Exercise") and HOW_TO in markdown
        questions = [m for m in markdown if re.match(r"### \d+\. ", m)]
        assert len(questions) >= 2, stub.name
        manual = load_exercise(stub.stem).manual
        answers = [c for c in code if "answer" in c.metadata.get("tags", [])]
        assert len(answers) == len(manual), stub.name
        for item, cell in zip(manual, answers):
            root, _, key = item.name.partition(".")
            target = f'{root}["{key}"]' if key else root
            assert cell.source.startswith(f"# answer: {target} "), cell.source
            assert f"{target} = None" in cell.source
        experiments = [c for c in code if EXPERIMENT_TAG in c.metadata.get("tags", [])]
        assert [c.source.splitlines()[0] for c in experiments] == [EXPERIMENT_MARK] * len(experiments)
        assert bool(experiments) == (stub.stem in ("ex6_cifar10_training", "ex8_ablation")), stub.name
        if experiments:   # the training run is there, and out of the graded module
            assert "download=True" in experiments[0].source
            assert "download=True" not in notebook_to_source(nb)


def test_the_stub_notebook_with_the_answers_pasted_reads_them_back(tmp_path):
    """Free-text cells keep the contract's names: EXPLANATIONS.relu set in its own cell reaches the module."""
    nb = stub_notebook("ex5_alexnet_analysis")
    for cell in nb.cells:
        if cell.source.startswith('# answer: EXPLANATIONS["relu"]'):
            cell.source = cell.source.replace("= None", '= """Non-saturating, so gradients flow."""')
    module: dict = {}
    exec(compile(notebook_to_source(nb), "<nb>", "exec"), module)   # noqa: S102 - our own generated stub
    assert module["EXPLANATIONS"] == {"relu": "Non-saturating, so gradients flow.", "dropout": None,
                                      "augmentation": None}


@pytest.mark.slow
def test_the_completed_stub_notebook_runs_in_jupyter_and_shows_figures():
    """In a real kernel: %matplotlib inline shows a Figure a cell returns; experiment cells run there."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = pasted(stub_notebook(), SOLUTION.read_text())
    figure = "import matplotlib.figure\nfigure = matplotlib.figure.Figure()\nfigure.add_subplot().plot([1, 2])\nfigure"
    nb.cells.append(experiment_cell(figure, tagged=False))
    nb.cells.append(nbformat.v4.new_code_cell("print(conv_output_size(32, 3, 1, 1), ANSWERS['d'])"))
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert any("image/png" in out.get("data", {}) for out in nb.cells[-2].outputs)
    assert nb.cells[-1].outputs[0]["text"] == "32 112\n"


# -- experiment cells ----------------------------------------------------------------------------------

def test_experiment_cells_are_left_out_and_their_definitions_reported():
    nb = stub_notebook()
    nb.cells.append(experiment_cell(FOREVER, tagged=True))
    nb.cells.append(experiment_cell("def helper():\n    return 1\nraise SystemExit", tagged=False))
    nb.cells.append(nbformat.v4.new_code_cell("# Experiment: also marked, any case\nimport this"))
    nb.cells.append(nbformat.v4.new_code_cell("x = 1 / 0"))
    converted = convert_notebook(nb)
    assert FOREVER not in converted.source and "SystemExit" not in converted.source
    assert "import this" not in converted.source and "x = 1 / 0" in converted.source
    count = len(nb.cells)
    assert converted.experiments == [count - 3, count - 2, count - 1]
    assert converted.lost == [f"cell {count - 2} defines helper"]
    # Each cell's first line in the module is known: a traceback's line becomes the cell's own.
    start, number, first = converted.cells[-1]
    assert number == count and first == "x = 1 / 0"
    assert converted.source.splitlines()[start - 1] == "x = 1 / 0"


# -- which form is graded -------------------------------------------------------------------------------

def student(tmp_path: Path, py: str | None, notebook: str | None, newer: str = "") -> Path:
    folder = tmp_path / "alice"
    folder.mkdir()
    if py is not None:
        (folder / f"{EX1}.py").write_text(py)
    if notebook is not None:
        (folder / f"{EX1}.ipynb").write_text(notebook)
    if newer:
        old = time.time() - 3600
        other = ".py" if newer == ".ipynb" else ".ipynb"
        os.utime(folder / f"{EX1}{other}", (old, old))
    return folder


@pytest.mark.parametrize("py,nb,newer,graded,note", [
    ("stub", "edited", "", ".ipynb", f"graded {EX1}.ipynb ({EX1}.py beside it is the untouched stub)"),
    ("edited", "stub", ".ipynb", ".py", f"graded {EX1}.py ({EX1}.ipynb beside it is the untouched stub)"),
    ("edited", "edited", ".ipynb", ".ipynb", f"graded {EX1}.ipynb, the one saved last"),
    ("edited", "edited", ".py", ".py", f"graded {EX1}.py, the one saved last"),
    ("stub", "stub", "", ".py", "both the untouched stub"),
    ("stub", "broken", "", ".ipynb", f"graded {EX1}.ipynb"),
])
def test_the_form_the_student_worked_in_is_graded(tmp_path, py, nb, newer, graded, note):
    texts = {"stub": (STUBS / f"{EX1}.py").read_text(), "edited": SOLUTION.read_text()}
    notebooks = {"stub": stub_notebook_text(STUBS / f"{EX1}.py"), "edited": nbformat.writes(pasted(stub_notebook(),
                 SOLUTION.read_text())), "broken": '{"cells": [ oops'}
    folder = student(tmp_path, texts[py], notebooks[nb], newer)
    chosen, said = choose_form(folder / f"{EX1}.py", folder / f"{EX1}.ipynb", EX1, folder)
    assert chosen.suffix == graded and note in said
    sub = collect_student(folder, [EX1], tmp_path / "stage")
    assert any(note in n for n in sub.notes)
    assert (sub.handed_in.get(EX1, "").endswith(".ipynb")) == (graded == ".ipynb")


def test_without_the_stubs_the_notebook_metadata_tells_the_untouched_stub(tmp_path, monkeypatch):
    """On a student's laptop (cnngrade from the wheel, no exercises/), the stub notebook's own digests decide."""
    monkeypatch.setattr(collect, "STUBS_DIR", tmp_path / "nowhere")
    collect._stub_files.cache_clear()
    try:
        folder = student(tmp_path, (STUBS / f"{EX1}.py").read_text().replace("\n", "\r\n"),
                         nbformatted := nbformat.writes(pasted(stub_notebook(), SOLUTION.read_text())), newer=".py")
        assert nbformatted
        chosen, _ = choose_form(folder / f"{EX1}.py", folder / f"{EX1}.ipynb", EX1, folder)
        assert chosen.suffix == ".ipynb"   # the .py is newer, but it is the stub (CRLF and all)
    finally:
        collect._stub_files.cache_clear()


def test_archive_member_times_decide_between_two_edited_files(tmp_path):
    archive = tmp_path / "class" / "alice.zip"
    archive.parent.mkdir()
    edited_nb = nbformat.writes(pasted(stub_notebook(), SOLUTION.read_text()))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(f"{EX1}.py", (2026, 3, 1, 10, 0, 0)), SOLUTION.read_text() + "\n# more\n")
        zf.writestr(zipfile.ZipInfo(f"{EX1}.ipynb", (2026, 3, 1, 11, 0, 0)), edited_nb)
    [sub] = collect.collect_class(archive.parent, [EX1], staging=tmp_path / "stage")
    assert sub.handed_in == {EX1: f"{EX1}.ipynb"}
    assert any("the one saved last" in n for n in sub.notes)


def test_messages_name_the_notebook_and_its_cell(tmp_path):
    sub = collect.StudentSubmission("alice", tmp_path, handed_in={EX1: f"{EX1}.ipynb"},
                                    cells={EX1: [(20, 3, "def conv_output_size(...")]})
    output = (f'conv_output_size(size=1) on <your {EX1}.py> raised\n'
              f'  File "/tmp/w/submission/{EX1}.py", line 23, in conv_output_size\n'
              f'importing {EX1}.py raised ZeroDivisionError')
    result = records.ExerciseResult(EX1, "ex1", [records.TestResult("t", 0, 1, "failed", output)])
    text = name_handed_in(result, sub).tests[0].output
    assert f"<your {EX1}.ipynb>" in text and f"importing {EX1}.ipynb raised" in text
    assert f'File "{EX1}.ipynb", cell 3 ("def conv_output_size(..."), line 4, in conv_output_size' in text
    assert f"{EX1}.py" not in text


# -- graded end to end ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_notebook_edited_beside_its_stub_is_graded_with_experiments_left_out(tmp_path):
    """The bundle as a notebook student leaves it: ex1's .py untouched, the .ipynb completed, with a training cell
    tagged as an experiment (which would never end) and one marked by its first line (which would raise)."""
    from cnngrade.grading.pipeline import grade_class

    klass = tmp_path / "class"
    nb = pasted(stub_notebook(), SOLUTION.read_text())
    done = with_cells(nb, experiment_cell(FOREVER, tagged=True), experiment_cell("raise SystemExit(3)", tagged=False))
    (klass / "nb").mkdir(parents=True)
    (klass / "nb" / f"{EX1}.py").write_text((STUBS / f"{EX1}.py").read_text())
    (klass / "nb" / f"{EX1}.ipynb").write_text(done)
    broken = pasted(stub_notebook(), SOLUTION.read_text())
    broken.cells.append(nbformat.v4.new_code_cell("import math\nscale = 1 / 0"))
    (klass / "crash").mkdir()
    (klass / "crash" / f"{EX1}.ipynb").write_text(nbformat.writes(broken))
    reports = {r.student: r for r in grade_class(klass, tmp_path / "out", [EX1], jobs=2)}
    auto_max = sum(t.points for t in load_exercise(EX1).tests)
    ex = reports["nb"].exercises[EX1]
    assert ex.score == auto_max, [(t.name, t.status, t.output[:200]) for t in ex.tests]
    saved = json.loads((tmp_path / "out" / "nb" / "report.json").read_text())
    assert f"{EX1}: graded {EX1}.ipynb ({EX1}.py beside it is the untouched stub)" in saved["notes"]
    assert any("2 experiment cell(s)" in n for n in saved["notes"])
    crash = reports["crash"].exercises[EX1].tests[0].output
    assert f"{EX1}.ipynb" in crash and f"{EX1}.py" not in crash, crash
    assert f'cell {len(broken.cells)} ("import math"), line 2' in crash, crash
    assert documented(r'for example `(File "ex1_output_size.ipynb", cell \d+ \("import math"\), line 2)`') in crash


# -- docs/students.md ------------------------------------------------------------------------------------------

STUDENTS_MD = PROJECT_ROOT / "docs" / "students.md"


def documented(pattern: str) -> str:
    """The one piece of docs/students.md that ``pattern``'s group matches (lines joined)."""
    found = re.findall(pattern, " ".join(STUDENTS_MD.read_text().split()))
    assert len(found) == 1, pattern
    return found[0]


def test_students_md_names_the_marks_the_notebooks_use():
    text = " ".join(STUDENTS_MD.read_text().split())
    for mark in (f"`{EXPERIMENT_MARK}`", f"cell tag `{EXPERIMENT_TAG}`", "`%matplotlib inline`", "`# answer:`"):
        assert mark in text, mark


@pytest.mark.slow
def test_the_documented_check_of_an_edited_notebook_says_which_file(tmp_path, monkeypatch, capsys):
    """docs/students.md's check command in the bundle, ex1 completed in its notebook beside the untouched .py:
    the public tests pass and the first lines are the note the page shows."""
    from cnngrade.cli import main
    from cnngrade.export.release import ROOT, bundle_files

    for name, text in bundle_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    bundle = tmp_path / ROOT
    notebook = bundle / "exercises" / f"{EX1}.ipynb"
    nb = pasted(nbformat.reads(notebook.read_text(), as_version=4), SOLUTION.read_text())
    notebook.write_text(with_cells(nb, experiment_cell(FOREVER, tagged=True)))
    command = re.findall(r"```bash\n(.*?)\n```", STUDENTS_MD.read_text(), re.DOTALL)[0].splitlines()[-1]
    assert command == "cnngrade check exercises --graders public_tests --exercises ex1"
    monkeypatch.chdir(bundle)
    assert main(command.split()[1:]) == 0
    out = capsys.readouterr().out
    assert "all public tests pass" in out
    assert documented(r"in a line such as `(note: ex1_output_size: graded [^`]*)`") in out.splitlines()
