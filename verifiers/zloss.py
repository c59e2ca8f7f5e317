"""Does an auxiliary z-loss make training more stable? A learning-rate sweep with and without it.

Showing that the penalty lowers |log Z| proves nothing: the penalty is |log Z|² itself. The
stability claim is about what happens at learning rates where plain training breaks down, so
every arm (none, PaLM's z-loss, Baichuan 2's max-z loss) is trained over the same sweep of peak
learning rates, on the same seeds and data draws, and compared on how often it breaks and on
Wortsman et al. 2023's learning-rate sensitivity (how much loss the sweep loses to bad rates).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.types import NonNeg, Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.gpt import GPTConfig
from .lab.replicates import draw_batches, draw_eval, gpt_stack, members_of, run_stack
from .stability import unigram_entropy

__all__ = ["z_loss", "unstable", "lr_sensitivity"]


def unstable(final_ce: np.ndarray, train_loss: np.ndarray, ceiling: float, spike_nats: float,
             warmup: int) -> np.ndarray:
    """A run is unstable if it ends no better than a context-free model (CE above `ceiling`, or
    not finite) or its training loss once rose `spike_nats` above its best so far after warm-up.
    final_ce: (K,); train_loss: (steps, K) -> bool (K,)."""
    L = np.nan_to_num(train_loss[warmup:], nan=np.inf)
    spike = (L - np.minimum.accumulate(L, axis=0) > spike_nats).any(0)
    return ~np.isfinite(final_ce) | (np.nan_to_num(final_ce, nan=np.inf) > ceiling) | spike


def lr_sensitivity(final_ce: np.ndarray, init_loss: float) -> np.ndarray:
    """Wortsman et al. 2023 §2 'LR sensitivity': mean over the sweep of min(ℓ(η), ℓ₀) − min_η ℓ(η).
    final_ce: (n_lrs, runs) -> (runs,)."""
    capped = np.minimum(np.nan_to_num(final_ce, nan=init_loss), init_loss)
    return (capped - capped.min(0)).mean(0)


def _sweep(arms, lrs, draws, seeds, L, d, n_head, steps, warmup, B, T, V, order, alpha, eval_seqs):
    """One stack: arms × LRs × draws × seeds, paired over (draw, seed). -> per arm: final CE
    (lrs, runs), training-loss curves (lrs, steps, runs) and final mean |log Z| (lrs, runs)."""
    srcs = [MarkovSource(V=V, order=order, alpha=alpha, seed=int(s)) for s in draws]
    evs = [src.sample(eval_seqs, T + 1, np.random.default_rng(int(s) + 7))[:, :-1] for src, s in zip(srcs, draws)]
    blocks = [(a, lr) for a in arms for lr in lrs]
    members = members_of(len(draws), seeds, repeat=len(blocks))
    n = len(draws) * len(seeds)
    zc = torch.tensor([arms[a][0] for a, _ in blocks]).repeat_interleave(n)
    mz = torch.tensor([arms[a][1] for a, _ in blocks]).repeat_interleave(n)
    stack = gpt_stack(GPTConfig(vocab_size=V, n_ctx=T, n_layer=L, d_model=d, n_head=n_head), draws, members)
    aux = lambda lg: (zc * torch.logsumexp(lg, -1).pow(2).flatten(1).mean(1)
                      + mz * lg.amax(-1).pow(2).flatten(1).mean(1))
    logz = {}

    def on_step(step: int, lg: torch.Tensor, active: list[int]) -> None:
        if step == steps - 1:
            logz["z"] = torch.logsumexp(lg, -1).abs().flatten(1).mean(1).numpy()
    tr = run_stack(stack, draw_batches(srcs, draws, members, B, T, soft=True), [lr for _, lr in blocks for _ in range(n)],
                   steps, warmup, "cosine", aux=aux, on_step=on_step)
    ce, loss = draw_eval(stack, srcs, members, evs), tr.array("loss")  # (K,), (steps, K)
    shape = (len(arms), len(lrs), n)
    return {a: (ce.reshape(shape)[i], loss.reshape(steps, *shape)[:, i].transpose(1, 0, 2), logz["z"].reshape(shape)[i])
            for i, a in enumerate(arms)}


def _ceilings(draws, seeds, V, order, alpha) -> np.ndarray:
    """Unigram entropy of each run's source, per run -> (runs,)."""
    return np.repeat([unigram_entropy(MarkovSource(V=V, order=order, alpha=alpha, seed=int(s))) for s in draws],
                     len(seeds))


