"""The critical batch size on tiny language models: steps and examples to a target loss across
batch sizes (McCandlish et al. 2018), how B_crit moves with the target and with model size.

Each data draw is a fresh Markov source (the independent unit); init seeds nest inside a draw.
Every (batch size, seed) trains at a small grid of constant Adam rates centred on a
batch-dependent rate, and steps to a target are read from the best rate.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_over_draws
from principia.types import NonNeg, Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.noise import fit_critical_batch, scaling_efficiency, steps_to_target
from .lab.pairs import fit_pairs
from .lab.stacks import mlp_params
from .lab.sweeps import adam, ci_exp, constant_lr, ensemble, grid, source, target
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["critical_batch_size"]

DRAWS = ("each data draw is a fresh Markov source (its transition table redrawn) with its own "
         "token streams; init seeds nest inside a draw")


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


def _sweep(src, seeds, B_grid, width, targets, p: dict, device: str, fixed_large: bool):
    """Steps to every target across B_grid -> (n_B, n_targets, S), and each B's loss curves.
    Batches from B_large up run a fixed number of steps (their whole curve is used) unless
    `fixed_large` is off; every other run stops once each seed reaches the tightest target."""
    steps, curves = [], {}
    for B in B_grid:
        large = fixed_large and B >= p["B_large"]
        lrs = [p["lr_centre"] * (B / p["B_ref"]) ** p["lr_exponent"] * f for f in p["lr_factors"]]
        st, cv, ev = _steps_by_batch(src, seeds, B, lrs, targets, width,
                                     p["fixed_steps_large"] if large else p["max_steps"], large, device)
        steps.append(st)
        curves[B] = (cv, ev)
    return np.array(steps), curves


def _draw(src: MarkovSource, seeds: list[int], p: dict, device: str) -> dict:
    """Every per-seed quantity of one data draw."""
    targets = [target(src, f) for f in p["target_fracs"]]
    tight, B_grid, B_alt = int(np.argmin(targets)), p["B_grid"], p["B_alt"]
    St, curves = _sweep(src, seeds, B_grid, p["d_hidden"], targets, p, device, True)
    equal = [target(src, p["size_target_frac"])]  # a loss every width reaches
    size = {w: _sweep(src, seeds, B_alt, w, equal, p, device, False)[0][:, 0] for w in p["size_widths"]}
    S = len(seeds)
    fits = [[fit_critical_batch(B_grid, St[:, t, s]) for s in range(S)] for t in range(len(targets))]
    bsize = {w: [fit_critical_batch(B_alt, st[:, s])["B_crit"] for s in range(S)] for w, st in size.items()}
    lo_w, hi_w = min(size), max(size)
    cv_max, ev_max = curves[B_grid[-1]]
    return {
        "targets": targets, "St": St, "size_steps": size, "fits": fits,
        "eff_small": [scaling_efficiency(B_grid[0], St[0, tight, s], B_grid[1], St[1, tight, s]) for s in range(S)],
        "eff_large": [scaling_efficiency(B_grid[-2], St[-2, tight, s], B_grid[-1], St[-1, tight, s]) for s in range(S)],
        "growth": [math.log(fits[tight][s]["B_crit"] / fits[0][s]["B_crit"]) for s in range(S)],
        "log2_size": [math.log2(bsize[hi_w][s] / bsize[lo_w][s]) for s in range(S)],
        "gap": [min(np.interp(St[-2, tight, s], ev_max, cv_max[:, c, s]) for c in range(cv_max.shape[1]))
                - targets[tight] for s in range(S)],
        "bcrit_tight": [math.log(f["B_crit"]) for f in fits[tight]],
    }


def _per_draw_logs(draws: dict, key: str) -> list[float]:
    """Seed-mean of a log quantity per draw (the draw is the unit of the interval)."""
    return [float(np.mean(d[key])) for d in draws.values()]


def _measures(draws: dict, p: dict) -> dict:
    B_grid, (lo_w, hi_w) = p["B_grid"], (min(p["size_widths"]), max(p["size_widths"]))
    N = {w: mlp_params(p["V"], p["order"], 16, w, 1) for w in (lo_w, hi_w)}
    by = lambda key: {d: v[key] for d, v in draws.items()}
    return {
        "scaling_eff_small": interval_over_draws(by("eff_small"), note=(
            f"log(S_{B_grid[0]}/S_{B_grid[1]})/log({B_grid[1]}/{B_grid[0]}): 1 = perfect scaling")),
        "scaling_eff_large": interval_over_draws(by("eff_large"), note=f"same for B = {B_grid[-2]} → {B_grid[-1]}"),
        "bcrit_tight": ci_exp(_per_draw_logs(draws, "bcrit_tight"), "examples"),
        "bcrit_growth": ci_exp(_per_draw_logs(draws, "growth"), note="B_crit at the tight over the loose target"),
        "log2_bcrit_size_ratio": interval_over_draws(by("log2_size"), note=(
            f"log₂(B_crit of width {hi_w} / B_crit of width {lo_w}) at the loss closing "
            f"{1 - p['size_target_frac']:.0%} of the gap, both fitted on "
            f"B = {p['B_alt']}; the models differ {N[hi_w] / N[lo_w]:.0f}× in parameters")),
        "param_ratio_size": ci_exp([math.log(N[hi_w] / N[lo_w])], note="N of the widest over the narrowest model"),
        "loss_gap_equal_steps": interval_over_draws(by("gap"), unit="nats", note=(
            f"loss at B = {B_grid[-1]} minus the loss B = {B_grid[-2]} reaches, after the same number of steps")),
    }


def critical_batch_size(V: PosInt, order: PosInt, alpha: Pos, support: int, data_draws: Seeds,
                        d_hidden: PosInt, size_widths: list[int], size_target_frac: Pos, B_grid: list[int],
                        B_alt: list[int], B_large: PosInt, lr_centre: Pos, B_ref: PosInt,
                        lr_exponent: NonNeg, lr_factors: list[float], target_fracs: list[float],
                        max_steps: PosInt, fixed_steps_large: PosInt, seeds: Seeds,
                        device: str) -> Evidence:
    """Steps and examples to a target loss across batch sizes; B_crit = E_min/S_min per draw."""
    p = {k: v for k, v in locals().items() if k not in ("data_draws", "seeds", "device")}
    draws = {d: _draw(source(V, order, alpha, support, d), [nested_seed(d, s) for s in seeds], p, device)
             for d in data_draws}
    first = draws[data_draws[0]]
    ev = Evidence(measured=_measures(draws, p), figures=_figures(first, B_grid, B_alt),
                  table=[{"draw": d, "B": B, "target": round(r["targets"][t], 4), "seed": seeds[s],
                          "steps": float(r["St"][i, t, s])}
                         for d, r in draws.items() for i, B in enumerate(B_grid)
                         for t in range(len(target_fracs)) for s in range(len(seeds))],
                  notes=[f"Adam, constant rate, best of {len(lr_factors)} rates per batch size and "
                         f"seed; widths {sorted(size_widths)} compared on B = {B_alt}."],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(mlp_params(V, order, 16, max(size_widths + [d_hidden]), 1),
                          max_steps * B_grid[0], [f"markov:V{V}-order{order}"]))


def _figures(r: dict, B_grid: list[int], B_alt: list[int]) -> list[Figure]:
    """The first draw's trade-off curves and its steps-vs-batch at every width."""
    tg, St, fits = r["targets"], r["St"], r["fits"]
    trade = Figure("Steps and examples to reach the target loss (McCandlish Eq. 2.11; first draw, seed 0)",
                   "examples processed E = B·S", "optimizer steps S",
                   [Series(f"target {tg[t]:.3f} nats", np.array(B_grid) * St[:, t, 0], St[:, t, 0], "points")
                    for t in range(len(tg))]
                   + [Series(f"fit, target {tg[t]:.3f}", *_hyperbola(fits[t][0]), "dashed")
                      for t in range(len(tg))],
                   xscale="log", yscale="log",
                   caption="Each point is one batch size (best of its rate grid). The dashed "
                           "curves are S = S_min + E_min/B; B_crit = E_min/S_min.")
    size = Figure("Steps to the equal-loss target vs batch size, per width (first draw, seed means)",
                  "batch size B (examples)", "steps S",
                  [Series(f"width {w}", B_alt, st.mean(1), "points") for w, st in r["size_steps"].items()],
                  xscale="log", yscale="log")
    return [trade, size]


def _hyperbola(fit: dict[str, float]) -> tuple[list[float], list[float]]:
    """Points of S = S_min + E_min/B, as (E, S) pairs."""
    Bs = np.geomspace(1, 1e6, 60)
    S = fit["S_min"] + fit["E_min"] / Bs
    return list(Bs * S), list(S)
