"""The cohort service: its batching and grouping, its fallback to local training, its answers equal to solo runs,
the cohort's epochs in the progress line, and a class graded with ``--cohort`` whose training checks trained as one
cohort, its hostile students judged as without one and their cohort's other members unaffected."""
from __future__ import annotations

import io
import multiprocessing.connection
import queue
import shutil
import threading
from pathlib import Path

import pytest
import torch
import yaml

from cnngrade.config import GRADERS_DIR, PROJECT_ROOT, load_exercise
from cnngrade.grading.pipeline import grade_class
from cnngrade.report.progress import Progress
from cnngrade.training import cohort, cohort_progress, cohort_service, profiles
from cnngrade.training import run_check as training

CPU = profiles.Profile("cpu", "cpu", "synthetic")
TINY = profiles.TrainingSettings(epochs=1, batch_size=128, lr=0.003, threshold=0.1)
# tests/test_cohort.py's tolerance: cohort against solo accuracy, per member (float reassociation only).
ACCURACY_TOLERANCE = 0.04


def tiny(seed: int, width: int = 8) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(width * 4, 10))


def pending(net, seed=0, epochs=1) -> cohort_service._Pending:
    settings = profiles.TrainingSettings(epochs=epochs, batch_size=128, lr=0.003, threshold=0.1)
    return cohort_service._Pending(None, {"network": net, "settings": settings, "profile": CPU, "seed": seed,
                                          "augment": True, "threads": 1, "what": "net"})


def test_requests_are_grouped_by_recipe_and_architecture():
    a, b, wide, other_seed, other_epochs = (pending(tiny(0)), pending(tiny(1)), pending(tiny(2, width=16)),
                                            pending(tiny(3), seed=5), pending(tiny(4), epochs=2))
    c = pending(tiny(5))
    got = cohort_service.groups([a, wide, b, other_seed, other_epochs, c])
    assert got == [[a, b, c], [wide], [other_seed], [other_epochs]]


def test_a_batch_is_gathered_until_full_or_the_window_ends():
    inbox: queue.Queue = queue.Queue()
    for i in range(5):
        inbox.put(i)
    assert cohort_service.gather(inbox, 3, window=10) == [0, 1, 2]           # full: no waiting for the window
    assert cohort_service.gather(inbox, 3, window=0.2) == [3, 4]             # the window ended first


def test_an_unreachable_service_means_training_here():
    cohort_service.use({"address": "/nonexistent/cnngrade-cohort.sock", "authkey": "00" * 32})
    try:
        run = training.train_and_score(tiny(0), TINY, CPU, seed=0, augment=False)
    finally:
        cohort_service.use(None)
    assert run.cohort == 1 and 0 <= run.accuracy <= 1 and len(run.losses) == 1


def test_a_failing_service_means_training_here(tmp_path):
    """The service answers with its own error (a bug, a lost device): the check trains in the grading process."""
    key = b"k" * 32
    listener = multiprocessing.connection.Listener(str(tmp_path / "s.sock"), family="AF_UNIX", authkey=key)

    def fail_once():
        with listener.accept() as conn:
            conn.recv()
            conn.send(("error", "Traceback: the service broke"))

    server = threading.Thread(target=fail_once, daemon=True)
    server.start()
    cohort_service.use({"address": listener.address, "authkey": key.hex()})
    try:
        run = training.train_and_score(tiny(0), TINY, CPU, seed=0, augment=False)
    finally:
        cohort_service.use(None)
        server.join(10)
        listener.close()
    assert run.cohort == 1 and len(run.losses) == 1


