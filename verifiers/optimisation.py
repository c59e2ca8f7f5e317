"""Batch size and the gradient noise scale, measured on GPT members on two sources.

GPT members (``verifiers.lab.lm``) train on the standard library's bytes and on a Markov source
of known entropy, one data draw at a time (``verifiers.lab.sources``, shared with the other
batch-size claims), with the model size fitted to the tier's FLOP budget. Batch sizes B count
sequences of T tokens; tokens = B·T.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_over_draws
from principia.formulas import KAPLAN
from principia.types import Pos, PosInt, Seeds

from .lab.batched import BatchedAdamW, lr_table, member_ce, train
from .lab.gpt import GPTConfig
from .lab.lm import heldout_loss, member_feed as _feed
from .lab.noise import loglog_slope, noise_scale
from .lab.sources import (DRAWS, Corpus, corpus, corpus_name, exp_over_draws, gpt_ladder, ladder_rows,
                          lm_setting, on_source)
from .lab.stacks import GPTStack
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["batch_size_vs_loss", "kaplan_bcrit"]


# ---------------------------------------------------------------- batch size vs loss

def kaplan_bcrit(L: float, B_star: float = KAPLAN["B_star"],
                 alpha_B: float = KAPLAN["alpha_B"]) -> float:
    """B_crit(L) ≈ B*/L^(1/α_B) tokens (Kaplan et al. 2020, Eq. 5.3; B* ≈ 2e8, α_B ≈ 0.21)."""
    return B_star / L ** (1.0 / alpha_B)


def _b_simple(stack: GPTStack, c: Corpus, T: int, b_small: int, n_micro: int,
              rng: np.random.Generator) -> np.ndarray:
    """B_simple of every member in tokens: McCandlish's two-batch estimator (App. A.1) from
    n_micro batches of b_small windows (their mean is the big batch), windows as the unit."""
    g, K = stack.grad, stack.K
    mean, small_sq = torch.zeros_like(g), torch.zeros(K, device=g.device)
    for _ in range(n_micro):
        w = c.src.sample(b_small, T + 1, rng).to(g.device)
        g.zero_()
        member_ce(stack(w[None, :, :-1].expand(K, -1, -1)), w[None, :, 1:].expand(K, -1, -1)).sum().backward()
        small_sq += g.pow(2).sum(1) / n_micro
        mean += g / n_micro
    g.zero_()
    _, _, bs = noise_scale(small_sq, mean.pow(2).sum(1), b_small, b_small * n_micro)
    return bs.detach().cpu().numpy() * T


def _noise_run(cfg: GPTConfig, c: Corpus, gpt: dict, p: dict, seeds: list[int], draw: int,
               device: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Constant-rate Adam members (lr_grid × seeds) at batch B; held-out loss and B_simple at
    n_checks + 1 evenly spaced steps -> (steps, (checks, K) loss, (checks, K) B_simple)."""
    lrs = [lr for lr in p["lr_grid"] for _ in seeds]
    members = [s for _ in p["lr_grid"] for s in seeds]
    stack, st, steps = GPTStack(cfg, members, device), lm_setting(gpt, p["B"]), p["steps"]
    checks = sorted({round(steps * i / p["n_checks"]) for i in range(p["n_checks"] + 1)})
    probe, L, Bs = np.random.default_rng(777 + draw), [], []

    def measure(step: int, *_) -> None:
        if step + 1 in checks:
            L.append(heldout_loss(stack, c.windows).numpy())
            Bs.append(_b_simple(stack, c, st.T, p["b_small"], p["n_micro"], probe))
    measure(-1)
    K = len(members)  # train_lm hides its stack, so its loop is driven here with its feed
    train(stack, BatchedAdamW(stack, st.betas), _feed(c.src, members, st.batch, st.T, device),
          lr_table(lrs, [steps] * K, "constant"), [steps] * K, [st.weight_decay] * K,
          on_step=measure)
    return checks, np.array(L), np.array(Bs)


def _slopes(L: np.ndarray, Bs: np.ndarray, floor: float) -> tuple[float, float, float]:
    """d log B_simple / d log L, the same against L − floor, and log(B_end/B_start) of one
    member's checkpoints (a non-positive B_simple estimate is dropped)."""
    ok = np.isfinite(L) & (Bs > 0)
    if ok.sum() < 3:
        return math.nan, math.nan, math.nan
    red = loglog_slope(L[ok] - floor, Bs[ok]) if math.isfinite(floor) else math.nan
    return loglog_slope(L[ok], Bs[ok]), red, math.log(Bs[ok][-1] / Bs[ok][0])


def _bsl_draw(cfg: GPTConfig, c: Corpus, gpt: dict, p: dict, seeds: Seeds, draw: int,
              device: str) -> dict:
    """One draw of one source: the tuned rate per seed (lowest final held-out loss) and the
    slopes of B_simple against the loss along that member's run."""
    sd = [nested_seed(draw, s) for s in seeds]
    checks, L, Bs = _noise_run(on_source(cfg, c), c, gpt, p, sd, draw, device)
    S = len(seeds)
    final = np.where(np.isfinite(L[-1]), L[-1], np.inf).reshape(-1, S)
    best = final.argmin(0)
    cols = [int(best[s]) * S + s for s in range(S)]
    fits = [_slopes(L[:, k], Bs[:, k], c.entropy) for k in cols]
    return {"checks": checks, "L": L[:, cols], "Bs": Bs[:, cols], "lr": [p["lr_grid"][b] for b in best],
            "slope": [f[0] for f in fits], "slope_red": [f[1] for f in fits],
            "growth": [f[2] for f in fits]}


