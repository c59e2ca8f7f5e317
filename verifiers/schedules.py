"""Learning-rate schedules and the learning rate against model size, on NGramStack sweeps
(exact population loss on a Markov source of known entropy; configurations paired by seed)."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples, interval_over_draws
from principia.types import Frac, NonNeg, Pos, PosInt, Seeds

from .lab.noise import best_lr, best_value, loglog_slope
from .lab.pairs import fit_pairs
from .lab.stacks import mlp_params
from .lab.train import lr_at
from .lab.mup import MuAdam, mu_ensemble
from .lab.tuning import Layout, nested_seed, recorded, replication, scale
from .lab.sweeps import STREAMS, adam, ci_exp, diverged_as, ensemble, grid, per_config_lr, source

__all__ = ["lr_vs_model_size", "cosine_vs_noam", "cosine_period", "GPT3_TABLE"]

DRAWS = ("each data draw is a fresh Markov source (its transition table redrawn) with its own "
         "token streams; init seeds nest inside a draw")

GPT3_TABLE = [
    (125e6, 768, 6.0e-4), (350e6, 1024, 3.0e-4), (760e6, 1536, 2.5e-4), (1.3e9, 2048, 2.0e-4),
    (2.7e9, 2560, 1.6e-4), (6.7e9, 4096, 1.2e-4), (13.0e9, 5140, 1.0e-4), (175.0e9, 12288, 0.6e-4),
]



# ---------------------------------------------------------------- learning rate vs model size

def _best_rates(src, seeds: list[int], widths: list[int], n_layers: int, B: int, steps: int,
                warmup: int, lr_grid: list[float], mup: bool, device: str):
    """Best peak rate per (width, seed) -> (n_widths, S), and final losses per width (C, S).
    mup: μP relative to the first width (Tensor Programs V), else the standard parametrisation."""
    S, C = len(seeds), len(lr_grid)
    best, finals = [], []
    peaks = torch.tensor([l for l in lr_grid for _ in seeds])
    for width in widths:
        if mup:
            model, sampler, seed_of = mu_ensemble(src, seeds, C, width, n_layers, widths[0], device)
            opt = MuAdam(model, (0.9, 0.95))
        else:
            model, sampler, seed_of = ensemble(src, seeds, C, width, n_layers, device=device)
            opt = adam(model)
        run = fit_pairs(model, opt, src, sampler, seed_of,
                        lambda t: peaks * lr_at(t, steps, 1.0, "cosine", warmup), steps, B, 10 ** 9)
        f = grid(run.final, S)
        finals.append(f)
        best.append([best_lr(lr_grid, f[:, s]) for s in range(S)])
    return np.array(best), finals


def lr_vs_model_size(gpt3_lr: list[float], gpt3_d_model: list[float], V: PosInt, order: PosInt,
                     alpha: Pos, support: int, data_draws: Seeds, widths: list[int],
                     n_layers: PosInt, B: PosInt, steps: PosInt, warmup_frac: Frac,
                     lr_grid: list[float], seeds: Seeds, device: str) -> Evidence:
    """Best peak LR vs width in the standard parametrisation and in μP (Adam, cosine), per data
    draw with nested seeds; GPT-3's published LRs."""
    w = max(1, int(warmup_frac * steps))
    arms = {"sp": {}, "mup": {}}  # arm -> draw -> (best (n_widths, S), finals)
    for d in data_draws:
        src = source(V, order, alpha, support, d)
        for arm in arms:
            arms[arm][d] = _best_rates(src, [nested_seed(d, s) for s in seeds], widths, n_layers, B,
                                       steps, w, lr_grid, arm == "mup", device)
    slope = {arm: interval_over_draws(
        {d: [loglog_slope(widths, b[:, s]) for s in range(b.shape[1])] for d, (b, _) in runs.items()},
        note=f"d log η* / d log width, {'μP' if arm == 'mup' else 'standard parametrisation'}")
        for arm, runs in arms.items()}
    measured = {
        "slope_lr_vs_width": slope["sp"], "slope_lr_vs_width_mup": slope["mup"],
        "gpt3_slope_lr_vs_dmodel": Measure(loglog_slope(gpt3_d_model, gpt3_lr), note="least squares over Table 2.1"),
        "gpt3_fraction_falling": Measure(float(np.mean(np.diff(np.log(gpt3_lr)) <= 0)),
                                         note="share of consecutive GPT-3 sizes whose LR does not rise"),
        **{f"best_lr_{arm}_width{wd}": ci_exp([float(np.log(b[i]).mean()) for b, _ in runs.values()])
           for arm, runs in arms.items() for i, wd in enumerate(widths)},
    }
    ev = Evidence(measured=measured, figures=_lr_size_figures(arms, widths, lr_grid, gpt3_d_model, gpt3_lr, V),
                  table=[{"arm": arm, "draw": d, "width": wd, "seed": seeds[s], "best_lr": float(b[i, s])}
                         for arm, runs in arms.items() for d, (b, _) in runs.items()
                         for i, wd in enumerate(widths) for s in range(len(seeds))],
                  notes=[f"{n_layers} hidden layers, embedding 16 per token; Adam (0.9, 0.95), {steps} "
                         f"steps of {B} examples, cosine to 0 after {w} warm-up steps. μP is taken "
                         f"relative to width {widths[0]}, where both arms are the same model."],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(mlp_params(V, order, 16, max(widths), n_layers), steps * B, [f'markov:V{V}-order{order}']))


