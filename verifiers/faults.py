"""Silent data corruption in data parallelism: one flipped bit on one replica, and whether per-step
parameter checksums compared across replicas catch it, in which layer and on which rank.

Runs train the small square MLP of verifiers.lab.ranks on K real ranks (verifiers.lab.dist).
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series
from principia.types import Pos, PosInt, Seeds
from verifiers.lab.dist import RankCtx, run_ranks
from verifiers.lab.ranks import backend_note, rank_batch, square_mlp

__all__ = ["checksum_fault", "plan_faults", "analyse_checksums"]


def plan_faults(seeds: list[int], bits: list[int], K: int, T: int, L: int, d: int,
                sites: tuple[str, ...] = ("param",)) -> list[dict]:
    """Per seed: a clean run, then per site and bit position a run with one flipped bit at a
    random (rank, step, layer, element) drawn from a generator seeded by the seed."""
    trials: list[dict] = []
    for s in seeds:
        rng = np.random.default_rng(s)
        trials.append({"seed": s, "fault": None})
        for site in sites:
            for b in bits:
                fault = {"site": site, "rank": int(rng.integers(K)),
                         "step": int(rng.integers(1, T - 1)), "layer": int(rng.integers(L)),
                         "index": int(rng.integers(d * d)), "bit": int(b)}
                trials.append({"seed": s, "fault": fault})
    return trials


def _flip_bit(t, index: int, bit: int) -> None:
    """Silent data corruption: XOR one bit of one fp32 element in place."""
    import torch

    mask = (1 << bit) if bit < 31 else -(1 << 31)  # bit 31 (sign) as an int32 pattern
    with torch.no_grad():
        words = t.view(-1).view(torch.int32)
        words[index] = torch.bitwise_xor(words[index], torch.tensor(mask, dtype=torch.int32,
                                                                      device=t.device))


def _checksums(model, exact: bool):
    """One checksum per layer: the int64 sum of its fp32 bit patterns (a single flip of bit b
    moves it by ±2^b, never 0), or, lossy, the float32 sum of its values."""
    import torch

    if exact:
        return torch.stack([p.detach().reshape(-1).view(torch.int32).to(torch.int64).sum()
                            for p in model.parameters()])
    return torch.stack([p.detach().sum().float().view(torch.int32).to(torch.int64)
                        for p in model.parameters()])


def _average_grads(model, K: int) -> None:
    """Data parallelism's synchronisation: average gradients over the replicas with one
    all-reduce (DDP's algorithm, Li et al. 2020 §3.2.1, without buckets or overlap)."""
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= K
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def _checksum_rank(ctx: RankCtx, trials: list[dict], T: int, d: int, L: int, B: int,
                   lr: float, exact: bool) -> list[dict] | None:
    """Train data-parallel replicas in lockstep; all-gather their layer checksums every step."""
    import torch
    import torch.distributed as dist

    out = []
    for tr in trials:
        model = square_mlp(d, L, tr["seed"]).to(ctx.device)  # same seed on every rank: identical replicas
        params, f = list(model.parameters()), tr["fault"]
        table = torch.empty(T, ctx.world, L, dtype=torch.int64, device=ctx.device)
        losses = torch.empty(T, device=ctx.device)
        for t in range(T):
            hit = f is not None and f["step"] == t and f["rank"] == ctx.rank
            x, y = rank_batch(d, B, 7919 * tr["seed"] + t, ctx.rank, ctx.device)
            model.zero_grad()
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            if hit and f["site"] == "grad":  # corrupt the local gradient before the all-reduce
                _flip_bit(params[f["layer"]].grad, f["index"], f["bit"])
            _average_grads(model, ctx.world)
            with torch.no_grad():  # plain SGD by hand: torch.optim's import costs ~1.3 s a rank
                for p in params:
                    p -= lr * p.grad
            if hit and f["site"] == "param":  # corrupt this replica's updated weights
                _flip_bit(params[f["layer"]].data, f["index"], f["bit"])
            dist.all_gather_into_tensor(table[t].view(-1), _checksums(model, exact))
            losses[t] = loss.detach()
        dist.all_reduce(losses)
        out.append({"sums": table.cpu().numpy(), "loss": (losses / ctx.world).cpu().numpy()})
    return out if ctx.rank == 0 else None


def analyse_checksums(sums: np.ndarray, fault: dict | None) -> dict[str, Any]:
    """Read one run's (T, K, L) table of layer checksums as a monitor would, step by step.

    Detected: replicas first disagree at the fault's step. Localised: only the faulty layer
    disagrees. Identified: a strict majority agrees and the faulty rank alone is outside it,
    which needs K ≥ 3 (two replicas that disagree cannot say which one is wrong).
    """
    T, K, L = sums.shape
    split = np.array([[len(set(sums[t, :, l].tolist())) > 1 for l in range(L)] for t in range(T)])
    bad = np.flatnonzero(split.any(axis=1))
    first = int(bad[0]) if bad.size else None
    horizon = T if fault is None else fault["step"]  # the steps where replicas must agree
    out = {"first": first, "false_alarms": int(split[:horizon].sum()), "checks": horizon * L}
    if fault is None:
        return out
    layers = set(np.flatnonzero(split[first]).tolist()) if first is not None else set()
    odd: set[int] = set()
    for l in layers:
        vals, counts = np.unique(sums[first, :, l], return_counts=True)
        if counts.max() * 2 <= K:  # no strict majority: nobody can be named
            odd = {-1}
            break
        odd |= set(np.flatnonzero(sums[first, :, l] != vals[counts.argmax()]).tolist())
    return {**out, "detected": first == fault["step"], "localised": layers == {fault["layer"]},
            "identified": odd == {fault["rank"]}}


def _loss_change(loss: np.ndarray, clean: np.ndarray, step: int) -> float:
    """Largest relative deviation of the mean loss from the clean run's after the fault step."""
    after = slice(step + 1, None)
    if not np.all(np.isfinite(loss[after])):
        return float("inf")
    return float((np.abs(loss[after] - clean[after]) / np.abs(clean[after])).max())


def _fault_rows(seeds: list[int], bits: list[int], K: int, T: int, d: int, L: int, B: int, lr: float,
                exact: bool, grad_faults: bool, device: str) -> list[dict]:
    """Run every planned trial on K ranks; one row per trial with what the checksums showed."""
    trials = plan_faults(seeds, bits, K, T, L, d, ("param", "grad") if grad_faults else ("param",))
    res = run_ranks(_checksum_rank, world=K, device=device, timeout_s=300.0, trials=trials, T=T,
                    d=d, L=L, B=B, lr=lr, exact=exact)[0]
    clean = {tr["seed"]: r["loss"] for tr, r in zip(trials, res) if tr["fault"] is None}
    rows = []
    for tr, r in zip(trials, res):
        f = tr["fault"]
        row = {"seed": tr["seed"], **(f or {}), **analyse_checksums(r["sums"], f)}
        if f is not None:
            row["loss_change"] = _loss_change(r["loss"], clean[tr["seed"]], f["step"])
        rows.append(row)
    return rows


def checksum_fault(seeds: Seeds, bits: list[int], K: PosInt, T: PosInt, d: PosInt, L: PosInt, B: PosInt,
                   lr: Pos, checksum: Literal["exact", "float32"], grad_faults: bool, device: str = "cpu") -> Evidence:
    """Flip one bit of one parameter on one of K data-parallel replicas mid-run: do per-step
    checksums, all-gathered across replicas, catch it at that step, in that layer, on that rank?

    ``grad_faults`` adds runs whose bit flips hit a local gradient before the all-reduce.
    """
    if T < 3:
        raise ValueError(f"T must be at least 3 so that a fault falls inside the run (got {T})")
    if any(not 0 <= b <= 31 for b in bits):
        raise ValueError(f"bits must lie in 0..31 for fp32 (got {bits})")
    rows = _fault_rows(list(seeds), list(bits), K, T, d, L, B, lr, checksum == "exact", grad_faults, device)
    faults = [r for r in rows if r.get("site") == "param"]
    grad_rows = [r for r in rows if r.get("site") == "grad"]
    n_checks = sum(r["checks"] for r in rows)
    measured = {
        "detection_rate": _rate(faults, "detected", "faults caught at the step they happened"),
        "layer_localised_rate": _rate(faults, "localised", "only the corrupted layer disagreed"),
        "rank_identified_rate": _rate(faults, "identified", f"majority vote over K = {K} replicas"),
        "false_alarm_rate": Measure(sum(r["false_alarms"] for r in rows) / n_checks, n=n_checks,
                                    note="layer comparisons that disagreed with no fault present"),
        "loss_visible_rate": Measure(float(np.mean([r["loss_change"] > 0.01 for r in faults])),
                                     n=len(faults), note="faults that moved the mean loss by > 1%"),
    }
    if grad_rows:
        measured["grad_fault_detection_rate"] = Measure(
            float(np.mean([r["first"] is not None for r in grad_rows])), n=len(grad_rows),
            note="gradient bit flips before the all-reduce that any checksum mismatch revealed")
    return Evidence(
        measured=measured, figures=[_fault_figure(faults, grad_rows)], seeds=list(seeds),
        table=[{k: r.get(k) for k in ("seed", "site", "bit", "rank", "step", "layer", "first",
                                      "detected", "localised", "identified", "loss_change")}
               for r in rows if r.get("site")],
        notes=[f"{K} data-parallel replicas of an MLP ({L} layers of {d}×{d}), SGD lr {lr}, {T} "
               f"steps per run; {len(faults)} parameter faults and {len(seeds)} clean runs. "
               "Checksum: " + ("int64 sum of each layer's fp32 bit patterns."
                               if checksum == "exact" else "float32 sum of each layer's values."),
               "Data parallelism never re-synchronises parameters after the start, so a flipped "
               "weight bit persists and the checksums keep disagreeing at every later step.",
               backend_note(device, K)])


def _rate(rows: list[dict], key: str, note: str) -> Measure:
    return Measure(float(np.mean([r[key] for r in rows])), n=len(rows), note=note)


def _fault_figure(faults: list[dict], grad_rows: list[dict]) -> Figure:
    def shown(rows):  # clipped for a log axis; 1e6 marks a non-finite loss
        return [min(max(r["loss_change"], 1e-12), 1e6) for r in rows]

    series = [Series("weight faults: loss change", [r["bit"] for r in faults], shown(faults),
                     style="points")]
    if grad_rows:
        series.append(Series("gradient faults: loss change", [r["bit"] for r in grad_rows],
                             shown(grad_rows), style="points"))
    series.append(Series("a 1% loss alarm", [0, 31], [0.01, 0.01], style="dashed"))
    return Figure(
        "One flipped bit: what the loss shows and what the checksums show",
        "bit flipped (0 lowest mantissa bit, 23–30 exponent, 31 sign)",
        "largest relative change of the mean loss after the fault",
        series, yscale="log",
        caption=f"Checksums caught {sum(r['detected'] for r in faults)} of {len(faults)} weight "
                "faults at the step they happened"
                + (f" and {sum(r['first'] is not None for r in grad_rows)} of {len(grad_rows)} "
                   "gradient faults" if grad_rows else "")
                + ". Loss changes are clipped to [1e-12, 1e6]; 1e6 marks a non-finite loss.")
