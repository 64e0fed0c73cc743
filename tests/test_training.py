"""The training checks: profiles, the trusted trainer and augmentation, the secret held-out draw, the refusal of
trained initial weights, and ex6/ex8 graded end to end on the cpu profile."""
from __future__ import annotations

import pytest
import torch

from cnngrade.config import load_exercise
from cnngrade.data import synthetic
from cnngrade.errors import GraderConfigError, InputError, UsageError
from cnngrade.training import profiles, trainer
from cnngrade.training import run_check as training
from cnngrade.training.trainer import crop_flip
from tests.harness import expected_failures, training_students

TRAINING = {"ex6_cifar10_training": ["test_training_reaches_threshold"],
            "ex8_ablation": ["test_baseline_reaches_threshold", "test_sigmoid_below_baseline"]}


# -- profiles ------------------------------------------------------------------------------------------------------
def test_cpu_profile_names_device_and_data_set():
    p = profiles.select_profile("cpu", None, "bwrap")
    assert (p.name, p.device, p.isolation, p.data_dir) == ("cpu", "cpu", "bwrap", None)
    assert str(profiles.SYNTHETIC_TRAIN) in p.dataset
    if not torch.cuda.is_available():   # auto falls back to cpu; with CUDA it wants CIFAR-10 (next test)
        assert profiles.select_profile(None).name == "cpu"


def test_profile_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNGRADE_DATA", raising=False)
    with pytest.raises(UsageError):
        profiles.select_profile("cpu", tmp_path)
    with pytest.raises(UsageError):
        profiles.select_profile("tpu")
    expected = InputError if torch.cuda.is_available() else UsageError   # no GPU: say so; a GPU: the data is missing
    with pytest.raises(expected) as info:
        profiles.select_profile("gpu", tmp_path / "none")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("exercise", list(TRAINING))
@pytest.mark.parametrize("name", profiles.NAMES)
def test_every_training_exercise_declares_valid_settings(exercise, name):
    cfg = load_exercise(exercise)
    profile = profiles.Profile(name, profiles.DEVICES[name], "data")
    settings = profiles.training_settings(cfg, profile)
    assert settings.epochs >= 1 and 0 < settings.threshold < 1 and settings.train_timeout > 0
    assert profiles.exercise_time_limit(cfg, profile) >= settings.train_timeout
    if exercise == "ex8_ablation":
        assert 0 < settings.margin < settings.threshold


def test_bad_training_settings_are_grader_errors(tmp_path):
    cfg = load_exercise("ex8_ablation")
    broken = dict(cfg.profiles["cpu"], epoch=3)
    with pytest.raises(GraderConfigError, match="epoch"):
        profiles.training_settings(type(cfg)(**{**cfg.__dict__, "profiles": {"cpu": broken}}), CPU)
    with pytest.raises(GraderConfigError, match="missing"):
        profiles.training_settings(type(cfg)(**{**cfg.__dict__, "profiles": {}}), CPU)


# -- the trusted trainer ------------------------------------------------------------------------------------------
def test_crop_flip_takes_a_window_of_the_zero_padded_image():
    images = torch.randint(1, 256, (6, 3, 32, 32), dtype=torch.uint8)   # no zeros inside: the padding is visible
    out = crop_flip(images, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for src, got in zip(padded, out):
        windows = [w for dy in range(9) for dx in range(9) for w in (src[:, dy:dy + 32, dx:dx + 32],)]
        assert any(torch.equal(got, w) or torch.equal(got, w.flip(-1)) for w in windows)
    again = crop_flip(images, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)


def test_crop_flip_draws_every_offset_and_both_flips():
    # Pixel value = 1 + its position, so an output pixel tells where in the source it came from.
    image = (torch.arange(32 * 32).reshape(1, 1, 32, 32) + 1).expand(4000, 1, 32, 32)
    out = crop_flip(image, torch.Generator().manual_seed(0))
    left, right = out[:, 0, 16, 8], out[:, 0, 16, 23]   # always inside the image whatever the offset
    assert 0.45 < (left > right).float().mean() < 0.55
    # Output (16, 16) comes from source row 12+dy and column 12+dx (11+dx when flipped), dy, dx in 0..8.
    expected = {(12 + dy) * 32 + col + 1 for dy in range(9) for col in range(11, 21)}
    assert set(out[:, 0, 16, 16].tolist()) == expected


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 10))


@pytest.mark.slow
def test_trusted_trainer_is_deterministic_on_cpu():
    x = torch.randint(0, 256, (70, 32, 32, 3), dtype=torch.uint8)
    y = torch.randint(0, 10, (70,))
    runs = []
    for seed in (5, 5, 6):
        model = tiny_model(0)
        losses = trainer.train(model, x, y, epochs=2, batch_size=32, lr=1e-2, seed=seed)
        runs.append((losses, torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert len(runs[0][0]) == 2
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])
    assert not torch.equal(runs[0][1], torch.cat([p.flatten() for p in tiny_model(0).parameters()]))


def test_trusted_trainer_respects_its_time_limit():
    x, y = torch.zeros(8, 32, 32, 3, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64)
    with pytest.raises(trainer.TrainingTimeout):
        trainer.train(tiny_model(0), x, y, epochs=3, batch_size=4, lr=1e-3, seed=0, time_limit=-1.0)


