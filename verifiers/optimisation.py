"""Batch size, learning rate and schedules, measured on tiny language models.

Every run trains small MLP next-token models together (verifiers.lab.pairs) on an order-2
Markov source whose entropy is known, and scores them by the exact population loss (entropy + KL),
so differences between configurations are not hidden by evaluation noise. Configurations are
paired by seed: the same seed gives the same initial weights and the same data stream.
Batch sizes B count examples, i.e. predicted tokens.
"""
from __future__ import annotations

import math
import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.formulas import KAPLAN
from principia.types import Pos, PosInt, Seeds

from .lab.data import MarkovSource
from .lab.noise import loglog_slope, noise_scale
from .lab.pairs import PairSampler, fit_pairs, pair_batches, population_loss
from .lab.stacks import NGramStack, mlp_params
from .lab.tuning import recorded, replication, scale
from .lab.sweeps import STREAMS, adam, ci_exp, constant_lr, ensemble, grid, source

__all__ = ["batch_size_vs_loss", "kaplan_bcrit"]


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


def _bsl_sweep(src, seeds, lr_grid, d_hidden, B, steps, n_checks, b_small, n_micro, device):
    """Constant-LR Adam ensembles; B_simple measured at n_checks evenly spaced steps."""
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
    return marks, grid(np.array(losses), S), grid(np.array(bs), S)  # (T, C, S)


def _bsl_fit(L, Bs, src, S):
    """Tuned LR per seed, and the log-log slopes and growth of B_simple at it."""
    best = np.nanargmin(np.where(np.isfinite(L[-1]), L[-1], np.inf), axis=0)  # tuned LR per seed
    slopes, slopes_red, growth = [], [], []
    for s in range(S):
        Ls, bss = L[:, best[s], s], Bs[:, best[s], s]
        slopes.append(loglog_slope(Ls, bss))
        slopes_red.append(loglog_slope(Ls - src.entropy, bss))
        growth.append(math.log(bss[-1] / bss[0]))
    return best, slopes, slopes_red, growth


def _bsl_figures(L, Bs, best, seeds, lr_grid, L_k, B_star, alpha_B):
    S, C = len(seeds), len(lr_grid)
    return [
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


def _bsl_measured(drop, slopes, slopes_red, growth, B_star, alpha_B):
    return {
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
    }


def _bsl_notes(src, V, B_star, alpha_B):
    return [f"Source entropy {src.entropy:.3f} nats; uniform guess {math.log(V):.3f}.",
            "B_simple uses the exact |G|² (the data distribution is known) and the App. A "
            "two-batch estimate of tr Σ.",
            f"Kaplan's B_crit at L = 4, 3, 2 nats: " + ", ".join(
                f"{kaplan_bcrit(l, B_star, alpha_B):.3g}" for l in (4, 3, 2)) + " tokens."]


def batch_size_vs_loss(alpha_B: Pos, B_star: Pos, V: PosInt, order: PosInt, alpha: Pos,
                       support: int, source_seed: int, d_hidden: PosInt, B: PosInt,
                       lr_grid: list[float], steps: PosInt, n_checks: PosInt, b_small: PosInt,
                       n_micro: PosInt, seeds: Seeds, device: str) -> Evidence:
    """Gradient noise scale B_simple = tr(Σ)/|G|² along training, and Kaplan's B_crit(L)."""
    # closed: the loss decrease that doubles B_crit under Eq. 5.3 is 1 − 2^(−α_B)
    drop = 1.0 - 2.0 ** (-alpha_B)
    L_k = np.geomspace(10.0, 2.0, 30)
    src = source(V, order, alpha, support, source_seed)
    S = len(seeds)
    marks, L, Bs = _bsl_sweep(src, seeds, lr_grid, d_hidden, B, steps, n_checks, b_small,
                              n_micro, device)
    best, slopes, slopes_red, growth = _bsl_fit(L, Bs, src, S)
    ev = Evidence(
        measured=_bsl_measured(drop, slopes, slopes_red, growth, B_star, alpha_B),
        figures=_bsl_figures(L, Bs, best, seeds, lr_grid, L_k, B_star, alpha_B),
        table=[{"seed": seeds[s], "lr": lr_grid[best[s]], "step": marks[t],
                "loss": float(L[t, best[s], s]), "B_simple": float(Bs[t, best[s], s])}
               for s in range(S) for t in range(len(marks))],
        notes=_bsl_notes(src, V, B_star, alpha_B),
        seeds=list(seeds),
    )
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    scale(mlp_params(V, order, 16, d_hidden, 1), steps * B, [f'markov:V{V}-order{order}']))