class Lookup(torch.nn.Module):
    """Already 'trained': answers the held-out labels it was given."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.table = {bytes(img.numpy().tobytes()): int(y) for img, y in zip(images, labels)}
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        labels = torch.tensor([self.table.get(bytes(img.numpy().tobytes()), 0) for img in images])
        return torch.nn.functional.one_hot(labels, 10).float() * self.scale


@pytest.mark.slow
def test_the_service_answers_as_solo_runs_and_refuses_trained_weights():
    secret = 4321
    nets = [tiny(seed) for seed in (0, 1, 2)]
    solo = [training.train_and_score(tiny(seed), TINY, CPU, seed=7, augment=True, secret=secret) for seed in (0, 1, 2)]
    test = training.profile_held_out(CPU, secret)
    answers: dict[int, object] = {}
    shown = Recorder()   # the driver's side of the progress channel, in this (the driver's) process
    with cohort_service.CohortService(4, window=30, secret=secret, on_task=shown) as service:
        def ask(i, net):
            try:
                answers[i] = cohort_service.request(service.endpoint, net, TINY, CPU, seed=7, augment=True, threads=1,
                                                    what="net")
            except AssertionError as exc:
                answers[i] = exc
        threads = [threading.Thread(target=ask, args=(i, net)) for i, net in enumerate([*nets, Lookup(test.x, test.y)])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert isinstance(answers[3], AssertionError) and "already trained" in str(answers[3])
    # The one group trained (the refused member left out) showed its epoch in the progress line, to the end.
    assert [(t.label, t.total, t.unit, t.done) for t in shown.tasks] == [("cohort training of 3 student(s)", 1,
                                                                          "epochs", 1)]
    for mine, alone in zip([answers[i] for i in range(3)], solo):
        assert mine.cohort == 3 and mine.initial_accuracy == pytest.approx(alone.initial_accuracy, abs=1e-3)
        assert abs(mine.accuracy - alone.accuracy) <= ACCURACY_TOLERANCE, (mine, alone)
        assert mine.losses[0] == pytest.approx(alone.losses[0], rel=5e-3)


def test_the_gpu_profile_trains_in_cohorts_by_default():
    assert cohort_service.default_size(profiles.Profile("gpu", "cuda", "cifar-10")) == 16
    assert cohort_service.default_size(CPU) == 0
    assert Path(cohort_service.__file__).exists()


# -- the cohort's epochs in the driver's progress line ------------------------------------------------------------
class Cells:
    """An EpochBoard's four cells as a plain list: [generation, members, epochs done, epochs total]."""

    def __init__(self) -> None:
        self.cells = [0, 0, 0, 0]

    def read(self) -> tuple[int, int, int, int]:
        generation, members, done, total = self.cells
        return generation, members, done, total


def test_the_progress_line_shows_the_running_cohorts_epochs():
    stream, clock, cells = io.StringIO(), Clock(), Cells()
    progress = Progress(stream, enabled=True, clock=clock)
    progress.start(4)
    watch = cohort_progress.Watch(cells.read, progress.task, interval=3600)   # looks only when told to
    try:
        watch.look()                                  # nothing trains yet: students only
        assert shown_line(stream) == "grading: 0/4 students"
        cells.cells = [1, 3, 0, 0]                    # a group began, its passes not planned yet
        watch.look()
        assert shown_line(stream) == "grading: 0/4 students"
        cells.cells = [1, 3, 0, 6]
        watch.look()
        assert shown_line(stream) == "grading: 0/4 students | cohort training of 3 student(s): 0/6 epochs"
        clock.now += 10
        cells.cells = [1, 3, 2, 6]                    # 2 epochs in 10 s, 4 to go
        watch.look()
        assert shown_line(stream) == ("grading: 0/4 students | cohort training of 3 student(s): 2/6 epochs, "
                                 "12.0 epochs/min, about 20s left")
        cells.cells = [1, 3, 2, 9]                    # a chunk redone in halves: one pass more
        watch.look()
        assert shown_line(stream).endswith("2/9 epochs, 12.0 epochs/min, about 35s left")
        cells.cells = [2, 1, 1, 2]                    # the next group; the last one ended between two looks
        watch.look()
        assert shown_line(stream) == "grading: 0/4 students | cohort training of 1 student(s): 1/2 epochs"
        cells.cells = [2, 1, 2, 2]                    # finished: the step leaves the line
        watch.look()
        assert shown_line(stream) == "grading: 0/4 students"
    finally:
        watch.stop()


def test_train_cohort_counts_epochs_over_all_its_passes():
    x, y = tiny_data()
    seen: list[tuple[int, int]] = []
    cohort.train_cohort([tiny(0), tiny(1), tiny(2)], x, y, epochs=2, batch_size=50, lr=0.003, seed=0, chunk=2,
                        on_epoch=lambda done, total: seen.append((done, total)))
    # A chunk of two trained together, then the third alone: two passes of two epochs.
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    seen.clear()
    cohort.train_cohort([tiny(0), tiny(3, width=4)], x, y, epochs=1, batch_size=50, lr=0.003, seed=0,
                        on_epoch=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 2), (1, 2), (2, 2)]          # two architectures: each member alone


def tiny_data(n: int = 100):
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, 16, 16, 3), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


def shown_line(stream: io.StringIO) -> str:
    return stream.getvalue().split("\r")[-1].strip()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """``on_task`` of a real run: every task opened, with every count it was set to."""

    def __init__(self) -> None:
        self.tasks: list[RecordedTask] = []

    def __call__(self, label: str, total: int, unit: str) -> RecordedTask:
        task = RecordedTask(label, total, unit)
        self.tasks.append(task)
        return task