def _lr_size_figures(arms: dict, widths, lr_grid, gpt3_d_model, gpt3_lr, V) -> list[Figure]:
    first = {arm: next(iter(runs.values())) for arm, runs in arms.items()}
    name = {"sp": "SP", "mup": "μP"}
    sweeps = [Figure(f"Final loss vs peak learning rate by width, {name[arm]} (first draw)",
                     "peak learning rate", "population loss (nats)",
                     [Series(f"width {wd}", lr_grid, diverged_as(f[i], math.log(V)).mean(1))
                      for i, wd in enumerate(widths)], xscale="log",
                     caption="A diverged run is drawn at the uniform guess, log V.")
              for arm, (_, f) in first.items()]
    gm = lambda runs: np.exp(np.mean([np.log(b).mean(1) for b, _ in runs.values()], axis=0))
    best = Figure("Best peak learning rate vs width (geometric mean over draws)", "hidden width",
                  "best learning rate", [Series(name[arm], widths, gm(runs), "points")
                                         for arm, runs in arms.items()], xscale="log", yscale="log")
    gpt3 = Figure("GPT-3 peak learning rates (Brown et al. 2020, Table 2.1)", "d_model", "learning rate",
                  [Series("GPT-3", gpt3_d_model, gpt3_lr, "points")], xscale="log", yscale="log")
    return sweeps + [best, gpt3]


# ---------------------------------------------------------------- schedules

def _schedule_runs(fns: Sequence[Callable[[int], float]], V: int, order: int, alpha: float,
                   support: int, source_seed: int, d_hidden: int, B: int, steps: int,
                   seeds: Sequence[int], device: str, eval_every: int) -> tuple[np.ndarray, list[int]]:
    """Loss curves (T, n_schedules, S) of one ensemble, one schedule per configuration."""
    src = source(V, order, alpha, support, source_seed)
    model, sampler, seed_of = ensemble(src, seeds, len(fns), d_hidden, device=device)
    run = fit_pairs(model, adam(model), src, sampler, seed_of, per_config_lr(fns, len(seeds)),
                    steps, B, eval_every)
    return grid(run.loss, len(seeds)), run.eval_steps


def _noam_figures(peak_grid: list[float], final: np.ndarray, fns: list, curves: np.ndarray,
                  ev: list[int], j: int, steps: int) -> list[Figure]:
    """Final loss against peak; both schedules and their loss curves at the chosen peak j."""
    xs = list(range(steps))
    return [Figure("Final loss vs peak learning rate", "peak learning rate", "final loss (nats)",
                   [Series("cosine", peak_grid, final[:, 0].mean(1)),
                    Series("Noam", peak_grid, final[:, 1].mean(1), "dashed")], xscale="log"),
            Figure(f"Schedules at peak {peak_grid[j]:g}", "step", "learning rate",
                   [Series("cosine", xs, [fns[2 * j](t) for t in xs]),
                    Series("Noam (inverse square root)", xs, [fns[2 * j + 1](t) for t in xs],
                           "dashed")]),
            Figure(f"Population loss during training at peak {peak_grid[j]:g} (mean over seeds)",
                   "step", "loss (nats)", [Series("cosine", ev, curves[:, 2 * j].mean(1)),
                                           Series("Noam", ev, curves[:, 2 * j + 1].mean(1),
                                                  "dashed")])]


