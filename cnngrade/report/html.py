"""Self-contained HTML pages: DIR/<student>/feedback.html for each student and DIR/index.html for the class.

Graders may show more than a message. Conventions for a test's ``metrics`` (the fixture of
that name; everything in it lands in report.json too):

- ``figure_png``: base64-encoded PNG data (or a list of them) rendered in the worker, e.g.
  the student's feature-map plot (``graderkit.figures.render`` puts it there); shown as an image
  only when PIL verifies it as a PNG within the size and pixel budget (``page.png_data_uri``).
- ``accuracy`` and ``threshold`` (numbers): the measured accuracy is drawn against the
  threshold, on a bar coloured by the test's verdict (never by the side of the threshold it lies on);
  ``direction`` ("at least", the default, or "at most") says which way the requirement goes, and
  without it the verdict tells (a pass below the threshold can only be "at most").
- any list of numbers, at the top level or in nested dicts (``{"train_loss": [...]}``,
  ``{"baseline": {"val_acc": [...]}}``): drawn as curves per epoch, one chart per final key; a null
  entry (a non-finite value) is a gap. ``training.record`` stores ``train_loss`` for every training check.
- ``trained_by``: marks a training check; the page says what the grader's run was.
- other numbers and short strings: listed as measured values.
- ``printed`` is set by cnngrade itself: what the student's code printed during the test, for course
  staff in report.json; never shown here (students see the slices of public tests as "What your code
  printed").
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Any

from cnngrade.records import STATUSES, ExerciseResult, Status, StudentReport, TestResult
from cnngrade.report import charts
from cnngrade.report.page import (
    badge,
    first_line,
    meta_line,
    page,
    png_data_uri,
    points,
    pre,
    profile_items,
    profile_note,
    scroll,
)
from cnngrade.sinks import public_profile

FALSIFYING = re.compile(r"^(Falsifying example|Falsifying explicit example)", re.MULTILINE)
# Hypothesis names the fixture object in its counterexample; that line says nothing to a student.
SUBMISSION_ARG = re.compile(r"^\s*submission=<[^>\n]*>,?\n", re.MULTILINE)
# printed: per test, for course staff only
HIDDEN_KEYS = {"figure_png", "accuracy", "threshold", "printed", "direction"}
TRAINING_EXERCISES = ("ex6_", "ex8_")   # the exercises whose checks train on the profile's data set
CURVE_TITLES = {"train_loss": "training loss per epoch", "val_acc": "validation accuracy per epoch"}
CURVE_LEGENDS = {"train_loss": "training loss", "val_acc": "validation accuracy"}


def anchor(exercise: str, test: str = "") -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{exercise}--{test}" if test else exercise).strip("-")


def split_counterexample(output: str) -> tuple[str, str]:
    """(message, hypothesis counterexample or '') from a test's output text."""
    match = FALSIFYING.search(output)
    if not match:
        return output.strip(), ""
    example = SUBMISSION_ARG.sub("", output[match.start():]).strip()
    return output[: match.start()].strip(), example


def _series(metrics: dict[str, Any], prefix: str = "") -> dict[str, list[float | None]]:
    """Every list of numbers in ``metrics``, by dotted path; null entries (a non-finite value) are kept as gaps."""
    found: dict[str, list[float | None]] = {}
    for key, value in metrics.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(_series(value, f"{path}."))
        elif (isinstance(value, list) and len(value) >= 2 and any(v is not None for v in value)
              and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value)):
            found[path] = [None if v is None else float(v) for v in value]
    return found


def direction(metrics: dict[str, Any], value: float, threshold: float, status: str | None) -> str:
    """Whether the test required ``value`` to be at least or at most ``threshold``.

    A grader may say so (``metrics["direction"]``); otherwise the verdict tells, since a training check records
    its numbers before it asserts: a pass below the threshold, or a failure above it, means "at most".
    """
    said = metrics.get("direction")
    if said in (charts.AT_LEAST, charts.AT_MOST):
        return said
    if (status == Status.PASSED and value < threshold) or (status == Status.FAILED and value > threshold):
        return charts.AT_MOST
    return charts.AT_LEAST


def _short_names(series: dict[str, list[float | None]]) -> dict[str, Sequence[float | None]]:
    """Legend names without the path they share ('results.baseline' -> 'baseline') when that keeps them apart."""
    short = {name.rpartition(".")[2]: values for name, values in series.items()}
    return dict(short.items() if len(short) == len(series) else series.items())


def _curve_title(name: str) -> str:
    return CURVE_TITLES.get(name, f"{name} per epoch")


