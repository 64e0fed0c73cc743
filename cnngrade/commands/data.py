"""`cnngrade data cifar10 DIR`: check a local CIFAR-10 folder, fetching it through torchvision where the internet is reachable."""
from __future__ import annotations

import argparse
import socket
from pathlib import Path
from urllib.parse import urlparse

from cnngrade.errors import ExitCode, InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="check (or fetch) the CIFAR-10 folder the gpu profile reads",
                       description="Check that DIR holds CIFAR-10 in torchvision's official format "
                       "(cifar-10-batches-py with every file matching torchvision's checksums). If the folder is "
                       "missing and the internet is reachable, download it through torchvision first. Grading "
                       "itself never downloads anything: pass the folder with --data DIR or CNNGRADE_DATA.")
    p.add_argument("dataset", choices=["cifar10"], help="the data set (only cifar10)")
    p.add_argument("dir", type=Path, metavar="DIR", help="folder that holds (or will hold) cifar-10-batches-py")
    p.add_argument("--no-download", action="store_true", help="only check; never try to download")
    p.set_defaults(func=run)


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the download host opens (no proxy logic: a plain check)."""
    host = urlparse(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def fetch(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    if not reachable(CIFAR10.url):
        raise InputError(f"no CIFAR-10 folder in {root}, and {urlparse(CIFAR10.url).hostname} cannot be reached "
                         f"from here; download {CIFAR10.url} elsewhere, unpack it into {root}, then run this again")
    try:
        root.mkdir(parents=True, exist_ok=True)
        CIFAR10(root=str(root), train=True, download=True)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"downloading CIFAR-10 into {root} failed: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from cnngrade.data import cifar

    root = args.dir
    try:
        folder = cifar.locate(root)
    except InputError:
        if args.no_download:
            raise
        fetch(root)
        folder = cifar.locate(root)
    problems = cifar.verify(folder)
    if problems:
        raise InputError(f"{folder} is not the official CIFAR-10: {'; '.join(problems)}")
    train_x, _, test_x, _ = cifar.load(folder)
    print(f"{folder}: official CIFAR-10 ({len(train_x)} training and {len(test_x)} test images, checksums match "
          f"torchvision's). Grade with --profile gpu --data {root} or CNNGRADE_DATA={root}")
    return ExitCode.OK