def z_loss(z_coef: NonNeg, max_z_coef: NonNeg, lrs: list[float], spike_nats: Pos, L: PosInt, d: PosInt,
           n_head: PosInt, steps: PosInt, warmup: int, B: PosInt, T: PosInt, V: PosInt, order: PosInt,
           alpha: Pos, eval_seqs: PosInt, data_draws: Seeds, seeds: Seeds) -> Evidence:
    """Train without an auxiliary loss, with PaLM's z-loss (z_coef·log²Z) and with the max-z loss
    (max_z_coef·z², z the largest logit) at every peak LR of the sweep; paired by run."""
    arms = {"none": (0.0, 0.0), "z-loss": (z_coef, 0.0), "max-z": (0.0, max_z_coef)}
    ceiling = _ceilings(data_draws, seeds, V, order, alpha)
    out = {}
    for name, (ce, curves, logz) in _sweep(arms, lrs, data_draws, seeds, L, d, n_head, steps, warmup, B, T, V,
                                           order, alpha, eval_seqs).items():
        bad = np.stack([unstable(ce[i], curves[i], ceiling, spike_nats, warmup) for i in range(len(lrs))])
        out[name] = {"ce": ce, "bad": bad, "sens": lr_sensitivity(ce, math.log(V)), "logz": logz}
    measured = _measures(out, lrs)
    runs = len(data_draws) * len(seeds)
    fig = Figure("Final loss across the learning-rate sweep", "peak learning rate", "expected CE (nats)",
                 [Series(n, lrs, np.nanmean(np.minimum(o["ce"], math.log(V)), 1)) for n, o in out.items()],
                 xscale="log", caption="Wortsman et al. 2023 Fig. 1 compare arms the same way: loss against peak LR.")
    table = [{"arm": n, "lr": lr, "unstable_share": float(o["bad"][i].mean()), "mean_CE": float(np.nanmean(o["ce"][i])),
              "abs_logZ": float(np.nanmean(o["logz"][i]))} for n, o in out.items() for i, lr in enumerate(lrs)]
    return Evidence(measured=measured, figures=[fig], table=table, seeds=list(seeds),
                    replication={"data_draws": len(data_draws), "seeds": len(seeds),
                                 "reason": f"{runs} runs per arm and LR, seeds nested in Markov-source draws"},
                    scale={"max_params": 12 * L * d * d + V * d, "max_tokens": steps * B * T,
                           "data": [f"order-{order} Markov, V={V}"]},
                    notes=[f"Unstable: final CE above the source's unigram entropy, not finite, or a training-loss "
                           f"rise of {spike_nats:g} nats above its best after {warmup} warm-up steps."])


def _measures(out: dict, lrs: list[float]) -> dict:
    base = out["none"]
    best = int(np.nanargmin(np.nanmean(base["ce"], 1)))  # the baseline's best LR
    m = {"unstable_rate_none": Measure(float(base["bad"].mean()), n=base["bad"].size)}
    for n, key in (("z-loss", "zloss"), ("max-z", "maxz")):
        o = out[n]
        m[f"unstable_reduction_{key}"] = interval_from_samples(
            base["bad"].mean(0) - o["bad"].mean(0), note=f"share of the {len(lrs)} LRs unstable, none minus {n}, per run")
        m[f"lr_sensitivity_reduction_{key}"] = interval_from_samples(
            base["sens"] - o["sens"], unit="nats", note=f"Wortsman et al. LR sensitivity, none minus {n}")
        m[f"ce_cost_{key}_rel"] = interval_from_samples(
            (o["ce"][best] - base["ce"][best]) / base["ce"][best], note=f"relative CE increase at the best LR {lrs[best]:g}")
        m[f"logz_reduction_{key}"] = interval_from_samples(
            np.nanmean(base["logz"] - o["logz"], 0), note="mean |log Z| over the sweep, none minus arm (guaranteed by the penalty)")
        m[f"unstable_rate_{key}"] = Measure(float(o["bad"].mean()), n=o["bad"].size)
    return m
