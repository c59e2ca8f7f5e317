"""Batch size, learning rate and schedules, measured on tiny language models.

Every run trains small MLP next-token models together (verifiers.lab.pairs) on an order-2
Markov source whose entropy is known, and scores them by the exact population loss (entropy + KL),
so differences between configurations are not hidden by evaluation noise. Configurations are
paired by seed: the same seed gives the same initial weights and the same data stream.
Batch sizes B count examples, i.e. predicted tokens.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.formulas import KAPLAN
from principia.types import NonNeg, Pos, PosInt, Seeds

from .lab.batched import BatchedAdamW
from .lab.data import MarkovSource
from .lab.noise import (best_lr, fit_critical_batch, loglog_slope, noise_scale, scaling_efficiency,
                        steps_to_target)
from .lab.pairs import PairSampler, fit_pairs, pair_batches, population_loss
from .lab.stacks import NGramStack, mlp_params
from .lab.tuning import recorded, replication, scale
from .lab.sweeps import STREAMS, adam, ci_exp, constant_lr, diverged_as, ensemble, grid, source, target

__all__ = ["batch_size_vs_loss", "critical_batch_size", "kaplan_bcrit"]


# ---------------------------------------------------------------- batch size vs loss

def kaplan_bcrit(L: float, B_star: float = KAPLAN["B_star"],
                 alpha_B: float = KAPLAN["alpha_B"]) -> float:
    """B_crit(L) ≈ B*/L^(1/α_B) tokens (Kaplan et al. 2020, Eq. 5.3; B* ≈ 2e8, α_B ≈ 0.21)."""
    return B_star / L ** (1.0 / alpha_B)


def _noise_scales(model: NGramStack, src: MarkovSource, probe: PairSampler, seed_of: torch.Tensor,
                  b_small: int, n_micro: int) -> torch.Tensor:
    """B_simple per model: exact |G|² from the population loss, tr Σ from n_micro batches of
    b_small (their mean is the big batch, b_big = n_micro·b_small; McCandlish App. A.1)."""
    g = model.grad
    g.zero_()
    population_loss(model, src, True).sum().backward()
    g_sq = g.pow(2).sum(1)
    mean = torch.zeros_like(g)
    small_sq = torch.zeros(model.K, device=g.device)
    batch, loss = pair_batches(model, probe, b_small, seed_of)
    for _ in range(n_micro):
        g.zero_()
        inp, tgt = batch(0, list(range(model.K)))
        loss(model(inp), tgt).sum().backward()
        small_sq += g.pow(2).sum(1) / n_micro
        mean += g / n_micro
    g.zero_()
    _, _, b_simple = noise_scale(small_sq, mean.pow(2).sum(1), b_small, b_small * n_micro, g_sq)
    return b_simple.detach().cpu()


def batch_size_vs_loss(alpha_B: Pos, B_star: Pos, V: PosInt, order: PosInt, alpha: Pos,
                       support: int, source_seed: int, d_hidden: PosInt, B: PosInt,
                       lr_grid: list[float], steps: PosInt, n_checks: PosInt, b_small: PosInt,
                       n_micro: PosInt, seeds: Seeds, device: str) -> Evidence:
    """Gradient noise scale B_simple = tr(Σ)/|G|² along training, and Kaplan's B_crit(L)."""
    # closed: the loss decrease that doubles B_crit under Eq. 5.3 is 1 − 2^(−α_B)
    drop = 1.0 - 2.0 ** (-alpha_B)
    L_k = np.geomspace(10.0, 2.0, 30)
    # run: constant-LR Adam ensembles, B_simple measured at n_checks evenly spaced steps
    src = source(V, order, alpha, support, source_seed)
    S, C = len(seeds), len(lr_grid)
    model, sampler, seed_of = ensemble(src, seeds, C, d_hidden, device=device)
    probe = PairSampler(src, [s + 777 for s in seeds])
    marks, losses, bs = [], [], []

    def on_eval(step: int, L: torch.Tensor) -> None:
        marks.append(step)
        losses.append(L.detach().cpu().numpy())
        bs.append(_noise_scales(model, src, probe, seed_of, b_small, n_micro).numpy())

    every = max(1, steps // n_checks)
    fit_pairs(model, adam(model), src, sampler, seed_of,
              constant_lr([l for l in lr_grid for _ in seeds]), steps, B, every, on_eval=on_eval)
    L, Bs = grid(np.array(losses), S), grid(np.array(bs), S)  # (T, C, S)
    best = np.nanargmin(np.where(np.isfinite(L[-1]), L[-1], np.inf), axis=0)  # tuned LR per seed
    slopes, slopes_red, growth = [], [], []
    for s in range(S):
        Ls, bss = L[:, best[s], s], Bs[:, best[s], s]
        slopes.append(loglog_slope(Ls, bss))
        slopes_red.append(loglog_slope(Ls - src.entropy, bss))
        growth.append(math.log(bss[-1] / bss[0]))
    figs = [
        Figure("Gradient noise scale as the loss falls (tuned LR per seed: points)",
               "population loss (nats)", "B_simple (examples = tokens)",
               [Series(f"seed {seeds[s]}, lr {lr_grid[best[s]]:g}", L[:, best[s], s],
                       Bs[:, best[s], s], "points") for s in range(S)]
               + [Series(f"lr {lr_grid[c]:g} (seed {seeds[0]})", L[:, c, 0], Bs[:, c, 0], "dashed")
                  for c in range(C) if c != best[0]],
               xscale="log", yscale="log",
               caption="Dashed: the other learning rates of seed 0; B_simple also depends on the "
                       "learning rate (a higher rate keeps the gradient noisier)."),
        Figure("Kaplan et al. 2020, Eq. 5.3: B_crit(L) = B*/L^(1/α_B)", "loss L (nats)",
               "B_crit (tokens)", [Series("B_crit(L)", L_k, [kaplan_bcrit(l, B_star, alpha_B)
                                                             for l in L_k])],
               xscale="log", yscale="log"),
    ]
    ev = Evidence(
        measured={
            "loss_drop_per_doubling": Measure(drop, note="1 − 2^(−α_B): the loss decrease over "
                                              "which Eq. 5.3 doubles B_crit"),
            "slope_bsimple_vs_loss": interval_from_samples(
                slopes, note="d log B_simple / d log L over the run at the tuned LR; "
                             f"Kaplan's B_crit(L) has −1/α_B = {-1 / alpha_B:.2f}"),
            "slope_bsimple_vs_excess_loss": interval_from_samples(
                slopes_red, note="against L − entropy (the reducible part)"),
            "bsimple_growth": ci_exp(growth, note="B_simple at the end over B_simple at step 0"),
            "kaplan_bcrit_ratio_L4_to_L2": Measure(
                kaplan_bcrit(2.0, B_star, alpha_B) / kaplan_bcrit(4.0, B_star, alpha_B),
                note="how much Eq. 5.3 grows B_crit when the loss halves"),
        },
        figures=figs,
        table=[{"seed": seeds[s], "lr": lr_grid[best[s]], "step": marks[t],
                "loss": float(L[t, best[s], s]), "B_simple": float(Bs[t, best[s], s])}
               for s in range(S) for t in range(len(marks))],
        notes=[f"Source entropy {src.entropy:.3f} nats; uniform guess {math.log(V):.3f}.",
               "B_simple uses the exact |G|² (the data distribution is known) and the App. A "
               "two-batch estimate of tr Σ.",
               f"Kaplan's B_crit at L = 4, 3, 2 nats: " + ", ".join(
                   f"{kaplan_bcrit(l, B_star, alpha_B):.3g}" for l in (4, 3, 2)) + " tokens."],
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(mlp_params(V, order, 16, d_hidden, 1), steps * B, [f'markov:V{V}-order{order}']))


# ---------------------------------------------------------------- critical batch size

def _steps_by_batch(src: MarkovSource, seeds: Sequence[int], B: int, lrs: Sequence[float],
                    targets: Sequence[float], d_hidden: int, max_steps: int, fixed: bool,
                    device: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Steps to each target (best LR per seed) -> (n_targets, S), and the (T, C, S) loss curves."""
    S = len(seeds)
    model, sampler, seed_of = ensemble(src, seeds, len(lrs), d_hidden, device=device)
    tight = min(targets)

    def done(L: np.ndarray) -> bool:  # every seed has some LR at the tight target
        return not fixed and bool((grid(L, S) <= tight).any(0).all())

    run = fit_pairs(model, adam(model), src, sampler, seed_of,
                    constant_lr([l for l in lrs for _ in seeds]), max_steps, B,
                    max(1, min(20, 640 // B)), stop=done)
    curves = grid(run.loss, S)
    steps = np.array([[min(steps_to_target(run.eval_steps, curves[:, c, s], t)
                           for c in range(len(lrs))) for s in range(S)] for t in targets])
    return steps, curves, run.eval_steps


def critical_batch_size(V: PosInt, order: PosInt, alpha: Pos, support: int, source_seed: int,
                        d_hidden: PosInt, d_hidden_alt: PosInt, B_grid: list[int],
                        B_alt: list[int], lr_centre: Pos, B_ref: PosInt, lr_exponent: NonNeg,
                        lr_factors: list[float], target_fracs: list[float], max_steps: PosInt,
                        fixed_steps_large: PosInt, seeds: Seeds, device: str) -> Evidence:
    """Steps and examples to a target loss across batch sizes; B_crit = E_min/S_min."""
    src = source(V, order, alpha, support, source_seed)
    targets = [target(src, f) for f in target_fracs]
    S, loose, tight = len(seeds), 0, int(np.argmin(targets))

    def lrs(B: int) -> list[float]:  # grid centre ∝ B^0.5 (McCandlish et al. 2018, Eq. A.3)
        return [lr_centre * (B / B_ref) ** lr_exponent * f for f in lr_factors]

    def sweep(grid: Sequence[int], width: int) -> tuple[np.ndarray, dict]:
        steps, curves = [], {}
        for B in grid:
            large = B >= 1024
            st, cv, ev = _steps_by_batch(src, seeds, B, lrs(B), targets, width,
                                         fixed_steps_large if large else max_steps, large, device)
            steps.append(st)
            curves[B] = (cv, ev)
        return np.array(steps), curves  # (n_B, n_targets, S)

    St, curves = sweep(B_grid, d_hidden)
    St_alt, _ = sweep(B_alt, d_hidden_alt)
    fits = [[fit_critical_batch(B_grid, St[:, t, s]) for s in range(S)] for t in range(len(targets))]
    sub = [B_grid.index(b) for b in B_alt]
    fit_main = [fit_critical_batch(B_alt, St[sub, tight, s]) for s in range(S)]
    fit_alt = [fit_critical_batch(B_alt, St_alt[:, tight, s]) for s in range(S)]
    eff_small = [scaling_efficiency(B_grid[0], St[0, tight, s], B_grid[1], St[1, tight, s])
                 for s in range(S)]
    eff_large = [scaling_efficiency(B_grid[-2], St[-2, tight, s], B_grid[-1], St[-1, tight, s])
                 for s in range(S)]
    # equal steps: at the step count B_{n-1} needs for the tight target, where is B_max?
    (cv_max, ev_max) = curves[B_grid[-1]]
    gap = []
    for s in range(S):
        s_star = St[-2, tight, s]
        L_at = [np.interp(s_star, ev_max, cv_max[:, c, s]) for c in range(cv_max.shape[1])]
        gap.append(min(L_at) - targets[tight])
    growth = [math.log(fits[tight][s]["B_crit"] / fits[loose][s]["B_crit"]) for s in range(S)]
    size = [math.log(fit_alt[s]["B_crit"] / fit_main[s]["B_crit"]) for s in range(S)]
    E = np.array(B_grid)[:, None] * St[:, tight, :]
    figs = [Figure("Steps and examples to reach the target loss (McCandlish Eq. 2.11)",
                   "examples processed E = B·S", "optimizer steps S",
                   [Series(f"target {targets[t]:.3f} nats, seed {seeds[0]}",
                           np.array(B_grid) * St[:, t, 0], St[:, t, 0], "points")
                    for t in range(len(targets))]
                   + [Series(f"fit, target {targets[t]:.3f}", *_hyperbola(fits[t][0]), "dashed")
                      for t in range(len(targets))],
                   xscale="log", yscale="log",
                   caption="Each point is one batch size (best of its LR grid). The dashed "
                           "curves are S = S_min + E_min/B; B_crit = E_min/S_min."),
            Figure("Steps to the tight target vs batch size", "batch size B (examples)",
                   "steps S", [Series(f"seed {seeds[s]}", B_grid, St[:, tight, s], "points")
                               for s in range(S)]
                   + [Series(f"width {d_hidden_alt}, seed {seeds[s]}", B_alt, St_alt[:, tight, s],
                             "dashed") for s in range(S)],
                   xscale="log", yscale="log")]
    ev = Evidence(
        measured={
            "scaling_eff_small": interval_from_samples(
                eff_small, note=f"log(S_{B_grid[0]}/S_{B_grid[1]})/log({B_grid[1]}/{B_grid[0]}): "
                                "1 = perfect scaling"),
            "scaling_eff_large": interval_from_samples(
                eff_large, note=f"same for B = {B_grid[-2]} → {B_grid[-1]}"),
            "bcrit_loose": ci_exp([math.log(f["B_crit"]) for f in fits[loose]], "examples"),
            "bcrit_tight": ci_exp([math.log(f["B_crit"]) for f in fits[tight]], "examples"),
            "bcrit_growth": ci_exp(growth, note="B_crit at the tight over the loose target"),
            "bcrit_width_ratio": ci_exp(
                size, note=f"B_crit of width {d_hidden_alt} over width {d_hidden}, tight target, "
                           f"both fitted on B = {B_alt}"),
            "loss_gap_equal_steps": interval_from_samples(
                gap, unit="nats", note=f"loss at B = {B_grid[-1]} minus the loss B = {B_grid[-2]} "
                                       "reaches, after the same number of steps"),
            "examples_ratio": ci_exp([math.log(E[-1, s] / E[0, s]) for s in range(S)],
                                      note=f"examples to the tight target at B = {B_grid[-1]} over "
                                           f"B = {B_grid[0]}"),
        },
        figures=figs,
        table=[{"B": B, "target": round(targets[t], 4), "seed": seeds[s],
                "steps": float(St[i, t, s]), "examples": float(B * St[i, t, s])}
               for i, B in enumerate(B_grid) for t in range(len(targets)) for s in range(S)]
        + [{"fit": f"target {targets[t]:.3f}", "seed": seeds[s], **fits[t][s]}
           for t in range(len(targets)) for s in range(S)],
        notes=[f"Targets: {', '.join(f'{t:.3f}' for t in targets)} nats (entropy "
               f"{src.entropy:.3f}); Adam, constant LR, best of {len(lr_factors)} rates per batch "
               "size and seed."],
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(mlp_params(V, order, 16, d_hidden_alt, 1), max_steps * B_grid[0], [f'markov:V{V}-order{order}']))


def _hyperbola(fit: dict[str, float]) -> tuple[list[float], list[float]]:
    """Points of S = S_min + E_min/B, as (E, S) pairs."""
    Bs = np.geomspace(1, 1e6, 60)
    S = fit["S_min"] + fit["E_min"] / Bs
    return list(Bs * S), list(S)