def _noam_fit(final, peak_grid, S):
    """Cosine's best peak, the per-peak and tuned gaps, and the per-arm peak tuning."""
    j = int(np.argmin(final[:, 0].mean(1)))  # the peak that suits cosine best
    gaps = final[:, 1] - final[:, 0]
    tuned = [best_value(peak_grid, final[:, 1, s]) - best_value(peak_grid, final[:, 0, s])
             for s in range(S)]
    arms = Layout(n_arms=2, n_reps=S, grid=tuple(peak_grid))  # the peak is tuned per arm and seed
    tuning = arms.evidence("peak learning rate", arms.choose(final.transpose(1, 2, 0).ravel()),
                           ["cosine", "noam"])
    return j, gaps, tuned, tuning


def _noam_measured(gaps, tuned, j, peak_grid):
    return {
        "noam_minus_cosine": interval_from_samples(
            gaps[j].tolist(), unit="nats",
            note=f"final loss at peak {peak_grid[j]:g}, paired by seed"),
        **{f"noam_minus_cosine_at_{p:g}": interval_from_samples(gaps[i].tolist(), unit="nats")
           for i, p in enumerate(peak_grid)},
        "tuned_noam_minus_tuned_cosine": interval_from_samples(
            tuned, unit="nats", note="each schedule at its own best peak"),
        "worst_gap_over_peaks": Measure(float(gaps.mean(1).min()), unit="nats",
                                        note="smallest seed-mean gap over the peak grid"),
    }


def _noam_notes(w, cosine_min_ratio, steps, fns, peak_grid):
    return [f"{w} linear warm-up steps; cosine decays to {cosine_min_ratio:g}× peak at step "
            f"{steps}; Noam ends at {fns[1](steps - 1) / peak_grid[0]:.2f}× peak.",
            "The peak used for the decision is chosen on the same seeds (best mean cosine "
            "loss), which slightly favours cosine; the per-peak gaps are listed too.",
            f"Tuned arms: each schedule's peak is chosen per seed from the grid {peak_grid} "
            "(tuned_noam_minus_tuned_cosine compares them at their own best, refined by a "
            "parabola in log peak); the chosen grid values are in the table."]