class RecordedTask:
    def __init__(self, label: str, total: int, unit: str) -> None:
        self.label, self.total, self.unit, self.done, self.counts = label, total, unit, 0, [0]

    def set(self, done: int) -> None:
        self.done = done
        self.counts.append(done)


# -- hostile students in a cohort -----------------------------------------------------------------------------------
def scaled(seed: int, factor: float) -> torch.nn.Module:
    net = tiny(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(factor)
    return net


def poisoned(seed: int, value: float) -> torch.nn.Module:
    net = tiny(seed)
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = value
    return net


def outcome(answer: tuple) -> tuple:
    kind, value = answer
    return (kind, value.accuracy, value.losses) if kind == "ok" else (kind, value)


@pytest.mark.slow
def test_hostile_weights_in_a_cohort_leave_the_other_members_as_without_them():
    """Initial weights the proofs would refuse (NaN, inf) and ones they let through (a thousand times the default
    scale, which diverges): each member is answered as it would train alone, and the honest members exactly as in
    a cohort without the hostile ones. vmap keeps members apart (a grouped convolution per member, Adam elementwise,
    each member's loss its own gradient), so nothing crosses between them."""
    secret = 4321
    honest = [lambda: tiny(0), lambda: tiny(1)]
    hostile = [lambda: poisoned(2, float("nan")), lambda: scaled(3, 1000.0), lambda: poisoned(4, float("inf"))]

    def requests(makers):   # fresh networks for every run: training changes them in place
        return [pending(make(), seed=7).req for make in makers]

    alone = cohort_service.train_group(requests(honest), secret)
    mixed = cohort_service.train_group(requests([honest[0], hostile[0], honest[1], hostile[1], hostile[2]]), secret)
    for mine, without in zip([mixed[0], mixed[2]], alone):
        assert mine[0] == without[0] == "ok" and mine[1].cohort == 5 and without[1].cohort == 2
        assert mine[1].accuracy == pytest.approx(without[1].accuracy, abs=1e-3), (mine, without)   # one image
        assert mine[1].losses == pytest.approx(without[1].losses, rel=1e-5)
    for make, answer in zip(hostile, [mixed[1], mixed[3], mixed[4]]):
        try:
            solo: tuple = ("ok", training.train_and_score(make(), TINY, CPU, seed=7, augment=True, secret=secret))
        except AssertionError as exc:
            solo = ("refused", str(exc))
        assert answer[0] == solo[0], (answer, solo)
        if solo[0] == "ok":      # diverged or NaN: at chance either way, the verdict the same
            assert abs(answer[1].accuracy - solo[1].accuracy) <= ACCURACY_TOLERANCE, (answer, solo)
            assert answer[1].accuracy < 0.2 and solo[1].accuracy < 0.2


# Attacks appended to the reference solution of ex6, each replacing MiniAlexNet (the class the training check builds).
# Students are graded in name order: those whose networks reach training (b, c, beside a_honest) come first, so that
# three grading processes (--jobs 3, as many as the 2-core machine bears) train them as one cohort.
ATTACKS = {
    "d_arch_wider_first_conv": '''
class MiniAlexNet(MiniAlexNet):
    """Another architecture: 48 channels in the first convolution."""
    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__(num_classes, dropout)
        self.features[0] = nn.Conv2d(3, 48, kernel_size=5, padding=2)
        self.features[3] = nn.Conv2d(48, 64, kernel_size=3, padding=1)
''',
    "e_init_nan": '''
class MiniAlexNet(MiniAlexNet):
    """One NaN among the initial weights."""
    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__(num_classes, dropout)
        with torch.no_grad():
            self.features[0].weight[0, 0, 0, 0] = float("nan")
''',
    "b_init_huge": '''
class MiniAlexNet(MiniAlexNet):
    """Initial weights a thousand times PyTorch's scale: finite outputs, so it is trained, and diverges."""
    def __init__(self, num_classes=10, dropout=0.5):
        super().__init__(num_classes, dropout)
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(1000.0)
''',
    "c_reach_cohort_socket": '''
import glob as _glob
import socket as _socket


def _cohort_service_within_reach():
    """What a worker could use to reach the cohort service (and forge requests or answers): its socket or folder
    on a path it sees, the socket among this network namespace's, or its address in any visible process."""
    found = []
    for pattern in ("/tmp/cnngrade-cohort-*", "/tmp/*/cnngrade-cohort-*", "/var/tmp/cnngrade-cohort-*"):
        found += _glob.glob(pattern)
    try:
        with open("/proc/net/unix") as f:
            found += [line.split()[-1] for line in f if "cnngrade-cohort" in line]
    except OSError:
        pass
    for proc in _glob.glob("/proc/[0-9]*"):
        for part in ("cmdline", "environ"):
            try:
                with open(f"{proc}/{part}", "rb") as f:
                    if b"cnngrade-cohort" in f.read():
                        found.append(f"{proc}/{part}")
            except OSError:
                pass
    for path in found:
        s = _socket.socket(_socket.AF_UNIX)
        try:
            s.connect(path if path.endswith(".sock") else path + "/service.sock")
            found.append("connected")
        except OSError:
            pass
        finally:
            s.close()
    return found


if _cohort_service_within_reach():   # never with the sandbox: the attack would then cost it every point
    raise RuntimeError(f"reached the cohort service: {_cohort_service_within_reach()[:3]}")
''',
}


def verdicts(reports, exercise: str) -> dict[str, list[tuple]]:
    """Per student, each test's name, status and score, with its message where no secret draw enters it."""
    return {r.student: [(t.name, t.status, t.score) + (() if t.metrics.get("accuracy") is not None else (t.output,))
                        for t in r.exercises[exercise].tests] for r in reports}


@pytest.mark.slow
def test_hostile_students_graded_with_a_cohort_are_judged_as_without(tmp_path, monkeypatch):
    """A class graded with --cohort, the cpu profile's real training check: a model of another architecture, NaN or
    huge initial weights, a module that looks for the service's socket each lose exactly what they lose without
    --cohort; the reference solution beside them passes, trained as one cohort with the networks that reached
    training, and the progress line showed that cohort's epochs."""
    monkeypatch.setattr(cohort_service, "WINDOW", 40.0)   # on a busy machine the three arrive seconds apart
    exercise = "ex6_cifar10_training"
    real = yaml.safe_load((GRADERS_DIR / exercise / "grader.yaml").read_text())
    graders = tmp_path / "g" / exercise
    graders.mkdir(parents=True)
    shutil.copy(GRADERS_DIR / exercise / "test_training.py", graders / "test_training.py")
    name = "test_training_reaches_threshold"
    (graders / "grader.yaml").write_text(yaml.safe_dump(
        {"title": real["title"], "time_limit": real.get("time_limit", 300), "profiles": real["profiles"],
         "tests": {name: real["tests"][name]}}))
    solution = (PROJECT_ROOT / "solutions" / f"{exercise}.py").read_text()
    for student, attack in {"a_honest": "", **ATTACKS}.items():
        (tmp_path / "class" / student).mkdir(parents=True)
        (tmp_path / "class" / student / f"{exercise}.py").write_text(solution + attack)
    cpu_profile = profiles.select_profile("cpu")
    shown = Recorder()   # the progress line's side of the cohort's epochs, through the pipeline
    together = grade_class(tmp_path / "class", tmp_path / "cohort", [exercise], jobs=3, graders_dir=tmp_path / "g",
                           profile=cpu_profile, cohort=3, on_task=shown)
    shutil.rmtree(tmp_path / "class" / "a_honest")
    alone = grade_class(tmp_path / "class", tmp_path / "alone", [exercise], jobs=2, graders_dir=tmp_path / "g",
                        profile=cpu_profile, cohort=0)
    with_cohort, without = verdicts(together, exercise), verdicts(alone, exercise)
    assert {s: v for s, v in with_cohort.items() if s != "a_honest"} == without
    assert {s: v[0][1] for s, v in without.items()} == {"b_init_huge": "failed", "c_reach_cohort_socket": "passed",
                                                         "d_arch_wider_first_conv": "failed", "e_init_nan": "failed"}
    trained_by = {r.student: r.exercises[exercise].tests[0].metrics.get("trained_by") for r in together}
    assert with_cohort["a_honest"][0][1] == "passed", together
    in_cohort = "grader (trusted side), cohort of 3"
    epochs = profiles.training_settings(load_exercise(exercise, tmp_path / "g"), cpu_profile).epochs
    assert [(t.label, t.total, t.done) for t in shown.tasks] == [("cohort training of 3 student(s)", epochs, epochs)]
    assert trained_by == {"a_honest": in_cohort, "b_init_huge": in_cohort, "c_reach_cohort_socket": in_cohort,
                          "d_arch_wider_first_conv": None, "e_init_nan": None}, trained_by
