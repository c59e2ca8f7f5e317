"""Compute-optimal training on tiny models: IsoFLOP profiles, small models trained longer, and a
forecast of a larger model's loss and accuracy from smaller ones (the lab of
``verifiers.scaling_runs``: Zipfian Markov source, MLP LMs, exact evaluation)."""
from __future__ import annotations

import math

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples, interval_over_draws
from principia.fit import fit_power_law
from principia.types import Pos, PosInt, Seeds
from verifiers.lab.tuning import nested_seed, recorded, replication
from verifiers.scaling_runs import STREAMS, Lab, lab_scale, run_grid

__all__ = ["isoflop_tiny", "small_models_longer", "predictable_downstream"]

DRAWS = ("each data draw is a fresh Zipfian source (its transition tables redrawn) with its own "
         "token streams; init seeds nest inside a draw")


# ---------------------------------------------------------------- isoflop-tiny

def _steps_for(lab: Lab, C: float, h: int) -> int:
    """Steps that spend budget C on a width-h model: D = C / (6N) tokens (Hoffmann et al. 2022 §3.2)."""
    return max(1, round(C / (6 * lab.N(h) * lab.tokens_per_step)))


def _parabola_min(logN: np.ndarray, L: np.ndarray) -> float:
    """log N at the vertex of the least-squares parabola L(log N); NaN when it opens downwards."""
    c2, c1, _ = np.polyfit(logN, L, 2)
    return -c1 / (2 * c2) if c2 > 0 else float("nan")


def _isoflop_exponents(logC: np.ndarray, logN: np.ndarray,
                       L: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Exponents a, b of N_opt ∝ C^a, D_opt ∝ C^b from per-budget parabola vertices.

    L: (budgets, sizes) mean losses; logN: (budgets, sizes).
    """
    nstar = np.array([_parabola_min(ln, l) for ln, l in zip(logN, L)])
    dstar = logC - math.log(6) - nstar  # D_opt = C / (6 N_opt)
    a = np.polyfit(logC, nstar, 1)[0]
    b = np.polyfit(logC, dstar, 1)[0]
    return float(a), float(b), nstar


def _tuned_losses(lab: Lab, budgets: list[float], per: list[list[int]], seeds: list[int],
                  lr_grid: list[float], device: str) -> tuple[np.ndarray, np.ndarray, list]:
    """Every (C, h, seed) at every peak rate of `lr_grid` (extra members of one grid); per
    (C, h, seed) the best rate's final loss -> losses (budgets, sizes, seeds), chosen rates, runs."""
    specs = [(h, _steps_for(lab, C, h), s, lr) for C, ws in zip(budgets, per) for h in ws
             for s in seeds for lr in lr_grid]
    runs = run_grid(lab, specs, 0, device)
    L = np.array([r.loss["train"] for r in runs]).reshape(len(budgets), len(per[0]), len(seeds), -1)
    L = np.where(np.isfinite(L), L, np.inf)
    return L.min(-1), np.asarray(lr_grid)[L.argmin(-1)], runs


def _draw_fit(lab: Lab, budgets: list[float], per: list[list[int]], L: np.ndarray) -> dict:
    """One draw's exponents and D/N at the optimum, N counted without and with embeddings."""
    logC = np.log(budgets)
    out = {}
    for tag, extra in (("", 0), ("_with_embeddings", lab.V * lab.d_emb)):
        logN = np.log([[lab.N(h) + extra for h in ws] for ws in per])
        a, b, nstar = _isoflop_exponents(logC, logN, L)
        tpp = np.exp(logC - math.log(6) - 2 * nstar)  # D_opt / N_opt = C / (6 N_opt²)
        out.update({f"a{tag}": a, f"b{tag}": b, f"nstar{tag}": nstar, f"tpp{tag}": float(np.median(tpp)),
                    f"inside{tag}": float(sum(ln[0] < n < ln[-1] for ln, n in zip(logN, nstar)))})
    return out


def isoflop_tiny(budgets: list[float], widths: list[list[int]], data_draws: Seeds, seeds: Seeds,
                 lr_grid: list[float], chinchilla_tokens_per_param: Pos, device: str) -> Evidence:
    """Hoffmann et al. 2022 Approach 2 in miniature: IsoFLOP parabolas, then N_opt ∝ C^a, D_opt ∝ C^b.

    Per data draw (a fresh source) and nested seed, every width h of budget C's window trains
    D = C/(6N) tokens with a cosine of that length at each peak rate of `lr_grid` and keeps its
    best. The loss-minimising N comes from a parabola in log N through the seed-mean tuned
    losses; a and b from least squares of log N_opt and log D_opt on log C, per draw.
    """
    if len(widths) != len(budgets) or len({len(w) for w in widths}) != 1:
        raise ValueError("widths: give one equally long list of widths per budget")
    fits, chosen, L_all, runs_all = {}, {}, {}, []
    for d in data_draws:
        lab = Lab(source_seed=d)
        L, lrs, runs = _tuned_losses(lab, budgets, widths, [nested_seed(d, s) for s in seeds], lr_grid, device)
        fits[d], chosen[d], L_all[d] = _draw_fit(lab, budgets, widths, L.mean(-1)), lrs, L.mean(-1)
        runs_all += runs
    ev = Evidence(measured=_isoflop_measures(fits, chinchilla_tokens_per_param),
                  figures=_isoflop_figures(budgets, lab, widths, L_all[data_draws[0]], fits[data_draws[0]]),
                  table=[{"draw": d, "C": float(C), "h": h, "N": lab.N(h), "steps": _steps_for(lab, C, h),
                          "loss_mean": float(L_all[d][i, j]), "peak_lr": chosen[d][i, j].tolist()}
                         for d in data_draws for i, C in enumerate(budgets) for j, h in enumerate(widths[i])],
                  notes=[f"Peak rates tried per (C, N, seed): {lr_grid}; the chosen ones are in the table.",
                         "N_opt per budget (first draw): " + ", ".join(
                             f"{math.exp(n):.0f}" for n in fits[data_draws[0]]["nstar"])],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS), lab_scale(lab, runs_all))