def _training_note(metrics: dict[str, Any]) -> str:
    """What a training check's numbers are: the grader's own run, from the student's initial weights."""
    if "trained_by" not in metrics:
        return ""
    curve = " The curve is that run's mean training loss per epoch." if "train_loss" in metrics else ""
    return ('<p class="small muted">The grader trained the reference network, started from your model\'s initial '
            f"weights, for {escape(_fmt(metrics.get('epochs')))} epoch(s) on "
            f"{escape(str(metrics.get('dataset', '?')))} and scored it on held-out images it had never seen.{curve}</p>")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metrics_html(metrics: dict[str, Any], status: str | None = None) -> str:
    """Figures, the accuracy against its threshold, curves and other measured values of one test.

    ``status``: the test's verdict, which colours the accuracy bar (None: neither passed nor failed).
    """
    parts: list[str] = [_training_note(metrics)]
    figures = metrics.get("figure_png")
    for i, data in enumerate(figures if isinstance(figures, list) else [figures] if figures else []):
        uri = png_data_uri(data)
        parts.append(f'<figure><img src="{uri}" alt="figure {i + 1} drawn by your code"></figure>' if uri
                     else '<p class="muted small">(a figure was recorded but it is not valid PNG data)</p>')
    acc, thr = _number(metrics.get("accuracy")), _number(metrics.get("threshold"))
    numeric = acc is not None and thr is not None
    if acc is not None and thr is not None:
        passed = {Status.PASSED: True, Status.FAILED: False}.get(Status(status)) if status in STATUSES else None
        parts.append(charts.threshold_bar(acc, thr, passed=passed, label="measured accuracy",
                                          direction=direction(metrics, acc, thr, status)))
    groups: dict[str, dict[str, list[float | None]]] = {}
    for path, values in _series(metrics).items():
        head, _, last = path.rpartition(".")
        groups.setdefault(last, {})[head or CURVE_LEGENDS.get(last, last)] = values
    curves = [charts.line_chart(_short_names(series), title=_curve_title(name),
                                threshold=thr if numeric and "acc" in name else None)
              for name, series in groups.items()]
    if any(curves):
        parts.append(f'<div class="charts">{"".join(curves)}</div>')
    scalars = {k: v for k, v in metrics.items() if k not in HIDDEN_KEYS and isinstance(v, (int, float, str))
               and not (isinstance(v, str) and len(v) > 200)}
    if scalars:   # label: value pairs that wrap, so a training check's dozen numbers take two lines, not twelve
        cells = "".join(f"<span>{escape(str(k))}: <b>{escape(_fmt(v))}</b></span>" for k, v in scalars.items())
        parts.append(f'<div class="meta measured"><span>measured:</span>{cells}</div>')
    return "".join(parts)


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _message(test: TestResult) -> str:
    message, example = split_counterexample(test.output)
    html = pre(message) if message else ""
    if example and not message.startswith("Not implemented yet"):  # any input fails a stub; no clue there
        html += ('<div class="small muted">Counterexample: the smallest input found on which your code fails. '
                 'Try it yourself.</div>' + pre(example, "counterexample"))
    return html


def _test_rows(ex: ExerciseResult) -> str:
    auto = [t for t in ex.tests if not t.free_text]
    if _same_failure(auto):
        lost = sum(t.max_score for t in auto)
        return (f"<p>{badge(auto[0].status)} All {len(auto)} tests of this exercise score 0 ({lost:g} points), "
                f"for one reason:</p>{_message(auto[0])}")
    rows = []
    for t in ex.tests:
        if t.free_text:
            continue
        hidden = ' <span class="tag">hidden test</span>' if t.visibility == "hidden" else ""
        rows.append(f'<tr id="{anchor(ex.exercise, t.name)}"><td>{badge(t.status)}</td>'
                    f"<td><code>{escape(t.name)}</code>{hidden}</td>"
                    f'<td class="num">{points(t.score, t.max_score)}</td></tr>')
        detail = (_message(t) if t.status != Status.PASSED else "") + metrics_html(t.metrics, t.status)
        if detail:
            rows.append(f'<tr><td></td><td colspan="2">{detail}</td></tr>')
    if not rows:
        return ""
    return scroll('<table><tr><th style="width:110px">status</th><th>test</th><th class="num">points</th></tr>'
                  + "".join(rows) + "</table>")


def _manual_items(ex: ExerciseResult) -> str:
    items = [t for t in ex.tests if t.free_text]
    if not items:
        return ""
    out = ['<h3>Free-text answers <span class="muted small">(read and marked by course staff)</span></h3>']
    for t in items:
        answer = (f'<div class="answer">{escape(t.answer)}</div>' if t.answer
                  else '<p class="muted">(no answer)</p>')
        unanswered = t.unanswered and not t.reviewed
        marks = (f"{t.max_score:g} point(s) pending" if t.status == Status.MANUAL
                 else f"{points(t.score, t.max_score)} point(s), nothing to review" if unanswered
                 else f"{points(t.score, t.max_score)} point(s)")
        label = '<span class="badge st-failed">no answer</span>' if unanswered else badge(t.status)
        out.append(f'<div id="{anchor(ex.exercise, t.name)}"><p>{label} <code>{escape(t.name)}</code> '
                   f'<span class="muted">{marks}</span></p>{answer}'
                   f'<p class="small muted">{escape(t.output)}</p></div>')
    return "".join(out)