def _bsl_measured(runs: dict, drop: float, alpha_B: float) -> dict:
    out = {"loss_drop_per_doubling": Measure(drop, note="1 − 2^(−α_B): the loss decrease over "
                                             "which Eq. 5.3 doubles B_crit")}
    for kind, draws in runs.items():
        by = lambda key: {d: r[key] for d, r in draws.items()}
        out[f"slope_bsimple_vs_loss_{kind}"] = interval_over_draws(by("slope"), note=(
            f"{kind}: d log B_simple / d log L along the run at the tuned rate, per draw; "
            f"Kaplan's B_crit(L) has −1/α_B = {-1 / alpha_B:.2f}"))
        out[f"bsimple_growth_{kind}"] = exp_over_draws(by("growth"), f"{kind}: B_simple at the "
                                                       "end over B_simple at step 0")
        if kind == "markov":
            out["slope_bsimple_vs_excess_loss_markov"] = interval_over_draws(
                by("slope_red"), note="markov: against L − entropy (the reducible part)")
    return out


def _bsl_figure(runs: dict, B_star: float, alpha_B: float) -> list[Figure]:
    pts = [Series(f"{kind}, draw {d}, lr {r['lr'][0]:g}", r["L"][:, 0], r["Bs"][:, 0], "points")
           for kind, draws in runs.items() for d, r in draws.items()]
    L_k = np.geomspace(10.0, 2.0, 30)
    return [Figure("Gradient noise scale as the held-out loss falls (tuned rate, seed 0 of each draw)",
                   "held-out loss (nats)", "B_simple (tokens)", pts, xscale="log", yscale="log"),
            Figure("Kaplan et al. 2020, Eq. 5.3: B_crit(L) = B*/L^(1/α_B)", "loss L (nats)",
                   "B_crit (tokens)", [Series("B_crit(L)", L_k, [kaplan_bcrit(l, B_star, alpha_B)
                                                                 for l in L_k])],
                   xscale="log", yscale="log")]


def batch_size_vs_loss(alpha_B: Pos, B_star: Pos, data: dict, sources: list[str], gpt: dict,
                       flops: Pos, B: PosInt, lr_grid: list[float], steps: PosInt,
                       n_checks: PosInt, b_small: PosInt, n_micro: PosInt, data_draws: Seeds,
                       seeds: Seeds, device: str, budget_scale: float = 1.0) -> Evidence:
    """Gradient noise scale B_simple = tr(Σ)/|G|² along training, and Kaplan's B_crit(L)."""
    drop = 1.0 - 2.0 ** (-alpha_B)  # closed: the loss decrease that doubles B_crit under Eq. 5.3
    p = {"B": B, "lr_grid": lr_grid, "steps": steps, "n_checks": n_checks, "b_small": b_small,
         "n_micro": n_micro}
    per_run = steps * B + (n_checks + 1) * n_micro * b_small  # windows, probes counted as steps
    runs_n = len(sources) * len(data_draws) * len(seeds) * len(lr_grid)
    rung = gpt_ladder(gpt, flops, budget_scale, 1, 0.0, runs_n * per_run * gpt["T"])[-1]
    runs = {}
    for kind in sources:
        runs[kind] = {d: _bsl_draw(rung.shape.cfg, corpus(kind, d, data, gpt["T"], gpt["eval_seqs"]),
                                   gpt, p, seeds, d, device) for d in data_draws}
    ev = Evidence(measured=_bsl_measured(runs, drop, alpha_B),
                  figures=_bsl_figure(runs, B_star, alpha_B),
                  table=ladder_rows([rung]) + [
                      {"source": kind, "draw": d, "seed": seeds[s], "lr": r["lr"][s], "step": t,
                       "loss": float(r["L"][i, s]), "B_simple_tokens": float(r["Bs"][i, s])}
                      for kind, draws in runs.items() for d, r in draws.items()
                      for s in range(len(seeds)) for i, t in enumerate(r["checks"])],
                  notes=[f"GPT d_model {rung.shape.cfg.d_model}, {rung.shape.cfg.n_layer} layers, "
                         f"N = {rung.shape.N}; batch {B} windows of {gpt['T']} tokens; B_simple "
                         f"from {n_micro} batches of {b_small} windows (McCandlish App. A.1).",
                         f"Kaplan's B_crit at L = 4, 3, 2 nats: " + ", ".join(
                             f"{kaplan_bcrit(l, B_star, alpha_B):.3g}" for l in (4, 3, 2)) + " tokens."],
                  seeds=list(seeds))
    names = [corpus_name(k, data) for k in sources]
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(rung.shape.N, steps * B * gpt["T"], names))
