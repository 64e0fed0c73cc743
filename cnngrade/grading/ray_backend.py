"""Grading on a Ray cluster (`cnngrade grade --backend ray`): one Ray task per student runs all of its grading on a node."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.machinery
import io
import os
import socket
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cnngrade
from cnngrade.config import GRADERS_DIR, load_exercise
from cnngrade.errors import IsolationUnavailable, UsageError
from cnngrade.grading.backends import StudentTask
from cnngrade.intake.collect import StudentSubmission
from cnngrade.records import StudentReport
from cnngrade.sandbox.preflight import check_isolation
from cnngrade.sandbox.staging import MAX_STAGED_BYTES, MAX_STAGED_FILES
from cnngrade.training import profiles

# A task whose worker or node died is run again on another node this many times (Ray retries system failures
# only: an exception raised by the grading itself is not retried); after that the student gets a grader error,
# which `--resume` grades again.
MAX_RETRIES = 3
INSTALL_HINT = "pip install 'cnngrade[ray]' on this machine and on every node"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


# -- submissions travel with their task ---------------------------------------------------------------------------
# A node has its own disk: the driver packs each student's module folders (as staging.stage_submission would copy
# them: regular files only, hidden entries and links left out, the same caps) into the task's argument, so no
# shared file system is needed, and converted notebooks and unpacked archives (in the driver's staging folder)
# reach the node as well.

@dataclasses.dataclass
class ShippedStudent:
    """A submission with its module folders as tar archives, unpacked on the node that grades it."""

    sub: StudentSubmission
    folders: list[tuple[str, bytes]]       # (folder on the driver, its files as an uncompressed tar)

    @classmethod
    def pack(cls, sub: StudentSubmission) -> ShippedStudent:
        folders = sorted({str(p.parent) for p in sub.modules.values()})
        return cls(sub, [(folder, pack_folder(Path(folder))) for folder in folders])

    def unpack(self, where: Path) -> StudentSubmission:
        """The submission as it is on the driver, with every module under ``where`` instead."""
        moved: dict[str, Path] = {}
        for i, (folder, data) in enumerate(self.folders):
            target = where / str(i)
            target.mkdir()
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(target, filter="data")
            moved[folder] = target
        modules = {e: moved[str(p.parent)] / p.name for e, p in self.sub.modules.items()}
        return dataclasses.replace(self.sub, path=where, modules=modules)


def pack_folder(folder: Path) -> bytes:
    """``folder``'s files as a tar, walked as staging.stage_submission walks it. At its caps the file that crosses
    one is packed cut short and packing stops, so that the node's copy reaches the same cap and the student reads
    the same message as locally, without a huge folder travelling."""
    out, count, size = io.BytesIO(), 0, 0
    with tarfile.open(fileobj=out, mode="w") as tar:
        for root, dirs, files in os.walk(folder, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d)))
            for name in sorted(files):
                path = os.path.join(root, name)
                if name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
                    continue
                count, length = count + 1, os.path.getsize(path)
                over_files, over_bytes = count > MAX_STAGED_FILES, size + length > MAX_STAGED_BYTES
                keep = 0 if over_files else MAX_STAGED_BYTES - size + 1 if over_bytes else length
                size += length
                try:
                    with open(path, "rb") as f:
                        data = f.read(keep)
                except OSError:
                    continue   # unreadable even by the driver: the node will not see it
                info = tarfile.TarInfo(os.path.relpath(path, folder))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                if over_files or over_bytes:
                    break
            else:
                continue
            break
    return out.getvalue()


# -- the same cnngrade everywhere ---------------------------------------------------------------------------------

@functools.cache
def install_digest(graders_dir: str) -> str:
    """A digest of cnngrade's source and of the graders: two machines that agree on it grade alike."""
    digest = hashlib.sha256(cnngrade.__version__.encode())
    for root in (Path(cnngrade.__file__).parent, Path(graders_dir)):
        if not root.is_dir():
            digest.update(b"missing:" + str(root).encode())
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                           and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class NodeTask:
    """The StudentTask as a node rebuilds it: with the node's own graders when the driver uses the installed ones."""

    task: StudentTask
    installed_graders: bool
    digest: str

    def on_node(self) -> StudentTask:
        if not self.installed_graders:
            return self.task
        configs = {e: load_exercise(e, GRADERS_DIR) for e in self.task.configs}
        return dataclasses.replace(self.task, configs=configs, graders_dir=GRADERS_DIR)

    def problem(self) -> str:
        """'' when this node can grade, else why not: another cnngrade or graders, or no working sandbox."""
        here = install_digest(str(GRADERS_DIR if self.installed_graders else self.task.graders_dir))
        if here != self.digest:
            return (f"node {node_name()} runs other cnngrade code or graders than this machine (cnngrade "
                    f"{cnngrade.__version__} there, digest {here} against {self.digest}); install the same cnngrade "
                    "release on every node")
        try:
            check_isolation(self.task.isolation)
        except IsolationUnavailable as exc:
            return (f"node {node_name()} cannot run the {self.task.isolation} sandbox: {exc} (every node needs "
                    "bubblewrap, see docs/instructors.md)")
        return ""


