"""Does a larger batch allow a larger learning rate? Two designs, on GPT members, on real text
and on a known-entropy source, replicated over data draws.

- **fixed steps**: every batch size trains for the same number of steps, so the batches differ
  only in how noisy each gradient is: the design the principle ("less noise, so a larger step
  pays off") is about.
- **equal examples**: every batch size sees the same number of tokens (Goyal et al.'s
  equal-epoch comparison), so a small batch also takes more steps, and a longer run at a
  constant rate prefers a smaller rate by itself: this design adds a step-count effect to the
  noise effect and inflates the slope.

Every (batch, design, seed) trains at every rate of ``lr_grid`` as extra members of one stack;
the best rate is the grid minimum of the final held-out loss, refined by a parabola in log rate.
"""
from __future__ import annotations

import math

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_over_draws
from principia.types import Pos, PosInt, Seeds

from .lab.lm import train_lm
from .lab.noise import best_lr, loglog_slope
from .lab.sources import DRAWS, Corpus, corpus, corpus_name, gpt_ladder, ladder_rows, lm_setting, on_source
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["batch_allows_lr"]

DESIGNS = ("fixed steps", "equal examples")


def _steps(B: int, T: int, fixed_steps: int, examples: int) -> tuple[int, int]:
    """Steps of each design at batch B: (fixed, equal examples)."""
    return fixed_steps, max(1, examples // (B * T))


def _plan_tokens(B_grid, T, fixed_steps, examples, runs_per_B: int) -> int:
    """Tokens one size trains over the grid (a design shared where both give the same steps)."""
    return runs_per_B * sum(B * T * sum(set(_steps(B, T, fixed_steps, examples))) for B in B_grid)


def _at_batch(cfg, c: Corpus, gpt: dict, B: int, p: dict, seeds: list[int], device: str) -> np.ndarray:
    """Final held-out loss of every (design, rate, seed) at batch B -> (2, n_lr, S)."""
    designs = _steps(B, gpt["T"], p["fixed_steps"], p["examples"])
    uniq = sorted(set(designs))
    mem = [(n, lr, s) for n in uniq for lr in p["lr_grid"] for s in seeds]
    run = train_lm(on_source(cfg, c), c.src, lm_setting(gpt, B), [m[0] for m in mem],
                   [m[1] for m in mem], [m[2] for m in mem], [m[2] for m in mem], device, c.windows)
    loss = run.loss.reshape(len(uniq), len(p["lr_grid"]), len(seeds))
    return np.stack([loss[uniq.index(n)] for n in designs])


def _draw(cfg, c: Corpus, gpt: dict, p: dict, seeds: list[int], device: str) -> dict:
    """Best rate per (design, B, seed) and the mean loss curves over the grid."""
    L = np.stack([_at_batch(cfg, c, gpt, B, p, seeds, device) for B in p["B_grid"]], 1)  # (2, nB, C, S)
    worst = np.nanmax(np.where(np.isfinite(L), L, np.nan))
    Lf = np.where(np.isfinite(L), L, worst)  # a diverged run counts as the worst loss on the grid
    best = np.array([[[best_lr(p["lr_grid"], Lf[d, i, :, s]) for s in range(len(seeds))]
                      for i in range(len(p["B_grid"]))] for d in range(2)])  # (2, nB, S)
    slopes = [[loglog_slope(p["B_grid"], best[d, :, s]) for s in range(len(seeds))] for d in range(2)]
    return {"best": best, "slopes": slopes, "curves": Lf.mean(-1)}


def _measures(runs: dict, p: dict, T: int) -> dict:
    out = {}
    for kind, draws in runs.items():
        for d, (key, what) in enumerate((("fixed_steps", f"{p['fixed_steps']} steps at every B "
                                          "(the noise effect alone)"),
                                         ("equal_examples", f"{p['examples']} tokens at every B "
                                          "(Goyal et al.'s design)"))):
            out[f"slope_{key}_{kind}"] = interval_over_draws(
                {r: v["slopes"][d] for r, v in draws.items()},
                note=f"{kind}: d log η*/d log B, {what}; the interval's unit is the draw")
        out[f"slope_gap_{kind}"] = interval_over_draws(
            {r: list(np.subtract(v["slopes"][1], v["slopes"][0])) for r, v in draws.items()},
            note=f"{kind}: equal-examples slope minus fixed-steps slope, per draw (the step-count "
                 "effect the equal-examples design adds)")
    return out


def batch_allows_lr(data: dict, sources: list[str], gpt: dict, flops: Pos, B_grid: list[int],
                    lr_grid: list[float], fixed_steps: PosInt, examples: PosInt,
                    data_draws: Seeds, seeds: Seeds, device: str, budget_scale: float = 1.0) -> Evidence:
    """Best learning rate against batch size, at fixed steps and at equal examples."""
    p = {"B_grid": B_grid, "lr_grid": lr_grid, "fixed_steps": fixed_steps, "examples": examples}
    T = gpt["T"]
    runs_per_B = len(sources) * len(data_draws) * len(seeds) * len(lr_grid)
    rung = gpt_ladder(gpt, flops, budget_scale, 1, 0.0, _plan_tokens(B_grid, T, fixed_steps, examples,
                                                                 runs_per_B))[-1]
    runs = {kind: {d: _draw(rung.shape.cfg, corpus(kind, d, data, T, gpt["eval_seqs"]), gpt, p,
                            [nested_seed(d, s) for s in seeds], device) for d in data_draws}
            for kind in sources}
    ev = Evidence(measured=_measures(runs, p, T), figures=_figures(runs, p),
                  table=ladder_rows([rung]) + [
                      {"source": kind, "design": DESIGNS[g], "B": B, "draw": d, "seed": seeds[s],
                       "best_lr": float(r["best"][g, i, s])}
                      for kind, draws in runs.items() for d, r in draws.items() for g in range(2)
                      for i, B in enumerate(B_grid) for s in range(len(seeds))],
                  notes=[f"GPT d_model {rung.shape.cfg.d_model}, {rung.shape.cfg.n_layer} layers, "
                         f"N = {rung.shape.N}; Adam (β = {tuple(gpt['betas'])}) at a constant rate; "
                         f"B counts windows of {T} tokens."],
                  seeds=list(seeds))
    tokens = max(fixed_steps * max(B_grid) * T, examples)
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(rung.shape.N, tokens, [corpus_name(k, data) for k in sources]))


