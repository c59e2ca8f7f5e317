"""Double descent in a trained network: a width sweep of two-layer ReLU MLPs on noisy labels.

The min-norm estimators of ``dynamics.double_descent`` peak at the interpolation threshold by
construction of the estimator; the question here is whether a network trained by gradient
descent does too, and whether regularisation removes the peak. Every width of the sweep,
every seed and both arms are trained at once: one stacked network whose hidden units beyond a
member's width are masked to zero, so each member is exactly an MLP of its own width. The
regularised arm is early stopping on a noisy validation set of the training set's size (Nakkiran
et al. 2019 §6 and 2020 show that well-tuned regularisation can remove the peak).

The random-feature arm is refitted here with a ridge penalty λ (Hastie et al.'s normalisation,
min (1/n)‖y − Φβ‖² + λ‖β‖²): λ = 0 is the min-norm fit the claim is about; a second, regularised
arm is shown beside it as evidence of what the claim does not hold for.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Series, interval_from_samples
from principia.types import NonNeg, Pos, PosInt, Seeds

from . import dynamics as _dynamics

__all__ = ["double_descent", "teacher_data", "train_width_sweep", "mlp_arm", "mlp_params", "ridge_fit",
           "random_feature_curves"]

RF_KEYS = ("log10_peak_over_under_best", "log10_widest_over_peak", "over_best_over_under_best")


def mlp_params(d: int, h: int) -> int:
    """Parameters of x -> W2 relu(W1 x + b1) + b2 with one output."""
    return (d + 2) * h + 1


def teacher_data(n: int, n_test: int, d: int, sigma2: float, draw: int) -> tuple[torch.Tensor, ...]:
    """Inputs x ~ N(0, I_d), target tanh(2·w·x) for a random unit vector w (the random-feature
    task of ``dynamics.double_descent``); label noise of variance sigma2 on the training and
    validation labels, none on the test targets -> (X, y, X_val, y_val, X_test, y_test)."""
    g = torch.Generator().manual_seed(int(draw))
    w = torch.randn(d, generator=g)
    w = w / w.norm()
    X, Xv, Xt = (torch.randn(m, d, generator=g) for m in (n, n, n_test))
    noisy = lambda Z: torch.tanh(2.0 * Z @ w) + sigma2 ** 0.5 * torch.randn(len(Z), generator=g)
    return X, noisy(X), Xv, noisy(Xv), Xt, torch.tanh(2.0 * Xt @ w)


def train_width_sweep(data, widths: list[int], seeds: list[int], lr: float, steps: int,
                      eval_every: int) -> tuple[np.ndarray, np.ndarray]:
    """Test MSE at the end and at the step of best validation MSE (early stopping), each
    (seeds, widths). Trained in buckets of similar width, so narrow members do not pay for the
    widest one's masked units."""
    end, stop = [], []
    for lo, hi in ((0, 8), (8, 32), (32, 10 ** 9)):
        ws = [h for h in widths if lo < h <= hi]
        if ws:
            a, b = _train_stack(data, ws, seeds, lr, steps, eval_every)
            end.append(a), stop.append(b)
    return np.concatenate(end, axis=1), np.concatenate(stop, axis=1)


def _init(widths, seeds, d):
    """Each (seed, width) member starts from nn.Linear's U(±1/√fan_in) init of its own MLP."""
    H, K = max(widths), len(seeds) * len(widths)
    W1, b1, W2, b2 = torch.zeros(K, d, H), torch.zeros(K, 1, H), torch.zeros(K, H, 1), torch.zeros(K, 1, 1)
    for k, (s, h) in enumerate((s, h) for s in seeds for h in widths):
        g = torch.Generator().manual_seed(int(s) * 1000 + h)
        a1, a2 = d ** -0.5, h ** -0.5
        W1[k, :, :h] = (torch.rand(d, h, generator=g) * 2 - 1) * a1
        b1[k, 0, :h] = (torch.rand(h, generator=g) * 2 - 1) * a1
        W2[k, :h, 0] = (torch.rand(h, generator=g) * 2 - 1) * a2
        b2[k] = (torch.rand(1, generator=g) * 2 - 1) * a2
    mask = torch.stack([(torch.arange(H) < h).float() for _ in seeds for h in widths])  # (K, H)
    return [p.requires_grad_() for p in (W1, b1, W2, b2)], mask


