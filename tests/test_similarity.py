"""cnngrade similarity: disguised copies are flagged, honest variants are not, and the pages are safe and render."""
from __future__ import annotations

import ast
import builtins
import csv
import difflib
import io
import json
import keyword
import re
import shlex
import shutil
import tokenize
from pathlib import Path

import nbformat
import pytest

from cnngrade.cli import main
from cnngrade.commands.similarity import PairProgress
from cnngrade.config import EXERCISES, PROJECT_ROOT
from cnngrade.intake.stub_notebooks import notebook_text, source_cells
from cnngrade.report import similarity, similarity_page
from cnngrade.report.dashboard import similarity_section
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.similarity import Document, compare_exercise
from tests.harness import SUBMISSIONS
from tests.test_html import chromium_render, make_report, needs_chromium, visible_text

EX3 = "ex3_receptive_fields"
HOSTILE = "</pre><script>alert('owned')</script><img src=x onerror=alert(1)>"

# What a copier does by hand to solutions/ex3_receptive_fields.py: new names everywhere, the functions in
# another order, the answers moved up, every comment and docstring reworded, the free text rewritten.
DISGUISED_EX3 = '''"""Exercise 3 - my own work."""
from __future__ import annotations

from collections.abc import Callable

ANSWERS = {
    "rf_five_convs": 11,
    "rf_with_pools": 24,
    "max_pool": [[8.0, 7.0], [5.0, 9.0]],
}


def avg_pool2d(matrix: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    # mean of every window
    return _slide(matrix, size, stride, lambda cells: sum(cells) / len(cells))


def max_pool2d(matrix: list[list[float]], size: int = 2, stride: int = 2) -> list[list[float]]:
    # biggest value of every window
    return _slide(matrix, size, stride, max)


def _slide(
    matrix: list[list[float]], size: int, stride: int, combine: Callable[[list[float]], float]
) -> list[list[float]]:
    # check the inputs first
    if size < 1 or stride < 1:
        raise ValueError(f"bad window: size={size}, stride={stride}")
    if not matrix or not matrix[0] or any(len(r) != len(matrix[0]) for r in matrix):
        raise ValueError("matrix has to be rectangular")
    rows, cols = len(matrix), len(matrix[0])
    if size > rows or size > cols:
        raise ValueError(f"window too big for {rows}x{cols}")
    n_rows = (rows - size) // stride + 1
    n_cols = (cols - size) // stride + 1

    def cells_at(a: int, b: int) -> list[float]:
        return [matrix[a * stride + p][b * stride + q] for p in range(size) for q in range(size)]

    return [[float(combine(cells_at(a, b))) for b in range(n_cols)] for a in range(n_rows)]


def receptive_field(layers: list[tuple[int, int]]) -> int:
    # grows by (k-1)*jump each layer
    field, step = 1, 1
    for k, s in layers:
        if k < 1 or s < 1:
            raise ValueError(f"k and s must be positive: ({k}, {s})")
        field += (k - 1) * step
        step *= s
    return field


AVG_VS_MAX = (
    "Max pooling only keeps the largest response per window; average pooling dilutes a single strong peak "
    "by mixing it with its neighbours, so max says whether a feature fired and average says how strongly."
)
'''


# ---- a copier, automated: reorder, rename, reword -------------------------------------------------------------

def disguise(source: str) -> str:
    """Every top-level block but the imports in reverse order, every name of the student's own renamed, every
    comment and docstring reworded (the code keeps working: imported and builtin names stay)."""
    _, cells = source_cells(source)
    imports = [c for c in cells if c.lstrip().startswith(("import ", "from "))]
    rest = [c for c in cells if c not in imports]
    return _rename("\n\n\n".join(['"""My own work."""', *imports, *reversed(rest)]) + "\n")


