"""Per-submission cost of worker isolation: bare subprocess vs rlimits vs bubblewrap, start + first call.

Each sample starts a fresh worker the way cnngrade does (a staged copy of the module, the worker's
pipes, its limits and namespaces), loads one module, makes one call and stops the worker; the
figure is the wall time from launch to the call's reply. Two modules: a trivial one (ex1's
arithmetic) and one that imports torch and runs a small convolution, which is what most
exercises pay. Run on the machine you will grade on:

    python bench/isolation_bench.py --repeat 5
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from cnngrade.sandbox import bwrap, preflight, reaping, staging
from cnngrade.sandbox import launch as sandbox
from cnngrade.sandbox.launch import Limits, worker_command
from cnngrade.worker import codec
from cnngrade.worker.server import BOOTSTRAP

MODULES = {
    "trivial": ("def conv_output_size(size, k, p=0, s=1):\n    return (size + 2 * p - k) // s + 1\n",
                "conv_output_size", [28, 5]),
    "torch": ("import torch\n\n\ndef probe(n):\n    conv = torch.nn.Conv2d(3, 8, 3)\n"
              "    return list(conv(torch.zeros(1, 3, n, n)).shape)\n", "probe", [32]),
}


def _launch(mode: str, folder: Path, module: str, req_r: int, resp_w: int, work: str) -> subprocess.Popen:
    if mode == "bare":
        argv = [sys.executable, "-I", "-B", "-c", BOOTSTRAP, bwrap.PACKAGE_PARENT, str(req_r), str(resp_w),
                str(folder), module]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(req_r, resp_w), env={"PATH": "/usr/bin:/bin"}, cwd=work)
    isolation, uid = ("rlimits", None) if mode == "rlimits" else ("bwrap", sandbox.sandbox_uid(0))
    staged = Path(work, "submission")
    staging.stage_submission(folder, staged, uid)   # what Worker does before every start
    cmd = worker_command(staged, module, req_r, resp_w, work, isolation=isolation, limits=Limits(), uid=uid)
    return subprocess.Popen(cmd.argv, env=cmd.env, cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, pass_fds=(req_r, resp_w), start_new_session=True,
                            preexec_fn=cmd.preexec)


def _exchange(req_w: int, resp_r: int, rid: int, op: str, args: object, **fields: object) -> object:
    enc = codec.Encoder(lambda o: None)
    codec.write_all(req_w, codec.pack({"id": rid, "op": op, "args": enc.encode(args), **fields}, enc.blobs))
    header, blobs = codec.read_frame(resp_r)
    if not header.get("ok"):
        raise RuntimeError(f"worker error: {header.get('error')}")
    return codec.Decoder(blobs, lambda node: None).decode(header.get("value"))


def sample(mode: str, folder: Path, module: str, call: str, args: list) -> float:
    """Seconds from launch to the reply of the first call, for one fresh worker."""
    work = tempfile.mkdtemp(prefix="cnngrade-bench-")
    os.chmod(work, 0o755)
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    t0 = time.perf_counter()
    proc = _launch(mode, folder, module, req_r, resp_w, work)
    os.close(req_r)
    os.close(resp_w)
    try:
        _exchange(req_w, resp_r, 1, "load", None)
        _exchange(req_w, resp_r, 2, "call", {"target": call, "args": args, "kwargs": {}})
        return time.perf_counter() - t0
    finally:
        os.close(req_w)
        os.close(resp_r)
        try:
            os.killpg(proc.pid, signal.SIGKILL) if mode != "bare" else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()
        reaping.sweep(None)
        shutil.rmtree(work, ignore_errors=True)


def run(modes: list[str], repeat: int, out: Callable[[str], None] = print) -> None:
    root = Path(tempfile.mkdtemp(prefix="cnngrade-bench-src-"))
    os.chmod(root, 0o755)
    try:
        out(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"uid {os.getuid()}, load average {os.getloadavg()[0]:.1f}; {repeat} samples per cell, "
            "after one warm-up")
        out("")
        out("| module | mode | median s | min s | max s |")
        out("|---|---|---|---|---|")
        for name, (source, call, args) in MODULES.items():
            folder = root / name
            folder.mkdir()
            (folder / f"m_{name}.py").write_text(source)
            medians = {}
            for mode in modes:
                sample(mode, folder, f"m_{name}", call, args)   # warm the page cache for this mode
                times = [sample(mode, folder, f"m_{name}", call, args) for _ in range(repeat)]
                medians[mode] = statistics.median(times)
                out(f"| {name} | {mode} | {medians[mode]:.3f} | {min(times):.3f} | {max(times):.3f} |")
            if "bare" in medians:
                extra = ", ".join(f"{m} {1000 * (v - medians['bare']):+.0f} ms" for m, v in medians.items()
                                  if m != "bare")
                out(f"| {name} | overhead vs bare (median) | {extra} | | |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per module and mode (default 5)")
    parser.add_argument("--modes", default="bare,rlimits,bwrap", help="comma-separated subset of bare,rlimits,bwrap")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if "bwrap" in modes:
        preflight.check_isolation("bwrap")
    run(modes, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