def _train_stack(data, widths, seeds, lr, steps, eval_every):
    X, y, Xv, yv, Xt, yt = data
    (W1, b1, W2, b2), mask = _init(widths, seeds, X.shape[1])
    opt = torch.optim.Adam([W1, b1, W2, b2], lr=lr)

    def mse(Z, target):  # hidden units past a member's width are masked: (K, n, H)
        hid = torch.relu(Z[None] @ W1 + b1) * mask[:, None]
        return (((hid @ W2 + b2)[..., 0] - target) ** 2).mean(1)
    best_val = torch.full((len(mask),), float("inf"))
    at_best = torch.zeros(len(mask))
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        mse(X, y).sum().backward()
        opt.step()
        if (step + 1) % eval_every == 0:
            with torch.no_grad():
                val, test = mse(Xv, yv), mse(Xt, yt)
            better = val < best_val
            best_val, at_best = torch.where(better, val, best_val), torch.where(better, test, at_best)
    shape = (len(seeds), len(widths))
    return test.view(shape).numpy(), at_best.view(shape).numpy()


def _regions(widths: list[int], d: int, n: int, under: float, near: tuple[float, float]):
    r = np.array([mlp_params(d, h) / n for h in widths])
    return r, r <= under, (r >= near[0]) & (r <= near[1])


def _peaks(te: np.ndarray, under, near) -> tuple[np.ndarray, np.ndarray]:
    """log10(peak / best under-parameterised) and log10(widest / peak) per replicate."""
    peak = te[:, near].max(1)
    return np.log10(peak / te[:, under].min(1)), np.log10(te[:, -1] / peak)


def mlp_arm(n: int, n_test: int, d: int, sigma2: float, widths: list[int], lr: float, steps: int, eval_every: int,
            under: float, near: list[float], data_draws: list[int], seeds: list[int]) -> tuple[dict, Figure]:
    """The trained-network width sweep, trained to the end and early-stopped, over draws × seeds."""
    widths = sorted(widths)
    runs = [train_width_sweep(teacher_data(n, n_test, d, sigma2, draw), widths, seeds, lr, steps, eval_every)
            for draw in data_draws]
    end, stop = (np.concatenate([r[i] for r in runs]) for i in (0, 1))  # (draws·seeds, widths)
    r, lo, mid = _regions(widths, d, n, under, tuple(near))
    rise, fall = _peaks(end, lo, mid)
    rise_es, _ = _peaks(stop, lo, mid)
    m = {"mlp_log10_peak_over_under_best": interval_from_samples(rise, note="trained MLP at the end of training"),
         "mlp_log10_widest_over_peak": interval_from_samples(fall, note=f"trained MLP, widest (P/n = {r[-1]:.0f}) over the peak"),
         "mlp_over_best_over_under_best": interval_from_samples(end[:, r >= 1.5].min(1) / end[:, lo].min(1)),
         "mlp_early_stopped_log10_peak_over_under_best": interval_from_samples(
             rise_es, note="the same, each member stopped at its best validation error"),
         "mlp_peak_reduction_early_stopping": interval_from_samples(
             rise - rise_es, note="log10 peak ratio, trained to the end minus early-stopped")}
    fig = Figure("Trained two-layer MLPs: test error across the interpolation threshold",
                 "parameters per training example P/n", "test MSE",
                 [Series(lab, r, np.median(v, 0), y_lo=v.min(0), y_hi=v.max(0))
                  for lab, v in (("trained to the end (median)", end), ("early-stopped (median)", stop))],
                 xscale="log", yscale="log",
                 caption=f"n = {n} noisy examples (σ² = {sigma2:g}) in d = {d}; full-batch Adam for {steps} steps.")
    return m, fig


