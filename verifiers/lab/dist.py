"""Run a function on N ranks of a torch.distributed job on this machine, and collect the results.

Each rank is a fresh Python process (like ``mp.spawn``), started with ``subprocess`` so that a
verifier may launch ranks even from inside a daemonic worker of the engine. Rank 0 opens the
rendezvous store on a port the OS picks (bound to port 0, so two jobs never clash) and tells the
others through a file; a rendezvous that fails all the same is retried on a new port.
Backend: ``nccl`` when ``device == "cuda"`` and there is a GPU per rank, otherwise ``gloo`` on
CPU tensors.

A rank function is a module-level ``fn(ctx: RankCtx, **kwargs)`` returning something picklable.
Every rank runs with one thread, ends with a barrier and ``destroy_process_group`` (without the
barrier a gloo rank occasionally aborts in teardown), then leaves with ``os._exit`` so that the
interpreter's own teardown cannot abort it either; the whole job has a deadline.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["RankCtx", "run_ranks", "backend_for", "DistError", "count_collectives", "wire_bytes",
           "local_bytes", "bytes_written"]

ROOT = Path(__file__).resolve().parents[2]  # the project root, appended to the ranks' sys.path


class DistError(RuntimeError):
    """A rank failed or the job ran past its deadline."""


class _RendezvousError(DistError):
    """A rank could not join the process group (say, its port was taken): worth a retry."""


@dataclass(frozen=True)
class RankCtx:
    """What a rank function is told about its place in the job."""

    rank: int
    world: int
    backend: str  # gloo | nccl
    device: str  # the torch device for this rank's tensors: "cpu" or "cuda:<rank>"


def backend_for(device: str, world: int) -> tuple[str, str]:
    """(backend, device kind): nccl needs one GPU per rank; anything else runs gloo on CPU."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() >= world:
            return "nccl", "cuda"
    return "gloo", "cpu"


