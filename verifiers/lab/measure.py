"""Measuring helpers shared by the topic modules: bytes of real tensors, units, clocks for timings."""
from __future__ import annotations

import platform
import time
from contextlib import contextmanager
from typing import Callable, Iterable

import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from verifiers.lab.gpt import GPT, GPTConfig, lm_loss

__all__ = ["GB", "tensor_bytes", "state_bytes", "saved_activation_bytes", "small_gpt", "one_step", "count_flops", "flop_counter",
           "device_name", "clock", "one_thread"]

GB = 1e9  # the course notes use decimal gigabytes


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (views and tied weights count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def state_bytes(opt: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes in optimizer.state by key ('exp_avg', 'row_var', 'step', ...)."""
    out: dict[str, int] = {}
    for st in opt.state.values():
        for k, v in st.items():
            if torch.is_tensor(v):
                out[k] = out.get(k, 0) + v.numel() * v.element_size()
    return out


def saved_activation_bytes(model: nn.Module, fn: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd saves for backward while `fn` runs, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def small_gpt(seed: int, device: str = "cpu", **cfg) -> GPT:
    """A GPT from the lab, its weights drawn from `seed`."""
    torch.manual_seed(seed)
    return GPT(GPTConfig(**cfg)).to(device)


def one_step(model: GPT, opt: torch.optim.Optimizer, B: int, seed: int) -> None:
    """One optimizer step on a random batch of B sequences, so optimizers create their state."""
    g = torch.Generator().manual_seed(seed)
    V, T = model.cfg.vocab_size, model.cfg.n_ctx
    x = torch.randint(0, V, (B, T + 1), generator=g).to(next(model.parameters()).device)
    opt.zero_grad(set_to_none=True)
    lm_loss(model(x[:, :-1]), x[:, 1:]).backward()
    opt.step()


@contextmanager
def flop_counter():
    """FlopCounterMode with attention routed through the math backend, so bmm is counted."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        yield counter


def count_flops(model: nn.Module, idx: torch.Tensor, backward: bool = False) -> dict[str, int]:
    """FLOPs by aten op of one forward (and backward) pass; 'total' added."""
    with flop_counter() as c:
        out = model(idx)
        if backward:
            out.float().sum().backward()
    by_op = {str(k).split(".")[-1]: int(v) for k, v in c.get_flop_counts()["Global"].items()}
    return {**by_op, "total": int(c.get_total_flops())}


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
