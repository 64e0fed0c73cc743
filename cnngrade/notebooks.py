"""Jupyter notebooks both ways: a student's .ipynb to a gradable .py, and a stub .py to a notebook."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 << 20   # a CNN week notebook with plots stays far below; larger is not a submission
# json.loads and nbformat's validator recurse once (or more) per level: a hostile notebook nested thousands
# deep raises RecursionError. A real notebook is about 8 levels deep, rich outputs a few more.
MAX_JSON_DEPTH = 64
# The code cells together; a week of exercises is tens of kB. Bounds the transformer's and compile()'s work,
# which a long expression (200,000 terms) makes take seconds or raise MemoryError/RecursionError.
MAX_CODE_CHARS = 500_000
MAX_CODE_NESTING = 100          # brackets inside brackets; Python's own tokenizer stops at 200
NOTE = "# [cnngrade] not run (IPython magic or shell escape):"
# IPython's transformer turns IPython-only lines into calls on get_ipython(); in the converted module they go
# to an object that does nothing instead, so no magic, shell escape or help request ever runs. display() is
# Jupyter's; here it shows nothing.
INERT_NAME = "_cnngrade_ipython"
PREAMBLE = f'''\
class _CnngradeInert:  # [cnngrade] added: IPython magics, shell escapes and help are not run when grading
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def {INERT_NAME}():
    return _CnngradeInert()


def display(*objects, **kwargs):  # [cnngrade] added: Jupyter's display() shows nothing when grading
    return None'''
_GET_IPYTHON = re.compile(r"\bget_ipython\(\)")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_PY_STRING = re.compile(r"('''|\"\"\"|'|\")(?:\\.|(?!\1).)*?\1", re.DOTALL)
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
    if json_depth(text) > MAX_JSON_DEPTH:
        raise NotebookError(f"{path.name} nests its JSON more than {MAX_JSON_DEPTH} levels deep; "
                            "a Jupyter notebook does not: save the notebook from Jupyter again")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path.name} is not valid JSON (line {exc.lineno}: {exc.msg}); "
                            "save the notebook from Jupyter again") from None
    except RecursionError:
        raise NotebookError(f"{path.name} nests its JSON too deeply to be read") from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except RecursionError:
        raise NotebookError(f"{path.name} nests its JSON too deeply to be read") from None
    except (nbformat.ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # nbformat raises several unrelated types for a malformed document
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{path.name} is JSON but not a Jupyter notebook ({first[:200]})") from None
    return nb


def json_depth(text: str) -> int:
    """How deep ``text``'s JSON arrays and objects nest, found without parsing (brackets in strings skipped)."""
    import numpy as np

    data = np.frombuffer(_JSON_STRING.sub('""', text).encode("utf-8"), dtype=np.uint8)
    opening = (data == ord("[")) | (data == ord("{"))
    closing = (data == ord("]")) | (data == ord("}"))
    return int(np.cumsum(opening.astype(np.int32) - closing).max(initial=0))


def code_nesting(source: str) -> int:
    """How deep brackets nest in Python source (string literals skipped, roughly: enough for a bound)."""
    import numpy as np

    data = np.frombuffer(_PY_STRING.sub("''", source).encode("utf-8"), dtype=np.uint8)
    opening = (data == ord("(")) | (data == ord("[")) | (data == ord("{"))
    closing = (data == ord(")")) | (data == ord("]")) | (data == ord("}"))
    return int(np.cumsum(opening.astype(np.int32) - closing).max(initial=0))


def check_code(cells: list[str], name: str) -> None:
    """NotebookError when the code is too big or too deeply nested to convert (and compile) safely."""
    size = sum(len(c) for c in cells)
    if size > MAX_CODE_CHARS:
        raise NotebookError(f"{name} holds {size} characters of code; more than {MAX_CODE_CHARS} is not a "
                            "submission for this course (remove generated or pasted data)")
    deepest = max((code_nesting(c) for c in cells), default=0)
    if deepest > MAX_CODE_NESTING:
        raise NotebookError(f"{name} nests brackets {deepest} levels deep (at most {MAX_CODE_NESTING} are graded)")


def transform_cell(source: str) -> str:
    """A code cell as plain Python, IPython's way: help (``x?``), magics and ``!`` lines become inert calls.

    IPython's own input transformer knows its syntax exactly (a ``?`` in a string or a comment stays);
    the calls it writes go to an object that does nothing (PREAMBLE), each marked with the line it
    replaced. Cell magics are handled as before: a Python body (``%%time``) runs, any other is kept as
    comments. Without IPython, the older line rules apply.
    """
    lines = source.splitlines()
    if lines and lines[0].strip().startswith("%%"):
        return neutralise_magics(source)
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return neutralise_magics(source)
    try:
        out = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - text IPython's transformer cannot tokenize: the older rules, then the worker's import
        return neutralise_magics(source)
    if out.rstrip("\n") == source.rstrip("\n"):
        return source
    new = _GET_IPYTHON.sub(f"{INERT_NAME}()", out).rstrip("\n").split("\n")
    if len(new) == len(lines):
        new = [n if n == o else f"{n}  {NOTE} {o.strip()}" for n, o in zip(new, lines)]
    return "\n".join(new)


def neutralise_magics(source: str) -> str:
    """Turn IPython-only lines into inert Python so the cell imports as a module; plain Python is left alone."""
    try:
        compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        return source  # valid Python: nothing in it can be a magic, and strings stay untouched
    except SyntaxError:
        pass
    except (MemoryError, RecursionError, ValueError, OverflowError):
        return source  # too big or deep to parse here: the worker's import says so, in the sandbox
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
    except (SyntaxError, MemoryError, RecursionError, ValueError, OverflowError):
        return False


def notebook_to_source(nb, name: str = "the notebook") -> str:
    """The code cells of a notebook as one module: markdown, raw cells and outputs left out, IPython syntax
    inert, __future__ first. NotebookError when the code is too big or too deep to convert safely."""
    code = [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    check_code(code, name)
    cells = [PREAMBLE] + [transform_cell(c) for c in code]
    body = "\n\n\n".join(cells)
    futures = _FUTURE.findall(body)
    if futures:
        # A __future__ import must open the module, but a notebook may put it in any cell.
        body = _FUTURE.sub("", body)
        body = "\n".join(dict.fromkeys(futures)) + "\n" + body
    return body.rstrip() + "\n"


def stage_notebook(path: Path, staging: Path, module: str) -> Path:
    """Write the notebook's code to ``staging/<module>.py`` (the worker imports that); NotebookError if unreadable."""
    source = notebook_to_source(read_notebook(path), path.name)
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
