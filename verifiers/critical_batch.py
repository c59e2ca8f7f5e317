"""The critical batch size on GPT members (McCandlish et al. 2018): steps to a target loss across
batch sizes, how B_crit moves with the target and with model size, on real text and on a
known-entropy Markov source.

Two sizes come from the tier's FLOP budget (``budget.fit_ladder``, fixed token plan, ≥ 30× apart
in N). Every (size, batch, seed) trains at a small grid of constant Adam rates centred on the √B
rule (as extra members), and the steps to a target are read from the best rate's held-out curve.
A target closes all but a fraction of the gap between the uniform guess and the lowest held-out
loss any run of that size reached on the draw, so one rule serves both sources (text has no
known entropy).
"""
from __future__ import annotations

import math

import numpy as np

from principia.evidence import Evidence, Figure, Series, interval_over_draws
from principia.types import NonNeg, Pos, PosInt, Seeds

from .lab.lm import train_lm
from .lab.noise import fit_critical_batch, scaling_efficiency, steps_to_target
from .lab.sources import (DRAWS, Corpus, corpus, corpus_name, exp_over_draws, gpt_ladder, ladder_rows,
                          lm_setting, on_source)
from .lab.tuning import nested_seed, recorded, replication, scale

__all__ = ["critical_batch_size"]


def _lrs(B: int, p: dict) -> list[float]:
    """The rate grid at batch B: lr_ref·(B/B_ref)^lr_exponent times each factor."""
    return [p["lr_ref"] * (B / p["B_ref"]) ** p["lr_exponent"] * f for f in p["lr_factors"]]


def _plan_tokens(p: dict, T: int, runs: int) -> int:
    return runs * len(p["lr_factors"]) * T * sum(B * n for B, n in zip(p["B_grid"], p["steps"]))


def _curves(cfg, c: Corpus, gpt: dict, B: int, steps: int, p: dict, seeds: list[int],
            device: str) -> tuple[list[int], np.ndarray]:
    """Held-out loss at n_evals log-spaced steps -> (eval steps, (E, n_lr, S) losses)."""
    at = sorted({int(round(x)) for x in np.geomspace(1, steps, p["n_evals"])})  # dense early
    mem = [(lr, s) for lr in _lrs(B, p) for s in seeds]
    run = train_lm(on_source(cfg, c), c.src, lm_setting(gpt, B), [steps] * len(mem),
                   [m[0] for m in mem], [m[1] for m in mem], [m[1] for m in mem], device,
                   c.windows, eval_at=at)
    L = np.stack([run.curve[e] for e in at]).reshape(len(at), len(p["lr_factors"]), len(seeds))
    return at, np.where(np.isfinite(L), L, np.inf)


def _steps_to(cv: list, target: float) -> np.ndarray:
    """Steps to `target` per (B, seed), at the best rate of each -> (n_B, S)."""
    return np.array([[min(steps_to_target(at, L[:, f, s], target) for f in range(L.shape[1]))
                      for s in range(L.shape[2])] for at, L in cv])


def _target(cv: list, V: int, frac: float) -> float:
    """Closes all but `frac` of the gap between ln V and the lowest loss of these runs."""
    best = min(float(L.min()) for _, L in cv)
    return best + frac * (math.log(V) - best)


def _bcrit(B_grid: list[int], S: np.ndarray) -> list[float]:
    """B_crit = E_min/S_min per seed (NaN where the fit has no positive S_min and E_min)."""
    out = []
    for s in range(S.shape[1]):
        f = fit_critical_batch(B_grid, S[:, s])
        out.append(f["B_crit"] if f["E_min"] > 0 and 0 < f["B_crit"] < math.inf else math.nan)
    return out