def ridge_fit(Phi: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """argmin (1/n)‖y − Φβ‖² + λ‖β‖² (Hastie et al.'s normalisation); λ = 0 is the min-norm fit."""
    n, p = Phi.shape
    if lam == 0:
        return _dynamics.min_norm_fit(Phi, y)
    if p > n:  # kernel form: an n × n solve
        return Phi.T @ np.linalg.solve(Phi @ Phi.T + n * lam * np.eye(n), y)
    return np.linalg.solve(Phi.T @ Phi + n * lam * np.eye(p), Phi.T @ y)


def _rf_curve(n: int, d: int, ratios: list[float], sigma2: float, lam: float, seed: int,
              n_test: int = 1000) -> np.ndarray:
    """Test MSE over N = ratio·n nested random ReLU features, one draw. The same draws, in the same
    order, as ``dynamics``' min-norm sweep, so λ = 0 reproduces its curve."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d) / math.sqrt(d)
    X, Xt = rng.standard_normal((n, d)), rng.standard_normal((n_test, d))
    y = np.tanh(2.0 * X @ w) + math.sqrt(sigma2) * rng.standard_normal(n)
    Ns = [max(1, int(round(r * n))) for r in ratios]
    W = rng.standard_normal((d, max(Ns))) / math.sqrt(d)
    Phi, Phit, ft = np.maximum(X @ W, 0.0), np.maximum(Xt @ W, 0.0), np.tanh(2.0 * Xt @ w)
    return np.array([np.mean((Phit[:, :N] @ ridge_fit(Phi[:, :N], y, lam) - ft) ** 2) for N in Ns])


def random_feature_curves(n: int, d: int, ratios: list[float], sigma2: float, lam: float,
                          seeds: list[int]) -> np.ndarray:
    """Test MSE of the ridge-λ random-feature sweep, one fresh draw per seed -> (seeds, ratios)."""
    return np.array([_rf_curve(n, d, sorted(ratios), sigma2, lam, int(s)) for s in seeds])


def _ridge_arms(ev: Evidence, n, d, sigma2, ratios, gammas, iso_n, rf_seeds, rf_ridge, rf_ridge_shown) -> None:
    """The random-feature measures at ridge rf_ridge (the checked arm) and, as `ridge_*`, at
    rf_ridge_shown, drawn beside the min-norm curve."""
    r = sorted(ratios)
    for lam, prefix in ((rf_ridge, ""), (rf_ridge_shown, "ridge_")):
        curves = random_feature_curves(n, d, r, sigma2, lam, rf_seeds)
        m = _dynamics._dd_measured(curves, r, [0.0], gammas, iso_n)  # its theory entry is not used
        for k in RF_KEYS:
            ev.measured[prefix + k] = replace(m[k], note=f"ridge λ = {lam:g}: {m[k].note}")
        if prefix:
            ev.figures[0].series.append(Series(f"ridge λ = {lam:g} (median over seeds)", r,
                                               np.median(curves, 0), style="dashed"))
    ev.figures[0].caption += f" Checked arm: λ = {rf_ridge:g}; dashed: λ = {rf_ridge_shown:g}."


def double_descent(n: PosInt, d: PosInt, sigma2: NonNeg, r2: Pos, iso_sigma2: NonNeg, iso_n: PosInt, iso_reps: PosInt,
                   ratios: list[float], gammas: list[float], rf_seeds: Seeds, seeds: Seeds, mlp_n_test: PosInt, mlp_widths: list[int],
                   mlp_lr: Pos, mlp_steps: PosInt, mlp_eval_every: PosInt, under: Pos, near: list[float],
                   data_draws: Seeds, rf_ridge: NonNeg, rf_ridge_shown: NonNeg) -> Evidence:
    """Min-norm theory and random features (``dynamics.double_descent``, one data draw per rf_seed),
    plus trained two-layer MLPs over data draws × init seeds, to the end and early-stopped."""
    ev = _dynamics.double_descent(n=n, d=d, sigma2=sigma2, r2=r2, iso_sigma2=iso_sigma2, iso_n=iso_n,
                                  iso_reps=iso_reps, ratios=ratios, gammas=gammas, seeds=rf_seeds)
    _ridge_arms(ev, n, d, sigma2, ratios, gammas, iso_n, rf_seeds, rf_ridge, rf_ridge_shown)
    m, fig = mlp_arm(n, mlp_n_test, d, sigma2, mlp_widths, mlp_lr, mlp_steps, mlp_eval_every, under, near,
                     data_draws, seeds)
    ev.measured.update(m)
    ev.figures.insert(0, fig)
    ev.replication = {"data_draws": len(data_draws), "seeds": len(seeds),
                      "reason": "MLP arm: init seeds nested in data draws; random-feature arm: one fresh draw per seed"}
    ev.scale = {"max_params": mlp_params(d, max(mlp_widths)), "max_tokens": n,
                "data": [f"tanh teacher in d = {d}, n = {n}, label noise σ² = {sigma2:g}"]}
    return ev