def cosine_vs_noam(peak_grid: list[float], warmup_frac: Frac, cosine_min_ratio: NonNeg, V: PosInt,
                   order: PosInt, alpha: Pos, support: int, source_seed: int, d_hidden: PosInt,
                   B: PosInt, steps: PosInt, seeds: Seeds, device: str) -> Evidence:
    """Final loss with cosine decay vs Noam's inverse square root at the same peak and warm-up,
    at every peak of a grid; the decision uses the peak that suits cosine best."""
    w = max(1, int(warmup_frac * steps))
    fns = [f for p in peak_grid for f in (
        lambda t, p=p: lr_at(t, steps, p, "cosine", w, min_ratio=cosine_min_ratio),
        lambda t, p=p: lr_at(t, steps, p, "noam", w))]
    curves, ev = _schedule_runs(fns, V, order, alpha, support, source_seed, d_hidden, B, steps,
                                seeds, device, max(1, steps // 40))
    S, P = len(seeds), len(peak_grid)
    final = curves[-1].reshape(P, 2, S)  # (peak, [cosine, noam], seed)
    final = diverged_as(final, math.log(V))  # a diverged run scores the uniform guess
    j, gaps, tuned, tuning = _noam_fit(final, peak_grid, S)
    figs = _noam_figures(peak_grid, final, fns, curves, ev, j, steps)
    ev = Evidence(
        measured=_noam_measured(gaps, tuned, j, peak_grid),
        figures=figs,
        table=[{"peak": p, "seed": seeds[s], "cosine": float(final[i, 0, s]),
                "noam": float(final[i, 1, s])} for i, p in enumerate(peak_grid) for s in range(S)]
        + [{"arm": a, "seed": seeds[s], "tuned_peak": v} for a, vs in tuning["chosen"].items()
           for s, v in enumerate(vs)],
        notes=_noam_notes(w, cosine_min_ratio, steps, fns, peak_grid),
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(mlp_params(V, order, 16, d_hidden, 1), steps * B, [f'markov:V{V}-order{order}']))


def _cosine_hold(step: int, total: int, peak: float, m: float, warmup: int,
                 min_ratio: float) -> float:
    """Cosine over a cycle of m·total steps; past the cycle the rate holds its minimum."""
    if m == 0:  # the constant-LR limit of an infinitely long cycle
        return lr_at(step, total, peak, "constant", warmup)
    if step >= m * total and step >= warmup:
        return peak * min_ratio
    return lr_at(step, total, peak, "cosine", warmup, period=m * total, min_ratio=min_ratio)


def _period_fit(raw, peak_grid, ms, S):
    """Each schedule's loss and peak at its own best peak on the grid, per seed."""
    final = np.array([[best_value(peak_grid, raw[i, :, s]) for s in range(S)]
                      for i in range(len(ms))])  # (n_m + 1, S), tuned peak per schedule
    peaks = np.array([[best_lr(peak_grid, raw[i, :, s]) for s in range(S)] for i in range(len(ms))])
    return final, peaks


def _period_figures(raw, final, ms, multipliers, peak_grid, seeds, steps, w, min_ratio, i1):
    xs = list(range(steps))
    jp = int(np.argmin(raw[i1].mean(1)))
    return [Figure(f"Schedules at peak {peak_grid[jp]:g}: cosine cycle as a multiple of the run",
                   "step", "learning rate",
                   [Series(f"{m:g}×" if m else "constant", xs,
                           [_cosine_hold(t, steps, peak_grid[jp], m, w, min_ratio) for t in xs],
                           "line" if m == 1.0 else "dashed") for m in ms]),
            Figure("Final loss vs cycle multiplier (each at its best peak)",
                   "cycle length / run length", "final loss (nats)",
                   [Series(f"seed {s}", multipliers, final[:-1, j], "points")
                    for j, s in enumerate(seeds)]
                   + [Series("mean", multipliers, final[:-1].mean(1)),
                      Series("constant LR (mean)", multipliers,
                             [final[-1].mean()] * len(multipliers), "dashed")], xscale="log")]


def _period_measured(final, ms, best, i1):
    def gap(m: float) -> Measure:
        return interval_from_samples((final[ms.index(m)] - final[i1]).tolist(), unit="nats",
                                     note=f"final loss at {m:g}× minus 1×, paired by seed")

    return {
        "best_multiplier": ci_exp(np.log(best).tolist(),
                                   note="argmin of final loss per seed (parabola in log m)"),
        "longer_minus_matched": gap(1.5),
        "much_longer_minus_matched": gap(2.0),
        "slightly_longer_minus_matched": gap(1.25),
        "shorter_minus_matched": gap(0.5),
        "constant_minus_matched": interval_from_samples(
            (final[-1] - final[i1]).tolist(), unit="nats", note="constant LR minus 1×"),
    }


def cosine_period(multipliers: list[float], min_ratio: NonNeg, peak_grid: list[float],
                  warmup_frac: Frac, V: PosInt, order: PosInt, alpha: Pos, support: int,
                  source_seed: int, d_hidden: PosInt, B: PosInt, steps: PosInt, seeds: Seeds,
                  device: str) -> Evidence:
    """Final loss vs the cosine cycle length as a multiple of the run (and a constant LR), each
    schedule at its own best peak learning rate."""
    w = max(1, int(warmup_frac * steps))
    ms = list(multipliers) + [0.0]  # 0 stands for an infinite cycle: a constant rate
    fns = [lambda t, m=m, p=p: _cosine_hold(t, steps, p, m, w, min_ratio)
           for m in ms for p in peak_grid]
    curves, _ = _schedule_runs(fns, V, order, alpha, support, source_seed, d_hidden, B, steps,
                               seeds, device, steps)
    S, P = len(seeds), len(peak_grid)
    raw = diverged_as(curves[-1].reshape(len(ms), P, S), math.log(V))
    final, peaks = _period_fit(raw, peak_grid, ms, S)
    i1 = ms.index(1.0)
    best = [best_lr(multipliers, final[:-1, s]) for s in range(S)]
    figs = _period_figures(raw, final, ms, multipliers, peak_grid, seeds, steps, w, min_ratio, i1)
    ev = Evidence(
        measured=_period_measured(final, ms, best, i1),
        figures=figs,
        table=[{"multiplier": m if m else "constant", "seed": s, "final_loss": float(final[i, j]),
                "best_peak": float(peaks[i, j])}
               for i, m in enumerate(ms) for j, s in enumerate(seeds)],
        notes=[f"{w} warm-up steps, cosine down to {min_ratio:g}× peak over the cycle; a cycle "
               "shorter than the run holds the minimum rate afterwards. Each schedule's loss is "
               f"at its best peak on the grid {peak_grid} (parabola in log peak)."],
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(mlp_params(V, order, 16, d_hidden, 1), steps * B, [f'markov:V{V}-order{order}']))
