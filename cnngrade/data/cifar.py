"""Read CIFAR-10 from a local folder in torchvision's official format, without trusting pickle.

The official "python version" of CIFAR-10 is a folder ``cifar-10-batches-py`` of pickle
files (data_batch_1..5, test_batch, batches.meta). We parse them with a restricted
unpickler that can rebuild only plain containers and numpy arrays (no other global can be
named), so even a tampered file cannot run code. The checksums are torchvision's own,
read from ``torchvision.datasets.CIFAR10`` at run time rather than copied here.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

from cnngrade.errors import InputError

BASE_FOLDER = "cifar-10-batches-py"
ENV_VAR = "CNNGRADE_DATA"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
FIX = ("run `cnngrade data cifar10 DIR` on a machine with internet access (or copy the official "
       "cifar-10-batches-py folder there), then pass --data DIR or set CNNGRADE_DATA")

# The only globals a CIFAR-10 pickle needs: numpy's array and dtype reconstruction, and the
# str-to-bytes function Python 3 names when it writes bytes at protocol 2.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that refuses every global except numpy's array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 file")
        import codecs

        import numpy

        if module == "_codecs":
            return codecs.encode
        if name == "_reconstruct":
            core = getattr(numpy, "_core", None) or numpy.core
            return core.multiarray._reconstruct
        return getattr(numpy, name)


def official_checksums() -> dict[str, str]:
    """File name -> md5, as torchvision publishes them for the official folder."""
    from torchvision.datasets import CIFAR10

    sums = {name: md5 for name, md5 in [*CIFAR10.train_list, *CIFAR10.test_list]}
    sums[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return sums


def locate(data: str | os.PathLike | None) -> Path:
    """The cifar-10-batches-py folder named by --data (the folder itself or its parent) or CNNGRADE_DATA."""
    chosen = data if data is not None else os.environ.get(ENV_VAR)
    if not chosen:
        raise InputError(f"the gpu profile needs CIFAR-10 and no folder was given; {FIX}")
    root = Path(chosen).expanduser()
    for candidate in (root, root / BASE_FOLDER):
        if (candidate / META_FILE).is_file():
            return candidate
    raise InputError(f"no CIFAR-10 folder at {root} (expected {BASE_FOLDER}/{META_FILE} there); {FIX}")


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(folder: Path) -> list[str]:
    """The official files that are missing or differ from torchvision's checksums (empty: the official set)."""
    problems = []
    for name, md5 in official_checksums().items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif _md5(path) != md5:
            problems.append(f"{name} differs from the official file (md5)")
    return problems


def _load(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}); {FIX}") from None
    try:
        obj = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # any parse failure means a corrupt or foreign file
        raise InputError(f"{path} is not a CIFAR-10 batch ({type(exc).__name__}: {exc}); {FIX}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path} is not a CIFAR-10 batch (no dictionary inside); {FIX}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path) -> tuple[Any, Any]:
    """(images uint8 (n, 32, 32, 3), labels int64 (n,)) of one batch file, shapes and ranges checked."""
    import numpy as np

    entry = _load(path)
    data, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise InputError(f"{path}: 'data' is not a uint8 array of shape (n, 3072); {FIX}")
    labels = np.asarray(labels, dtype=np.int64) if isinstance(labels, list) else None
    if labels is None or labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise InputError(f"{path}: 'labels' is not a list of {data.shape[0]} classes 0-9; {FIX}")
    # Rows are stored channel-major (1024 red, 1024 green, 1024 blue); torchvision's layout is (n, 32, 32, 3).
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def load(folder: Path) -> tuple[Any, Any, Any, Any]:
    """Training images and labels (data_batch_1..5 in order), then the test batch's, as numpy arrays."""
    import numpy as np

    missing = [n for n in (*TRAIN_FILES, TEST_FILE) if not (folder / n).is_file()]
    if missing:
        raise InputError(f"{folder} lacks {', '.join(missing)}; {FIX}")
    parts = [_batch(folder / n) for n in TRAIN_FILES]
    test_x, test_y = _batch(folder / TEST_FILE)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), test_x, test_y)


def write_folder(root: Path, train: tuple[Any, Any], test: tuple[Any, Any], label_names: list[str]) -> Path:
    """Write images (n, 32, 32, 3) and labels in the official format under root/cifar-10-batches-py.

    Used by the tests (a tiny folder) and to stand in for CIFAR-10 where it cannot be downloaded;
    such a folder fails ``verify`` and is reported as unofficial.
    """
    import numpy as np

    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: Any, labels: Any, label: str) -> None:
        rows = np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2)).reshape(-1, 3072)
        # str keys load as str, as the official (Python 2) files do under encoding="latin1".
        entry = {"batch_label": label, "labels": [int(v) for v in labels], "data": rows,
                 "filenames": [f"{name}_{i}.png" for i in range(len(rows))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))

    chunks = np.array_split(np.arange(len(train[1])), len(TRAIN_FILES))
    for i, (name, idx) in enumerate(zip(TRAIN_FILES, chunks)):
        dump(name, train[0][idx], train[1][idx], f"training batch {i + 1} of 5")
    dump(TEST_FILE, test[0], test[1], "testing batch 1 of 1")
    meta = {"label_names": list(label_names), "num_cases_per_batch": len(chunks[0]), "num_vis": 3072}
    (folder / META_FILE).write_bytes(pickle.dumps(meta, protocol=2))
    return folder
