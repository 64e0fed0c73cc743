"""The HTML feedback and class dashboard: escaped, self-contained, right numbers, and clean in a real browser."""
from __future__ import annotations

import base64
import html as html_lib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from cnngrade import records
from cnngrade.cli import main
from cnngrade.records import ExerciseResult, StudentReport
from cnngrade.report.dashboard import class_page, exercise_stats, per_test_stats
from cnngrade.report.files import write_class_outputs, write_student_report
from cnngrade.report.html import metrics_html, split_counterexample, student_page
from tests.harness import SUBMISSIONS

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
                         "    submission=<cnngrade.sandbox.client.Submission object at 0x7f>,\n    size=1,\n)")
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
    assert "measured accuracy 0.61: passed" in alice and "at least 0.55" in alice
    assert "training loss per epoch" in alice and "validation accuracy per epoch" in alice
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
    item.output, item.reviewed = "Reviewed by course staff: 1 of 2 point(s). Say why <max> differs.", True
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


GREEN, RED = 'fill="#2ca02c"', 'fill="#d62728"'


@pytest.mark.parametrize(("accuracy", "threshold", "status", "said", "colour", "rule"), [
    (0.31, 0.72, "passed", None, GREEN, "at most"),      # ex8's sigmoid variant stays below: a pass, green
    (0.79, 0.72, "failed", None, RED, "at most"),
    (0.83, 0.70, "passed", None, GREEN, "at least"),
    (0.41, 0.70, "failed", None, RED, "at least"),
    (0.70, 0.70, "passed", "at most", GREEN, "at most"),  # a grader may say which way (training.record's extra)
])
def test_the_accuracy_bar_shows_the_verdict_not_the_side_of_the_threshold(accuracy, threshold, status, said, colour,
                                                                          rule):
    metrics = {"accuracy": accuracy, "threshold": threshold, **({"direction": said} if said else {})}
    html = metrics_html(metrics, status)
    assert colour in html and (RED if colour == GREEN else GREEN) not in html
    assert f"required: {rule} {threshold:g}" in html and f"{accuracy:g}: {status}" in html
    assert 'fill="#5f6368"' in metrics_html(metrics, "error")   # neither passed nor failed: grey


@pytest.mark.slow   # imports torch (cnngrade.training.run_check)
def test_a_training_check_records_and_draws_its_loss_per_epoch():
    from cnngrade.config import TrainingSettings
    from cnngrade.training.profiles import Profile
    from cnngrade.training.run_check import RunResult, record

    metrics: dict = {}
    run = RunResult(0.8, 0.1, 12.0, 0.6, 2, (2.2, 1.4, float("nan"), 0.6))
    record(metrics, run, TrainingSettings(epochs=4, threshold=0.7), Profile("cpu", "cpu", "shapes"), 0.7)
    assert metrics["train_loss"] == [2.2, 1.4, None, 0.6]
    json.dumps(metrics, allow_nan=False)   # report.json is strict JSON
    html = metrics_html(metrics, "passed")
    assert "training loss per epoch" in html and "mean training loss per epoch" in html
    assert html.count("<polyline") == 1 and html.count("<circle") == 1   # epochs 1-2 joined, a gap, epoch 4 alone
    assert "for 4 epoch(s) on shapes" in html


def test_curves_and_values_are_escaped():
    html = metrics_html({f"{SCRIPT}": [1.0, 2.0], "note": SCRIPT, "direction": SCRIPT, "accuracy": 0.5,
                         "threshold": 0.4, "trained_by": "x", "dataset": SCRIPT}, "passed")
    assert "<script" not in html and "&lt;script&gt;" in html


def free_text_report() -> StudentReport:
    """One answered free-text item (pending), and one of each kind of missing answer (not pending)."""
    from cnngrade.config import ManualSpec
    from cnngrade.grading.score import manual_result

    answers = {"A": records.Answer("Max pooling keeps the strongest response."), "B": records.Answer(),
               "C": records.Answer("   "), "D": records.Answer(problem="D is not defined")}
    items = [manual_result(ManualSpec(name, 3.0), answer) for name, answer in answers.items()]
    ex = ExerciseResult("ex3_receptive_fields", "Receptive fields", [records.TestResult("test_a", 1.0, 1.0, "passed"),
                                                                      *items])
    return StudentReport("dora", {"ex3_receptive_fields": ex}, {"name": "cpu"}, "0.1.0")


