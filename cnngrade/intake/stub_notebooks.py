"""Stub notebooks: a stub module (exercises/<name>.py) as the notebook students get, cell by cell."""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from cnngrade.intake.notebooks import EXPERIMENT_MARK, EXPERIMENT_TAG, digest, notebook_to_source

if TYPE_CHECKING:
    from nbformat import NotebookNode


def source_cells(source: str) -> tuple[str, list[str]]:
    """Split a module into (docstring, code cells): one cell per def/class, one per run of other statements."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree) or ""
    body = tree.body[1:] if doc else tree.body
    # Comments just above a statement belong to it: each chunk starts where the previous one ended.
    start = tree.body[0].end_lineno if doc else 0
    cells: list[str] = []
    previous = ""
    for node in body:
        kind = "def" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else "stmt"
        chunk = "\n".join(lines[start:node.end_lineno]).strip("\n")
        if kind == "stmt" and previous == "stmt":
            cells[-1] += "\n" + chunk if not chunk.startswith("\n") else chunk
        else:
            cells.append(chunk)
        previous, start = kind, node.end_lineno
    return doc, [c.strip("\n") for c in cells if c.strip()]


HOW_TO = """**Working in this notebook.** Replace every `raise NotImplementedError(...)` and every `None` answer \
where it stands, and run the cells as you go. When you hand in this `.ipynb`, its code cells are graded as one \
module, top to bottom, without their outputs: keep each function's name and arguments.

- A cell whose first line is `# experiment: not run at grading` (or that carries the cell tag `experiment`) is \
left out at grading. Put training runs and plots you only want to look at there, never a function or answer \
the exercise asks for.
- Free-text answers go in the cells that start with `# answer:`, as a string in place of `None`.
- Hand in either this notebook or the `.py` of the same exercise. If you hand in both, the one you edited is \
graded (if you edited both, the one saved last), and your report says which."""
ANSWER_MARK = "# answer:"
_KEY_LINE = re.compile(r"^\w+:\s")
_MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""")


class _Builder:
    """Cells of a stub notebook, in order, with stable ids."""

    def __init__(self) -> None:
        import nbformat

        self.v4 = nbformat.v4
        self.cells: list[NotebookNode] = []
        self.questions = 0
        self.magic = False   # the %matplotlib inline cell is written

    def markdown(self, text: str) -> None:
        self.cells.append(self.v4.new_markdown_cell(text.strip("\n")))

    def code(self, text: str, tag: str = "") -> None:
        cell = self.v4.new_code_cell(text.strip("\n"))
        if tag:
            cell.metadata["tags"] = [tag]
        self.cells.append(cell)

    def heading(self, title: str) -> str:
        self.questions += 1
        return f"### {self.questions}. {title}"


def _flush(b: _Builder, plain: list[str]) -> None:
    """The set-up statements gathered so far as one cell; ``%matplotlib inline`` follows the first such cell
    (after the imports, where a __future__ import stays first), or opens the first other one."""
    if plain:
        b.code("\n".join(plain))
        plain.clear()
    if not b.magic:
        b.code("%matplotlib inline")
        b.magic = True


def _comment_markdown(comments: list[str]) -> str:
    """Comment lines as markdown: sentences run on; an indented line or one that opens with ``name:`` starts a new
    line (the stubs' lists of answers)."""
    out: list[str] = []
    for comment in comments:
        text = comment.strip()[1:]
        text = text.removeprefix(" ")
        if out and not text.startswith(" ") and not _KEY_LINE.match(text):
            out[-1] += " " + text.strip()
        else:
            out.append(text.strip())
    return "  \n".join(out)


def _summary(node: ast.AST) -> str:
    doc = ast.get_docstring(node) or ""   # type: ignore[arg-type]
    return doc.split("\n\n")[0].replace("\n", " ")


def _assigned_name(node: ast.stmt) -> str:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return targets[0].id if len(targets) == 1 and isinstance(targets[0], ast.Name) else ""


def _asks(node: ast.stmt) -> bool:
    """An assignment the student completes: its value holds a None to replace."""
    value = getattr(node, "value", None)
    return value is not None and any(isinstance(n, ast.Constant) and n.value is None for n in ast.walk(value))


def _free_text_cells(b: _Builder, name: str, text: str, comments: list[str], free_text: dict[str, str]) -> None:
    """One markdown cell with the question and one marked code cell per free-text answer (NAME or NAME.key)."""
    keys = [k.partition(".")[2] for k in free_text if k.partition(".")[0] == name and "." in k]
    if not keys:
        prompt = free_text[name]
        b.markdown(f"{b.heading(f'Free-text answer: `{name}`')}\n\n{prompt}\n\n{_comment_markdown(comments)}\n\n"
                   "Read by course staff. Write it in the cell below as a string in place of `None`, "
                   'for example `"""Your sentences."""`.')
        b.code(f"{ANSWER_MARK} {name} (free text, read by course staff)\n{text}", "answer")
        return
    b.markdown(f"{b.heading(f'Free-text answers: `{name}`')}\n\n{_comment_markdown(comments)}\n\n"
               f"One string per question, read by course staff: run the cell below once, then write each "
               "answer in its own cell in place of `None`.")
    b.code(text)
    for key in keys:
        target = f'{name}["{key}"]'
        b.markdown(f"#### `{target}`\n\n{free_text[f'{name}.{key}']}")
        b.code(f"{ANSWER_MARK} {target} (free text, read by course staff)\n{target} = None", "answer")


