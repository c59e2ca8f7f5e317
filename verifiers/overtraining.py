"""Does the loss keep falling past the compute-optimal ~20 tokens per parameter?

Hoffmann et al. put the compute-optimal point near 20 training tokens per parameter; LLaMA's
loss curves keep falling long after it. That a fixed model keeps improving with more data is
not guaranteed: a model that has reached what its size can represent stops improving. Here one
tiny GPT size is trained to several horizons (each with its own cosine schedule to the end, as
Hoffmann et al. §3 / D.2 require for comparing horizons) on a Markov source richer than the
model can hold, and the loss at each horizon is compared with the loss at 20 tokens per
parameter, paired by run.
"""
from __future__ import annotations

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.gpt import GPTConfig
from .lab.replicates import draw_batches, draw_eval, gpt_stack, members_of, run_stack

__all__ = ["past_optimum", "steps_for"]


def steps_for(tokens_per_param: float, N: int, B: int, T: int) -> int:
    """Optimiser steps that feed tokens_per_param·N tokens at B·T tokens per step (at least 1)."""
    return max(1, round(tokens_per_param * N / (B * T)))


def _horizon_losses(horizons, draws, seeds, cfg, lr, warmup_frac, B, T, order, alpha, eval_seqs):
    """Expected CE after training to each horizon -> ((horizons, runs), params N, entropies);
    one stack per horizon, its members the draws × seeds (the same runs at every horizon)."""
    srcs = [MarkovSource(V=cfg.vocab_size, order=order, alpha=alpha, seed=int(s)) for s in draws]
    evs = [src.sample(eval_seqs, T + 1, np.random.default_rng(int(s) + 7))[:, :-1] for src, s in zip(srcs, draws)]
    members = members_of(len(draws), seeds)
    out, N = np.zeros((len(horizons), len(members))), 0
    for i, tpp in enumerate(horizons):
        stack = gpt_stack(cfg, draws, members)
        N = sum(v[0].numel() for v in stack.views.values())
        steps = steps_for(tpp, N, B, T)
        run_stack(stack, draw_batches(srcs, draws, members, B, T, soft=True), [lr] * len(members), steps,
                  int(warmup_frac * steps), "cosine")
        out[i] = draw_eval(stack, srcs, members, evs)
    return out, N, [src.entropy for src in srcs]


def past_optimum(optimum_tpp: Pos, horizons: list[float], L: PosInt, d: PosInt, n_head: PosInt, V: PosInt,
                 order: PosInt, alpha: Pos, lr: Pos, warmup_frac: Pos, B: PosInt, T: PosInt, eval_seqs: PosInt,
                 data_draws: Seeds, seeds: Seeds) -> Evidence:
    """Loss at each horizon (tokens per parameter) against the loss at the compute-optimal one."""
    if optimum_tpp not in horizons:
        raise ValueError(f"horizons must include optimum_tpp = {optimum_tpp:g} (got {horizons})")
    cfg = GPTConfig(vocab_size=V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head)
    ce, N, H = _horizon_losses(horizons, data_draws, seeds, cfg, lr, warmup_frac, B, T, order, alpha, eval_seqs)
    i0 = horizons.index(optimum_tpp)
    measured = {"loss_drop_past_optimum": interval_from_samples(
                    ce[i0] - ce[-1], unit="nats", note=f"loss at {optimum_tpp:g} minus at {horizons[-1]:g} tokens/param"),
                "last_doubling_drop": interval_from_samples(
                    ce[-2] - ce[-1], unit="nats", note=f"loss at {horizons[-2]:g} minus at {horizons[-1]:g} tokens/param"),
                "gap_to_entropy_at_optimum": interval_from_samples(
                    ce[i0] - np.repeat(H, len(seeds)), unit="nats", note="what was left to learn at the optimum")}
    for i, tpp in enumerate(horizons):
        measured[f"loss_at_{tpp:g}_tpp"] = interval_from_samples(ce[i], unit="nats")
    runs = len(data_draws) * len(seeds)
    fig = Figure(f"Loss of one model size (N = {N:,}) trained to longer horizons", "training tokens per parameter",
                 "expected CE (nats)", [Series("mean over runs", horizons, ce.mean(1), y_lo=ce.min(1), y_hi=ce.max(1)),
                                        Series("source entropy", [horizons[0], horizons[-1]], [np.mean(H)] * 2, style="dashed")],
                 xscale="log", caption=f"Each horizon has its own cosine schedule; {optimum_tpp:g} tokens/param marks Chinchilla's optimum.")
    return Evidence(measured=measured, figures=[fig], seeds=list(seeds),
                    table=[{"tokens_per_param": t, "steps": steps_for(t, N, B, T), "mean_CE": float(ce[i].mean())}
                           for i, t in enumerate(horizons)],
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{runs} runs per horizon, seeds nested in Markov-source draws"},
                    scale={"max_params": int(N), "max_tokens": int(horizons[-1] * N),
                           "data": [f"order-{order} Markov, V={V}"]},
                    notes=[f"N = {N:,} parameters, all counted (embeddings included, as Hoffmann et al. count them)."])