def test_only_answers_that_exist_wait_for_review():
    from cnngrade.report.lms_gradescope import gradescope_results
    from cnngrade.report.manual import export_csv

    report = free_text_report()
    items = {t.name: t for t in report.exercises["ex3_receptive_fields"].tests}
    assert items["A"].status == "manual" and all(items[n].status == "failed" for n in "BCD")
    assert all(t.free_text and t.score == 0 for t in items.values() if t.name != "test_a")
    assert "still None" in items["B"].output and "empty" in items["C"].output and "not defined" in items["D"].output
    assert report.total == {"score": 1.0, "max_score": 13.0, "manual_pending": 3.0}
    html = student_page(report)
    assert "3 more point(s) await review" in html and "1 of 10 points graded so far" in visible_text(html)
    free = html[html.index("Free-text answers"):]
    assert free.count("no answer</span>") == 3 and free.count("nothing to review") >= 3
    assert "<code>B</code>" not in html[:html.index("Free-text answers")]   # not listed as an automatic test
    dash = class_page([report], ["ex3_receptive_fields"])
    assert "3 point(s) of free-text answers await review" in dash
    rows = export_csv([report]).splitlines()
    assert len(rows) == 2 and ",A," in rows[1]    # only the answered item goes out for review
    entries = {e["extra_data"]["test"]: e for e in gradescope_results(report)["tests"]}
    assert "pending" in entries["A"]["name"] and all(entries[n]["status"] == "failed" for n in "BCD")


# As profiles.with_calibration writes it, but with a path for "file" (the page must show only its name to students).
CALIBRATION = {"file": "/srv/course/calibration/cpu.json", "sha256": "0123456789abcdef", "profile": "cpu",
               "date": "2026-11-30", "device": "cpu (2 cores)", "torch": f"2.14.1 {SCRIPT}", "seeds": [1, 2, 3],
               "thresholds": {"ex6_cifar10_training": {"threshold": 0.7}}}


def test_the_profile_is_explained_with_its_calibration(klass):
    cpu = {"name": "cpu", "device": "cpu", "dataset": "synthetic-shapes-2560/1000-16px", "data_dir": None,
           "calibration": CALIBRATION}
    for r in klass:
        r.profile = cpu
    klass[0].exercises["ex6_cifar10_training"] = ExerciseResult("ex6_cifar10_training", "Training", [])
    mine, dash = student_page(klass[0]), class_page(klass, EXERCISES)
    for html in (mine, dash):
        assert "generated data set of coloured shapes" in html
        assert "2,560 training and 1,000 held-out images of 16x16 pixels" in html
        assert "date 2026-11-30; device cpu (2 cores); torch 2.14.1 &lt;script&gt;" in html and "seeds 1, 2, 3" in html
        assert "{" not in visible_text(html) and "profile calibration" not in html
    assert "file cpu.json; sha256 0123456789abcdef" in mine
    assert "/srv/course" not in mine                                 # the grading machine's folders stay private
    assert "file /srv/course/calibration/cpu.json" in dash
    assert "generated data set" not in student_page(klass[1])        # no training check in that report: no note
    klass[0].profile = {"name": "gpu", "device": "cuda", "dataset": "cifar10"}
    assert "CIFAR-10 (50,000 training images" in student_page(klass[0])


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


# The pages run no script; this one lays each of them out in frames of the widths asked for, in one browser start,
# and records how wide each document and each of its scrolling boxes is, and what sticks out past the frame.
MEASURE = """<script>addEventListener("load", () => {
  const found = [...document.querySelectorAll("iframe")].map(f => {
    const doc = f.contentDocument.documentElement, body = f.contentDocument.body;
    const out = [...body.querySelectorAll("*")]
      .filter(e => e.getBoundingClientRect().right > doc.clientWidth + 0.5 && !e.closest(".scroll"))
      .map(e => e.tagName + "." + e.className);
    const scrolling = [...body.querySelectorAll(".scroll")].filter(e => e.scrollWidth > e.clientWidth + 0.5).length;
    return {page: f.dataset.page, width: f.width, scroll: doc.scrollWidth, client: doc.clientWidth, out, scrolling};
  });
  document.body.dataset.layout = JSON.stringify(found);
});</script>"""


