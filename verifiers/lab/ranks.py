"""Data parallelism on K real ranks: the model and data every rank trains, each strategy's wrapper
(DDP, ZeRO stages 1 and 2, FSDP with a sharding factor), and read-outs of bytes held and sent.

Two memory read-outs per rank and strategy, both measured on a real training step:
- at rest: bytes of parameters, gradients and optimizer state counted on the rank's tensors
  right after backward (gradients reduced, optimizer state in place): ZeRO's "model states";
- peak: the largest total of live tensor storages during one whole step (zero_grad, forward,
  backward, optimizer step) after a warm-up step, tracked by torch's MemTracker
  (``torch.distributed._tools.mem_tracker``, a dispatch mode that sees every storage made through
  torch's dispatcher: activations, gathered layers, temporaries). Allocator caching, the Python
  runtime and gloo's own C++ buffers are not seen.
Precision ``bf16-mixed`` follows ZeRO §3.1: 16-bit parameters and gradients, fp32 master copy
and Adam moments (2 + 2 + 12 bytes per parameter); ``fp32`` is plain fp32 Adam (4 + 4 + 8)."""
from __future__ import annotations

from typing import Any

import numpy as np

from principia.evidence import Figure, Measure, Series
from verifiers.lab.dist import (RankCtx, backend_for, bytes_written, count_collectives, local_bytes,
                               run_ranks, wire_bytes)

__all__ = ["square_mlp", "rank_batch", "backend_note", "rank_state_bytes", "total_bytes", "run_states",
           "per_rank", "wire_sent", "socket_sent", "payload", "bytes_figure"]


def square_mlp(d: int, L: int, seed: int):
    """L blocks of Linear(d, d, bias=False) + tanh: equal-sized parameters shard evenly."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(*[nn.Sequential(nn.Linear(d, d, bias=False), nn.Tanh()) for _ in range(L)])


def rank_batch(d: int, B: int, seed: int, rank: int, device: str):
    """This rank's own slice of the data (data parallelism): a fixed random regression task."""
    import torch

    g = torch.Generator().manual_seed(1000 * seed + rank)
    x = torch.randn(B, d, generator=g)
    return x.to(device), torch.tanh(x.roll(1, dims=1)).to(device)


def backend_note(device: str, K: int) -> str:
    backend, kind = backend_for(device, K)
    return f"Ran {K} ranks with the {backend} backend on {kind} tensors (device asked: {device})."


# --- what a rank holds ---------------------------------------------------------------------------

def rank_state_bytes(model, opt) -> dict[str, int]:
    """Bytes of parameters, gradients and optimizer state this rank holds."""
    import torch

    params = list(model.parameters())
    shards = opt.grad_bytes() if hasattr(opt, "grad_bytes") else 0  # ZeRO-2's owned gradients
    return {
        "params": sum(local_bytes(p) for p in params),
        "grads": sum(local_bytes(p.grad) for p in params if p.grad is not None) + shards,
        "optim": sum(local_bytes(v) for s in opt.state.values() for v in s.values()
                     if torch.is_tensor(v) and v.dim() > 0),  # Adam's 0-d step counters aside
    }


def total_bytes(r: dict) -> int:
    return r["params"] + r["grads"] + r["optim"]


# --- the strategies, rank side ----------------------------------------------------------------


def _allreduce_mean_hook(_state, bucket):
    """DDP reduces gradients from C++; this comm hook sends each bucket through the public
    ``dist.all_reduce`` (so ``count_collectives`` sees it) and averages it, as DDP does."""
    import torch.distributed as dist

    buf = bucket.buffer().div_(dist.get_world_size())
    return dist.all_reduce(buf, async_op=True).get_future().then(lambda f: f.value()[0])


