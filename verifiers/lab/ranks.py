"""Data parallelism on K real ranks: the model and data every rank trains, each strategy's wrapper
(DDP, ZeRO-1, FSDP with a sharding factor), and read-outs of bytes held and sent per rank."""
from __future__ import annotations

from typing import Any

import numpy as np

from principia.evidence import Figure, Measure, Series
from verifiers.lab.dist import RankCtx, backend_for, count_collectives, local_bytes, run_ranks, wire_bytes

__all__ = ["square_mlp", "rank_batch", "backend_note", "rank_state_bytes", "total_bytes", "run_states",
           "per_rank", "wire_sent", "payload", "bytes_figure"]


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
    inner = getattr(opt, "optim", opt)  # ZeroRedundancyOptimizer keeps its shard's Adam in .optim
    return {
        "params": sum(local_bytes(p) for p in params),
        "grads": sum(local_bytes(p.grad) for p in params if p.grad is not None),
        "optim": sum(local_bytes(v) for s in inner.state.values() for v in s.values()
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


def _wrap(model, mode: str, ctx: RankCtx):
    """Apply a strategy: ddp | zero1 (DDP + ZeroRedundancyOptimizer) | fsdp:F[:keep] (FSDP2 on
    a (K/F, F) mesh; ':keep' holds gathered parameters from forward to backward)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    if mode in ("ddp", "zero1"):
        ddp = DDP(model, gradient_as_bucket_view=True)  # gradients are views into DDP's buckets
        ddp.register_comm_hook(None, _allreduce_mean_hook)
        if mode == "ddp":
            return ddp, torch.optim.Adam(ddp.parameters(), lr=1e-3)
        from torch.distributed.optim import ZeroRedundancyOptimizer

        return ddp, ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.Adam,
                                            lr=1e-3)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    F = int(mode.split(":")[1])
    kind = "cuda" if ctx.device.startswith("cuda") else "cpu"
    mesh = (init_device_mesh(kind, (F,)) if F == ctx.world else  # full sharding
            init_device_mesh(kind, (ctx.world // F, F), mesh_dim_names=("replicate", "shard")))
    reshard = not mode.endswith(":keep")
    for block in model:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def _step(model, opt, x, y) -> None:
    opt.zero_grad(set_to_none=False)
    (model(x) - y).pow(2).mean().backward()
    opt.step()


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


def _states_rank(ctx: RankCtx, modes: list[str], d: int, L: int, B: int, seed: int) -> dict:
    """Per mode: this rank's bytes after one training step, and the collectives of the next."""
    import torch

    out: dict[str, Any] = {}
    x, y = rank_batch(d, B, seed, ctx.rank, ctx.device)
    for mode in modes:
        model = square_mlp(d, L, seed).to(ctx.device)
        if mode == "single":  # one process, no distribution: the reference
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        else:
            model, opt = _wrap(model, mode, ctx)
        _step(model, opt, x, y)
        states = rank_state_bytes(model, opt)
        with count_collectives() as calls:
            _step(model, opt, x, y)
        out[mode] = {**states, "calls": calls, "Psi": d * d * L}
        if mode != "single":
            out[mode]["spread"] = _replica_spread(model)
    return out


def run_states(modes: list[str], K: int, d: int, L: int, B: int, seed: int, device: str,
                timeout_s: float = 120.0) -> list[dict]:
    return run_ranks(_states_rank, world=K, device=device, timeout_s=timeout_s,
                     modes=modes, d=d, L=L, B=B, seed=seed)


# --- shared read-outs -------------------------------------------------------------------------


def per_rank(res: list[dict], f) -> Measure:
    """A per-rank quantity: the mean, with the smallest and largest rank as its range."""
    xs = [float(f(r)) for r in res]
    return Measure(float(np.mean(xs)), min(xs), max(xs), n=len(xs), samples=xs,
                   note="mean over ranks; lo/hi: smallest and largest rank")


def wire_sent(r: dict) -> float:
    return sum(wire_bytes(kind, S, n) for kind, S, n in r["calls"])


def payload(r: dict, kind: str) -> int:
    return sum(S for k, S, n in r["calls"] if k == kind and n > 1)


def bytes_figure(res: list[dict], modes: list[str], labels: list[str], title: str) -> Figure:
    """Bytes per rank by component, one x position per strategy (one point per rank)."""
    series = []
    for part in ("params", "grads", "optim"):
        pts = [(i, r[m][part]) for i, m in enumerate(modes) for r in res]
        series.append(Series(part, [p[0] for p in pts], [p[1] for p in pts], style="points"))
    tot = [float(np.mean([total_bytes(r[m]) for r in res])) for m in modes]
    series.append(Series("total, mean over ranks", list(range(len(modes))), tot))
    return Figure(title, "strategy: " + "; ".join(f"{i} = {l}" for i, l in enumerate(labels)),
                  "bytes held per rank", series)