def _imported(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((getattr(node, "module", None) or "").split("."))
            for alias in node.names:
                found.update(alias.name.split("."))
                found.add(alias.asname or "")
    return found


def _docstring_lines(tree: ast.AST) -> set[int]:
    return {node.body[0].lineno for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None}


def _rename(text: str) -> str:
    tree = ast.parse(text)
    keep, docs = set(dir(builtins)) | {"self"} | _imported(tree), _docstring_lines(tree)
    names: dict[str, str] = {}
    out, prev = [], None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        kind, string = tok.type, tok.string
        if kind == tokenize.NAME and not keyword.iskeyword(string) and string not in keep \
                and not (prev is not None and prev.string == "."):
            string = names.setdefault(string, f"renamed_{len(names)}")
        elif kind == tokenize.COMMENT:
            string = "# in my own words"
        elif kind == tokenize.STRING and tok.start[0] in docs:
            string = '"""Described differently."""'
        out.append((kind, string))
        prev = tok
    return tokenize.untokenize(out)


# ---- helpers ---------------------------------------------------------------------------------------------------

def write_class(root: Path, files: dict[str, dict[str, str]]) -> Path:
    """A class folder: {student: {file name: text}}."""
    for student, items in files.items():
        for name, text in items.items():
            (root / student).mkdir(parents=True, exist_ok=True)
            (root / student / name).write_text(text, encoding="utf-8")
    return root


def solution(exercise: str) -> str:
    return (PROJECT_ROOT / "solutions" / f"{exercise}.py").read_text()


def good_variants(exercise: str) -> list[Path]:
    return sorted((SUBMISSIONS / exercise).glob("good_*.py"))


def flagged(result) -> set[frozenset[str]]:
    return {frozenset((p.a.student, p.b.student)) for p in result.flagged}


def run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:   # argparse's own errors and --help leave through exit()
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def notebook_of(source: str) -> str:
    """The source as a student's notebook: a markdown cell, a magic, and outputs that must not count."""
    nb = nbformat.reads(notebook_text(source), as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("## My notes\nI worked through the exercise."))
    nb.cells.insert(2, nbformat.v4.new_code_cell("%matplotlib inline"))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="def unrelated(): pass\n" * 50)]
    return nbformat.writes(nb)


# ---- the matcher -----------------------------------------------------------------------------------------------

def test_copydetect_normalises_names_comments_and_docstrings():
    """The check behind using copydetect's tokeniser as is: identifiers become one letter, comments, docstrings'
    words and layout vanish (so no tokenize pass of our own is needed)."""
    from copydetect.utils import filter_code

    one = 'def area(width, height):\n    """Area."""\n    # product\n    return width * height\n'
    two = 'def surface(a,b):\n  """Computes the surface of a rectangle."""\n  return a*b  # a times b\n'
    assert filter_code(one, "x.py", "python")[0] == filter_code(two, "x.py", "python")[0]


def edits_of(reference: str, paths: list[Path]) -> set[str]:
    """Variants that are the reference solution with a few lines changed (some good_*.py are written that way to
    test one grader): a copy detector must flag them, so they are not independent solutions."""
    return {p.stem for p in paths
            if difflib.SequenceMatcher(None, reference, p.read_text(), autojunk=False).ratio() >= 0.8}


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_a_disguised_copy_is_flagged_and_honest_variants_are_not(exercise):
    goods = good_variants(exercise)
    assert goods, f"{exercise} has no good_*.py variants"
    docs = [Document("alice", exercise, "a.py", solution(exercise)),
            Document("bob", exercise, "b.py", disguise(solution(exercise)))]
    docs += [Document(p.stem, exercise, p.name, p.read_text()) for p in goods]
    edits = edits_of(solution(exercise), goods)
    result = compare_exercise(exercise, docs)
    copies = edits | {"alice", "bob"}
    assert frozenset(("alice", "bob")) in flagged(result)
    assert all(pair <= copies for pair in flagged(result)), [(p.a.student, p.b.student, p.similarity)
                                                             for p in result.flagged]
    assert result.flagged[0].similarity >= 0.75
    assert all(frozenset(("alice", e)) in flagged(result) for e in edits)


def test_the_stub_itself_is_never_evidence():
    """Two students who handed in the untouched stub (plus one line each) share nothing of their own."""
    stub = (PROJECT_ROOT / "exercises" / f"{EX3}.py").read_text()
    docs = [Document("alice", EX3, "a", stub + "\nX = 1\n"), Document("bob", EX3, "b", stub + "\nY = 2\n")]
    assert compare_exercise(EX3, docs).flagged == []