def _end_pairs(B_grid: list[int], St: np.ndarray) -> tuple[float, float]:
    """Scaling efficiency of the smallest and of the largest neighbouring pair of the batches
    that reached the target (one seed's steps, (n_B,)); NaN when fewer than two did."""
    ok = [i for i in range(len(B_grid)) if math.isfinite(St[i])]
    if len(ok) < 2:
        return math.nan, math.nan
    eff = lambda i, j: scaling_efficiency(B_grid[i], St[i], B_grid[j], St[j])
    return eff(ok[0], ok[1]), eff(ok[-2], ok[-1])


def _draw(rungs: list, c: Corpus, gpt: dict, p: dict, seeds: list[int], device: str) -> dict:
    """Every per-seed quantity of one draw of one source."""
    B_grid = p["B_grid"]
    cv = {i: [_curves(r.shape.cfg, c, gpt, B, n, p, seeds, device) for B, n in zip(B_grid, p["steps"])]
          for i, r in ((0, rungs[0]), (1, rungs[-1]))}
    targets = [_target(cv[1], c.V, f) for f in p["target_fracs"]]
    tight, loose = int(np.argmin(targets)), int(np.argmax(targets))
    St = np.stack([_steps_to(cv[1], t) for t in targets], 1)  # (n_B, n_targets, S)
    bc = [_bcrit(B_grid, St[:, t]) for t in range(len(targets))]
    equal = _target(cv[0], c.V, p["size_target_frac"])  # a loss the smaller model reaches
    size = {i: _bcrit(B_grid, _steps_to(cv[i], equal)) for i in (0, 1)}
    at_max, L_max = cv[1][-1]
    S = len(seeds)
    ends = [_end_pairs(B_grid, St[:, tight, s]) for s in range(S)]
    return {
        "targets": targets, "equal": equal, "St": St, "bcrit": bc, "size": size,
        "eff_small": [e[0] for e in ends], "eff_large": [e[1] for e in ends],
        "growth": [math.log(bc[tight][s] / bc[loose][s]) for s in range(S)],
        "log2_size": [math.log2(size[1][s] / size[0][s]) for s in range(S)],
        "gap": [min(np.interp(St[-2, tight, s], at_max, L_max[:, f, s]) for f in range(L_max.shape[1]))
                - targets[tight] if math.isfinite(St[-2, tight, s]) else math.nan for s in range(S)],
        "curves": cv,
    }


def _measures(runs: dict, p: dict, rungs: list, T: int) -> dict:
    B, N = p["B_grid"], (rungs[0].shape.N, rungs[-1].shape.N)
    out = {}
    for kind, draws in runs.items():
        by = lambda key: _finite({d: r[key] for d, r in draws.items()})
        out |= {
            f"scaling_eff_small_{kind}": interval_over_draws(by("eff_small"), note=(
                f"{kind}: log(S_B/S_B')/log(B'/B) of the smallest neighbouring pair that reached the tighter target "
                "(n: draws where two did): 1 = perfect scaling")),
            f"scaling_eff_large_{kind}": interval_over_draws(by("eff_large"), note=(
                f"{kind}: the same for the largest such pair (B = {B[-2]} → {B[-1]} windows when both reached it)")),
            f"bcrit_growth_{kind}": exp_over_draws(by("growth"), f"{kind}: B_crit at the tighter over the looser target"),
            f"log2_bcrit_size_ratio_{kind}": interval_over_draws(by("log2_size"), note=(
                f"{kind}: log₂(B_crit of N = {N[1]} / B_crit of N = {N[0]}) at one loss both reach; "
                f"the models differ {N[1] / N[0]:.0f}× in N")),
            f"loss_gap_equal_steps_{kind}": interval_over_draws(by("gap"), unit="nats", note=(
                f"{kind}: loss at B = {B[-1]} minus the tighter target, after the steps B = {B[-2]} needs")),
            f"bcrit_tokens_{kind}": exp_over_draws(_finite({d: [math.log(T * v) for v in r["bcrit"][int(np.argmin(r["targets"]))]]
                                                  for d, r in draws.items()}), f"{kind}: B_crit in tokens at the tighter target"),
        }
    return out


