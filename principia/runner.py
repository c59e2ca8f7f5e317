"""Run verifiers in isolated processes with time, memory and output limits.

Each verifier runs in its own process, forked from a server that has already imported torch and
numpy (multiprocessing's forkserver with preloading), so isolation costs milliseconds instead of
an import of torch per claim. A verifier that raises, hangs, aborts, floods its output or
allocates without bound ends as an ``error`` outcome with the reason; the others carry on.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from .child import child_main, end_tree

__all__ = ["Task", "TaskResult", "run_tasks", "DEFAULT_MEM_LIMIT", "OUTPUT_LIMIT", "REPLY_LIMIT"]

DEFAULT_MEM_LIMIT = 6 * 2**30   # bytes of resident memory per verifier
OUTPUT_LIMIT = 8 * 2**20        # bytes a verifier may print before it is stopped
REPLY_LIMIT = 32 * 2**20        # bytes of JSON evidence a verifier may send back
_PAGE = os.sysconf("SC_PAGE_SIZE")
# Imported once in the fork server: torch.optim pulls in torch._dynamo (~800 modules, 1-2 s),
# scipy.stats serves every interval over seeds.
PRELOAD = ["numpy", "torch", "torch.optim", "torch._dynamo", "scipy.stats", "principia.evidence",
           "principia.registry", "principia.child"]
# A run with no more verifiers than workers forks each one once: preloading what it may not use
# (torch._dynamo alone is 1-2 s) only delays it, so such runs preload the core alone.
PRELOAD_FEW = ["numpy", "torch", "principia.evidence", "principia.registry", "principia.child"]


@dataclass
class Task:
    claim_id: str
    verifier: str
    params: dict[str, Any]
    timeout: float
    tier: str = "fast"
    device: str = "cpu"
    budget_scale: float = 1.0  # `verify --budget-scale`: FLOP budgets × this (1: as declared)
    threads: int = 1
    mem_limit: int = DEFAULT_MEM_LIMIT
    root: str = ""  # the knowledge base's folder: its verifiers are imported from here
    tables: dict[str, list[dict[str, Any]]] | None = None  # a published claim's transcribed rows


@dataclass
class TaskResult:
    task: Task
    ok: bool
    evidence: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    device_desc: str = ""
    duration_s: float = 0.0
    peak_rss: int = 0  # bytes: the verifier process's peak resident memory (its children's too)
    extra: dict[str, Any] = field(default_factory=dict)


def _group_rss(pgid: int) -> int:
    """Resident bytes of every process in the group: a verifier's own children count too."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == pgid:  # field 5 of stat: the process group
                total += int(fields[21]) * _PAGE  # field 24: resident pages
        except (OSError, ValueError, IndexError):
            continue
    return total


def _kill_group(r: "_Running") -> None:
    end_tree(r.proc.pid)
    r.proc.kill()


