"""The cohort service: one trusted process of a local batch that trains the grading processes' training checks together.

``cnngrade grade --cohort N`` starts it (``CohortService``) before the first student and stops it after the last.
A grading process's ``training.train_and_score`` sends it the trusted reference network holding a student's proven
initial weights (pickled: it is the grader's own module, never the student's), the recipe and the seed, and waits
for the RunResult. The service gathers requests for a short window (until N are pending, or ``WINDOW`` seconds
after the first), groups those with one recipe and one architecture, refuses trained initial weights, trains each
group with ``cohort.train_cohort`` and scores every member on held-out images drawn from its own run secret,
as ``train_and_score`` does alone. A refusal comes back as its message, raised in the grading process as the same
AssertionError; a lost or failing service makes that request train locally instead (never the student's failure).

The address and authkey reach the grading processes through their start arguments (not the job file on disk)
and never the student's worker: the socket lives in a private 0700 folder.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Self

from cnngrade.training.cohort_progress import EpochBoard, Task
from cnngrade.training.profiles import Profile

# How long the service waits for more requests after the first of a batch.
WINDOW = 2.0
# Added to a grading process's time budget with a cohort: waiting for the window and for the groups ahead.
BUDGET_SLACK = 600.0
# A grading process waits this long beyond the recipe's train_timeout for its answer, then gives up (timeout).
ANSWER_SLACK = 120.0
# Members per cohort on the gpu profile when --cohort is not given (off on cpu: there a stacked step costs about
# what the members' solo steps cost together, see cohort.py).
GPU_DEFAULT = 16

_endpoint: dict[str, Any] | None = None


def use(endpoint: dict[str, Any] | None) -> None:
    """This grading process's service (``{"address", "authkey"}``), or None to train locally."""
    global _endpoint
    _endpoint = endpoint


def current() -> dict[str, Any] | None:
    return _endpoint


def default_size(profile: Profile) -> int:
    """Members per cohort when ``--cohort`` is not given: GPU_DEFAULT on the gpu profile, off elsewhere."""
    return GPU_DEFAULT if profile.name == "gpu" else 0


# -- the grading process's side ---------------------------------------------------------------------------------
class Unavailable(Exception):
    """The service could not answer this request: train locally."""


def request(endpoint: dict[str, Any], network: Any, settings: Any, profile: Profile, *, seed: int,
            augment: bool, threads: int, what: str) -> Any:
    """The RunResult of the service; AssertionError (refused), trainer.TrainingTimeout, or Unavailable."""
    from cnngrade.training import trainer

    try:
        with multiprocessing.connection.Client(endpoint["address"], authkey=bytes.fromhex(endpoint["authkey"])) as conn:
            conn.send({"network": network, "settings": settings, "profile": profile, "seed": int(seed),
                       "augment": bool(augment), "threads": int(threads), "what": what})
            wait = WINDOW + float(settings.train_timeout) + ANSWER_SLACK
            if not conn.poll(wait):
                raise trainer.TrainingTimeout(f"the trusted cohort training gave no answer within {wait:g} s "
                                              "(the grading machine is too slow or too busy)")
            kind, value = conn.recv()
    except (OSError, EOFError, multiprocessing.AuthenticationError, KeyError, ValueError) as exc:
        raise Unavailable(str(exc)) from exc
    if kind == "ok":
        return value
    if kind == "refused":
        raise AssertionError(value)
    if kind == "timeout":
        raise trainer.TrainingTimeout(value)
    raise Unavailable(str(value))


# -- the service ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Pending:
    conn: Any
    req: dict[str, Any]