def test_predict_is_the_argmax_on_normalized_images():
    model = tiny_model(1).eval()
    x = torch.randint(0, 256, (9, 32, 32, 3), dtype=torch.uint8)
    got = trainer.predict(model, x, batch_size=4)
    normalized = (x.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        assert got.dtype == torch.int64 and torch.equal(got, model(normalized).argmax(1))


# -- held-out data: secret per run, never the public constant ------------------------------------------------------
CPU = profiles.Profile("cpu", "cpu", "synthetic")


@pytest.mark.slow
def test_the_secret_test_draw_differs_between_runs():
    first = training.run_secret()
    assert training.run_secret() == first                     # one draw per grading run (process)
    training.run_secret.cache_clear()
    second = training.run_secret()
    assert second != first
    a, b = training.profile_held_out(CPU, first), training.profile_held_out(CPU, second)
    size = profiles.SYNTHETIC_SIZE
    assert a.x.shape == b.x.shape == (profiles.SYNTHETIC_TEST, size, size, 3) and not torch.equal(a.x, b.x)
    public_x, _ = synthetic.generate(profiles.SYNTHETIC_TEST, synthetic.TEST_SEED, size)
    assert not torch.equal(a.x, torch.from_numpy(public_x))
    assert sorted(torch.bincount(a.y).tolist()) == [profiles.SYNTHETIC_TEST // 10] * 10   # same balanced classes


def test_the_gpu_profile_scores_a_secret_subset_of_the_cifar_test_batch(tmp_path):
    from cnngrade.data import cifar

    folder = cifar.write_folder(tmp_path, synthetic.generate(20, 1), synthetic.generate(60, 2), list(synthetic.CLASSES))
    a, b = (training.held_out("gpu", str(folder), secret) for secret in (11, 12))
    assert len(a.y) == min(training.CIFAR_HELD_OUT, 60) and not torch.equal(a.x, b.x)
    assert torch.equal(training.training_set("gpu", str(folder)).y, torch.from_numpy(synthetic.generate(20, 1)[1]))


class LabelLookup(torch.nn.Module):
    """A 'network' that knows the held-out labels: already trained, as far as its initial accuracy shows."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.table = {bytes(img.numpy().tobytes()): int(y) for img, y in zip(images, labels)}
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        labels = torch.tensor([self.table.get(bytes(img.numpy().tobytes()), 0) for img in images])
        return torch.nn.functional.one_hot(labels, 10).float() * self.scale


@pytest.mark.slow
def test_a_pretrained_initialisation_is_refused_before_training():
    held_out = training.profile_held_out(CPU)
    settings = profiles.TrainingSettings(epochs=1, threshold=0.5)
    with pytest.raises(AssertionError, match="already trained"):
        training.train_and_score(LabelLookup(held_out.x, held_out.y), settings, CPU, seed=0, augment=True)
    assert training.chance_limit(10, 1000) == pytest.approx(0.2)
    assert training.chance_limit(10, 20) == pytest.approx(0.1 + 6 * (0.09 / 20) ** 0.5)


# -- end to end: the cpu profile grades reference, correct and broken models -------------------------------------
# The class (tests/harness.py training_students) is graded with only the training checks' grader files (their tests
# and real settings, no free-text items), so that these tests measure the training checks alone, whatever the other
# tests of those exercises do; the hostile files of the training checks (tests/test_hostile_verdicts.py) are
# graded in the same class, with its reference student as their honest classmate.
STUDENTS = training_students()


@pytest.fixture(scope="module")
def graded(training_class):
    return training_class


def results_of(report, exercise):
    return {t.name: t for t in report.exercises[exercise].tests}


@pytest.mark.slow
def test_reference_solutions_pass_with_margin(graded):
    for exercise in TRAINING:
        for name, t in results_of(graded["reference"], exercise).items():
            assert t.status == "passed", (name, t.output)
            assert {"accuracy", "threshold", "epochs", "seconds", "device", "dataset"} <= set(t.metrics)
            assert t.metrics["device"] == "cpu" and t.metrics["dataset"].startswith("synthetic")
    ex6 = results_of(graded["reference"], "ex6_cifar10_training")["test_training_reaches_threshold"].metrics
    assert ex6["accuracy"] >= ex6["threshold"] + 0.05
    sig = results_of(graded["reference"], "ex8_ablation")["test_sigmoid_below_baseline"].metrics
    assert sig["accuracy"] <= sig["threshold"] - 0.05


@pytest.mark.slow
def test_same_submission_graded_twice_gives_the_same_result(graded):
    """Two grading runs train bitwise the same network (same initial weights, same seed, CPU); each scores it on
    its own secret held-out draw, so the accuracy may move by sampling noise, the verdict not."""
    exercise = "ex6_cifar10_training"   # one exercise is enough, and keeps this test's training time down
    first, again = results_of(graded["reference"], exercise), results_of(graded["reference_again"], exercise)
    assert first and {n: t.score for n, t in first.items()} == {n: t.score for n, t in again.items()}
    for name, t in first.items():
        if t.status == "manual":
            continue
        assert t.metrics["final_loss"] == again[name].metrics["final_loss"], name
        assert t.metrics["initial_accuracy"] <= 0.2 and abs(t.metrics["accuracy"] - again[name].metrics["accuracy"]) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("student", [s for s in STUDENTS if s.startswith("train_")])
def test_variants(graded, student):
    (exercise, source), = STUDENTS[student].items()
    results = results_of(graded[student], exercise)
    assert not any(t.grader_error for t in results.values()), {n: t.output for n, t in results.items()}
    lost = {n for n, t in results.items() if t.score < t.max_score and not t.free_text}   # free text: no verdict
    if student.startswith("train_good"):
        assert not lost, {n: results[n].output for n in lost}
    else:
        assert expected_failures(source) and expected_failures(source) == lost, (lost, source.name)
