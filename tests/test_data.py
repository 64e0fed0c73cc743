"""The data sets of the training checks: the CIFAR-10 reader on tiny official-format folders, and the generated set."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from cnngrade.cli import main
from cnngrade.data import cifar, synthetic
from cnngrade.errors import InputError


def tiny_folder(root, n_train=25, n_test=10):
    train, test = synthetic.generate(n_train, 1), synthetic.generate(n_test, 2)
    return cifar.write_folder(root, train, test, list(synthetic.CLASSES)), train, test


def test_synthetic_is_deterministic_and_balanced():
    a_x, a_y = synthetic.generate(200, 7)
    b_x, b_y = synthetic.generate(200, 7)
    assert a_x.dtype == np.uint8 and a_x.shape == (200, 32, 32, 3) and a_y.dtype == np.int64
    assert np.array_equal(a_x, b_x) and np.array_equal(a_y, b_y)
    assert np.bincount(a_y, minlength=10).tolist() == [20] * 10
    c_x, _ = synthetic.generate(200, 8)
    assert not np.array_equal(a_x, c_x)


def test_synthetic_test_set_does_not_depend_on_training_size():
    _, _, t1, y1 = synthetic.train_and_test(30, 40)
    _, _, t2, y2 = synthetic.train_and_test(50, 40)
    assert np.array_equal(t1, t2) and np.array_equal(y1, y2)


def test_reader_round_trips_an_official_format_folder(tmp_path):
    folder, train, test = tiny_folder(tmp_path)
    assert sorted(os.listdir(folder)) == sorted([*cifar.TRAIN_FILES, cifar.TEST_FILE, cifar.META_FILE])
    x, y, tx, ty = cifar.load(folder)
    assert np.array_equal(x, train[0]) and np.array_equal(y, train[1])
    assert np.array_equal(tx, test[0]) and np.array_equal(ty, test[1])


@pytest.mark.slow  # importing torchvision.datasets takes seconds
def test_reader_agrees_with_torchvision(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    tiny_folder(tmp_path)
    # Our files are not the official ones: switch off torchvision's checksum test, keep its parsing.
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    x, y, tx, ty = cifar.load(tmp_path / cifar.BASE_FOLDER)
    for train, (images, labels) in ((True, (x, y)), (False, (tx, ty))):
        theirs = CIFAR10(str(tmp_path), train=train)
        assert np.array_equal(theirs.data, images) and theirs.targets == labels.tolist()
    assert theirs.classes == list(synthetic.CLASSES)


def test_locate_accepts_the_folder_or_its_parent(tmp_path, monkeypatch):
    folder, _, _ = tiny_folder(tmp_path)
    assert cifar.locate(tmp_path) == folder and cifar.locate(folder) == folder
    monkeypatch.setenv(cifar.ENV_VAR, str(tmp_path))
    assert cifar.locate(None) == folder


def test_missing_folder_is_a_one_line_error_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    for where in (None, tmp_path / "nowhere"):
        with pytest.raises(InputError) as info:
            cifar.locate(where)
        assert "\n" not in str(info.value) and "cnngrade data cifar10" in str(info.value)


@pytest.mark.slow
def test_checksums_come_from_torchvision_and_flag_unofficial_files(tmp_path):
    from torchvision.datasets import CIFAR10

    sums = cifar.official_checksums()
    assert sums[CIFAR10.meta["filename"]] == CIFAR10.meta["md5"]
    assert set(sums) == {*cifar.TRAIN_FILES, cifar.TEST_FILE, cifar.META_FILE}
    folder, _, _ = tiny_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    problems = cifar.verify(folder)
    assert len(problems) == len(sums) and "data_batch_3 is missing" in problems


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_shape", "bad_labels"])
def test_corrupt_batches_are_one_line_errors(tmp_path, damage):
    folder, _, _ = tiny_folder(tmp_path)
    path = folder / "data_batch_2"
    if damage == "garbage":
        path.write_bytes(b"not a pickle at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        entry = {"data": np.zeros((4, 3072 if damage == "bad_labels" else 100), np.uint8),
                 "labels": [0, 1, 2, 99 if damage == "bad_labels" else 3]}
        path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(InputError) as info:
        cifar.load(folder)
    assert "\n" not in str(info.value) and "data_batch_2" in str(info.value)


def test_a_pickle_that_names_other_globals_is_refused_unrun(tmp_path):
    folder, _, _ = tiny_folder(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    with pytest.raises(InputError, match="not allowed"):
        cifar.load(folder)
    assert not marker.exists()


@pytest.mark.slow
def test_data_command_checks_a_folder(tmp_path, capsys):
    tiny_folder(tmp_path)
    assert main(["data", "cifar10", str(tmp_path), "--no-download"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnngrade: error:") and "not the official CIFAR-10" in err and "\n" not in err
    assert main(["data", "cifar10", str(tmp_path / "absent"), "--no-download"]) == 3
    assert "no CIFAR-10 folder" in capsys.readouterr().err