def _isoflop_measures(fits: dict, chinchilla: float) -> dict[str, Measure]:
    """Intervals over draws (the independent unit) of every per-draw quantity."""
    by = lambda key, f=lambda x: x: {d: [f(v[key])] for d, v in fits.items()}
    return {
        "a": interval_over_draws(by("a"), note="N_opt ∝ C^a, N without embeddings (Kaplan's count)"),
        "b": interval_over_draws(by("b"), note="D_opt ∝ C^b, N without embeddings"),
        "a_with_embeddings": interval_over_draws(by("a_with_embeddings"), note=(
            "the same fit with the token embedding counted in N (Chinchilla's count)")),
        "a_count_sensitivity": interval_over_draws(
            {d: [v["a_with_embeddings"] - v["a"]] for d, v in fits.items()},
            note="a with embeddings counted minus a without: how much the exponent depends on what N counts"),
        "optima_inside_sweep": interval_over_draws(by("inside"), note="budgets whose vertex lies inside the swept sizes"),
        "tokens_per_param_at_optimum": interval_over_draws(by("tpp"), note="median over budgets of D_opt/N_opt, N without embeddings"),
        "tokens_per_param_with_embeddings": interval_over_draws(by("tpp_with_embeddings"), note="the same with N counting the embedding"),
        "tokens_per_param_vs_chinchilla": interval_over_draws(
            by("tpp_with_embeddings", lambda x: x / chinchilla),
            note=f"D_opt/N_opt (embeddings counted) over Chinchilla's ~{chinchilla:g} tokens per parameter"),
    }


def _isoflop_figures(budgets: list[float], lab: Lab, per: list[list[int]], L: np.ndarray,
                     fit: dict) -> list[Figure]:
    """One series per budget, its points and its parabola sharing a colour ('fit, C = …')."""
    nstar, logN = fit["nstar"], np.log([[lab.N(h) for h in ws] for ws in per])
    series = []
    for i, C in enumerate(budgets):
        grid = np.linspace(logN[i][0], logN[i][-1], 40)
        series += [Series(f"C = {C:.2g}", np.exp(logN[i]), L[i], "points"),
                   Series(f"fit, C = {C:.2g}: N_opt = {math.exp(nstar[i]):.0f}", np.exp(grid),
                          np.polyval(np.polyfit(logN[i], L[i], 2), grid), "dashed")]
    fig1 = Figure("IsoFLOP profiles (first data draw)", "non-embedding parameters N", "final loss (nats)",
                  series, xscale="log", caption="Each colour is one compute budget C = 6ND; points are "
                  "seed means at each size's best peak rate; dashed: the parabola in log N whose vertex gives N_opt.")
    logC = np.log(budgets)
    Cg = np.geomspace(budgets[0] / 1.5, budgets[-1] * 1.5, 30)
    cN = np.polyfit(logC, nstar, 1)
    fig2 = Figure("Compute-optimal size against budget (first data draw)", "compute C (FLOPs)", "N_opt",
                  [Series("parabola vertices", budgets, np.exp(nstar), "points"),
                   Series(f"fit: N_opt ∝ C^{fit['a']:.2f}", Cg, np.exp(np.polyval(cN, np.log(Cg))))],
                  xscale="log", yscale="log")
    return [fig1, fig2]