def _exercise_section(ex: ExerciseResult) -> str:
    pending = f' <span class="muted small">+ {ex.manual_pending:g} pending review</span>' if ex.manual_pending else ""
    # Only what it printed while loading and during public tests (score.py): hidden tests' inputs stay hidden.
    output = (f"<details><summary>What your code printed</summary>{pre(ex.student_output)}</details>"
              if ex.student_output.strip() else "")
    return (f'<section id="{anchor(ex.exercise)}"><h2>{escape(ex.exercise)}: {escape(ex.title)} '
            f'<span style="float:right">{points(ex.score, ex.max_score)}{pending}</span></h2>'
            f"{_test_rows(ex)}{_manual_items(ex)}{output}</section>")


def _same_failure(tests: list[TestResult]) -> bool:
    """Every test failed the same way (a missing file, an import error): one message says it all."""
    if len(tests) < 2:
        return False
    first = tests[0]
    return all(t.status != Status.PASSED and (t.status, t.output) == (first.status, first.output) for t in tests)


def fix_list(report: StudentReport) -> str:
    """The 'what to fix' summary at the top: tests that lost points, those failing the same way grouped."""
    groups: dict[tuple[str, str, str], list[TestResult]] = {}
    for ex in report.exercises.values():
        for t in ex.tests:
            if t.status != Status.MANUAL and t.score < t.max_score:
                groups.setdefault((ex.exercise, t.status, first_line(t.output)), []).append(t)
    if not groups:
        return '<p class="callout good">Every automatic test passed. Nothing to fix.</p>'
    items = []
    for (exercise, status, line), tests in groups.items():
        auto = [t for t in report.exercises[exercise].tests if not t.free_text]
        everything = len(tests) == len(auto) and _same_failure(auto)
        target = anchor(exercise) if everything else anchor(exercise, tests[0].name)
        if everything:
            what = f"all {len(tests)} tests"
        elif len(tests) <= 3:
            what = ", ".join(t.name for t in tests)
        else:
            what = f"{tests[0].name} and {len(tests) - 1} more tests"
        lost = sum(t.max_score - t.score for t in tests)
        items.append(f'<li>{badge(status)} <a href="#{target}">{escape(exercise)} · {escape(what)}</a> '
                     f'<span class="muted">(−{lost:g})</span><br><span class="small">{escape(line)}</span></li>')
    return f'<ol class="fix">{"".join(items)}</ol>'


def _trains(report: StudentReport) -> bool:
    """Whether the report holds a training check (ex6, ex8), which the profile's note is about."""
    return any(e.startswith(TRAINING_EXERCISES) or any("trained_by" in t.metrics for t in ex.tests)
               for e, ex in report.exercises.items())


def student_page(report: StudentReport) -> str:
    """The feedback page of one student."""
    total = report.total
    auto_max = total["max_score"] - total["manual_pending"]
    # Only answers that exist wait for a person (score.manual_result): an unanswered question already scored 0.
    pending = (f'<div>{total["manual_pending"]:g} more point(s) await review of your free-text answers.</div>'
               if total["manual_pending"] else "")
    problem = f'<p class="callout">{escape(report.error)}</p>' if report.error else ""
    problem += f'<p class="callout">{escape(report.warning)}</p>' if report.warning else ""
    problem += "".join(f'<p class="small muted">Note: {escape(n)}</p>' for n in report.notes)
    grader = (f'<p class="callout">cnngrade itself failed on {report.grader_errors} test(s); those are not your '
              f"fault and course staff will look at them.</p>" if report.grader_errors else "")
    header = (f'<header class="card"><div class="muted small">cnngrade feedback</div>'
              f"<h1>{escape(report.student)}</h1>"
              f'<div><span class="big">{total["score"]:g}</span> <span class="muted">of {auto_max:g} points graded '
              f"so far ({total['max_score']:g} in all)</span></div>{pending}"
              + meta_line({**profile_items(public_profile(report.profile)),
                           **report.info, "cnngrade": report.version, "graded": report.started_at,
                           "took": f"{report.duration_s:g} s"})
              + (profile_note(report.profile, for_student=True) if _trains(report) else "")
              + f"{problem}{grader}</header>")
    fix = f"<section><h2>What to fix</h2>{fix_list(report)}</section>"
    body = header + fix + "".join(_exercise_section(ex) for ex in report.exercises.values())
    return page(f"Feedback for {report.student}", body)

