"""Training dynamics: double descent, grokking and emerging activation sparsity / modularity.

- double_descent: min-norm least squares against Hastie et al. 2019's asymptotic risk (isotropic
  features), and random-ReLU-feature regression across N/n = 1 with label noise (Belkin et al.
  2019, Fig. 1): the test error peaks where the model first interpolates, then falls again.
- grokking: modular addition with an MLP, full batch, AdamW with strong weight decay (Power et
  al. 2022): steps to fit the training set vs steps to generalise.
(modularity_emerges lives in verifiers/modularity.py.)
"""
from __future__ import annotations

import math

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.fit import _one_blas_thread  # the engine's guard against OpenBLAS thread thrash
from principia.types import Frac, NonNeg, Pos, PosInt, Seeds

__all__ = ["hastie_isotropic_risk", "min_norm_fit", "double_descent", "grokking"]


# ---------------------------------------------------------------- double descent

def hastie_isotropic_risk(gamma: float, r2: float, sigma2: float) -> float:
    """Limiting risk E(x·β̂ - x·β)² of min-norm least squares, x ~ N(0, I_p), p/n → γ.

    Hastie, Montanari, Rosset & Tibshirani 2019, Thm. 1 (isotropic features):
    γ < 1: σ²γ/(1-γ);  γ > 1: r²(1 - 1/γ) + σ²/(γ - 1);  infinite at γ = 1.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be positive (got {gamma})")
    if gamma == 1:
        return math.inf
    if gamma < 1:
        return sigma2 * gamma / (1 - gamma)
    return r2 * (1 - 1 / gamma) + sigma2 / (gamma - 1)


def min_norm_fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The minimum-ℓ2-norm least-squares solution (the ridgeless limit of ridge regression).

    p > n: β = Xᵀ(XXᵀ)⁻¹y (it interpolates); p ≤ n: β = (XᵀX)⁻¹Xᵀy. Both solve a Gram system,
    several times cheaper than an SVD; a singular Gram matrix falls back to the SVD.
    """
    n, p = X.shape
    try:
        if p > n:
            return X.T @ np.linalg.solve(X @ X.T, y)
        return np.linalg.solve(X.T @ X, X.T @ y)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(X, y, rcond=None)[0]


def _iso_risk(n: int, gamma: float, r2: float, sigma2: float, reps: int,
              rng: np.random.Generator) -> float:
    """Risk of min-norm least squares over random Gaussian designs X (n × p, p = γn).

    For each X the expectation over the noise and over β's direction (|β|² = r²) is exact:
    β̂ - β = (X⁺X - I)β + X⁺ε, so risk(X) = r²·(1 - rank/p) + σ²·tr((XᵀX)⁺), rank = min(n, p).
    Averaging that over designs keeps only the randomness the theorem is about.
    """
    p = max(1, int(round(gamma * n)))
    out = []
    for _ in range(reps):
        X = rng.standard_normal((n, p))
        G = X @ X.T if p > n else X.T @ X  # the invertible Gram matrix (min(n, p) square)
        bias = r2 * (1 - min(n, p) / p)
        out.append(bias + sigma2 * float(np.trace(np.linalg.inv(G))))
    return float(np.mean(out))


def _random_features_curve(n: int, d: int, ratios: list[float], sigma2: float,
                           rng: np.random.Generator, n_test: int = 1000) -> np.ndarray:
    """Test MSE of min-norm regression on N = ratio·n random ReLU features, one data draw.

    The teacher is a single tanh neuron; features are nested (the first N columns of one
    random matrix), so the sweep changes only the width.
    """
    w = rng.standard_normal(d) / math.sqrt(d)

    def f(X: np.ndarray) -> np.ndarray:
        return np.tanh(2.0 * X @ w)

    X, Xt = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    y = f(X) + math.sqrt(sigma2) * rng.standard_normal(n)  # label noise on the training set only
    Ns = [max(1, int(round(r * n))) for r in ratios]
    W = rng.standard_normal((d, max(Ns))) / math.sqrt(d)
    Phi, Phit = np.maximum(X @ W, 0.0), np.maximum(Xt @ W, 0.0)
    return np.array([np.mean((Phit[:, :N] @ min_norm_fit(Phi[:, :N], y) - f(Xt)) ** 2) for N in Ns])