def _wrap(model, mode: str, ctx: RankCtx, precision: str):
    """Apply a strategy: single | ddp | zero1 | zero2 | fsdp:F[:keep] (FSDP2 on a (K/F, F) mesh;
    ':keep' holds gathered parameters from forward to backward)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from verifiers.lab.zero import ZeroAdam

    half = precision == "bf16-mixed"
    if mode.startswith("fsdp"):
        return _fsdp(model, mode, ctx, half)
    if half:
        model = model.to(torch.bfloat16)
    if mode == "ddp":
        model = DDP(model, gradient_as_bucket_view=True)  # gradients are views into DDP's buckets
        model.register_comm_hook(None, _allreduce_mean_hook)
    stage = {"single": 0, "ddp": 0, "zero1": 1, "zero2": 2}[mode]
    return model, ZeroAdam(model.parameters(), lr=1e-3, stage=stage, rank=ctx.rank,
                           world=ctx.world if stage else 1)


def _fsdp(model, mode: str, ctx: RankCtx, half: bool):
    """FSDP2: fp32 sharded parameters (the master copy), bf16 gathered ones when ``half``."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    F = int(mode.split(":")[1])
    kind = "cuda" if ctx.device.startswith("cuda") else "cpu"
    mesh = (init_device_mesh(kind, (F,)) if F == ctx.world else  # full sharding
            init_device_mesh(kind, (ctx.world // F, F), mesh_dim_names=("replicate", "shard")))
    kw = dict(mesh=mesh, reshard_after_forward=not mode.endswith(":keep"))
    if half:
        kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16)
    for block in model:
        fully_shard(block, **kw)
    fully_shard(model, **kw)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)


def _step(model, opt, x, y, at_rest: dict | None = None) -> None:
    """One training step; ``at_rest`` receives the model-state bytes between backward and update."""
    opt.zero_grad(set_to_none=True)
    x = x.to(next(model.parameters()).dtype)  # a bf16 model takes bf16 inputs; FSDP casts its own
    (model(x).float() - y).pow(2).mean().backward()
    if at_rest is not None:
        at_rest.update(rank_state_bytes(model, opt))
    opt.step()


def _peak_step(model, opt, x, y) -> tuple[int, dict]:
    """Peak live tensor bytes during one step (MemTracker), and the bytes at rest in it."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    at_rest: dict = {}
    mt = MemTracker()
    mt.track_external(model, opt)
    with mt:
        _step(model, opt, x, y, at_rest)
    peak = mt.get_tracker_snapshot("peak")
    return int(sum(dev["Total"] for dev in peak.values())), at_rest


def _replica_spread(model) -> float:
    """max |θ_rank − θ_rank0| over every parameter (full tensors): 0 for identical replicas."""
    import torch
    import torch.distributed as dist

    full = [p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in full])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    diff = (flat - ref).abs().max().reshape(1)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def _states_rank(ctx: RankCtx, modes: list[str], d: int, L: int, B: int, seed: int,
                 precision: str) -> dict:
    """Per mode: this rank's bytes at rest and at the peak of a step, and the collectives of a
    third step (after a warm-up step that creates the optimizer state)."""
    out: dict[str, Any] = {}
    x, y = rank_batch(d, B, seed, ctx.rank, ctx.device)
    for mode in modes:
        model, opt = _wrap(square_mlp(d, L, seed).to(ctx.device), mode, ctx, precision)
        _step(model, opt, x, y)
        peak, states = _peak_step(model, opt, x, y)
        before = bytes_written()
        with count_collectives() as calls:
            _step(model, opt, x, y)
        after = bytes_written()
        socket = after - before if None not in (before, after) and ctx.backend == "gloo" else None
        out[mode] = {**states, "peak": peak, "calls": calls, "socket": socket, "Psi": d * d * L}
        if mode != "single":
            out[mode]["spread"] = _replica_spread(model)
    return out


def run_states(modes: list[str], K: int, d: int, L: int, B: int, seed: int, precision: str,
               device: str, timeout_s: float) -> list[dict]:
    return run_ranks(_states_rank, world=K, device=device, timeout_s=timeout_s,
                     modes=modes, d=d, L=L, B=B, seed=seed, precision=precision)


# --- shared read-outs -------------------------------------------------------------------------


def per_rank(res: list[dict], f) -> Measure:
    """A per-rank quantity: the mean, with the smallest and largest rank as its range."""
    xs = [float(f(r)) for r in res]
    return Measure(float(np.mean(xs)), min(xs), max(xs), n=len(xs), samples=xs,
                   note="mean over ranks; lo/hi: smallest and largest rank")


def socket_sent(r: dict) -> float:
    """Bytes this rank wrote to its sockets in the counted step (NaN where not observable)."""
    return float("nan") if r["socket"] is None else float(r["socket"])


def wire_sent(r: dict) -> float:
    return sum(wire_bytes(kind, S, n) for kind, S, n in r["calls"])


def payload(r: dict, kind: str) -> int:
    return sum(S for k, S, n in r["calls"] if k == kind and n > 1)


def bytes_figure(res: list[dict], modes: list[str], labels: list[str], title: str) -> Figure:
    """Bytes per rank by component, one x position per strategy (one point per rank)."""
    series = []
    for part in ("params", "grads", "optim", "peak"):
        pts = [(i, r[m][part]) for i, m in enumerate(modes) for r in res]
        series.append(Series(part, [p[0] for p in pts], [p[1] for p in pts], style="points"))
    tot = [float(np.mean([total_bytes(r[m]) for r in res])) for m in modes]
    series.append(Series("total, mean over ranks", list(range(len(modes))), tot))
    return Figure(title, "strategy: " + "; ".join(f"{i} = {l}" for i, l in enumerate(labels)),
                  "bytes held per rank", series)
