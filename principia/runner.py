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
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Task", "TaskResult", "run_tasks", "DEFAULT_MEM_LIMIT", "OUTPUT_LIMIT", "REPLY_LIMIT"]

DEFAULT_MEM_LIMIT = 6 * 2**30   # bytes of resident memory per verifier
OUTPUT_LIMIT = 8 * 2**20        # bytes a verifier may print before it is stopped
REPLY_LIMIT = 32 * 2**20        # bytes of JSON evidence a verifier may send back
_PAGE = os.sysconf("SC_PAGE_SIZE")
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


def _own_group(lifeline: Any) -> None:
    """Lead a new process group (the parent measures and kills it whole), and end that group
    when `verify` dies: the parent holds the other end of `lifeline`, so its death is an EOF."""
    import threading
    os.setsid()
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))

    def watch() -> None:
        try:
            lifeline.recv_bytes()
        except BaseException:
            pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


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


def _plain(x: Any, where: str) -> Any:
    """Evidence as JSON data: numpy/torch scalars become numbers; anything else is refused
    with the place it sits, so the parent never has to trust (unpickle) an object."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v, f"{where}.{i}") for i, v in enumerate(x)]
    if type(x).__module__ == "numpy" and hasattr(x, "tolist"):
        return _plain(x.tolist(), where)
    if getattr(x, "shape", None) == () and callable(getattr(x, "item", None)):
        return _plain(x.item(), where)  # a 0-d tensor
    raise TypeError(f"evidence field '{where}' holds a {type(x).__module__}.{type(x).__name__}, "
                    f"not plain data (convert it with float(), int() or .tolist())")


def _reply(path: str, payload: list[Any]) -> None:
    """Write the reply atomically: the parent sees the whole file or none."""
    text = json.dumps(payload)
    with open(path + ".part", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".part", path)


def _child(task: Task, reply_path: str, out_path: str, lifeline: Any) -> None:
    """Runs in the forked process: redirect output, apply limits, call the verifier."""
    _own_group(lifeline)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    _limit_resources(task.mem_limit)
    try:
        import torch
        torch.set_num_threads(task.threads)
        from principia.evidence import Evidence
        from principia.registry import bind, resolve
        fn = resolve(task.verifier, task.root or None)
        extra = {"tables": task.tables} if task.tables is not None else {}
        kwargs = bind(fn, task.params, device=task.device, tier=task.tier, **extra)
        ev = fn(**kwargs)
        if not isinstance(ev, Evidence):
            raise TypeError(f"verifier returned {type(ev).__name__}, expected principia.evidence.Evidence")
        _reply(reply_path, ["ok", _plain(ev.to_json(), "evidence"), _describe_device(task.device), _peak_rss()])
    except BaseException as e:  # report everything, including SystemExit and MemoryError
        tb = traceback.format_exc(limit=-6)
        try:
            _reply(reply_path, ["raise", {"type": type(e).__name__, "message": str(e)[:2000],
                                          "traceback": tb[-4000:]}, "", _peak_rss()])
        except BaseException:
            pass
    finally:
        sys.stdout.flush()
        os._exit(0)  # no teardown: the reply is written, and atexit code cannot change it


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
    try:
        os.killpg(r.proc.pid, signal.SIGKILL)
    except OSError:
        pass
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


def _context() -> mp.context.BaseContext:
    # BLAS threads on top of torch's own oversubscribe the cores (one scipy fit went 0.25 s -> 12 s).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
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


def _start(ctx, task: Task, tmpdir: str, lifeline: Any) -> _Running:
    base = os.path.join(tmpdir, f"{len(os.listdir(tmpdir))}-{task.claim_id}")
    proc = ctx.Process(target=_child, args=(task, base + ".reply", base + ".out", lifeline), daemon=True)
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
    ctx = _context()
    pending = list(tasks)
    running: list[_Running] = []
    lifeline, alive = ctx.Pipe(duplex=False)  # never written: closes when this process ends
    with tempfile.TemporaryDirectory(prefix="principia-run-") as tmpdir:
        try:
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    task = pending.pop(0)
                    if on_start:
                        on_start(task)
                    running.append(_start(ctx, task, tmpdir, lifeline))
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
