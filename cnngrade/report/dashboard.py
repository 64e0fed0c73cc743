"""The class dashboard, DIR/index.html: where the class struggled, who needs a look, and how the run went."""
from __future__ import annotations

import dataclasses
import datetime
import statistics
from html import escape
from urllib.parse import quote

from cnngrade.records import Status, StudentReport
from cnngrade.report import charts
from cnngrade.report.html import anchor
from cnngrade.report.page import (
    badge,
    bar,
    first_line,
    meta_line,
    page,
    percent,
    points,
    profile_items,
    profile_note,
    scroll,
)

PROBLEM_STATUSES = (Status.ERROR, Status.TIMEOUT)
VISIBLE_TESTS = 25   # the hardest tests shown at once; the rest fold away


@dataclasses.dataclass
class ExerciseStats:
    """How the class did on one exercise (the points graded so far; free-text points pending review left out)."""

    exercise: str
    title: str
    handed_in: int
    mean_percent: float   # over the students who handed the exercise in


@dataclasses.dataclass
class TestRate:
    exercise: str
    name: str
    passed: int
    attempted: int
    max_score: float

    @property
    def rate(self) -> float:
        return self.passed / self.attempted if self.attempted else 0.0


def graded_percent(score: float, max_score: float, pending: float) -> float:
    """Score as a percentage of the points graded so far (free-text points pending review left out)."""
    return percent(score, max_score - pending)


def exercise_stats(reports: list[StudentReport], exercises: list[str]) -> list[ExerciseStats]:
    found = []
    for e in exercises:
        results = [r.exercises[e] for r in reports if e in r.exercises]
        handed = [x for x in results if not all(t.status == Status.MISSING for t in x.tests)]
        title = results[0].title if results else ""
        mean = statistics.fmean(graded_percent(x.score, x.max_score, x.manual_pending) for x in handed) if handed else 0.0
        found.append(ExerciseStats(e, title, len(handed), mean))
    return found


def per_test_stats(reports: list[StudentReport], exercises: list[str]) -> list[TestRate]:
    """Pass rate of every automatic test among the students who handed its exercise in, hardest first."""
    table: dict[tuple[str, str], TestRate] = {}
    for r in reports:
        for e in exercises:
            for t in r.exercises[e].tests if e in r.exercises else []:
                if t.free_text or t.status == Status.MISSING:
                    continue
                s = table.setdefault((e, t.name), TestRate(e, t.name, 0, 0, t.max_score))
                s.attempted += 1
                s.passed += t.status == Status.PASSED
    order = {e: i for i, e in enumerate(exercises)}
    return sorted(table.values(), key=lambda s: (s.rate, order[s.exercise]))


def _run_summary(reports: list[StudentReport]) -> dict[str, str]:
    starts = [(datetime.datetime.fromisoformat(r.started_at), r.duration_s) for r in reports if r.started_at]
    wall = ""
    if starts:
        first = min(s for s, _ in starts)
        last = max(s + datetime.timedelta(seconds=d) for s, d in starts)
        wall = f"{(last - first).total_seconds():.0f} s"
    profile = reports[0].profile if reports else {}
    return {**profile_items(profile),
            "cnngrade": reports[0].version if reports else "", "started": min((r.started_at for r in reports), default=""),
            "wall time": wall, "student time": f"{sum(r.duration_s for r in reports):.0f} s"}


def _headline(ex_stats: list[ExerciseStats], reports: list[StudentReport]) -> str:
    rated = [s for s in ex_stats if s.handed_in]
    if not rated:
        return '<p class="callout">No student handed in any graded exercise.</p>'
    hardest = min(rated, key=lambda s: s.mean_percent)
    return (f'<p class="callout">Hardest exercise: <a href="#ex-{anchor(hardest.exercise)}"><b>'
            f"{escape(hardest.exercise)}</b></a> ({escape(hardest.title)}): the class averaged "
            f"<b>{hardest.mean_percent:.0f}%</b> of its points graded so far ({hardest.handed_in} of {len(reports)} "
            f"handed it in).</p>")