def node_name() -> str:
    return socket.gethostname()


def grade_on_node(shipped: ShippedStudent, spec: NodeTask) -> tuple[str, dict]:
    """The body of one student's Ray task: the whole of backends.grade_student, here. Returns this node's id and
    the report as report.json's dict."""
    node = _ray().get_runtime_context().get_node_id()
    _no_main_import()
    problem = spec.problem()
    if problem:
        return node, spec.task.failed(shipped.sub, problem).to_dict()
    with tempfile.TemporaryDirectory(prefix="cnngrade-ray-") as tmp:
        return node, spec.on_node()(shipped.unpack(Path(tmp))).to_dict()


def _no_main_import() -> None:
    """Each grading process, forked from backends' server, first imports its parent's ``__main__`` from its path
    (multiprocessing's preparation of a child): in a Ray worker that is Ray's worker script, which imports all of
    Ray, about a second of CPU per student for nothing. Named ``__main__``, it is skipped."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)


def probe_node(spec: NodeTask) -> tuple[str, str]:
    return node_name(), spec.problem()


def unreachable(address: str, timeout: float = 5.0) -> str:
    """'' when something answers at the address's host:port (or it names none, as 'auto'), else why not."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return ""
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return ""


# -- the backend --------------------------------------------------------------------------------------------------

class RayBackend:
    """Students graded on the nodes of a running Ray cluster; the driver (this process) writes every report."""

    def __init__(self, address: str | None = None, *, max_retries: int = MAX_RETRIES):
        self.address = address
        self.max_retries = max_retries
        self.graded_on: dict[str, str] = {}   # student -> id of the node whose report was kept
        self._started = False

    def check(self, isolation: str) -> None:
        ray = _ray()
        if not ray.is_initialized():
            where = self.address or os.environ.get("RAY_ADDRESS") or "auto"
            problem = unreachable(where)
            if problem:   # Ray itself would retry for minutes
                raise UsageError(f"cannot reach a Ray cluster at {where}: {problem} (start one with `ray start "
                                 "--head`, or give its address with --address)")
            try:
                ray.init(address=where, logging_level="ERROR", log_to_driver=False, configure_logging=False)
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise UsageError(f"cannot reach a Ray cluster at {where}: {why} (start one with `ray start --head`, "
                                 "or give its address with --address)") from None
            self._started = True
        self._isolation = isolation

    def close(self) -> None:
        if self._started:
            _ray().shutdown()
            self._started = False

    def check_nodes(self, spec: NodeTask) -> None:
        """Fail closed before grading when an alive node cannot grade (another cnngrade, no sandbox)."""
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = ray.remote(probe_node)
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        if not nodes:
            raise UsageError("the Ray cluster has no node with a CPU to grade on")
        refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(spec) for n in nodes]
        problems = [why for _, why in ray.get(refs) if why]
        if problems:
            raise UsageError(problems[0])

    def map(self, fn: Callable[..., Any], calls: list[tuple], *, num_cpus: float = 1, num_gpus: float = 0,
            ) -> Iterator[tuple[tuple, Any, BaseException | None]]:
        """``fn(*args)`` for every ``args`` of ``calls``, each a Ray task on some node, yielded as ``(args, result,
        error)`` in the order they finish; an ObjectRef among the args arrives as its value. ``fn`` must be
        importable (a module-level function). The hook for any long per-item work on the cluster, such as a
        cohort's trainings with ``num_gpus=1`` (or a fraction, to share a GPU)."""
        ray = _ray()
        remote = ray.remote(fn).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=self.max_retries)
        pending = {remote.remote(*args): args for args in calls}
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            item = pending.pop(ref)
            try:
                yield item, ray.get(ref), None
            except ray.exceptions.RayError as exc:
                yield item, None, exc

    def grade(self, students: list[StudentSubmission], task: StudentTask) -> Iterator[StudentReport]:
        installed = Path(task.graders_dir).resolve() == GRADERS_DIR.resolve()
        spec = NodeTask(task, installed, install_digest(str(task.graders_dir)))
        self.check_nodes(spec)
        spec_ref = _ray().put(spec)
        shipped = [(ShippedStudent.pack(s), spec_ref) for s in students]
        for (item, _), result, error in self.map(grade_on_node, shipped, **resources(task)):
            if error is not None:
                yield task.failed(item.sub, f"the Ray task grading this student failed {self.max_retries + 1} "
                                  f"times ({type(error).__name__}); grade again with cnngrade grade --resume")
                continue
            node, report = result
            self.graded_on[item.sub.student] = node
            yield StudentReport.from_dict(report)


def resources(task: StudentTask) -> dict[str, float]:
    """What one student's task asks of Ray: the torch threads its worker may use (the per-student CPU share that
    --jobs gives locally) and, on the gpu profile, a GPU (one grading process per GPU at a time, as locally)."""
    return {"num_cpus": max(1, task.limits.threads), "num_gpus": 1 if profiles.uses_gpu(task.profile) else 0}