# ---------------------------------------------------------------- small-models-longer

def small_models_longer(small: PosInt, large: PosInt, budgets: list[float], seeds: Seeds,
                        device: str) -> Evidence:
    """Two sizes at equal compute: each trains D = C/(6N) tokens (own cosine) at every budget C.

    gap(C) = L_small − L_large, paired by seed; negative: the smaller model trained longer wins.
    """
    lab = Lab()
    specs = [(h, _steps_for(lab, C, h), s) for C in budgets for h in (small, large) for s in seeds]
    runs = run_grid(lab, specs, 0, device)
    L = np.array([r.loss["train"] for r in runs]).reshape(len(budgets), 2, len(seeds))
    gaps = L[:, 0] - L[:, 1]  # (budgets, seeds)
    measured = {
        "gap_lowest_budget": interval_from_samples(gaps[0], unit="nats",
                                                   note=f"L_small − L_large at C = {budgets[0]:.2g}"),
        "gap_highest_budget": interval_from_samples(gaps[-1], unit="nats",
                                                    note=f"L_small − L_large at C = {budgets[-1]:.2g}"),
    }
    crossing = _crossing(np.log(budgets), gaps.mean(1))
    if crossing is not None:
        measured["crossover_compute"] = Measure(crossing, note="budget where the mean gap is 0")
    Ns, Nl = lab.N(small), lab.N(large)
    fig = Figure("Two model sizes at equal compute", "compute C = 6ND (FLOPs)", "final loss (nats)",
                 [Series(f"small, N = {Ns}", budgets, L[:, 0].mean(1), "line",
                         L[:, 0].min(1), L[:, 0].max(1)),
                  Series(f"large, N = {Nl}", budgets, L[:, 1].mean(1), "line",
                         L[:, 1].min(1), L[:, 1].max(1))],
                 xscale="log", caption="Each point is a full run with its own cosine schedule; "
                 "bands span the seeds.")
    table = [{"C": C, "steps_small": _steps_for(lab, C, small), "steps_large": _steps_for(lab, C, large),
              "loss_small": float(L[i, 0].mean()), "loss_large": float(L[i, 1].mean()),
              "gap_mean": float(gaps[i].mean())} for i, C in enumerate(budgets)]
    ev = Evidence(measured=measured, figures=[fig], table=table, seeds=list(seeds))
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    lab_scale(lab, runs))


def _crossing(x: np.ndarray, y: np.ndarray) -> float | None:
    """exp(x) where y first changes sign (linear interpolation), or None."""
    for i in range(len(y) - 1):
        if y[i] <= 0 < y[i + 1] or y[i] >= 0 > y[i + 1]:
            return float(math.exp(x[i] + (x[i + 1] - x[i]) * y[i] / (y[i] - y[i + 1])))
    return None


# ---------------------------------------------------------------- predictable-downstream

def _gap_law(L: np.ndarray, acc: np.ndarray, E: float, acc_star: float) -> tuple[float, float]:
    """Fit acc* − acc = κ·(L − E)^γ (log-log least squares); returns (log κ, γ)."""
    gamma, logk = np.polyfit(np.log(L - E), np.log(np.maximum(acc_star - acc, 1e-9)), 1)
    return float(logk), float(gamma)


def _forecasts(C: np.ndarray, L: np.ndarray, A: np.ndarray, E: float, acc_star: float):
    """Per seed: fit loss on compute and accuracy on loss over all but the last model, then
    forecast the last. -> relative loss errors, accuracy errors, (L_hat, acc_hat) pairs."""
    loss_err, acc_err, preds = [], [], []
    for l, a in zip(L, A):
        law = fit_power_law(C[:-1], l[:-1], E=E, n_boot=0)
        L_hat = float(law.predict(C[-1]))
        logk, gamma = _gap_law(l[:-1], a[:-1], E, acc_star)
        a_hat = acc_star - math.exp(logk) * (L_hat - E) ** gamma
        loss_err.append((L_hat - l[-1]) / (l[-1] - E))
        acc_err.append(a_hat - a[-1])
        preds.append((L_hat, a_hat))
    return loss_err, acc_err, preds


