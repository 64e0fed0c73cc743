"""Jupyter notebooks both ways: a student's .ipynb to a gradable .py, and a stub .py to a notebook."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 << 20   # a CNN week notebook with plots stays far below; larger is not a submission
NOTE = "# [cnngrade] not run (IPython magic or shell escape):"
# Cell magics whose body is ordinary Python: only the magic line goes.
PYTHON_BODY_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_MAGIC_LINE = re.compile(r"^\s*(%|!|[A-Za-z_][\w., ]*=\s*[%!])")
_FUTURE = re.compile(r"^from\s+__future__\s+import\s+.+$", re.MULTILINE)


class NotebookError(ValueError):
    """The file cannot be read as a Jupyter notebook; ``str()`` says why in one line for the student."""


def read_notebook(path: Path):
    """Parse and validate ``path`` with nbformat; NotebookError when it is too large, not JSON or not a notebook."""
    import nbformat

    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(f"{path.name} is {size >> 20} MiB; notebooks over {MAX_NOTEBOOK_BYTES >> 20} MiB "
                                "are not graded (clear the outputs and hand it in again)")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NotebookError(f"{path.name} is not a text file (a notebook is UTF-8 JSON)") from None
    except OSError as exc:
        raise NotebookError(f"{path.name} cannot be read: {exc.strerror}") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path.name} is not valid JSON (line {exc.lineno}: {exc.msg}); "
                            "save the notebook from Jupyter again") from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except (nbformat.ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # nbformat raises several unrelated types for a malformed document
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{path.name} is JSON but not a Jupyter notebook ({first[:200]})") from None
    return nb


def neutralise_magics(source: str) -> str:
    """Turn IPython-only lines into inert Python so the cell imports as a module; plain Python is left alone."""
    try:
        compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        return source  # valid Python: nothing in it can be a magic, and strings stay untouched
    except SyntaxError:
        pass
    lines = source.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if magic not in PYTHON_BODY_CELL_MAGICS:
            # The body of %%bash, %%writefile, %%html... is not Python: keep all of it as comments.
            return "\n".join([f"{NOTE} cell magic %%{magic}", *(f"# {line}" for line in lines)])
        lines = lines[1:]
        out = [f"{NOTE} {first}"]
    else:
        out = []
    for line in lines:
        if _MAGIC_LINE.match(line) and not _is_python(line.strip()):
            indent = line[: len(line) - len(line.lstrip())]
            # `pass` keeps an indented block valid when the magic was its only statement.
            out.append(f"{indent}pass  {NOTE} {line.strip()}")
        else:
            out.append(line)
    return "\n".join(out)


def _is_python(line: str) -> bool:
    try:
        compile(line, "<line>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        return True
    except SyntaxError:
        return False


def notebook_to_source(nb) -> str:
    """The code cells of a notebook as one module: outputs ignored, magics neutralised, __future__ first."""
    cells = [neutralise_magics(c.source) for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    body = "\n\n\n".join(cells)
    futures = _FUTURE.findall(body)
    if futures:
        # A __future__ import must open the module, but a notebook may put it in any cell.
        body = _FUTURE.sub("", body)
        body = "\n".join(dict.fromkeys(futures)) + "\n" + body
    return body.rstrip() + "\n"


def stage_notebook(path: Path, staging: Path, module: str) -> Path:
    """Write the notebook's code to ``staging/<module>.py`` (the worker imports that); NotebookError if unreadable."""
    source = notebook_to_source(read_notebook(path))
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / f"{module}.py"
    target.write_text(source, encoding="utf-8")
    return target


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


def source_to_notebook(source: str):
    """A notebook for a stub: the module docstring as markdown, then its code cells, with stable cell ids."""
    import nbformat

    doc, cells = source_cells(source)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    items = ([nbformat.v4.new_markdown_cell(doc)] if doc else []) + [nbformat.v4.new_code_cell(c) for c in cells]
    for i, cell in enumerate(items):
        cell["id"] = f"cell-{i:02d}"   # nbformat draws random ids; fixed ones keep the files reproducible
    nb.cells = items
    return nb


def notebook_text(source: str) -> str:
    """The .ipynb file content for a module's source (what `cnngrade notebooks build` writes)."""
    import nbformat

    return nbformat.writes(source_to_notebook(source)) + "\n"