def chromium_layouts(pages: list[Path], widths: tuple[int, ...], tmp_path: Path) -> list[dict]:
    """The layout of every page at every width (see MEASURE); srcdoc frames share the probe's origin."""
    frames = "".join(f'<iframe data-page="{html_lib.escape(p.name)}" width="{w}" height="900" '
                     f'srcdoc="{html_lib.escape(p.read_text(encoding="utf-8"))}"></iframe>'
                     for p in pages for w in widths)
    probe = tmp_path / "layout-probe.html"
    probe.write_text(f"<!DOCTYPE html><html><body>{frames}{MEASURE}</body></html>", encoding="utf-8")
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,900",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'data-layout="([^"]*)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    return json.loads(html_lib.unescape(found.group(1)))


def wide_class() -> list[StudentReport]:
    """Eight exercises of long test names, long student ids, a training check with curves and a figure."""
    names = ["ex1_output_size", "ex2_feature_maps", "ex3_receptive_fields", "ex4_shape_tracking",
             "ex5_alexnet_analysis", "ex6_cifar10_training", "ex7_retina_design", "ex8_ablation"]

    def student(name: str, k: int) -> StudentReport:
        exercises = {}
        for j, e in enumerate(names):
            passes = [(i + j + k) % 3 > 0 for i in range(5)]
            tests = [records.TestResult(f"test_{e}_with_a_rather_long_descriptive_name[{i}]", 2.0 * ok, 2.0,
                                        "passed" if ok else "failed", "" if ok else "returned 3, expected 4 " * 12)
                     for i, ok in enumerate(passes)]
            tests.append(records.TestResult("EXPLANATIONS.relu", 0.0, 2.0, "manual", "Awaiting review", "public",
                                            answer="word " * 200))
            exercises[e] = ExerciseResult(e, f"The title of {e}", tests)
        return StudentReport(name, exercises, {"name": "cpu", "device": "cpu", "dataset": "synthetic-shapes-2560/1000",
                                               "isolation": "bwrap", "calibration": CALIBRATION}, "0.1.0",
                             started_at="2026-11-25T12:00:00+00:00", duration_s=40.0)

    reports = [student(n, k) for k, n in enumerate(["a_student_id_that_is_far_longer_than_most_ids_2026", "bob",
                                                    "carol", "dave", "eve"])]
    for direction, test in zip(("at least", "at most"), reports[0].exercises["ex8_ablation"].tests):
        test.metrics = {"accuracy": 0.8, "threshold": 0.7, "direction": direction, "epochs": 20, "seconds": 30.0,
                        "trained_by": "grader (trusted side)", "dataset": "synthetic-shapes-2560/1000",
                        "train_loss": [2.3 - 0.1 * i for i in range(20)],
                        "variants": {v: {"val_acc": [0.1 + 0.03 * i for i in range(20)]} for v in
                                     ("baseline", "no_dropout", "sigmoid", "no_augmentation")}}
    reports[0].exercises["ex2_feature_maps"].tests[0].metrics = {"figure_png": png_base64()}
    return reports


@needs_chromium
@pytest.mark.slow
def test_pages_fit_1024_and_1280_pixel_windows(tmp_path):
    """Nothing sticks out of the window at 1024 px (a table too wide scrolls in its own box); at 1280 px nothing
    even needs to scroll."""
    reports, out = wide_class(), tmp_path / "reports"
    write_student_report(out, reports[0])
    write_class_outputs(out, reports, list(reports[0].exercises))
    layouts = chromium_layouts([out / "index.html", out / reports[0].student / "feedback.html"], (1024, 1280), tmp_path)
    assert len(layouts) == 4
    for layout in layouts:
        assert layout["scroll"] <= layout["client"] and not layout["out"], layout
        assert layout["width"] == "1024" or not layout["scrolling"], layout


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
    assert f"{bob.total['score']:g} of {bob.total['max_score'] - bob.total['manual_pending']:g} points graded" in text
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