def _forecast_figures(C: np.ndarray, Lm: np.ndarray, Am: np.ndarray, E: float,
                      acc_star: float) -> list[Figure]:
    law = fit_power_law(C[:-1], Lm[:-1], E=E, n_boot=0)
    Cg = np.geomspace(C[0] / 1.5, C[-1] * 1.5, 40)
    Lg = law.predict(Cg)
    logk, gamma = _gap_law(Lm[:-1], Am[:-1], E, acc_star)
    fig1 = Figure("Loss forecast from small models", "training compute C (FLOPs)", "loss − E (nats)",
                  [Series("fitted models (seed means)", C[:-1], Lm[:-1] - E, "points"),
                   Series("forecast model, observed", C[-1:], Lm[-1:] - E, "points"),
                   Series(f"fit L = E + A·C^-{law.alpha:.2f}", Cg, Lg - E)],
                  xscale="log", yscale="log")
    fig2 = Figure("Accuracy forecast through the loss", "training compute C (FLOPs)", "top-1 accuracy",
                  [Series("fitted models (seed means)", C[:-1], Am[:-1], "points"),
                   Series("forecast model, observed", C[-1:], Am[-1:], "points"),
                   Series("forecast: acc* − κ(L − E)^γ", Cg, acc_star - math.exp(logk) * (Lg - E) ** gamma),
                   Series("acc* (true distribution)", [Cg[0], Cg[-1]], [acc_star] * 2, "dashed")],
                  xscale="log")
    return [fig1, fig2]


def predictable_downstream(small: list[int], large: PosInt, tokens_per_param: Pos, seeds: Seeds,
                           device: str) -> Evidence:
    """Forecast the largest model's loss and top-1 accuracy from models with ≥30× less compute.

    Every model trains D = tokens_per_param · N tokens (so C = 6·tpp·N²). On the small models, per
    seed: fit L(C) = E + A·C^-α (E: the source's exact entropy), and map loss to accuracy with
    acc* − acc = κ·(L − E)^γ, where acc* is the true distribution's own top-1 accuracy. Then
    forecast the large model (GPT-4 report §3: loss, then a capability metric).
    """
    lab = Lab()
    src = lab.source()
    E = src.entropy
    acc_star = float(src.pi @ src.P.max(axis=1))  # accuracy of always guessing the likeliest token
    hs = sorted(small) + [large]
    steps = {h: max(1, round(tokens_per_param * lab.N(h) / lab.tokens_per_step)) for h in hs}
    runs = run_grid(lab, [(h, steps[h], s) for s in seeds for h in hs], 0, device)
    L = np.array([r.loss["train"] for r in runs]).reshape(len(seeds), len(hs))
    A = np.array([r.acc["train"] for r in runs]).reshape(len(seeds), len(hs))
    C = np.array([r.C for r in runs[:len(hs)]])
    loss_err, acc_err, preds = _forecasts(C, L, A, E, acc_star)
    ratio = C[-1] / C[-2]
    measured = {
        "loss_forecast_error": interval_from_samples(loss_err, note="(L_pred − L_obs)/(L_obs − E)"),
        "acc_forecast_error": interval_from_samples(acc_err, note="top-1 accuracy, predicted − observed"),
        "compute_ratio": Measure(ratio, note="compute of the forecast model ÷ the largest fitted one"),
        "acc_large": interval_from_samples(A[:, -1], note="observed top-1 accuracy of the large model"),
    }
    Lm, Am = L.mean(0), A.mean(0)
    table = [{"h": h, "N": lab.N(h), "steps": steps[h], "C": float(c), "loss": float(l), "acc": float(a)}
             for h, c, l, a in zip(hs, C, Lm, Am)]
    notes = [f"The forecast model uses {ratio:.0f}× the compute of the largest fitted model "
             f"(the GPT-4 report forecast from 1,000–10,000× less).",
             f"acc* = {acc_star:.4f}; per-seed forecasts (loss, acc): "
             + ", ".join(f"({p[0]:.4f}, {p[1]:.4f})" for p in preds)]
    ev = Evidence(measured=measured, figures=_forecast_figures(C, Lm, Am, E, acc_star), table=table,
                  notes=notes, seeds=list(seeds))
    return recorded(ev, replication(len(seeds), 1, STREAMS), lab_scale(lab, runs))