def _finite(by_draw: dict) -> dict:
    """The draws whose every seed gave a finite value (a target some batch never reached leaves
    a quantity undefined on that draw); all draws when none did, so the NaN is reported."""
    ok = {d: v for d, v in by_draw.items() if all(math.isfinite(x) for x in v)}
    return ok or by_draw


def critical_batch_size(data: dict, sources: list[str], gpt: dict, flops: Pos, n_sizes: PosInt,
                        span: Pos, B_grid: list[int], steps: list[int], n_evals: PosInt,
                        lr_ref: Pos, B_ref: PosInt, lr_exponent: NonNeg, lr_factors: list[float],
                        target_fracs: list[float], size_target_frac: Pos, data_draws: Seeds,
                        seeds: Seeds, device: str, budget_scale: float = 1.0) -> Evidence:
    """Steps to a target loss across batch sizes; B_crit = E_min/S_min per draw and size."""
    p = {"B_grid": B_grid, "steps": steps, "n_evals": n_evals, "lr_ref": lr_ref, "B_ref": B_ref,
         "lr_exponent": lr_exponent, "lr_factors": lr_factors, "target_fracs": target_fracs,
         "size_target_frac": size_target_frac}
    T = gpt["T"]
    rungs = gpt_ladder(gpt, flops, budget_scale, n_sizes, span,
                   _plan_tokens(p, T, len(sources) * len(data_draws) * len(seeds)))
    runs = {kind: {d: _draw(rungs, corpus(kind, d, data, T, gpt["eval_seqs"]), gpt, p,
                            [nested_seed(d, s) for s in seeds], device) for d in data_draws}
            for kind in sources}
    ev = Evidence(measured=_measures(runs, p, rungs, T), figures=_figures(runs, B_grid, rungs),
                  table=ladder_rows([rungs[0], rungs[-1]]) + [
                      {"source": kind, "draw": d, "B": B, "target": round(r["targets"][t], 4),
                       "seed": seeds[s], "steps": float(r["St"][i, t, s])}
                      for kind, draws in runs.items() for d, r in draws.items()
                      for i, B in enumerate(B_grid) for t in range(len(target_fracs))
                      for s in range(len(seeds))],
                  notes=[f"Adam at a constant rate, best of {len(lr_factors)} rates per batch size "
                         f"and seed, centred on {lr_ref}·(B/{B_ref})^{lr_exponent}; B counts windows "
                         f"of {T} tokens; sizes N = {rungs[0].shape.N} and {rungs[-1].shape.N}."],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS),
                    scale(rungs[-1].shape.N, max(B * n for B, n in zip(B_grid, steps)) * T,
                          [corpus_name(k, data) for k in sources], rungs[0].shape.N))


def _figures(runs: dict, B_grid: list[int], rungs: list) -> list[Figure]:
    """Per source, the first draw's steps to each target against the batch (seed 0)."""
    out = []
    for kind, draws in runs.items():
        r = next(iter(draws.values()))
        out.append(Figure(f"{kind}: steps to the target vs batch (N = {rungs[-1].shape.N}; first draw)",
                          "batch size B (windows)", "optimizer steps S",
                          [Series(f"target {t:.3f} nats", B_grid, r["St"][:, i, 0], "points")
                           for i, t in enumerate(r["targets"])]
                          + [Series(f"N = {rungs[j].shape.N}, equal-loss target {r['equal']:.3f}",
                                    B_grid, _steps_to(r["curves"][k], r["equal"])[:, 0], "dashed")
                             for j, k in ((0, 0), (-1, 1))],
                          xscale="log", yscale="log",
                          caption="Each point: the best of the rate grid. S = S_min(1 + B_crit/B) "
                                  "(McCandlish Eq. 2.11): steps fall as 1/B below B_crit and level off above."))
    return out
