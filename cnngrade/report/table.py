"""A plain-text score table for the terminal."""
from __future__ import annotations

from cnngrade.records import Status, StudentReport
from cnngrade.sinks import terminal_text


def score_table(reports: list[StudentReport], exercises: list[str]) -> str:
    """Students as rows, exercises as columns (score/max), then the total, the points awaiting manual review,
    and a problems column."""
    heads = ["student", *(e.split("_")[0] for e in exercises), "total", "pending review"]
    rows = []
    for r in reports:
        # Ids are the students' folder names: an escape sequence in one must show, not act on the terminal.
        cells = [terminal_text(r.student)]
        for e in exercises:
            ex = r.exercises.get(e)
            cells.append(f"{ex.score:g}/{ex.max_score:g}" if ex else "-")
        t = r.total
        cells.append(f"{t['score']:g}/{t['max_score']:g}")
        # Free-text points wait for a person; shown apart so they do not read as points lost.
        cells.append(f"{t['manual_pending']:g}" if t["manual_pending"] else "")
        statuses = {s.status for ex in r.exercises.values() for s in ex.tests}
        notes = [str(s) for s in (Status.MISSING, Status.ERROR, Status.TIMEOUT) if s in statuses]
        if r.grader_errors:
            notes.append(f"{r.grader_errors} grader error(s)")
        cells.append(", ".join(notes))
        rows.append(cells)
    heads.append("problems")
    widths = [max(len(str(c)) for c in col) for col in zip(heads, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [heads, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