def run_ranks(fn: Callable[..., Any], world: int = 2, device: str = "cpu",
              timeout_s: float = 60.0, retries: int = 2, **kwargs: Any) -> list[Any]:
    """Run ``fn(ctx, **kwargs)`` on ``world`` ranks; return the per-rank results in rank order."""
    if world < 1:
        raise ValueError(f"world must be at least 1 (got {world})")
    spec = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in spec or fn.__module__ == "__main__":
        raise ValueError(f"rank function must be importable at module level (got '{spec}')")
    backend, kind = backend_for(device, world)
    for attempt in range(retries + 1):
        try:
            return _launch(spec, world, backend, kind, timeout_s, kwargs)
        except _RendezvousError:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def _launch(spec: str, world: int, backend: str, kind: str, timeout_s: float,
            kwargs: dict[str, Any]) -> list[Any]:
    with tempfile.TemporaryDirectory(prefix="principia-dist-") as tmp:
        job = Path(tmp)
        (job / "job.pkl").write_bytes(pickle.dumps((spec, world, backend, kind, timeout_s, kwargs)))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PRINCIPIA_DIST_PARENT": str(os.getpid()), "PYTHONSAFEPATH": "1"}
        # The root goes last on the ranks' sys.path: a stray yaml.py there must not shadow a real module.
        code = (f"import sys; sys.path.append({str(ROOT)!r}); from verifiers.lab.dist import _rank_main; "
                "_rank_main(sys.argv[1], int(sys.argv[2]))")
        logs = [open(job / f"rank{r}.log", "wb") for r in range(world)]  # a file never fills up
        procs = [subprocess.Popen([sys.executable, "-c", code, tmp, str(r)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=logs[r],
                                  start_new_session=True) for r in range(world)]
        try:
            _wait(procs, job, time.monotonic() + timeout_s)
        finally:
            _kill(procs)
            for f in logs:
                f.close()
        return [pickle.loads((job / f"rank{r}.out").read_bytes()) for r in range(world)]


def _wait(procs: list[subprocess.Popen], job: Path, deadline: float) -> None:
    """Poll until every rank has exited; fail fast on the first crash or at the deadline."""
    while True:
        codes = [p.poll() for p in procs]
        bad = [r for r, c in enumerate(codes) if c not in (None, 0)]
        if bad:
            msgs = []
            for r in bad:
                err = job / f"rank{r}.err"
                text = (err if err.exists() else job / f"rank{r}.log").read_text(errors="replace")
                msgs.append(f"rank {r} of {len(procs)} failed (exit {codes[r]}):\n{text[-3000:]}")
            rdv = any((job / f"rank{r}.rdv").exists() for r in bad)
            raise (_RendezvousError if rdv else DistError)("\n".join(msgs))
        if all(c == 0 for c in codes):
            return
        if time.monotonic() > deadline:
            raise DistError(f"distributed job timed out waiting for ranks "
                            f"{[r for r, c in enumerate(codes) if c is None]}")
        time.sleep(0.01)


def _kill(procs: list[subprocess.Popen]) -> None:
    """Stop any rank still running (each rank leads its own session, so kill its group)."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()


def _rendezvous(job: Path, rank: int, world: int, timeout: timedelta):
    """A TCPStore on an OS-chosen port: rank 0 binds port 0 and publishes the port in a file."""
    import torch.distributed as dist

    port_file = job / "port"
    if rank == 0:
        store = dist.TCPStore("127.0.0.1", 0, world, is_master=True, timeout=timeout,
                              wait_for_workers=False)
        tmp = job / "port.tmp"
        tmp.write_text(str(store.port))
        tmp.replace(port_file)  # atomic: readers never see a half-written port
        return store
    end = time.monotonic() + timeout.total_seconds()
    while not port_file.exists():
        if time.monotonic() > end:
            raise TimeoutError("rendezvous: rank 0 never published its port")
        time.sleep(0.005)
    return dist.TCPStore("127.0.0.1", int(port_file.read_text()), world, is_master=False,
                         timeout=timeout)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this rank if the launching process dies (say, SIGKILLed at a
    timeout) so that no rank outlives its job; Linux only, elsewhere the job's deadline holds."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _rank_main(tmp: str, rank: int) -> None:
    """Entry point of one rank process."""
    job = Path(tmp)
    _die_with_parent(int(os.environ.get("PRINCIPIA_DIST_PARENT", os.getppid())))
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        spec, world, backend, kind, timeout_s, kwargs = pickle.loads((job / "job.pkl").read_bytes())
        timeout = timedelta(seconds=timeout_s)
        device = "cpu"
        if kind == "cuda":
            torch.cuda.set_device(rank)
            device = f"cuda:{rank}"
        try:
            store = _rendezvous(job, rank, world, timeout)
            dist.init_process_group(backend, store=store, rank=rank, world_size=world,
                                    timeout=timeout)
        except Exception:
            (job / f"rank{rank}.rdv").touch()  # tells the parent to retry on a new port
            raise
        mod, _, name = spec.partition(":")
        fn = importlib.import_module(mod)
        for part in name.split("."):
            fn = getattr(fn, part)
        out = fn(RankCtx(rank, world, backend, device), **kwargs)
        (job / f"rank{rank}.out").write_bytes(pickle.dumps(out))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:  # report to the parent, which stops the other ranks
        (job / f"rank{rank}.err").write_text(traceback.format_exc())
        sys.stderr.flush()
        os._exit(1)
    # Skip the interpreter's teardown: with torch's C++ threads still being unwound, it aborted
    # now and then ("terminate called without an active exception", exit -6) after the rank's
    # work was done and written.
    sys.stderr.flush()
    os._exit(0)


# --- measuring what a rank holds and sends -----------------------------------------------------

# torch.distributed function -> (kind, the argument whose size is the full, unsharded payload)
_COLLECTIVES = {
    "all_reduce": ("all_reduce", "tensor"),
    "all_gather_into_tensor": ("all_gather", "output_tensor"),
    "all_gather_single": ("all_gather", "output_tensor"),
    "_all_gather_base": ("all_gather", "output_tensor"),
    "reduce_scatter_tensor": ("reduce_scatter", "input"),
    "reduce_scatter_single": ("reduce_scatter", "input"),
    "_reduce_scatter_base": ("reduce_scatter", "input"),
}
# Bandwidth-optimal (ring) algorithms: per rank, an all-gather or a reduce-scatter of payload S
# over n ranks sends (n-1)/n·S and an all-reduce (a reduce-scatter then an all-gather) twice that
# (Rajbhandari et al. 2019 §7.1).
_RING_FACTOR = {"all_gather": 1.0, "reduce_scatter": 1.0, "all_reduce": 2.0}


def bytes_written() -> int | None:
    """Bytes this process has handed to write-like system calls so far (Linux ``wchar`` in
    /proc/self/io, all threads). gloo writes its TCP traffic with writev, so the change over a
    step is the bytes the rank put on its sockets, headers included (plus any log output);
    None where the file is missing. NCCL traffic (NVLink, RDMA) never passes through it."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("wchar"))
    except (OSError, StopIteration, ValueError):
        return None


def local_bytes(t: Any) -> int:
    """Bytes this rank stores for a tensor: the local shard of a DTensor, else the whole tensor."""
    if hasattr(t, "to_local"):
        t = t.to_local()
    return t.numel() * t.element_size()


def wire_bytes(kind: str, S: float, n: int) -> float:
    """Bytes one rank sends in a collective of payload S over n ranks (ring algorithm)."""
    if kind not in _RING_FACTOR:
        raise ValueError(f"kind must be one of {sorted(_RING_FACTOR)} (got {kind!r})")
    return _RING_FACTOR[kind] * (n - 1) / n * S if n > 1 else 0.0


@contextlib.contextmanager
def count_collectives() -> Iterator[list[tuple[str, int, int]]]:
    """Record (kind, payload bytes, group size) of each collective called through torch.distributed.

    Collectives issued from C++ (DDP's reducer) bypass these functions: route them through a
    Python comm hook that calls ``dist.all_reduce`` to have them counted.
    """
    import torch.distributed as dist

    log: list[tuple[str, int, int]] = []
    saved = {n: getattr(dist, n) for n in _COLLECTIVES if hasattr(dist, n)}
    for name, orig in saved.items():
        setattr(dist, name, _counting(orig, *_COLLECTIVES[name], log))
    try:
        yield log
    finally:
        for name, orig in saved.items():
            setattr(dist, name, orig)


def _counting(orig: Callable[..., Any], kind: str, arg: str, log: list) -> Callable[..., Any]:
    import torch.distributed as dist

    sig = inspect.signature(orig)

    def wrapper(*a: Any, **k: Any) -> Any:
        bound = sig.bind(*a, **k).arguments
        log.append((kind, local_bytes(bound[arg]), dist.get_world_size(bound.get("group"))))
        return orig(*a, **k)

    return wrapper
