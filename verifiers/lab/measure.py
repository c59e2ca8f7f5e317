"""Measuring helpers shared by the topic modules: units, device names and clocks for timings."""
from __future__ import annotations

import platform
import time
from contextlib import contextmanager

import torch

__all__ = ["GB", "device_name", "clock", "one_thread"]

GB = 1e9  # the course notes use decimal gigabytes


def device_name(device: str) -> str:
    """The accelerator's or CPU's name; for a CPU also torch's capability level and whether its
    flags advertise bf16 instructions (avx512_bf16, amx_bf16)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"}) or ["none found"]
    return (f"{name} ({torch.backends.cpu.get_cpu_capability()}, bf16 instructions: "
            f"{', '.join(bf16)}, {torch.get_num_threads()} thread(s))")


def clock(device: str):
    """The clock to time work on `device` with: on CPU the process's CPU time, which other
    processes on a shared machine do not stretch (verifiers run single-threaded, so it is the
    compute time); on an accelerator the wall clock, read after a synchronize."""
    return time.process_time if device == "cpu" else time.perf_counter


@contextmanager
def one_thread(device: str):
    """Time CPU work on one thread: CPU time then equals compute time, unaffected by other
    processes and by idle worker threads spinning; accelerators are left alone."""
    n = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
