"""The verifier's side of an isolated run (``principia.runner`` is the parent's side).

Runs in the forked process: leads its own process group (so the parent can measure and kill
everything it starts) and ends that group when `verify` dies; prints to a file; calls the
verifier; and replies with plain JSON written atomically to a file, so the parent never
unpickles an object a verifier made.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from typing import Any

__all__ = ["child_main", "descendants", "end_tree"]


def _limit_resources(mem_limit: int) -> None:
    import resource
    try:  # a hard ceiling on address space as a backstop to the parent's RSS watch
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        limit = vm + 2 * mem_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, StopIteration):
        pass


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (read from /proc), including ones that left its group."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def end_tree(pid: int) -> None:
    """SIGKILL everything below `pid` and its process group (never `pid` itself first)."""
    for p in descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _own_group(lifeline: Any) -> None:
    """Lead a new process group and adopt orphaned descendants (a child subreaper), so the parent
    can measure and end the whole tree, even a grandchild that called setsid; and end that tree
    when `verify` dies: the parent holds the other end of `lifeline`, so its death is an EOF."""
    import threading
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, lambda *_: end_tree(os.getpid()))

    def watch() -> None:
        try:
            lifeline.recv_bytes()
        except BaseException:
            pass
        end_tree(os.getpid())

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


def child_main(task: Any, reply_path: str, out_path: str, lifeline: Any) -> None:
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
        kwargs = bind(fn, task.params, device=task.device, budget_scale=task.budget_scale, **extra)
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
        for p in descendants(os.getpid()):  # the reply is written: nothing it started may stay
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)  # no teardown: atexit code cannot change the reply