def _dd_measured(curves, ratios, rel, gammas, iso_n):
    r = np.asarray(ratios)
    under, near, over = r <= 0.7, (r >= 0.8) & (r <= 1.25), r >= 1.5
    peak = curves[:, near].max(1)
    log_peak = np.log10(peak / curves[:, under].min(1))
    fall = np.log10(curves[:, -1] / peak)
    over_under = curves[:, over].min(1) / curves[:, under].min(1)
    return {
        "theory_max_rel_err": Measure(max(rel), note=f"simulation (n = {iso_n}) vs Hastie Thm. 1 over γ in {gammas}"),
        "log10_peak_over_under_best": interval_from_samples(
            log_peak.tolist(), note="log10(test MSE at the worst width with N/n in [0.8, 1.25] / "
                                    "best width with N/n ≤ 0.7)"),
        "log10_widest_over_peak": interval_from_samples(
            fall.tolist(), note=f"log10(test MSE at N/n = {ratios[-1]:g} / the peak)"),
        "over_best_over_under_best": interval_from_samples(
            over_under.tolist(), note="best over-parameterised (N/n ≥ 1.5) / best under-parameterised MSE"),
    }


def _dd_figures(curves, ratios, sim, gammas, n, d, sigma2, r2, iso_sigma2, iso_n):
    r = np.asarray(ratios)
    med = np.median(curves, 0)
    gg = np.linspace(0.1, 6, 120)
    return [Figure("Random ReLU features: test error across the interpolation threshold",
                   "features per training example N/n", "test MSE",
                   [Series("median over seeds", r, med, y_lo=curves.min(0), y_hi=curves.max(0))],
                   xscale="log", yscale="log",
                   caption=f"n = {n} noisy examples (σ² = {sigma2:g}) in d = {d}; min-norm fit."),
            Figure("Isotropic min-norm least squares: theory and simulation", "γ = p/n", "risk",
                   [Series("Hastie et al. Thm. 1", gg[np.abs(gg - 1) > 0.05],
                           [hastie_isotropic_risk(g, r2, iso_sigma2) for g in gg[np.abs(gg - 1) > 0.05]]),
                    Series(f"simulation, n = {iso_n}", gammas, sim, style="points")],
                   yscale="log", caption=f"r² = {r2:g}, σ² = {iso_sigma2:g}.")]


def double_descent(n: PosInt = 100, d: PosInt = 20, sigma2: NonNeg = 0.1, r2: Pos = 1.0,
                   iso_sigma2: NonNeg = 0.25, iso_n: PosInt = 200, iso_reps: PosInt = 40,
                   ratios: list[float] | None = None, gammas: list[float] | None = None,
                   seeds: Seeds | None = None) -> Evidence:
    """Theory vs simulation for isotropic min-norm regression, and a random-feature width sweep."""
    ratios = sorted(ratios or [0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 3, 5, 10, 20])
    gammas = gammas or [0.2, 0.5, 0.8, 1.25, 2.0, 5.0]
    seeds = seeds or [0, 1, 2, 3, 4]
    rng = np.random.default_rng(seeds[0])
    theory = [hastie_isotropic_risk(g, r2, iso_sigma2) for g in gammas]
    with _one_blas_thread():  # small solves: a BLAS thread pool only adds contention
        sim = [_iso_risk(iso_n, g, r2, iso_sigma2, iso_reps, rng) for g in gammas]
        curves = np.array([_random_features_curve(n, d, ratios, sigma2, np.random.default_rng(s))
                           for s in seeds])  # (seeds, ratios)
    rel = [abs(s / t - 1) for s, t in zip(sim, theory)]
    measured = _dd_measured(curves, ratios, rel, gammas, iso_n)
    figs = _dd_figures(curves, ratios, sim, gammas, n, d, sigma2, r2, iso_sigma2, iso_n)
    table = [{"gamma": g, "theory": t, "simulation": s, "rel_err": e}
             for g, t, s, e in zip(gammas, theory, sim, rel)]
    return Evidence(measured, figures=figs, table=table, seeds=list(seeds))


# ---------------------------------------------------------------- grokking

def _padded(ts: list, fill: int):
    """Stack variable-length tensors (one per seed), padding with `fill`. -> (M, n, ...)."""
    import torch

    n = max(len(t) for t in ts)
    out = torch.full((len(ts), n) + tuple(ts[0].shape[1:]), fill, dtype=ts[0].dtype)
    for i, t in enumerate(ts):
        out[i, : len(t)] = t
    return out