def test_code_most_of_the_class_shares_is_common_ground():
    """With --ignore-common N, code in more than N students' files is left out like the stub (MOSS's -m)."""
    body = solution(EX3)
    docs = [Document(f"s{i}", EX3, "x", body) for i in range(4)]
    assert len(compare_exercise(EX3, docs, ignore_common=0).flagged) == 6
    assert compare_exercise(EX3, docs, ignore_common=3).flagged == []


# ---- the command -----------------------------------------------------------------------------------------------

@pytest.fixture
def klass(tmp_path) -> Path:
    """alice: the reference ex3; bob: alice's, disguised by hand; carol, dave: independent ones; erin: no ex3."""
    variants = good_variants(EX3)
    return write_class(tmp_path / "class", {
        "alice": {f"{EX3}.py": solution(EX3)},
        "bob": {f"{EX3}.py": DISGUISED_EX3},
        "carol": {f"{EX3}.py": variants[0].read_text()},
        "dave": {f"{EX3}.py": variants[1].read_text()},
        "erin": {"ex1_output_size.py": solution("ex1_output_size")},
    })


def test_the_command_flags_the_copy_and_writes_every_page(klass, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(["similarity", str(klass), "--out", str(out), "--exercises", "ex1,ex3"], capsys)
    assert code == 0, err
    assert f"{EX3}: 1 pair(s) at or above 0.6 of 6 compared" in stdout
    data = json.loads((out / "similarity" / "summary.json").read_text())
    pairs = data["exercises"][EX3]["flagged"]
    assert [(p["student_a"], p["student_b"]) for p in pairs] == [("alice", "bob")]
    assert data["exercises"]["ex1_output_size"]["flagged"] == [] and "score change" in data["note"]
    rows = list(csv.DictReader(io.StringIO((out / "similarity" / "summary.csv").read_text())))
    assert [(r["exercise"], r["student_a"], r["student_b"]) for r in rows] == [(EX3, "alice", "bob")]
    page = out / "similarity" / pairs[0]["page"]
    html = page.read_text()
    assert "never a score change" in html and html.count("<mark>") >= 5
    assert '<pre class="code">' in html and html.count('class="ln"') > 100
    index = (out / "similarity" / "index.html").read_text()
    assert "never a score change" in index and f'href="{pairs[0]["page"]}"' in index
    assert "Not compared" in index   # ex1: one file only


def test_a_notebook_and_a_py_of_the_same_code_compare_alike(tmp_path, capsys):
    code = good_variants(EX3)[-1].read_text()
    other = good_variants(EX3)[0].read_text()
    klass = write_class(tmp_path / "class", {"alice": {f"{EX3}.py": code}, "bob": {f"{EX3}.ipynb": notebook_of(code)},
                                             "carol": {f"{EX3}.ipynb": notebook_of(other)}})
    docs, _, _ = similarity.read_class(klass, [EX3])
    labels = {d.student: d.label for d in docs[EX3]}
    assert labels == {"alice": f"{EX3}.py", "bob": f"{EX3}.ipynb (code cells)", "carol": f"{EX3}.ipynb (code cells)"}
    result = compare_exercise(EX3, docs[EX3])
    assert flagged(result) == {frozenset(("alice", "bob"))}
    assert result.flagged[0].similarity >= 0.95


def test_a_zipped_class_and_zipped_students_are_read_as_grade_reads_them(klass, tmp_path):
    shutil.make_archive(str(klass / "carol"), "zip", klass / "carol")   # carol hands in a .zip of her folder
    shutil.rmtree(klass / "carol")
    archive = shutil.make_archive(str(tmp_path / "download"), "zip", tmp_path, "class")
    docs, notes, students = similarity.read_class(Path(archive), [EX3])
    assert students == 5 and notes[EX3] == []
    assert sorted(d.student for d in docs[EX3]) == ["alice", "bob", "carol", "dave"]
    assert flagged(compare_exercise(EX3, docs[EX3])) == {frozenset(("alice", "bob"))}


@pytest.mark.slow   # every variant of every exercise, through the intake
def test_independent_good_variants_are_never_flagged_through_the_command(tmp_path, capsys):
    """Every tests/submissions/<exercise>/good_*.py handed in by its own student: no pair at the defaults, but
    between two edits of the reference solution."""
    files: dict[str, dict[str, str]] = {}
    for exercise in EXERCISES:
        for path in good_variants(exercise):
            files.setdefault(path.stem, {})[f"{exercise}.py"] = path.read_text()
    klass = write_class(tmp_path / "class", files)
    code, _, err = run(["similarity", str(klass), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "out" / "similarity" / "summary.json").read_text())
    for exercise, found in data["exercises"].items():
        edits = edits_of(solution(exercise), good_variants(exercise))
        assert all({p["student_a"], p["student_b"]} <= edits for p in found["flagged"]), (exercise, found["flagged"])


def test_hostile_ids_and_contents_are_escaped(tmp_path):
    text = solution(EX3) + f"\n# {HOSTILE}\nNOTE = {HOSTILE!r}\n"
    a = Document(f"a{HOSTILE}", EX3, f"{HOSTILE}.py", text)
    b = Document("=HYPERLINK(\"http://x\")", EX3, "b.py", disguise(text))
    result = compare_exercise(EX3, [a, b])
    assert len(result.flagged) == 1
    similarity_page.write_pages(tmp_path, [result], similarity.DEFAULT_THRESHOLD, similarity.DEFAULT_IGNORE_COMMON)
    pages = list((tmp_path / "similarity").rglob("*.html"))
    assert len(pages) == 2
    for page in pages:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", page.name), page.name
        html = page.read_text().lower()
        assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
        assert "&lt;script&gt;" in html
    cells = list(csv.reader(io.StringIO((tmp_path / "similarity" / "summary.csv").read_text())))
    assert any(cell.startswith("'=HYPERLINK") for cell in cells[1])   # no formula for a spreadsheet to run


def test_the_dashboard_section_escapes_what_summary_json_holds(tmp_path):
    """summary.json sits in the report folder: the dashboard treats it as untrusted text."""
    hostile = {"exercises": {HOSTILE: {"pairs_compared": 1, "flagged": [{"student_a": HOSTILE, "student_b": 3}, 7]},
                             "ex1_output_size": "junk"}}
    html = similarity_section(hostile).lower()
    assert "<script" not in html and "<img" not in html and "1 pair(s)" in html
    (tmp_path / "similarity").mkdir()
    (tmp_path / "similarity" / "summary.json").write_text("[1, 2")
    assert similarity_page.load_summary(tmp_path) is None
    assert "Not checked" in similarity_section(similarity_page.load_summary(tmp_path))


def test_stale_pair_pages_are_removed(klass, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["similarity", str(klass), "--out", str(out), "--exercises", "ex3", "-q"], capsys)[0] == 0
    assert len(list((out / "similarity" / EX3).glob("*.html"))) == 1
    assert run(["similarity", str(klass), "--out", str(out), "--exercises", "ex3", "-q", "--threshold", "1"],
               capsys)[0] == 0
    assert list((out / "similarity" / EX3).glob("*.html")) == []


def test_the_dashboard_links_to_the_pairs_after_grading(klass, tmp_path, capsys):
    out = tmp_path / "out"
    reports = [make_report(name, 2, 2) for name in ("alice", "bob")]
    for r in reports:
        write_student_report(out, r)
    write_class_outputs(out, reports, ["ex1_output_size", EX3])
    assert "Not checked" in (out / "index.html").read_text()
    code, stdout, _ = run(["similarity", str(klass), "--out", str(out)], capsys)
    assert code == 0 and "class dashboard" in stdout
    dashboard = (out / "index.html").read_text()
    assert "Similar code" in dashboard and 'href="similarity/index.html"' in dashboard
    assert "1 pair(s) of students" in dashboard and "Not checked" not in dashboard
    assert 'href="../index.html"' in (out / "similarity" / "index.html").read_text()


@pytest.mark.parametrize("args, words, exit_code", [
    (["--exercises", ","], ["selects no exercise"], 2),
    (["--exercises", "ex42"], ["unknown exercise 'ex42'"], 2),
    (["--threshold", "0"], ["--threshold"], 2),
    (["--threshold", "1.5"], ["--threshold"], 2),
    (["--threshold", "half"], ["--threshold"], 2),
    (["--ignore-common", "-1"], ["--ignore-common"], 2),
])
def test_bad_options_are_one_line_errors(klass, tmp_path, capsys, args, words, exit_code):
    code, stdout, err = run(["similarity", str(klass), "--out", str(tmp_path / "out"), *args], capsys)
    assert code == exit_code and stdout == ""
    assert err.startswith("cnngrade: error: ") and err.count("\n") == 1, err
    assert all(w in err for w in words), err


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    empty, single = tmp_path / "empty", write_class(tmp_path / "single", {"alice": {f"{EX3}.py": "X = 1\n"}})
    empty.mkdir()
    lonely = write_class(tmp_path / "lonely", {"alice": {f"{EX3}.py": "X = 1\n"}, "bob": {"notes.txt": "hi"}})
    (tmp_path / "file").write_text("")
    cases = [(tmp_path / "missing", tmp_path / "o1", "does not exist"), (empty, tmp_path / "o2", "is empty"),
             (single, tmp_path / "o3", "at least two"), (lonely, tmp_path / "o4", "two students or more"),
             (single, tmp_path / "file", "is a file")]
    for source, out, words in cases:
        code, stdout, err = run(["similarity", str(source), "--out", str(out)], capsys)
        assert code == 3 and stdout == "", (source, err)
        assert err.startswith("cnngrade: error: ") and err.count("\n") == 1 and words in err, err


def test_help_says_it_is_for_review_only(capsys):
    code, stdout, _ = run(["similarity", "--help"], capsys)
    assert code == 0 and "never a score change" in " ".join(stdout.split()) and "--threshold" in stdout


def test_progress_counts_pairs():
    stream = io.StringIO()
    progress = PairProgress(stream, enabled=True)
    progress.start(3)
    for _ in range(3):
        progress.advance()
    progress.finish()
    assert "similarity: 3/3 files read and pairs compared" in stream.getvalue()


def test_every_similarity_command_of_the_instructors_guide_runs(klass, tmp_path, capsys, monkeypatch):
    """docs/instructors.md shows `cnngrade similarity submissions/ --out reports/`: run each such line verbatim."""
    text = (PROJECT_ROOT / "docs" / "instructors.md").read_text()
    commands = [line.split("#")[0].strip() for block in re.findall(r"```\w*\n(.*?)```", text, re.DOTALL)
                for line in block.splitlines() if line.strip().startswith("cnngrade similarity")]
    assert commands, "docs/instructors.md shows no `cnngrade similarity` command"
    monkeypatch.chdir(tmp_path)
    shutil.move(str(klass), tmp_path / "submissions")
    for command in commands:
        code, _, err = run(shlex.split(command)[1:], capsys)
        assert code == 0, (command, err)
        assert (tmp_path / "reports" / "similarity" / "index.html").is_file()


# ---- the pages in a browser ------------------------------------------------------------------------------------

@needs_chromium
@pytest.mark.slow
def test_the_pages_render_in_chromium(klass, tmp_path, capsys):
    out = tmp_path / "out"
    reports = [make_report(name, 2, 2) for name in ("alice", "bob")]
    for r in reports:
        write_student_report(out, r)
    write_class_outputs(out, reports, ["ex1_output_size", EX3])
    assert run(["similarity", str(klass), "--out", str(out), "-q"], capsys)[0] == 0
    page = next((out / "similarity" / EX3).glob("*.html"))
    for path in (out / "similarity" / "index.html", page, out / "index.html"):
        dom, console = chromium_render(path, tmp_path)
        assert console == [], (path, console)
        assert "never a score change" in visible_text(dom), path
    dom, _ = chromium_render(page, tmp_path)
    text = visible_text(dom)
    assert "Shared regions, side by side" in text and "alice" in text and "bob" in text
    assert dom.count("<mark>") >= 5 and dom.count('class="code"') == 2