def _exercise_table(ex_stats: list[ExerciseStats], n: int) -> str:
    rows = "".join(
        f'<tr id="ex-{anchor(s.exercise)}"><td><b>{escape(s.exercise)}</b><br><span class="small muted">'
        f'{escape(s.title)}</span></td><td class="num">{s.handed_in} / {n}</td>'
        f'<td class="num">{s.mean_percent:.0f}%</td><td style="width:40%">{bar(s.mean_percent / 100)}</td></tr>'
        for s in ex_stats)
    return scroll('<table><tr><th>exercise</th><th class="num">handed in</th><th class="num">class average</th>'
                  f"<th></th></tr>{rows}</table>")


def _test_table(stats: list[TestRate]) -> str:
    def row(s: TestRate) -> str:
        return (f"<tr><td>{escape(s.exercise)}</td><td><code>{escape(s.name)}</code></td>"
                f'<td class="num">{s.max_score:g}</td><td class="num">{s.passed} / {s.attempted}</td>'
                f'<td class="num">{100 * s.rate:.0f}%</td><td style="width:30%">{bar(s.rate)}</td></tr>')

    head = ('<tr><th>exercise</th><th>test</th><th class="num">points</th><th class="num">passed</th>'
            '<th class="num">pass rate</th><th></th></tr>')
    shown, rest = stats[:VISIBLE_TESTS], stats[VISIBLE_TESTS:]
    more = (f"<details><summary>{len(rest)} more test(s)</summary>"
            + scroll(f'<table>{head}{"".join(row(s) for s in rest)}</table>') + "</details>" if rest else "")
    return scroll(f'<table>{head}{"".join(row(s) for s in shown)}</table>') + more


def _problems(reports: list[StudentReport]) -> str:
    rows = []
    for r in reports:
        link = f'<a href="{escape(quote(r.student))}/feedback.html">{escape(r.student)}</a>'
        if r.error:
            rows.append(f"<tr><td>{link}</td><td></td><td>{badge('error')}</td><td>{escape(r.error)}</td></tr>")
        for e, ex in r.exercises.items():
            bad = [t for t in ex.tests if t.status in PROBLEM_STATUSES]
            if bad:
                who = " (cnngrade's fault)" if any(t.grader_error for t in bad) else ""
                rows.append(f"<tr><td>{link}</td><td>{escape(e)}</td><td>{badge(bad[0].status)} "
                            f"{len(bad)} test(s){escape(who)}</td><td class='small'>"
                            f"{escape(first_line(bad[0].output))}</td></tr>")
    if not rows:
        return '<p class="muted">No errors or timeouts.</p>'
    return scroll("<table><tr><th>student</th><th>exercise</th><th>what</th><th>first line of the message</th></tr>"
                  + "".join(rows) + "</table>")


def _student_table(reports: list[StudentReport], exercises: list[str]) -> str:
    """One row per student; an exercise's maximum is said once in its heading, so the columns stay narrow."""
    tops = {e: next((r.exercises[e].max_score for r in reports if e in r.exercises), 0.0) for e in exercises}
    heads = "".join(f'<th class="num">{escape(e.split("_")[0])}<br><span class="small">/ {tops[e]:g}</span></th>'
                    for e in exercises)
    rows = []
    for r in reports:
        t = r.total
        cells = "".join(_score_cell(r, e, tops[e]) for e in exercises)
        pct = graded_percent(t["score"], t["max_score"], t["manual_pending"])
        rows.append(f'<tr><td><a href="{escape(quote(r.student))}/feedback.html">{escape(r.student)}</a></td>'
                    f'{cells}<td class="num"><b>{points(t["score"], t["max_score"])}</b></td>'
                    f'<td class="num">{pct:.0f}%</td><td class="num">{t["manual_pending"]:g}</td></tr>')
    return scroll(f'<table class="students"><tr><th>student</th>{heads}<th class="num">total</th>'
                  f'<th class="num">graded %</th><th class="num">pending<br>review</th></tr>{"".join(rows)}</table>')


def _score_cell(report: StudentReport, exercise: str, top: float) -> str:
    ex = report.exercises.get(exercise)
    if ex is None:
        return '<td class="num">-</td>'
    # A report graded with another grader.yaml may have another maximum: then it is said in the cell.
    return f'<td class="num">{ex.score:g}</td>' if ex.max_score == top else f'<td class="num">{points(ex.score, ex.max_score)}</td>'