def _experiment_cells(b: _Builder, node: ast.If, lines: list[str], comments: list[str]) -> None:
    """The stub's ``if __name__ == "__main__":`` block: an experiment cell, its body at the top level."""
    body = textwrap.dedent("\n".join(lines[node.body[0].lineno - 1:node.end_lineno]))
    intro = _comment_markdown(comments) or "Try your code here."
    b.markdown(f"### Experiment\n\n{intro}\n\nThe cell below is an **experiment**: run it here as often as you "
               "like. Its first line keeps it out of grading, so it may train for minutes or download data; "
               "copy what it shows into the answers above.")
    b.code(f"{EXPERIMENT_MARK}\n{body}", EXPERIMENT_TAG)


def source_to_notebook(source: str, *, exercise: str = "", free_text: dict[str, str] | None = None) -> NotebookNode:
    """A notebook for a stub: its docstring and a how-to as markdown, ``%matplotlib inline``, then per question
    a markdown cell (from the docstring or the comments above it) and its code cell; one marked cell per
    free-text answer (``free_text``: NAME or NAME.key -> the question, from grader.yaml); the stub's
    ``if __name__ == "__main__":`` block as an experiment cell. Stable cell ids; the stub's and the
    notebook's code digests in the metadata (collect tells an untouched notebook by them)."""
    import nbformat

    free_text = free_text or {}
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree) or ""
    b = _Builder()
    if doc:
        b.markdown(f"# {doc}" if not doc.startswith("#") else doc)
    b.markdown(HOW_TO)
    body = tree.body[1:] if doc else tree.body
    start = tree.body[0].end_lineno if doc else 0
    plain: list[str] = []
    for node in body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        gap = lines[start:first - 1]
        comments = [ln for ln in gap if ln.strip().startswith("#")]
        text = "\n".join(lines[first - 1:node.end_lineno])
        start = node.end_lineno
        name = _assigned_name(node)
        definition = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        main = isinstance(node, ast.If) and bool(_MAIN_GUARD.match(lines[node.lineno - 1].strip()))
        if not (definition or main or comments or name in free_text or _asks(node)):
            plain.append("\n".join([*([""] * len(gap) if plain else []), text]))   # set-up: one cell, as spaced
            continue
        _flush(b, plain)
        if main:
            _experiment_cells(b, node, lines, comments)  # type: ignore[arg-type]
        elif definition:
            b.markdown(f"{b.heading(f'`{node.name}`')}\n\n{_summary(node)}"  # type: ignore[attr-defined]
                       + (f"\n\n{_comment_markdown(comments)}" if comments else ""))
            b.code(text)
        elif name in free_text or any(k.startswith(f"{name}.") for k in free_text if name):
            _free_text_cells(b, name, text, comments, free_text)
        else:
            title = b.heading(f"`{name}`") + "\n\n" if name and _asks(node) else ""
            if title or comments:
                b.markdown(title + _comment_markdown(comments))
            b.code(text)
    _flush(b, plain)
    if not b.magic:
        b.code("%matplotlib inline")
    for i, cell in enumerate(b.cells):
        cell["id"] = f"cell-{i:02d}"   # nbformat draws random ids; fixed ones keep the files reproducible
    nb = nbformat.v4.new_notebook()
    nb.cells = b.cells
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"},
                   "cnngrade": {"exercise": exercise, "stub_sha256": digest(source),
                                "code_sha256": digest(notebook_to_source(nb))}}
    return nb


def notebook_text(source: str, *, exercise: str = "", free_text: dict[str, str] | None = None) -> str:
    """The .ipynb file content for a module's source (validated by nbformat)."""
    import nbformat

    nb = source_to_notebook(source, exercise=exercise, free_text=free_text)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def stub_notebook_text(stub: Path, graders_dir: Path | None = None) -> str:
    """What `cnngrade notebooks build` and the student bundle write for ``stub`` (exercises/<name>.py): its
    free-text questions come from the exercise's grader.yaml, when ``graders_dir`` has one."""
    from cnngrade.config import GRADERS_DIR, load_exercise

    exercise, graders = stub.stem, graders_dir or GRADERS_DIR
    free_text = {}
    if (graders / exercise / "grader.yaml").is_file():
        free_text = {m.name: m.prompt or f"Your answer for {m.name}." for m in load_exercise(exercise, graders).manual}
    return notebook_text(stub.read_text(encoding="utf-8"), exercise=exercise, free_text=free_text)
