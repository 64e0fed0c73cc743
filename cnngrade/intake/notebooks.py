"""A student's .ipynb as a gradable .py: read within bounds, IPython syntax made inert, experiment cells left out."""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

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
# Experiment cells (training runs, plots to look at) are left out of the graded module: the cell tag, or the
# comment on the cell's first line (any "# experiment:" line; the stubs write EXPERIMENT_MARK).
EXPERIMENT_TAG = "experiment"
EXPERIMENT_MARK = "# experiment: not run at grading"
_EXPERIMENT_LINE = re.compile(r"^\s*#\s*experiment\s*:", re.IGNORECASE)


class NotebookError(ValueError):
    """The file cannot be read as a Jupyter notebook; ``str()`` says why in one line for the student."""


def read_notebook(path: Path) -> NotebookNode:
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


def is_experiment(cell: NotebookNode) -> bool:
    """A code cell the student marked as an experiment (training runs, plots to look at): not run at grading.

    Marked by Jupyter's cell tag ``experiment`` or by EXPERIMENT_MARK (any ``# experiment:`` comment) on its first line.
    """
    tags = cell.get("metadata", {}).get("tags", [])
    if isinstance(tags, list) and EXPERIMENT_TAG in tags:
        return True
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return bool(_EXPERIMENT_LINE.match(first))


@dataclasses.dataclass
class Converted:
    """A notebook as the module the worker imports, and where each of its cells went."""

    source: str
    cells: list[tuple[int, int, str]]   # (first line in source, cell number in the notebook (1-based), its first line)
    experiments: list[int]              # cell numbers of the experiment cells left out
    lost: list[str]                     # "cell 7 defines fit": definitions inside experiment cells, which grading misses


def convert_notebook(nb: NotebookNode, name: str = "the notebook") -> Converted:
    """The code cells of a notebook as one module: markdown, raw and experiment cells and outputs left out,
    IPython syntax inert, __future__ first. NotebookError when the code is too big or too deep to convert safely."""
    numbered = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and c.source.strip()]
    check_code([c.source for _, c in numbered], name)   # experiment cells too: defined_names parses them
    experiments = [i for i, c in numbered if is_experiment(c)]
    code = [(i, c.source) for i, c in numbered if i not in experiments]
    lost = [f"cell {i} defines {', '.join(names)}" for i, c in numbered if i in experiments
            for names in [defined_names(c.source)] if names]
    parts = [PREAMBLE] + [transform_cell(c) for _, c in code]
    starts, line = [], 1
    for part in parts:
        starts.append(line)
        line += part.count("\n") + 3   # the part's lines, then two blank lines
    body = "\n\n\n".join(parts)
    futures = list(dict.fromkeys(_FUTURE.findall(body)))
    if futures:
        # A __future__ import must open the module, but a notebook may put it in any cell.
        body = "\n".join(futures) + "\n" + _FUTURE.sub("", body)
    shift = len(futures)
    cells = [(start + shift, i, _first_line(source)) for start, (i, source) in zip(starts[1:], code)]
    return Converted(body.rstrip() + "\n", cells, experiments, lost)


def notebook_to_source(nb: NotebookNode, name: str = "the notebook") -> str:
    """The module a notebook's code becomes (see convert_notebook)."""
    return convert_notebook(nb, name).source


def defined_names(source: str) -> list[str]:
    """Functions and classes a cell defines at its top level (none when it is not plain Python)."""
    try:
        tree = ast.parse(transform_cell(source))
    except (SyntaxError, MemoryError, RecursionError, ValueError):
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _first_line(source: str) -> str:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return first if len(first) <= 40 else first[:37] + "..."


def stage_notebook(path: Path, staging: Path, module: str) -> tuple[Path, Converted]:
    """Write the notebook's code to ``staging/<module>.py`` (the worker imports that); NotebookError if unreadable.
    Also returns the conversion (to name cells in messages and report experiment cells)."""
    converted = convert_notebook(read_notebook(path), path.name)
    staging.mkdir(parents=True, exist_ok=True)
    target = staging / f"{module}.py"
    target.write_text(converted.source, encoding="utf-8")
    return target, converted


def normalised(text: str) -> str:
    """Text compared for 'is this still the stub': line endings, trailing spaces and blank lines do not count."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").splitlines() if line.strip())


def digest(text: str) -> str:
    return hashlib.sha256(normalised(text).encode("utf-8")).hexdigest()