def _flagged_pairs(info: object) -> list[dict]:
    pairs = info.get("flagged") if isinstance(info, dict) else None
    return [p for p in pairs if isinstance(p, dict)] if isinstance(pairs, list) else []


def similarity_section(summary: dict | None) -> str:
    """The "Similar code" section: links to DIR/similarity/ when `cnngrade similarity` wrote it, else how to run it.

    ``summary`` comes from a file in the report folder: every value is escaped and checked for its type.
    """
    if not summary or not isinstance(summary.get("exercises"), dict):
        return ('<section><h2>Similar code</h2><p class="small muted">Not checked. To find pairs of students whose '
                "code is suspiciously alike, run <code>cnngrade similarity SUBMISSIONS --out DIR</code> with this "
                "folder as DIR; this section then links to the pairs.</p></section>")
    rows = []
    for exercise, info in summary["exercises"].items():
        if not isinstance(info, dict) or not isinstance(info.get("pairs_compared"), int) or not info["pairs_compared"]:
            continue   # fewer than two files: nothing was compared
        pairs = _flagged_pairs(info)
        top = pairs[0] if pairs else {}
        best = (f"{escape(str(top.get('student_a', '')))} and {escape(str(top.get('student_b', '')))}"
                if top else "")
        rows.append(f'<tr><td><a href="similarity/index.html#ex-{anchor(str(exercise))}">{escape(str(exercise))}'
                    f'</a></td><td class="num">{len(pairs)}</td><td>{best}</td></tr>')
    total = sum(len(_flagged_pairs(i)) for i in summary["exercises"].values())
    return ('<section><h2>Similar code</h2><p class="callout" style="border-left-color:var(--warn);background:'
            f'#fff8e1">{total} pair(s) of students with suspiciously similar code: a signal for a person to review, '
            'never a score change. <a href="similarity/index.html">All pairs, side by side</a>.</p>'
            + scroll('<table><tr><th>exercise</th><th class="num">pairs flagged</th><th>most similar pair</th></tr>'
                     f'{"".join(rows)}</table>') + '</section>')


def class_page(reports: list[StudentReport], exercises: list[str], similarity: dict | None = None) -> str:
    """The whole dashboard; ``similarity``: DIR/similarity/summary.json when `cnngrade similarity` wrote it."""
    n = len(reports)
    ex_stats = exercise_stats(reports, exercises)
    totals = [graded_percent(r.total["score"], r.total["max_score"], r.total["manual_pending"]) for r in reports]
    summary = (f"{n} student(s); median {statistics.median(totals):.0f}%, mean {statistics.fmean(totals):.0f}% "
               f"of the points graded so far" if totals else "no students")
    pending = sum(r.total["manual_pending"] for r in reports)
    warnings = sorted({r.warning for r in reports if r.warning})
    review = "".join(f'<p class="callout">{escape(w)}</p>' for w in warnings)
    review += (f'<p class="small">{pending:g} point(s) of free-text answers await review '
              f"(<code>cnngrade manual export</code>).</p>" if pending else "")
    body = (
        f'<header class="card"><div class="muted small">cnngrade class dashboard</div><h1>{escape(summary)}</h1>'
        f"{meta_line(_run_summary(reports))}{profile_note(reports[0].profile if reports else {}, for_student=False)}"
        f"{_headline(ex_stats, reports)}{review}</header>"
        f"<section><h2>Score distribution</h2>{charts.histogram(totals, label='score (% of the points graded so far)')}"
        f"</section>"
        f"<section><h2>Exercises</h2>{_exercise_table(ex_stats, n)}</section>"
        f'<section><h2>Tests, hardest first</h2><p class="small muted">Pass rate among the students who handed '
        f"the exercise in.</p>{_test_table(per_test_stats(reports, exercises))}</section>"
        f"<section><h2>Errors and timeouts</h2>{_problems(reports)}</section>"
        f"{similarity_section(similarity)}"
        f"<section><h2>Students</h2>{_student_table(reports, exercises)}</section>")
    return page("cnngrade class dashboard", body)
