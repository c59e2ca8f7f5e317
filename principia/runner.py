"""Run verifiers in isolated processes with time, memory and output limits.

Each verifier runs in its own process, forked from a server that has already imported torch and
numpy (multiprocessing's forkserver with preloading), so isolation costs milliseconds instead of
an import of torch per claim. A verifier that raises, hangs, aborts, floods its output or
allocates without bound ends as an ``error`` outcome with the reason; the others carry on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterable

__all__ = ["Task", "TaskResult", "run_tasks", "DEFAULT_MEM_LIMIT", "OUTPUT_LIMIT"]

DEFAULT_MEM_LIMIT = 6 * 2**30   # bytes of resident memory per verifier
OUTPUT_LIMIT = 8 * 2**20        # bytes a verifier may print before it is stopped
# Imported once in the fork server: torch.optim pulls in torch._dynamo (~800 modules, 1-2 s),
# scipy.stats serves every interval over seeds.
PRELOAD = ["numpy", "torch", "torch.optim", "torch._dynamo", "scipy.stats", "principia.evidence",
           "principia.registry"]


@dataclass
class Task:
    claim_id: str
    verifier: str
    params: dict[str, Any]
    timeout: float
    tier: str = "fast"
    device: str = "cpu"
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


def _limit_resources(mem_limit: int) -> None:
    import resource
    try:  # a hard ceiling on address space as a backstop to the parent's RSS watch
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        limit = vm + 2 * mem_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, StopIteration):
        pass
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    except (OSError, ValueError):
        pass


def _describe_device(device: str) -> str:
    import platform
    import torch
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu: {cpu} ({torch.get_num_threads()} threads)"


def _peak_rss() -> int:
    """Peak resident bytes of this process and of the children it has waited for (ranks)."""
    import resource
    return 1024 * max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def _child(task: Task, conn: Connection, out_path: str) -> None:
    """Runs in the forked process: redirect output, apply limits, call the verifier."""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    _limit_resources(task.mem_limit)
    if task.root:
        import sys
        sys.path.insert(0, task.root)
    try:
        import torch
        torch.set_num_threads(task.threads)
        from principia.evidence import Evidence
        from principia.registry import bind, resolve
        fn = resolve(task.verifier)
        extra = {"tables": task.tables} if task.tables is not None else {}
        kwargs = bind(fn, task.params, device=task.device, tier=task.tier, **extra)
        ev = fn(**kwargs)
        if not isinstance(ev, Evidence):
            raise TypeError(f"verifier returned {type(ev).__name__}, expected principia.evidence.Evidence")
        conn.send(("ok", ev.to_json(), _describe_device(task.device), _peak_rss()))
    except BaseException as e:  # report everything, including SystemExit and MemoryError
        tb = traceback.format_exc(limit=-6)
        try:
            conn.send(("raise", {"type": type(e).__name__, "message": str(e)[:2000], "traceback": tb[-4000:]}, "",
                       _peak_rss()))
        except Exception:
            pass
    finally:
        conn.close()


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


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
    conn: Connection
    out_path: str
    started: float
    reply: tuple | None = None
    peak_rss: int = 0  # the highest RSS the parent's watch saw (a process it had to stop)


def _context() -> mp.context.BaseContext:
    # BLAS threads on top of torch's own oversubscribe the cores (one scipy fit went 0.25 s -> 12 s).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


def _start(ctx, task: Task, tmpdir: str) -> _Running:
    parent, child = ctx.Pipe(duplex=False)
    out_path = os.path.join(tmpdir, f"{task.claim_id}.out")
    proc = ctx.Process(target=_child, args=(task, child, out_path), daemon=True)
    proc.start()
    child.close()
    return _Running(task, proc, parent, out_path, time.monotonic())


def _poll(r: _Running) -> TaskResult | None:
    """Advance one running task; return its result once it is finished or stopped."""
    elapsed = time.monotonic() - r.started
    if r.reply is None and r.conn.poll():
        try:
            r.reply = r.conn.recv()
        except (EOFError, OSError):
            r.reply = ("lost", None, "", 0)
    if r.reply is not None and r.reply[0] != "lost":
        r.proc.join(timeout=5)
        if r.proc.is_alive():
            r.proc.kill()
        return _finish(r, elapsed)
    if not r.proc.is_alive():
        return _finish(r, elapsed)
    if elapsed > r.task.timeout:
        return _stop(r, elapsed, "timeout", f"no result after {r.task.timeout:g} s: stopped")
    rss = _rss(r.proc.pid)
    r.peak_rss = max(r.peak_rss, rss)
    if rss > r.task.mem_limit:
        return _stop(r, elapsed, "memory", f"resident memory {rss / 2**30:.2f} GiB exceeded the "
                                           f"limit of {r.task.mem_limit / 2**30:.2f} GiB: stopped")
    return None


def _stop(r: _Running, elapsed: float, kind: str, message: str) -> TaskResult:
    r.proc.kill()
    r.proc.join(timeout=5)
    return TaskResult(r.task, False, error={"type": kind, "message": message,
                                            "output_tail": _tail(r.out_path)}, duration_s=elapsed,
                      peak_rss=r.peak_rss)


def _finish(r: _Running, elapsed: float) -> TaskResult:
    reply = r.reply
    peak = max(r.peak_rss, reply[3] if reply else 0)
    if reply and reply[0] == "ok":
        return TaskResult(r.task, True, evidence=reply[1], device_desc=reply[2], duration_s=elapsed,
                          peak_rss=peak)
    if reply and reply[0] == "raise":
        err = {**reply[1], "output_tail": _tail(r.out_path)}
        return TaskResult(r.task, False, error=err, duration_s=elapsed, peak_rss=peak)
    code = r.proc.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXFSZ": f"printed more than {OUTPUT_LIMIT // 2**20} MiB of output",
               "SIGABRT": "aborted (SIGABRT)", "SIGKILL": "killed (SIGKILL), likely out of memory",
               "SIGSEGV": "crashed (SIGSEGV)"}.get(name, f"ended by {name}")
        msg = f"the verifier process {why}"
    else:
        msg = f"the verifier process exited with code {code} without a result"
    return TaskResult(r.task, False, error={"type": "crash", "message": msg,
                                            "output_tail": _tail(r.out_path)}, duration_s=elapsed,
                      peak_rss=peak)


def run_tasks(tasks: Iterable[Task], jobs: int = 1,
              on_start: Callable[[Task], None] | None = None) -> Iterable[TaskResult]:
    """Run tasks with at most `jobs` at once; yield each result as soon as it is known."""
    ctx = _context()
    pending = list(tasks)
    running: list[_Running] = []
    with tempfile.TemporaryDirectory(prefix="principia-run-") as tmpdir:
        try:
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    task = pending.pop(0)
                    if on_start:
                        on_start(task)
                    running.append(_start(ctx, task, tmpdir))
                for r in list(running):
                    res = _poll(r)
                    if res is not None:
                        running.remove(r)
                        r.conn.close()
                        yield res
                time.sleep(0.01)
        finally:
            for r in running:  # interrupted: leave no orphans behind
                r.proc.kill()