def _tail(path: str, n: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass
class _Running:
    task: Task
    proc: Any
    reply_path: str
    out_path: str
    started: float
    peak_rss: int = 0  # the highest group RSS the parent's watch saw
    watched: float = 0.0  # when the group's memory was last measured


def _context(few: bool = False) -> mp.context.BaseContext:
    # BLAS threads on top of torch's own oversubscribe the cores (one scipy fit went 0.25 s -> 12 s).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD_FEW if few else PRELOAD)
        return ctx
    return mp.get_context("spawn")


@contextmanager
def _server_env() -> Iterator[None]:
    """While the fork server may be started: it finds this package, and no module of the
    working folder (PYTHONSAFEPATH). Restored after, so our own subprocesses are unaffected."""
    from .safepath import child_env
    saved = {k: os.environ.get(k) for k in ("PYTHONSAFEPATH", "PYTHONPATH")}
    os.environ.update({k: child_env()[k] for k in saved})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _start(ctx, task: Task, tmpdir: str, lifeline: Any, n: int) -> _Running:
    # n numbers the task in this call: two runs of one claim started together must not share
    # files (counting the folder's entries did not work: a child creates its files only later)
    base = os.path.join(tmpdir, f"{n}-{task.claim_id}")
    proc = ctx.Process(target=child_main, args=(task, base + ".reply", base + ".out", lifeline), daemon=True)
    with _server_env():
        proc.start()
    return _Running(task, proc, base + ".reply", base + ".out", time.monotonic())


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _poll(r: _Running) -> TaskResult | None:
    """Advance one running task; return its result once it is finished or stopped."""
    elapsed = time.monotonic() - r.started
    if _size(r.reply_path) >= 0 or not r.proc.is_alive():
        r.proc.join(timeout=5)
        _kill_group(r)
        return _finish(r, elapsed)
    if elapsed > r.task.timeout:
        return _stop(r, elapsed, "timeout", f"no result after {r.task.timeout:g} s: stopped")
    if _size(r.out_path) > OUTPUT_LIMIT:
        return _stop(r, elapsed, "output", f"the verifier printed more than "
                                           f"{OUTPUT_LIMIT // 2**20} MiB of output: stopped")
    if time.monotonic() - r.watched > 0.1:
        r.watched = time.monotonic()
        rss = _group_rss(r.proc.pid)
        r.peak_rss = max(r.peak_rss, rss)
        if rss > r.task.mem_limit:
            return _stop(r, elapsed, "memory", f"resident memory {rss / 2**30:.2f} GiB (with its child "
                                               f"processes) exceeded the limit of "
                                               f"{r.task.mem_limit / 2**30:.2f} GiB: stopped")
    return None


def _stop(r: _Running, elapsed: float, kind: str, message: str) -> TaskResult:
    _kill_group(r)
    r.proc.join(timeout=5)
    return TaskResult(r.task, False, error={"type": kind, "message": message,
                                            "output_tail": _tail(r.out_path)}, duration_s=elapsed,
                      peak_rss=r.peak_rss)


def _read_reply(r: _Running) -> list[Any] | str:
    """The child's reply as plain JSON data, or why it cannot be used."""
    size = _size(r.reply_path)
    if size < 0:
        return ""
    if size > REPLY_LIMIT:
        return f"its reply is {size / 2**20:.1f} MiB; the limit is {REPLY_LIMIT // 2**20} MiB"
    try:
        with open(r.reply_path, encoding="utf-8") as f:
            reply = json.load(f)
    except (OSError, ValueError) as e:
        return f"its reply is not valid JSON ({e})"
    ok = isinstance(reply, list) and len(reply) == 4 and reply[0] in ("ok", "raise") \
        and isinstance(reply[1], dict) and isinstance(reply[2], str) and isinstance(reply[3], int)
    return reply if ok else "its reply does not have the expected shape"


def _finish(r: _Running, elapsed: float) -> TaskResult:
    reply = _read_reply(r)
    out = {"output_tail": _tail(r.out_path)}
    if isinstance(reply, list):
        peak = max(r.peak_rss, reply[3])
        if reply[0] == "ok":
            return TaskResult(r.task, True, evidence=reply[1], device_desc=reply[2],
                              duration_s=elapsed, peak_rss=peak)
        return TaskResult(r.task, False, error={**reply[1], **out}, duration_s=elapsed, peak_rss=peak)
    code = r.proc.exitcode
    if reply:
        msg = f"the verifier process sent an unusable reply: {reply}"
    elif code is not None and code < 0:
        name = signal.Signals(-code).name
        why = {"SIGABRT": "aborted (SIGABRT)", "SIGKILL": "killed (SIGKILL), likely out of memory",
               "SIGSEGV": "crashed (SIGSEGV)"}.get(name, f"ended by {name}")
        msg = f"the verifier process {why}"
    else:
        msg = f"the verifier process exited with code {code} without a result"
    return TaskResult(r.task, False, error={"type": "crash", "message": msg, **out},
                      duration_s=elapsed, peak_rss=r.peak_rss)


def run_tasks(tasks: Iterable[Task], jobs: int = 1,
              on_start: Callable[[Task], None] | None = None) -> Iterable[TaskResult]:
    """Run tasks with at most `jobs` at once; yield each result as soon as it is known."""
    pending = list(tasks)
    ctx = _context(few=len(pending) <= max(1, jobs))
    running: list[_Running] = []
    lifeline, alive = ctx.Pipe(duplex=False)  # never written: closes when this process ends
    started = 0
    with tempfile.TemporaryDirectory(prefix="principia-run-") as tmpdir:
        try:
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    task = pending.pop(0)
                    if on_start:
                        on_start(task)
                    running.append(_start(ctx, task, tmpdir, lifeline, started))
                    started += 1
                for r in list(running):
                    res = _poll(r)
                    if res is not None:
                        running.remove(r)
                        yield res
                time.sleep(0.01)
        finally:
            for r in running:  # interrupted: leave no orphans behind
                _kill_group(r)
            lifeline.close()
            alive.close()