class CohortService:
    """The service process of one batch; ``endpoint`` goes to the grading processes. ``secret`` (tests only,
    trusted side): fix the held-out draw instead of drawing a run secret. ``on_task(label, total, unit)``
    (``Progress.task``): shows each cohort's epochs while it trains (see ``EpochBoard``)."""

    def __init__(self, size: int, *, window: float | None = None, secret: int | None = None, context: Any = None,
                 on_task: Callable[[str, int, str], Task] | None = None):
        self.size, self.window = max(2, int(size)), WINDOW if window is None else window
        self._dir = tempfile.mkdtemp(prefix="cnngrade-cohort-")   # mkdtemp: 0700, this user only
        os.chmod(self._dir, 0o700)
        self.address = os.path.join(self._dir, "service.sock")
        self._authkey = secrets.token_bytes(32)
        ctx = context or multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.board = EpochBoard(ctx) if on_task is not None else None
        self._proc = ctx.Process(target=serve, args=(self.address, self._authkey, self.size, self.window, secret, ready,
                                                     self.board), daemon=True, name="cnngrade-cohort")
        self._proc.start()
        self._watch = self.board.watch(on_task) if self.board is not None and on_task is not None else None
        if not ready.wait(120):
            self.stop()
            raise RuntimeError("the cohort service did not start within 120 s")

    @property
    def endpoint(self) -> dict[str, Any]:
        return {"address": self.address, "authkey": self._authkey.hex(), "size": self.size}

    def stop(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(10)
        if self._watch is not None:
            self._watch.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(address: str, authkey: bytes, size: int, window: float, secret: int | None, ready: Any,
          board: EpochBoard | None = None) -> None:
    """The service process: accept requests on a thread, train them in batches here."""
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    inbox: queue.Queue[_Pending] = queue.Queue()
    listener = multiprocessing.connection.Listener(address, family="AF_UNIX", authkey=authkey)
    threading.Thread(target=_accept, args=(listener, inbox), daemon=True).start()
    ready.set()
    while True:
        batch = gather(inbox, size, window)
        for group in groups(batch):
            answer_group(group, secret, board)


def _accept(listener: Any, inbox: queue.Queue) -> None:
    while True:
        try:
            conn = listener.accept()
            inbox.put(_Pending(conn, conn.recv()))
        except Exception:   # noqa: BLE001, S112 - a client that failed authentication or hung up: wait for the next
            continue


def gather(inbox: queue.Queue, size: int, window: float) -> list[_Pending]:
    """The first request, then more until ``size`` are pending or ``window`` seconds have passed."""
    batch = [inbox.get()]
    until = time.monotonic() + window
    while len(batch) < size and (left := until - time.monotonic()) > 0:
        try:
            batch.append(inbox.get(timeout=left))
        except queue.Empty:
            break
    return batch


def recipe_key(req: dict[str, Any]) -> tuple:
    s, p = req["settings"], req["profile"]
    return (p.name, p.device, p.data_dir, int(s.epochs), int(s.batch_size), float(s.lr),
            float(s.train_timeout), req["seed"], req["augment"])


def groups(batch: list[_Pending]) -> list[list[_Pending]]:
    """Requests with one recipe and one architecture (cohort.same_architecture) together, in arrival order."""
    from cnngrade.training.cohort import same_architecture

    out: list[list[_Pending]] = []
    for item in batch:
        for group in out:
            if recipe_key(group[0].req) == recipe_key(item.req) and same_architecture(
                    [group[0].req["network"], item.req["network"]]):
                group.append(item)
                break
        else:
            out.append([item])
    return out


def answer_group(group: list[_Pending], secret: int | None, board: EpochBoard | None = None) -> None:
    """Train and score one group; every member gets its own answer, an error answers each as such."""
    try:
        answers = train_group([p.req for p in group], secret, board)
    except Exception:  # noqa: BLE001 - the service's own failure: each grading process trains locally instead
        answers = [("error", traceback.format_exc()[-2000:])] * len(group)
    finally:
        if board is not None:
            board.finish()
    for pending, answer in zip(group, answers):
        try:
            pending.conn.send(answer)
            pending.conn.close()
        except OSError:
            pass


def train_group(reqs: list[dict[str, Any]], secret: int | None,
                board: EpochBoard | None = None) -> list[tuple[str, Any]]:
    """What ``training.train_and_score`` computes for each request, the training done with ``cohort.train_cohort``."""
    import torch

    from cnngrade.training import cohort, trainer
    from cnngrade.training import run_check as training

    started = time.monotonic()
    first = reqs[0]
    settings, profile = first["settings"], first["profile"]
    device = profile.device
    data = training.profile_training_set(profile)
    test = training.profile_held_out(profile, training.run_secret() if secret is None else secret)
    classes = int(torch.cat([data.y, test.y]).max()) + 1
    limit = training.chance_limit(classes, len(test.y))
    networks = [r["network"] for r in reqs]
    answers: list[tuple[str, Any] | None] = [None] * len(reqs)
    initial = cohort.accuracy_cohort(networks, test.x, test.y, device=device)
    for i, (req, acc) in enumerate(zip(reqs, initial)):
        if acc > limit:
            answers[i] = ("refused", training.refusal(req["what"], acc, classes, limit))
    members = [i for i, a in enumerate(answers) if a is None]
    if not members:
        return [a for a in answers if a is not None]
    threads = min(os.cpu_count() or 1, sum(reqs[i]["threads"] for i in members) or 1)
    on_epoch = board.begin(len(members)) if board is not None else None
    try:
        with trainer.torch_threads(threads):
            losses = cohort.train_cohort([networks[i] for i in members], data.x, data.y, epochs=settings.epochs,
                                         batch_size=settings.batch_size, lr=settings.lr, seed=first["seed"],
                                         augment=first["augment"], device=device, time_limit=settings.train_timeout,
                                         on_epoch=on_epoch)
            final = cohort.accuracy_cohort([networks[i] for i in members], test.x, test.y, device=device)
    except trainer.TrainingTimeout as exc:
        return [a or ("timeout", str(exc)) for a in answers]
    seconds = round(time.monotonic() - started, 2)
    for i, loss, acc in zip(members, losses, final):
        answers[i] = ("ok", training.RunResult(acc, initial[i], seconds, loss[-1], threads, tuple(loss),
                                               cohort=len(members)))
    return [a for a in answers if a is not None]