def _figures(runs: dict, p: dict) -> list[Figure]:
    B_grid, lr_grid = p["B_grid"], p["lr_grid"]
    gm = lambda a: np.exp(np.log(np.stack([r["best"][a] for r in draws.values()])).mean((0, 2)))
    out = []
    for kind, draws in runs.items():
        curves = np.mean([r["curves"] for r in draws.values()], 0)  # (2, nB, C)
        out.append(Figure(f"{kind}: final held-out loss vs rate, {p['fixed_steps']} steps each",
                          "learning rate", "held-out loss (nats)",
                          [Series(f"B = {B}", lr_grid, curves[0, i]) for i, B in enumerate(B_grid)],
                          xscale="log", caption="Mean over draws and seeds."))
        out.append(Figure(f"{kind}: best learning rate vs batch size", "batch size B (windows)",
                          "best learning rate",
                          [Series(DESIGNS[g], B_grid, gm(g), "points") for g in range(2)]
                          + [Series("√B scaling (slope 0.5)", B_grid,
                                    [gm(0)[0] * math.sqrt(b / B_grid[0]) for b in B_grid], "dashed"),
                             Series("linear scaling (slope 1)", B_grid,
                                    [gm(0)[0] * b / B_grid[0] for b in B_grid], "dashed")],
                          xscale="log", yscale="log"))
    return out
