"""The HTML feedback and class dashboard: escaped, self-contained, right numbers, and clean in a real browser."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest
from conftest import SUBMISSIONS

from cnngrade import records
from cnngrade.cli import main
from cnngrade.records import ExerciseResult, StudentReport
from cnngrade.report.dashboard import class_page, exercise_stats, per_test_stats
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.html import split_counterexample, student_page

SCRIPT = "<script>alert('owned')</script>"
EXERCISES = ["ex1_output_size", "ex3_receptive_fields"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs chromium, so there a missing browser is a failure, never a quiet skip.
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="needs Debian's chromium package (apt install chromium)")


def png_base64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_report(student: str, ex1_passed: int, ex3_passed: int, *, output: str = "") -> StudentReport:
    """ex1: 4 tests of 1 point, ex3: 4 tests of 2 points; the first ``n`` of each pass; one manual item."""
    def tests(prefix: str, n_pass: int, pts: float) -> list[records.TestResult]:
        return [records.TestResult(f"{prefix}_{i}", pts if i < n_pass else 0.0, pts,
                                   "passed" if i < n_pass else "failed",
                                   "" if i < n_pass else output or f"{prefix}_{i} returned 2, expected 1",
                                   visibility="public" if i % 2 == 0 else "hidden") for i in range(4)]

    ex1 = ExerciseResult("ex1_output_size", "Output dimension arithmetic", tests("test_ex1", ex1_passed, 1.0))
    ex3_tests = tests("test_ex3", ex3_passed, 2.0)
    ex3_tests.append(records.TestResult("AVG_VS_MAX", 0.0, 2.0, "manual", "Awaiting review by course staff.",
                                visibility="public", answer=f"Averaging mixes values {SCRIPT}"))
    ex3 = ExerciseResult("ex3_receptive_fields", "Receptive fields", ex3_tests, student_output=f"printed {SCRIPT}")
    return StudentReport(student, {"ex1_output_size": ex1, "ex3_receptive_fields": ex3},
                         {"name": "cpu", "device": "cpu", "isolation": "rlimits"}, "0.1.0",
                         started_at="2026-11-25T12:00:00+00:00", duration_s=4.0)


@pytest.fixture
def klass() -> list[StudentReport]:
    hypothesis_output = ("conv_output_size(size=1) returned 2, expected 1\nFalsifying example: test_x(\n"
                         "    submission=<cnngrade.client.Submission object at 0x7f>,\n    size=1,\n)")
    reports = [make_report("alice", 4, 3), make_report("bob", 3, 1, output=hypothesis_output),
               make_report("carol", 2, 0, output=SCRIPT)]
    fig = reports[0].exercises["ex1_output_size"].tests[0]
    fig.metrics = {"figure_png": png_base64(), "accuracy": 0.61, "threshold": 0.55,
                   "train_loss": [2.1, 1.6, 1.2], "val_acc": [0.3, 0.5, 0.61], "epochs": 3}
    return reports


def test_untrusted_text_is_escaped(klass):
    for html in [student_page(r) for r in klass] + [class_page(klass, EXERCISES)]:
        assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in student_page(klass[2])
    assert "Averaging mixes values &lt;script&gt;" in student_page(klass[0])


def test_pages_load_nothing_from_outside(klass):
    for html in [student_page(r) for r in klass] + [class_page(klass, EXERCISES)]:
        links = re.findall(r'(?:src|href)="([^"]*)"', html)
        assert links
        outside = [u for u in links if not (u.startswith(("#", "data:image/png;base64,")) or u.endswith("feedback.html"))]
        assert not outside
        assert "<link" not in html and "@import" not in html


def test_feedback_shows_figure_counterexample_and_what_to_fix(klass):
    alice, bob = student_page(klass[0]), student_page(klass[1])
    assert f'src="data:image/png;base64,{png_base64()}"' in alice
    assert "measured accuracy 0.61" in alice and "threshold 0.55" in alice
    assert "train_loss per epoch" in alice and "val_acc per epoch" in alice
    message, example = split_counterexample(klass[1].exercises["ex1_output_size"].tests[3].output)
    assert message == "conv_output_size(size=1) returned 2, expected 1"
    assert "size=1" in example and "Submission object" not in example
    assert '<pre class="counterexample">' in bob
    fix = bob[bob.index("What to fix"):bob.index("</ol>")]
    lost = [(e.exercise, t) for e in klass[1].exercises.values() for t in e.tests if t.status == "failed"]
    assert all(t.name in fix for _, t in lost)
    # Tests that fail with the same message are one item: here ex1's one test and ex3's three.
    assert fix.count("<li>") == len({(e, t.output) for e, t in lost}) == 2
    assert "2 point(s) pending" in alice


def test_a_missing_file_is_said_once(klass):
    ex1 = klass[0].exercises["ex1_output_size"]
    for t in ex1.tests:
        t.status, t.score, t.output = "missing", 0.0, "ex1_output_size.py was not found in the submission"
    html = student_page(klass[0])
    assert html.count("was not found in the submission") == 2      # in what to fix, and in the exercise
    assert f"ex1_output_size · all {len(ex1.tests)} tests" in html


def test_lms_details_notes_and_isolation_warning_are_shown(klass):
    klass[0].info, klass[0].notes = {"name": "Alice <A>"}, ["both .py and .ipynb handed in"]
    klass[0].warning = "isolation rlimits only: weaker than bubblewrap"
    page = student_page(klass[0])
    assert "Alice &lt;A&gt;" in page and "both .py and .ipynb handed in" in page and klass[0].warning in page
    assert class_page(klass, EXERCISES).count(klass[0].warning) == 1


def test_reviewed_free_text_shows_its_points_and_comment(klass):
    item = klass[0].exercises["ex3_receptive_fields"].tests[-1]
    item.status, item.score = "failed", 1.0
    item.output, item.metrics = "Reviewed by course staff: 1 of 2 point(s). Say why <max> differs.", {"reviewed": True}
    html = student_page(klass[0])
    section = html[html.index("Free-text answers"):]
    assert "1 / 2 point(s)" in section and "Say why &lt;max&gt; differs." in section
    table = html[html.index('id="ex3_receptive_fields"'):html.index("Free-text answers")]
    assert "AVG_VS_MAX" not in table


def test_a_broken_figure_is_not_embedded(klass):
    test = klass[0].exercises["ex1_output_size"].tests[0]
    test.metrics = {"figure_png": base64.b64encode(b"GIF89a not a png").decode()}
    html = student_page(klass[0])
    assert "<img" not in html and "not valid PNG data" in html


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("case", ["truncated", "bad_crc", "huge_header"])
def test_a_png_that_pil_refuses_is_not_embedded(klass, case):
    """The PNG magic is not enough: a figure is embedded only when PIL verifies it within the pixel budget."""
    import struct

    good = base64.b64decode(png_base64())
    raw = {"truncated": good[:40],
           "bad_crc": good[:29] + bytes([good[29] ^ 0xFF]) + good[30:],
           # A 100000 x 100000 header: ten billion pixels claimed by a file of a few dozen bytes.
           "huge_header": b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
           + _png_chunk(b"IEND", b"")}[case]
    test = klass[0].exercises["ex1_output_size"].tests[0]
    test.metrics = {"figure_png": base64.b64encode(raw).decode()}
    html = student_page(klass[0])
    assert "<img" not in html and "not valid PNG data" in html


def test_dashboard_numbers_come_from_the_records(klass):
    stats = {s.exercise: s for s in exercise_stats(klass, EXERCISES)}
    for e in EXERCISES:
        expected = statistics.fmean(100 * r.exercises[e].score / (r.exercises[e].max_score
                                                                  - r.exercises[e].manual_pending) for r in klass)
        assert stats[e].mean_percent == pytest.approx(expected)
    hardest = min(EXERCISES, key=lambda e: stats[e].mean_percent)
    assert hardest == "ex3_receptive_fields"
    html = class_page(klass, EXERCISES)
    headline = re.search(r"Hardest exercise: .*?</p>", html).group(0)
    assert hardest in headline and f"{stats[hardest].mean_percent:.0f}%" in headline
    rates = [s.rate for s in per_test_stats(klass, EXERCISES)]
    assert rates == sorted(rates) and rates[0] == 0.0  # test_ex3_3 passed by nobody comes first
    assert all(f'href="{r.student}/feedback.html"' in html for r in klass)


def chromium_render(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from ``page`` and every console message it logged."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    return proc.stdout, console


def visible_text(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", dom, flags=re.DOTALL)))


@needs_chromium
@pytest.mark.slow
def test_the_console_check_catches_a_script_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    _, console = chromium_render(bad, tmp_path)
    assert any("undefinedFunction" in ln for ln in console)


@needs_chromium
@pytest.mark.slow
def test_pages_render_in_chromium_with_the_numbers(klass, tmp_path):
    out = tmp_path / "reports"
    for r in klass:
        write_student_report(out, r)
    write_class_outputs(out, klass, EXERCISES)
    dom, console = chromium_render(out / "index.html", tmp_path)
    assert console == []
    text = visible_text(dom)
    mean = statistics.fmean(100 * r.total["score"] / (r.total["max_score"] - r.total["manual_pending"]) for r in klass)
    assert f"mean {mean:.0f}%" in text
    assert "Hardest exercise: ex3_receptive_fields" in text
    dom, console = chromium_render(out / "bob" / "feedback.html", tmp_path)
    assert console == []
    text = visible_text(dom)
    bob = klass[1]
    assert f"{bob.total['score']:g} of {bob.total['max_score'] - bob.total['manual_pending']:g} automatic points" in text
    assert "What to fix" in text and "size=1," in text


@needs_chromium
@pytest.mark.slow
def test_end_to_end_grade_writes_pages_that_render(tmp_path, capsys):
    klass = tmp_path / "class"
    for variant in ("good_loop", "bad_round_up"):
        (klass / variant).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / "ex1_output_size" / f"{variant}.py", klass / variant / "ex1_output_size.py")
    out = tmp_path / "out"
    assert main(["grade", str(klass), "--out", str(out), "--exercises", "ex1", "--jobs", "2", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    report = StudentReport.from_dict(json.loads((out / "bad_round_up" / "report.json").read_text()))
    dom, console = chromium_render(out / "bad_round_up" / "feedback.html", tmp_path)
    assert console == []
    text = visible_text(dom)
    assert f"{report.total['score']:g} of" in text and "Counterexample" in text
    dom, console = chromium_render(out / "index.html", tmp_path)
    assert console == [] and "2 student(s)" in visible_text(dom)
