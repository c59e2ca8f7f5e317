"""Does a larger batch allow a larger learning rate? Two designs, replicated over data draws.

- **fixed steps**: every batch size trains for the same number of steps, so the batches differ
  only in how noisy each gradient is: the design the principle ("less noise, so a larger step
  pays off") is about.
- **equal examples**: every batch size sees the same number of examples (Goyal et al.'s
  equal-epoch comparison), so a small batch also takes more steps, and a longer run at a
  constant rate prefers a smaller rate by itself: this design adds a step-count effect to the
  noise effect and inflates the slope.

Each data draw is a fresh Markov source (the independent unit); init seeds nest inside a draw.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_over_draws
from principia.types import NonNeg, Pos, PosInt, Seeds

from .lab.batched import BatchedAdamW
from .lab.noise import best_lr, loglog_slope
from .lab.pairs import fit_pairs
from .lab.stacks import NGramStack, mlp_params
from .lab.sweeps import adam, ci_exp, constant_lr, diverged_as, ensemble, grid, source
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["batch_allows_lr"]

DRAWS = ("each data draw is a fresh Markov source (its transition table redrawn) with its own "
         "token streams; init seeds nest inside a draw")


def _optimiser(model: NGramStack, kind: str, momentum: float) -> BatchedAdamW:
    """'sgd' with heavy-ball momentum, or 'adam' (β = 0.9, 0.95)."""
    if kind not in ("sgd", "adam"):
        raise ValueError(f"optimiser must be 'adam' or 'sgd' (got {kind!r})")
    return BatchedAdamW(model, (momentum, 0.0), kind="sgd") if kind == "sgd" else adam(model)


def _final_losses(src, seeds: Sequence[int], B: int, steps: int, lr_grid: list[float],
                  d_hidden: int, optimiser: str, momentum: float, device: str) -> np.ndarray:
    """Final population loss of every (rate, seed) after `steps` steps of batch B -> (C, S)."""
    model, sampler, seed_of = ensemble(src, seeds, len(lr_grid), d_hidden, device=device)
    run = fit_pairs(model, _optimiser(model, optimiser, momentum), src, sampler, seed_of,
                    constant_lr([l for l in lr_grid for _ in seeds]), steps, B, 10 ** 9)
    return grid(run.final, len(seeds))


def _design(srcs: dict, seeds: Seeds, B_grid: list[int], steps_of, lr_grid: list[float],
            d_hidden: int, optimiser: str, momentum: float, device: str):
    """Best rate per (draw, B, seed) -> (draws, n_B, S), and mean final losses (n_B, C)."""
    best, curves = [], np.zeros((len(B_grid), len(lr_grid)))
    for d, src in srcs.items():
        sd = [nested_seed(d, s) for s in seeds]
        per_B = []
        for i, B in enumerate(B_grid):
            f = _final_losses(src, sd, B, steps_of(B), lr_grid, d_hidden, optimiser, momentum, device)
            per_B.append([best_lr(lr_grid, f[:, s]) for s in range(len(seeds))])
            curves[i] += diverged_as(f, math.log(src.V)).mean(1) / len(srcs)
        best.append(per_B)
    return np.array(best), curves


def _slope(best: np.ndarray, B_grid: list[int], note: str):
    """d log η*/d log B per (draw, seed), the draw as the unit of the interval."""
    by_draw = {d: [loglog_slope(B_grid, best[d, :, s]) for s in range(best.shape[2])]
               for d in range(best.shape[0])}
    return interval_over_draws(by_draw, note=note)


def batch_allows_lr(optimiser: str, momentum: NonNeg, V: PosInt, order: PosInt, alpha: Pos,
                    support: int, data_draws: Seeds, d_hidden: PosInt, B_grid: list[int],
                    examples: PosInt, fixed_steps: PosInt, lr_grid: list[float], seeds: Seeds,
                    device: str) -> Evidence:
    """Best learning rate against batch size, at fixed steps and at equal examples."""
    srcs = {d: source(V, order, alpha, support, d) for d in data_draws}
    args = (lr_grid, d_hidden, optimiser, momentum, device)
    fixed, c_fixed = _design(srcs, seeds, B_grid, lambda B: fixed_steps, *args)
    equal, c_equal = _design(srcs, seeds, B_grid, lambda B: examples // B, *args)
    measured = {
        "slope_fixed_steps": _slope(fixed, B_grid, f"d log η*/d log B, {fixed_steps} steps at "
                                                   "every B (the noise effect alone)"),
        "slope_equal_examples": _slope(equal, B_grid, f"d log η*/d log B, {examples} examples at "
                                                      "every B (Goyal et al.'s design)"),
        **{f"best_lr_fixed_B{B}": ci_exp(np.log(fixed[:, i]).mean(1).tolist())
           for i, B in enumerate(B_grid)},
    }
    ev = Evidence(measured=measured, figures=_figures(B_grid, lr_grid, fixed, equal, c_fixed,
                                                      c_equal, fixed_steps, examples, optimiser),
                  table=[{"design": name, "B": B, "draw": d, "seed": seeds[s],
                          "best_lr": float(arr[j, i, s])}
                         for name, arr in (("fixed steps", fixed), ("equal examples", equal))
                         for j, d in enumerate(data_draws) for i, B in enumerate(B_grid)
                         for s in range(len(seeds))],
                  notes=[f"Optimiser: {optimiser}" + (f" with momentum {momentum}" if optimiser == "sgd"
                                                      else "") + "; best rate: the grid minimum of the "
                         "final loss refined by a parabola in log rate."],
                  seeds=list(seeds))
    tokens = max(fixed_steps * max(B_grid), examples)
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(mlp_params(V, order, 16, d_hidden, 1), tokens, [f"markov:V{V}-order{order}"]))


def _figures(B_grid, lr_grid, fixed, equal, c_fixed, c_equal, fixed_steps, examples,
             optimiser) -> list[Figure]:
    sweeps = [Figure(f"Final loss vs learning rate, {title} ({optimiser})", "learning rate",
                     "population loss (nats)", [Series(f"B = {B}", lr_grid, c[i])
                                                for i, B in enumerate(B_grid)],
                     xscale="log", caption="Mean over draws and seeds; a diverged run is drawn at "
                     "the uniform guess, log V.")
              for title, c in ((f"{fixed_steps} steps each", c_fixed),
                               (f"{examples} examples each", c_equal))]
    gm = lambda a: np.exp(np.log(a).mean((0, 2)))  # geometric mean over draws and seeds
    best = Figure("Best learning rate vs batch size", "batch size B", "best learning rate",
                  [Series("fixed steps", B_grid, gm(fixed), "points"),
                   Series("equal examples", B_grid, gm(equal), "points"),
                   Series("linear scaling (slope 1)", B_grid,
                          [gm(fixed)[0] * b / B_grid[0] for b in B_grid], "dashed")],
                  xscale="log", yscale="log")
    return sweeps + [best]
