"""The cohort service: its batching and grouping, its fallback to local training, its answers equal to solo runs,
and a class graded with ``--cohort`` whose training checks trained as one cohort."""
from __future__ import annotations

import multiprocessing.connection
import queue
import shutil
import threading
from pathlib import Path

import pytest
import torch
import yaml

from cnngrade.training import cohort_service, profiles, run_check as training
from cnngrade.config import GRADERS_DIR, PROJECT_ROOT
from cnngrade.grading.pipeline import grade_class
from tests.harness import SUBMISSIONS

CPU = {"name": "cpu", "device": "cpu", "dataset": "synthetic"}
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
    with cohort_service.CohortService(4, window=30, secret=secret) as service:
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
    for mine, alone in zip([answers[i] for i in range(3)], solo):
        assert mine.cohort == 3 and mine.initial_accuracy == pytest.approx(alone.initial_accuracy, abs=1e-3)
        assert abs(mine.accuracy - alone.accuracy) <= ACCURACY_TOLERANCE, (mine, alone)
        assert mine.losses[0] == pytest.approx(alone.losses[0], rel=5e-3)


@pytest.mark.slow
def test_a_class_graded_with_a_cohort_trains_as_one(tmp_path, monkeypatch):
    # The students reach their training check seconds apart on a busy machine: wait for all three.
    monkeypatch.setattr(cohort_service, "WINDOW", 40.0)
    exercise = "ex6_cifar10_training"
    real = yaml.safe_load((GRADERS_DIR / exercise / "grader.yaml").read_text())
    graders = tmp_path / "g" / exercise
    graders.mkdir(parents=True)
    shutil.copy(GRADERS_DIR / exercise / "test_training.py", graders / "test_training.py")
    name = "test_training_reaches_threshold"
    (graders / "grader.yaml").write_text(yaml.safe_dump(
        {"title": real["title"], "time_limit": real.get("time_limit", 300), "profiles": real["profiles"],
         "tests": {name: real["tests"][name]}}))
    sources = [PROJECT_ROOT / "solutions" / f"{exercise}.py", *sorted(SUBMISSIONS.glob(f"{exercise}/good_*.py"))[:2]]
    for i, source in enumerate(sources):
        (tmp_path / "class" / f"s{i}").mkdir(parents=True)
        shutil.copy(source, tmp_path / "class" / f"s{i}" / f"{exercise}.py")
    reports = grade_class(tmp_path / "class", tmp_path / "out", [exercise], jobs=3, graders_dir=tmp_path / "g",
                          profile=profiles.select_profile("cpu"), cohort=3)
    for report in reports:
        test = report.exercises[exercise].tests[0]
        assert test.status == "passed", (report.student, test.output)
        assert test.metrics["trained_by"] == "grader (trusted side), cohort of 3", (report.student, test.metrics)


def test_the_gpu_profile_trains_in_cohorts_by_default():
    assert cohort_service.default_size({"name": "gpu"}) == 16 and cohort_service.default_size(CPU) == 0
    assert Path(cohort_service.__file__).exists()
