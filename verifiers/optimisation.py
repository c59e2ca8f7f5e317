"""Batch size, learning rate and schedules, measured on tiny language models.

Every run trains small MLP next-token models together (verifiers.lab.pairs) on an order-2
Markov source whose entropy is known, and scores them by the exact population loss (entropy + KL),
so differences between configurations are not hidden by evaluation noise. Configurations are
paired by seed: the same seed gives the same initial weights and the same data stream.
Batch sizes B count examples, i.e. predicted tokens.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.formulas import KAPLAN
from principia.types import Frac, NonNeg, Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.batched import BatchedAdamW
from .lab.pairs import PairSampler, fit_pairs, pair_batches, population_loss
from .lab.stacks import ClassifierStack, NGramStack
from .lab.noise import (best_lr, best_value, fit_critical_batch, loglog_slope, noise_scale,
                        scaling_efficiency, steps_to_target, top_eigenvalue)
from .lab.train import lr_at

__all__ = ["batch_size_vs_loss", "critical_batch_size", "batch_allows_lr",
           "small_batch_generalises", "lr_vs_model_size", "cosine_vs_noam", "cosine_period",
           "kaplan_bcrit", "GPT3_TABLE"]

# GPT-3 model family (Brown et al. 2020, Table 2.1): (parameters, d_model, peak learning rate).
GPT3_TABLE = [
    (125e6, 768, 6.0e-4), (350e6, 1024, 3.0e-4), (760e6, 1536, 2.5e-4), (1.3e9, 2048, 2.0e-4),
    (2.7e9, 2560, 1.6e-4), (6.7e9, 4096, 1.2e-4), (13.0e9, 5140, 1.0e-4), (175.0e9, 12288, 0.6e-4),
]


# ---------------------------------------------------------------- shared set-up

def _source(V: int, order: int, alpha: float, support: int, source_seed: int) -> MarkovSource:
    return MarkovSource(V=V, order=order, alpha=alpha, seed=source_seed, support=support or None)


def _ensemble(src: MarkovSource, seeds: Sequence[int], n_cfg: int, d_hidden: int,
              n_layers: int = 1, d_emb: int = 16, device: str = "cpu"
              ) -> tuple[NGramStack, PairSampler, torch.Tensor]:
    """n_cfg configurations × len(seeds) models, configuration-major (model c·S + s has seed s);
    models with the same seed share their initial weights and their data stream."""
    K = n_cfg * len(seeds)
    model = NGramStack(src.V, src.order, d_emb, [d_hidden] * K, n_layers,
                       [s for _ in range(n_cfg) for s in seeds], device)
    sampler = PairSampler(src, seeds)
    return model, sampler, torch.arange(len(seeds)).repeat(n_cfg)


def _per_config_lr(fns: Sequence[Callable[[int], float]], S: int) -> Callable[[int], torch.Tensor]:
    """One schedule per configuration, repeated over the S seeds."""
    return lambda step: torch.tensor([f(step) for f in fns for _ in range(S)], dtype=torch.float32)


def _constant_lr(lrs: Sequence[float]) -> Callable[[int], torch.Tensor]:
    """The same learning rate at every step, one per member."""
    t = torch.tensor(list(lrs), dtype=torch.float32)
    return lambda step: t


def _adam(model: NGramStack) -> BatchedAdamW:
    """Adam, β = (0.9, 0.95), no weight decay: every sweep here."""
    return BatchedAdamW(model, (0.9, 0.95))


def _grid(x: np.ndarray, S: int) -> np.ndarray:
    """(K,) or (T, K) per-model values -> (..., n_cfg, S)."""
    return x.reshape(*x.shape[:-1], -1, S)


def _target(src: MarkovSource, frac: float) -> float:
    """Loss that closes all but `frac` of the gap between the uniform guess and the entropy."""
    return src.entropy + frac * (math.log(src.V) - src.entropy)


def _diverged_as(x: np.ndarray, fill: float) -> np.ndarray:
    """Losses with diverged (non-finite) runs replaced by `fill`, for plotting."""
    return np.where(np.isfinite(x), x, fill)


def _ci_exp(logs: Sequence[float], unit: str = "", note: str = "") -> Measure:
    """A ratio reported through its log: geometric mean with the t-interval mapped back."""
    m = interval_from_samples(logs)
    return Measure(math.exp(m.value), math.exp(m.lo) if m.lo is not None else None,
                   math.exp(m.hi) if m.hi is not None else None, unit=unit, note=note, n=m.n,
                   samples=[math.exp(v) for v in logs])


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


def batch_size_vs_loss(alpha_B: Pos = KAPLAN["alpha_B"], B_star: Pos = KAPLAN["B_star"],
                       V: PosInt = 16, order: PosInt = 2,
                       alpha: Pos = 0.5, support: int = 4, source_seed: int = 0,
                       d_hidden: PosInt = 64, B: PosInt = 64,
                       lr_grid: list[float] = [1e-3, 3e-3, 1e-2, 3e-2], steps: PosInt = 600,
                       n_checks: PosInt = 12, b_small: PosInt = 8, n_micro: PosInt = 16,
                       seeds: Seeds = [0, 1, 2], device: str = "cpu") -> Evidence:
    """Gradient noise scale B_simple = tr(Σ)/|G|² along training, and Kaplan's B_crit(L)."""
    # closed: the loss decrease that doubles B_crit under Eq. 5.3 is 1 − 2^(−α_B)
    drop = 1.0 - 2.0 ** (-alpha_B)
    L_k = np.geomspace(10.0, 2.0, 30)
    # run: constant-LR Adam ensembles, B_simple measured at n_checks evenly spaced steps
    src = _source(V, order, alpha, support, source_seed)
    S, C = len(seeds), len(lr_grid)
    model, sampler, seed_of = _ensemble(src, seeds, C, d_hidden, device=device)
    probe = PairSampler(src, [s + 777 for s in seeds])
    marks, losses, bs = [], [], []

    def on_eval(step: int, L: torch.Tensor) -> None:
        marks.append(step)
        losses.append(L.detach().cpu().numpy())
        bs.append(_noise_scales(model, src, probe, seed_of, b_small, n_micro).numpy())

    every = max(1, steps // n_checks)
    fit_pairs(model, _adam(model), src, sampler, seed_of,
              _constant_lr([l for l in lr_grid for _ in seeds]), steps, B, every, on_eval=on_eval)
    L, Bs = _grid(np.array(losses), S), _grid(np.array(bs), S)  # (T, C, S)
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
    return Evidence(
        measured={
            "loss_drop_per_doubling": Measure(drop, note="1 − 2^(−α_B): the loss decrease over "
                                              "which Eq. 5.3 doubles B_crit"),
            "slope_bsimple_vs_loss": interval_from_samples(
                slopes, note="d log B_simple / d log L over the run at the tuned LR; "
                             f"Kaplan's B_crit(L) has −1/α_B = {-1 / alpha_B:.2f}"),
            "slope_bsimple_vs_excess_loss": interval_from_samples(
                slopes_red, note="against L − entropy (the reducible part)"),
            "bsimple_growth": _ci_exp(growth, note="B_simple at the end over B_simple at step 0"),
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


# ---------------------------------------------------------------- critical batch size

def _steps_by_batch(src: MarkovSource, seeds: Sequence[int], B: int, lrs: Sequence[float],
                    targets: Sequence[float], d_hidden: int, max_steps: int, fixed: bool,
                    device: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Steps to each target (best LR per seed) -> (n_targets, S), and the (T, C, S) loss curves."""
    S = len(seeds)
    model, sampler, seed_of = _ensemble(src, seeds, len(lrs), d_hidden, device=device)
    tight = min(targets)

    def done(L: np.ndarray) -> bool:  # every seed has some LR at the tight target
        return not fixed and bool((_grid(L, S) <= tight).any(0).all())

    run = fit_pairs(model, _adam(model), src, sampler, seed_of,
                    _constant_lr([l for l in lrs for _ in seeds]), max_steps, B,
                    max(1, min(20, 640 // B)), stop=done)
    curves = _grid(run.loss, S)
    steps = np.array([[min(steps_to_target(run.eval_steps, curves[:, c, s], t)
                           for c in range(len(lrs))) for s in range(S)] for t in targets])
    return steps, curves, run.eval_steps


def critical_batch_size(V: PosInt = 16, order: PosInt = 2, alpha: Pos = 0.5, support: int = 4,
                        source_seed: int = 0, d_hidden: PosInt = 64, d_hidden_alt: PosInt = 256,
                        B_grid: list[int] = [64, 256, 1024, 4096, 16384],
                        B_alt: list[int] = [64, 1024, 16384], lr_centre: Pos = 1e-2,
                        B_ref: PosInt = 64, lr_exponent: NonNeg = 0.5,
                        lr_factors: list[float] = [1 / 3, 1.0, 3.0],
                        target_fracs: list[float] = [0.4, 0.25], max_steps: PosInt = 4000,
                        fixed_steps_large: PosInt = 40, seeds: Seeds = [0, 1, 2],
                        device: str = "cpu") -> Evidence:
    """Steps and examples to a target loss across batch sizes; B_crit = E_min/S_min."""
    src = _source(V, order, alpha, support, source_seed)
    targets = [_target(src, f) for f in target_fracs]
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
    return Evidence(
        measured={
            "scaling_eff_small": interval_from_samples(
                eff_small, note=f"log(S_{B_grid[0]}/S_{B_grid[1]})/log({B_grid[1]}/{B_grid[0]}): "
                                "1 = perfect scaling"),
            "scaling_eff_large": interval_from_samples(
                eff_large, note=f"same for B = {B_grid[-2]} → {B_grid[-1]}"),
            "bcrit_loose": _ci_exp([math.log(f["B_crit"]) for f in fits[loose]], "examples"),
            "bcrit_tight": _ci_exp([math.log(f["B_crit"]) for f in fits[tight]], "examples"),
            "bcrit_growth": _ci_exp(growth, note="B_crit at the tight over the loose target"),
            "bcrit_width_ratio": _ci_exp(
                size, note=f"B_crit of width {d_hidden_alt} over width {d_hidden}, tight target, "
                           f"both fitted on B = {B_alt}"),
            "loss_gap_equal_steps": interval_from_samples(
                gap, unit="nats", note=f"loss at B = {B_grid[-1]} minus the loss B = {B_grid[-2]} "
                                       "reaches, after the same number of steps"),
            "examples_ratio": _ci_exp([math.log(E[-1, s] / E[0, s]) for s in range(S)],
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


def _hyperbola(fit: dict[str, float]) -> tuple[list[float], list[float]]:
    """Points of S = S_min + E_min/B, as (E, S) pairs."""
    Bs = np.geomspace(1, 1e6, 60)
    S = fit["S_min"] + fit["E_min"] / Bs
    return list(Bs * S), list(S)


# ---------------------------------------------------------------- batch size and learning rate

def _optimiser(model: NGramStack, kind: str, momentum: float) -> BatchedAdamW:
    """'sgd' with heavy-ball momentum, or 'adam' (β = 0.9, 0.95)."""
    if kind not in ("sgd", "adam"):
        raise ValueError(f"optimiser must be 'adam' or 'sgd' (got {kind!r})")
    return BatchedAdamW(model, (momentum, 0.0), kind="sgd") if kind == "sgd" else _adam(model)


def batch_allows_lr(optimiser: str = "sgd", momentum: NonNeg = 0.9, V: PosInt = 16,
                    order: PosInt = 2, alpha: Pos = 0.5, support: int = 4, source_seed: int = 0,
                    d_hidden: PosInt = 64, B_grid: list[int] = [16, 64, 256],
                    examples: PosInt = 15360, lr_grid: list[float] = [
                        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28],
                    seeds: Seeds = [0, 1, 2], device: str = "cpu") -> Evidence:
    """LR sweep at several batch sizes with the same number of examples; best LR vs B."""
    src = _source(V, order, alpha, support, source_seed)
    S, C = len(seeds), len(lr_grid)
    finals, best = [], []
    for B in B_grid:
        model, sampler, seed_of = _ensemble(src, seeds, C, d_hidden, device=device)
        opt = _optimiser(model, optimiser, momentum)
        run = fit_pairs(model, opt, src, sampler, seed_of,
                        _constant_lr([l for l in lr_grid for _ in seeds]), examples // B, B, 10 ** 9)
        f = _grid(run.final, S)  # (C, S)
        finals.append(f)
        best.append([best_lr(lr_grid, f[:, s]) for s in range(S)])
    best = np.array(best)  # (n_B, S)
    slopes = [loglog_slope(B_grid, best[:, s]) for s in range(S)]
    figs = [Figure(f"Final loss vs learning rate at {examples} examples ({optimiser})",
                   "learning rate", "population loss (nats)",
                   [Series(f"B = {B}", lr_grid, _diverged_as(finals[i], math.log(V)).mean(1))
                    for i, B in enumerate(B_grid)], xscale="log",
                   caption="A diverged run is drawn at the uniform guess, log V."),
            Figure("Best learning rate vs batch size", "batch size B", "best learning rate",
                   [Series(f"seed {seeds[s]}", B_grid, best[:, s], "points") for s in range(S)]
                   + [Series("linear scaling (slope 1)", B_grid,
                             [best[0].mean() * b / B_grid[0] for b in B_grid], "dashed")],
                   xscale="log", yscale="log")]
    return Evidence(
        measured={
            "slope_lr_vs_batch": interval_from_samples(
                slopes, note="d log η* / d log B; 1 = Goyal et al.'s linear scaling rule"),
            **{f"best_lr_B{B}": _ci_exp(np.log(best[i]).tolist()) for i, B in enumerate(B_grid)},
        },
        figures=figs,
        table=[{"B": B, "steps": examples // B, "seed": seeds[s], "best_lr": float(best[i, s])}
               for i, B in enumerate(B_grid) for s in range(S)],
        notes=[f"Optimiser: {optimiser}" + (f" with momentum {momentum}" if optimiser == "sgd"
                                            else "") + f"; every run sees {examples} examples.",
               "Best LR: the grid minimum of the final loss, refined by a parabola in log LR."],
        seeds=list(seeds),
    )


# ---------------------------------------------------------------- sharp minima

def _teacher_task(n_train: int, n_test: int, d: int, classes: int, label_noise: float,
                  seed: int) -> tuple[torch.Tensor, ...]:
    """Gaussian inputs labelled by a fixed random tanh network, a fraction of labels resampled."""
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(d, 32, generator=g) / d ** 0.5
    W2 = torch.randn(32, classes, generator=g) * 3 / 32 ** 0.5
    X = torch.randn(n_train + n_test, d, generator=g)
    Y = (torch.tanh(X @ W1) @ W2).argmax(1)
    flip = torch.rand(len(Y), generator=g) < label_noise
    Y[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=g)
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def _ce_acc(model: ClassifierStack, X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model mean cross-entropy and accuracy on a whole set."""
    z = model(X.expand(model.K, -1, -1))
    K, n, C = z.shape
    ce = F.cross_entropy(z.reshape(K * n, C), Y.repeat(K), reduction="none").view(K, n).mean(1)
    return ce, (z.argmax(-1) == Y).float().mean(1)


def _fit_until(model: ClassifierStack, X: torch.Tensor, Y: torch.Tensor, B: int, lr: float,
               loss_stop: float, max_epochs: int, seeds: Sequence[int],
               check_examples: int = 32) -> torch.Tensor:
    """Adam on shuffled batches; each model stops once its full training loss is ≤ loss_stop,
    checked every `check_examples` examples whatever the batch size (so both batch sizes stop
    at the same resolution). Returns the epoch (fractional) at which each model stopped."""
    K, n = model.K, len(X)
    opt = BatchedAdamW(model, (0.9, 0.999))  # Adam's defaults, as Keskar et al. used
    no_decay = torch.zeros(K)
    rngs = [np.random.default_rng(s + 50_000) for s in seeds]
    done, epoch = torch.zeros(K, dtype=torch.bool), torch.full((K,), float(max_epochs))
    every, step = max(1, check_examples // B), 0
    for ep in range(max_epochs):
        perm = torch.from_numpy(np.stack([r.permutation(n) for r in rngs]))
        for i in range(0, n - B + 1, B):
            idx = perm[:, i: i + B]
            z = model(X[idx])
            loss = F.cross_entropy(z.reshape(-1, z.shape[-1]), Y[idx].reshape(-1),
                                   reduction="none").view(K, -1).mean(1)
            model.grad.zero_()
            loss.sum().backward()
            opt.step(torch.full((K,), lr) * ~done, no_decay)
            step += 1
            if step % every == 0:
                with torch.no_grad():
                    new = (_ce_acc(model, X, Y)[0] <= loss_stop) & ~done
                epoch[new], done = ep + (i + B) / n, done | new
                if done.all():
                    return epoch
    return epoch


def small_batch_generalises(n_train: PosInt = 256, n_test: PosInt = 4000, d: PosInt = 16,
                            classes: PosInt = 4, label_noise: Frac = 0.1, width: PosInt = 64,
                            B_small: PosInt = 8, B_large: PosInt = 64, lr: Pos = 2e-3,
                            loss_stop: Pos = 0.1, max_epochs: PosInt = 300,
                            hessian_iters: PosInt = 20, data_seed: int = 123,
                            seeds: Seeds = [0, 1, 2, 3, 4], device: str = "cpu") -> Evidence:
    """Small- vs large-batch Adam to the same training loss: top Hessian eigenvalue and test gap.
    (Runs on the CPU whatever `device` says: the models are tiny.)"""
    Xtr, Ytr, Xte, Yte = _teacher_task(n_train, n_test, d, classes, label_noise, data_seed)
    out = {}
    for B in (B_small, B_large):
        model = ClassifierStack([d, width, width, classes], seeds, "cpu")
        ep = _fit_until(model, Xtr, Ytr, B, lr, loss_stop, max_epochs, seeds)
        lam = top_eigenvalue(lambda: _ce_acc(model, Xtr, Ytr)[0], list(model.views.values()), hessian_iters)
        with torch.no_grad():
            (trl, tra), (tel, tea) = _ce_acc(model, Xtr, Ytr), _ce_acc(model, Xte, Yte)
        out[B] = {"epochs": ep, "lam": lam, "train_loss": trl, "train_acc": tra,
                  "test_loss": tel, "test_acc": tea}
    sb, lb = out[B_small], out[B_large]
    log_ratio = torch.log(lb["lam"] / sb["lam"]).tolist()
    acc_gap = (sb["test_acc"] - lb["test_acc"]).tolist()
    loss_gap = (lb["test_loss"] - sb["test_loss"]).tolist()
    figs = [Figure("Sharpness and test accuracy per seed", "top Hessian eigenvalue λ_max",
                   "test accuracy",
                   [Series(f"B = {B}", out[B]["lam"].tolist(), out[B]["test_acc"].tolist(),
                           "points") for B in (B_small, B_large)], xscale="log")]
    return Evidence(
        measured={
            "sharpness_ratio": _ci_exp(log_ratio, note=f"λ_max at B = {B_large} over B = {B_small}"),
            "test_acc_gap": interval_from_samples(acc_gap, note="small-batch minus large-batch "
                                                                "test accuracy"),
            "test_loss_gap": interval_from_samples(loss_gap, unit="nats",
                                                   note="large-batch minus small-batch test loss"),
            "train_loss_small": interval_from_samples(sb["train_loss"].tolist(), unit="nats"),
            "train_loss_large": interval_from_samples(lb["train_loss"].tolist(), unit="nats"),
        },
        figures=figs,
        table=[{"B": B, "seed": seeds[i], **{k: float(v[i]) for k, v in out[B].items()}}
               for B in (B_small, B_large) for i in range(len(seeds))],
        notes=[f"{n_train} training points, {label_noise:.0%} of labels resampled; both batch "
               f"sizes train with Adam at lr {lr:g} until the full training loss is ≤ {loss_stop}."],
        seeds=list(seeds),
    )


# ---------------------------------------------------------------- learning rate vs model size

def lr_vs_model_size(gpt3_lr: list[float] = [r[2] for r in GPT3_TABLE],
                     gpt3_d_model: list[float] = [r[1] for r in GPT3_TABLE],
                     V: PosInt = 16, order: PosInt = 2, alpha: Pos = 0.5, support: int = 4,
                     source_seed: int = 0, widths: list[int] = [16, 32, 64, 128],
                     n_layers: PosInt = 2, B: PosInt = 64, steps: PosInt = 200,
                     warmup_frac: Frac = 0.05,
                     lr_grid: list[float] = [8e-3, 1.6e-2, 3.2e-2, 6.4e-2, 0.128],
                     seeds: Seeds = [0, 1, 2], device: str = "cpu") -> Evidence:
    """Best peak LR vs width (standard parametrisation, Adam, cosine); GPT-3's published LRs."""
    gpt3_slope = loglog_slope(gpt3_d_model, gpt3_lr)
    falls = float(np.mean(np.diff(np.log(gpt3_lr)) <= 0))
    src = _source(V, order, alpha, support, source_seed)
    S, C = len(seeds), len(lr_grid)
    best, finals = [], []
    w = max(1, int(warmup_frac * steps))
    for width in widths:
        model, sampler, seed_of = _ensemble(src, seeds, C, width, n_layers, device=device)
        peaks = torch.tensor([l for l in lr_grid for _ in seeds])
        run = fit_pairs(model, _adam(model), src, sampler, seed_of,
                        lambda t: peaks * lr_at(t, steps, 1.0, "cosine", w), steps, B, 10 ** 9)
        f = _grid(run.final, S)
        finals.append(f)
        best.append([best_lr(lr_grid, f[:, s]) for s in range(S)])
    best = np.array(best)  # (n_widths, S)
    slopes = [loglog_slope(widths, best[:, s]) for s in range(S)]
    figs = [Figure("Final loss vs peak learning rate by width", "peak learning rate",
                   "population loss (nats)",
                   [Series(f"width {wd}", lr_grid, _diverged_as(finals[i], math.log(V)).mean(1))
                    for i, wd in enumerate(widths)], xscale="log",
                   caption="A diverged run is drawn at the uniform guess, log V."),
            Figure("Best peak learning rate vs width", "hidden width", "best learning rate",
                   [Series(f"seed {seeds[s]}", widths, best[:, s], "points") for s in range(S)],
                   xscale="log", yscale="log"),
            Figure("GPT-3 peak learning rates (Brown et al. 2020, Table 2.1)", "d_model",
                   "learning rate", [Series("GPT-3", gpt3_d_model, gpt3_lr, "points")],
                   xscale="log", yscale="log")]
    return Evidence(
        measured={
            "slope_lr_vs_width": interval_from_samples(slopes, note="d log η* / d log width"),
            "gpt3_slope_lr_vs_dmodel": Measure(gpt3_slope, note="least squares over Table 2.1"),
            "gpt3_fraction_falling": Measure(falls, note="share of consecutive GPT-3 sizes whose "
                                                         "LR does not rise"),
            **{f"best_lr_width{wd}": _ci_exp(np.log(best[i]).tolist())
               for i, wd in enumerate(widths)},
        },
        figures=figs,
        table=[{"width": wd, "seed": seeds[s], "best_lr": float(best[i, s])}
               for i, wd in enumerate(widths) for s in range(S)],
        notes=[f"{n_layers} hidden layers of the given width, embedding 16 per token, torch's "
               f"default init; Adam (0.9, 0.95), {steps} steps of {B} examples, cosine to 0 "
               f"after {w} warm-up steps."],
        seeds=list(seeds),
    )


# ---------------------------------------------------------------- schedules

def _schedule_runs(fns: Sequence[Callable[[int], float]], V: int, order: int, alpha: float,
                   support: int, source_seed: int, d_hidden: int, B: int, steps: int,
                   seeds: Sequence[int], device: str, eval_every: int) -> tuple[np.ndarray, list[int]]:
    """Loss curves (T, n_schedules, S) of one ensemble, one schedule per configuration."""
    src = _source(V, order, alpha, support, source_seed)
    model, sampler, seed_of = _ensemble(src, seeds, len(fns), d_hidden, device=device)
    run = fit_pairs(model, _adam(model), src, sampler, seed_of, _per_config_lr(fns, len(seeds)),
                    steps, B, eval_every)
    return _grid(run.loss, len(seeds)), run.eval_steps


def cosine_vs_noam(peak_grid: list[float] = [3e-3, 1e-2, 3e-2, 1e-1], warmup_frac: Frac = 0.05,
                   cosine_min_ratio: NonNeg = 0.0, V: PosInt = 16, order: PosInt = 2,
                   alpha: Pos = 0.5, support: int = 4, source_seed: int = 0,
                   d_hidden: PosInt = 64, B: PosInt = 64, steps: PosInt = 400,
                   seeds: Seeds = [0, 1, 2, 3], device: str = "cpu") -> Evidence:
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
    final = _diverged_as(final, math.log(V))  # a diverged run scores the uniform guess
    j = int(np.argmin(final[:, 0].mean(1)))  # the peak that suits cosine best
    gaps = final[:, 1] - final[:, 0]
    tuned = [best_value(peak_grid, final[:, 1, s]) - best_value(peak_grid, final[:, 0, s])
             for s in range(S)]
    xs = list(range(steps))
    figs = [Figure("Final loss vs peak learning rate", "peak learning rate", "final loss (nats)",
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
    return Evidence(
        measured={
            "noam_minus_cosine": interval_from_samples(
                gaps[j].tolist(), unit="nats",
                note=f"final loss at peak {peak_grid[j]:g}, paired by seed"),
            **{f"noam_minus_cosine_at_{p:g}": interval_from_samples(gaps[i].tolist(), unit="nats")
               for i, p in enumerate(peak_grid)},
            "tuned_noam_minus_tuned_cosine": interval_from_samples(
                tuned, unit="nats", note="each schedule at its own best peak"),
            "worst_gap_over_peaks": Measure(float(gaps.mean(1).min()), unit="nats",
                                            note="smallest seed-mean gap over the peak grid"),
        },
        figures=figs,
        table=[{"peak": p, "seed": seeds[s], "cosine": float(final[i, 0, s]),
                "noam": float(final[i, 1, s])} for i, p in enumerate(peak_grid) for s in range(S)],
        notes=[f"{w} linear warm-up steps; cosine decays to {cosine_min_ratio:g}× peak at step "
               f"{steps}; Noam ends at {fns[1](steps - 1) / peak_grid[0]:.2f}× peak.",
               "The peak used for the decision is chosen on the same seeds (best mean cosine "
               "loss), which slightly favours cosine; the per-peak gaps are listed too."],
        seeds=list(seeds),
    )


def _cosine_hold(step: int, total: int, peak: float, m: float, warmup: int,
                 min_ratio: float) -> float:
    """Cosine over a cycle of m·total steps; past the cycle the rate holds its minimum."""
    if m == 0:  # the constant-LR limit of an infinitely long cycle
        return lr_at(step, total, peak, "constant", warmup)
    if step >= m * total and step >= warmup:
        return peak * min_ratio
    return lr_at(step, total, peak, "cosine", warmup, period=m * total, min_ratio=min_ratio)


def cosine_period(multipliers: list[float] = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
                  min_ratio: NonNeg = 0.1, peak_grid: list[float] = [1e-2, 2.5e-2, 6.3e-2],
                  warmup_frac: Frac = 0.05, V: PosInt = 16, order: PosInt = 2, alpha: Pos = 0.5,
                  support: int = 4, source_seed: int = 0, d_hidden: PosInt = 64, B: PosInt = 64,
                  steps: PosInt = 300, seeds: Seeds = [0, 1, 2, 3],
                  device: str = "cpu") -> Evidence:
    """Final loss vs the cosine cycle length as a multiple of the run (and a constant LR), each
    schedule at its own best peak learning rate."""
    w = max(1, int(warmup_frac * steps))
    ms = list(multipliers) + [0.0]  # 0 stands for an infinite cycle: a constant rate
    fns = [lambda t, m=m, p=p: _cosine_hold(t, steps, p, m, w, min_ratio)
           for m in ms for p in peak_grid]
    curves, _ = _schedule_runs(fns, V, order, alpha, support, source_seed, d_hidden, B, steps,
                               seeds, device, steps)
    S, P = len(seeds), len(peak_grid)
    raw = curves[-1].reshape(len(ms), P, S)
    raw = _diverged_as(raw, math.log(V))
    final = np.array([[best_value(peak_grid, raw[i, :, s]) for s in range(S)]
                      for i in range(len(ms))])  # (n_m + 1, S), tuned peak per schedule
    peaks = np.array([[best_lr(peak_grid, raw[i, :, s]) for s in range(S)] for i in range(len(ms))])
    i1 = ms.index(1.0)

    def gap(m: float) -> Measure:
        return interval_from_samples((final[ms.index(m)] - final[i1]).tolist(), unit="nats",
                                     note=f"final loss at {m:g}× minus 1×, paired by seed")

    best = [best_lr(multipliers, final[:-1, s]) for s in range(S)]
    xs = list(range(steps))
    jp = int(np.argmin(raw[i1].mean(1)))
    figs = [Figure(f"Schedules at peak {peak_grid[jp]:g}: cosine cycle as a multiple of the run",
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
    return Evidence(
        measured={
            "best_multiplier": _ci_exp(np.log(best).tolist(),
                                       note="argmin of final loss per seed (parabola in log m)"),
            "longer_minus_matched": gap(1.5),
            "much_longer_minus_matched": gap(2.0),
            "slightly_longer_minus_matched": gap(1.25),
            "shorter_minus_matched": gap(0.5),
            "constant_minus_matched": interval_from_samples(
                (final[-1] - final[i1]).tolist(), unit="nats", note="constant LR minus 1×"),
        },
        figures=figs,
        table=[{"multiplier": m if m else "constant", "seed": s, "final_loss": float(final[i, j]),
                "best_peak": float(peaks[i, j])}
               for i, m in enumerate(ms) for j, s in enumerate(seeds)],
        notes=[f"{w} warm-up steps, cosine down to {min_ratio:g}× peak over the cycle; a cycle "
               "shorter than the run holds the minimum rate afterwards. Each schedule's loss is "
               f"at its best peak on the grid {peak_grid} (parabola in log peak)."],
        seeds=list(seeds),
    )