def _first(steps: list[int], acc: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(acc >= level)
    return float(steps[hit[0]]) if len(hit) else math.nan


def _accuracy(logits, Y) -> np.ndarray:
    """Share of counted positions (targets ≥ 0) where the argmax is right, per member."""
    keep = (Y >= 0).float()
    return (((logits.argmax(-1) == Y).float() * keep).sum(1) / keep.sum(1)).cpu().numpy()


def _grok_runs(p: int, train_frac: float, lr: float, weight_decay: float, d: int, h: int,
               max_steps: int, eval_every: int, level: float, seeds: list[int], device: str):
    """Full-batch AdamW on every seed's split at once; -> eval steps, train acc, test acc, fit."""
    import torch

    from verifiers.lab.batched import BatchedAdamW, train
    from verifiers.lab.data import modular_addition
    from verifiers.lab.stacks import AdderStack

    splits = [modular_addition(p, train_frac, s) for s in seeds]
    Xtr, Ytr, Xte, Yte = (_padded([sp[i][j] for sp in splits], 0 if j == 0 else -1).to(device)
                          for i in (0, 1) for j in (0, 1))
    net = AdderStack(p, d, h, seeds, device)
    fit = np.full(len(seeds), math.nan)  # train accuracy is read from the training pass itself
    steps, tr_acc, te_acc = [], [], []

    def on_step(step: int, logits, active) -> bool:
        a_tr = _accuracy(logits, Ytr)
        fit[np.isnan(fit) & (a_tr >= level)] = step  # accuracy of the weights before the step
        if (step + 1) % eval_every and step:
            return False
        with torch.no_grad():
            a_te = _accuracy(net(Xte), Yte)
        steps.append(step + 1), tr_acc.append(a_tr), te_acc.append(a_te)
        return bool((a_te >= level).all())  # every seed has generalised: nothing left to time

    # Power et al. 2022 §A.1: AdamW, β = (0.9, 0.98), weight decay 1; full-batch training here.
    M = len(seeds)
    train(net, BatchedAdamW(net, (0.9, 0.98)), lambda step, act: (Xtr, Ytr),
          lambda step: torch.full((M,), lr), [max_steps] * M, [weight_decay] * M, on_step=on_step)
    return steps, np.array(tr_acc), np.array(te_acc), fit


def grokking(p: PosInt, train_frac: Frac, lr: Pos, weight_decay: NonNeg, d: PosInt, h: PosInt,
             max_steps: PosInt, eval_every: PosInt, level: Frac, seeds: Seeds,
             device: str) -> Evidence:
    """Steps until train accuracy and until test accuracy first reach `level`, full batch AdamW."""
    steps, tr, te, fit = _grok_runs(p, train_frac, lr, weight_decay, d, h, max_steps, eval_every,
                                    level, seeds, device)
    M = len(seeds)
    gen = np.array([_first(steps, te[:, m], level) for m in range(M)])
    fit = np.where(np.isnan(fit), float(max_steps), fit)
    done = ~np.isnan(gen)
    gen_c = np.where(done, gen, float(max_steps))  # censored at the budget: a lower bound
    measured = {
        "log10_delay_ratio": interval_from_samples(
            np.log10(gen_c / fit).tolist(),
            note=f"log10(steps to {level:.0%} test accuracy / steps to {level:.0%} "
                 "train accuracy); seeds that never generalise count at the budget"),
        "frac_seeds_generalised": Measure(float(done.mean()), n=M,
                                          note=f"seeds reaching {level:.0%} test accuracy within {max_steps} steps"),
        "steps_to_fit": interval_from_samples(fit.tolist(), unit="steps"),
        "steps_to_generalise": interval_from_samples(gen_c.tolist(), unit="steps"),
    }
    x = np.asarray(steps)
    fig = Figure(f"Grokking: a + b mod {p}, {train_frac:.0%} of pairs for training",
                 "optimisation step", "accuracy",
                 [Series("train (mean over seeds)", x, tr.mean(1), y_lo=tr.min(1), y_hi=tr.max(1)),
                  Series("test (mean over seeds)", x, te.mean(1), y_lo=te.min(1), y_hi=te.max(1),
                         style="dashed")],
                 xscale="log", caption=f"Full batch AdamW, lr {lr:g}, weight decay {weight_decay:g}.")
    table = [{"seed": s, "steps_to_fit": f, "steps_to_generalise": g, "ratio": g / f}
             for s, f, g in zip(seeds, fit, gen)]
    from verifiers.lab.tuning import recorded, replication, scale

    n_train = round(train_frac * p * (p + 1) / 2) * 2  # unordered pairs, both orders
    return recorded(Evidence(measured, figures=[fig], table=table, seeds=list(seeds)),
                    replication(M, 1, "each seed draws its own train/test split of the pairs and "
                                      "its own initialisation"),
                    scale(p * d + (2 * d + 1) * h + (h + 1) * p, n_train * int(max(x)),
                          [f"modular-addition:p{p}"]))
