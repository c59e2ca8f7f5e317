"""Scaling laws measured on tiny models: size and data sweeps on a Zipfian Markov source.

The lab: ``ZipfBlockSource`` (V = 64 tokens in 16 'topics' with Zipf weights, order-2 chains,
exact entropy E), MLP language models over the last two tokens with one hidden layer of width h
(N = non-embedding parameters, Kaplan et al. 2020 §2.1), AdamW with a cosine schedule that ends
with each run (Hoffmann et al. 2022 §3.1 stress matching the cycle to the run), and an exact
evaluation (entropy + KL over the source's stationary contexts) so that losses carry no sampling
noise. Many runs train together in one batched stack (``verifiers.lab.grid``). The compute-budget
claims live in ``verifiers.compute_optimal``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples
from principia.fit import fit_power_law
from principia.types import Frac, NonNeg, PosInt, Seeds
from verifiers.lab.grid import GridSetting, Run
from verifiers.lab.grid import run_grid as grid_runs
from verifiers.lab.stacks import mlp_params
from verifiers.lab.text import NAME as TEXT
from verifiers.lab.tuning import recorded, replication, scale
from verifiers.text_runs import text_losses, text_power_law_measures
from verifiers.lab.zipfsource import ZipfBlockSource

__all__ = ["Lab", "run_grid", "lab_scale", "STREAMS", "tokens_to_reach", "loss_power_law", "sample_efficiency",
           "transfer_offset"]


@dataclass(frozen=True)
class Lab:
    """The fixed setting every claim here shares (one source of defaults)."""

    V: int = 64
    blocks: int = 16
    zipf: float = 1.5       # topic z has probability ∝ z^-1.5
    alpha: float = 0.5      # Dirichlet concentration of each row
    order: int = 2
    d_emb: int = 16
    lr: float = 1e-2
    batch: int = 32
    T: int = 16
    source_seed: int = 0

    def source(self) -> ZipfBlockSource:
        return _source(self.V, self.order, self.alpha, self.source_seed, self.blocks, self.zipf)

    def grid(self) -> GridSetting:
        # AdamW β = (0.9, 0.95), no weight decay, cosine to zero over each run, no tuning per size.
        return GridSetting(self.order, self.d_emb, self.lr, (0.9, 0.95), self.batch, self.T)

    def N(self, h: int) -> int:
        """Non-embedding parameters of a width-h model."""
        return mlp_params(self.V, self.order, self.d_emb, h, 1)

    @property
    def data_name(self) -> str:
        return f"markov:zipf-V{self.V}-topics{self.blocks}"

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.T


@lru_cache(maxsize=8)
def _source(V: int, order: int, alpha: float, seed: int, blocks: int, zipf: float) -> ZipfBlockSource:
    return ZipfBlockSource(V=V, order=order, alpha=alpha, seed=seed, blocks=blocks, zipf=zipf)


def run_grid(lab: Lab, specs: Sequence[tuple[int, int, int]], eval_every: int, device: str,
             eval_sources: dict | None = None) -> list[Run]:
    """Train every (h, steps, seed) in `specs` on the lab source (see verifiers.lab.grid)."""
    return grid_runs(lab.source(), lab.grid(), specs, eval_every, eval_sources or {}, device)


# What the replication of these runs is: the evidence's replication.reason.
STREAMS = ("one fixed Zipfian source of known entropy; each seed draws its own token stream and "
           "initialisation (the source itself is not redrawn)")


def lab_scale(lab: Lab, runs: Sequence[Run]) -> dict:
    """Evidence.scale of a grid: its largest N, its longest run's tokens, and the source."""
    return scale(max(r.N for r in runs), max(r.D for r in runs), [lab.data_name])


def tokens_to_reach(r: Run, target: float, tokens_per_step: int) -> float:
    """Tokens at which the eval curve first reaches `target` (log-linear between evaluations)."""
    steps, loss = np.array(r.eval_steps, float), np.array(r.eval_loss)
    hit = np.flatnonzero(loss <= target)
    if hit.size == 0:
        return float("nan")
    i = hit[0]
    if i == 0:
        return steps[0] * tokens_per_step
    s0, s1, l0, l1 = steps[i - 1], steps[i], loss[i - 1], loss[i]
    frac = (l0 - target) / (l0 - l1)
    return float(math.exp(math.log(s0) + frac * (math.log(s1) - math.log(s0)))) * tokens_per_step


# ---------------------------------------------------------------- loss-power-law

def _power_law_measures(N: np.ndarray, L: np.ndarray, E: float, n_boot: int) -> tuple[dict, list]:
    """Fits on all sizes but the last (per seed and pooled; E known and E free) and the last
    size's forecast error as a share of its reducible loss. -> measures, [pooled, pooled free]."""
    mean = L.mean(0)
    pooled = fit_power_law(N[:-1], mean[:-1], E=E, n_boot=n_boot)
    pooled_free = fit_power_law(N[:-1], mean[:-1], n_boot=n_boot)
    fits_known = [fit_power_law(N[:-1], row[:-1], E=E, n_boot=0) for row in L]
    fits_free = [fit_power_law(N[:-1], row[:-1], n_boot=0) for row in L]
    err = [(f.predict(N[-1]) - row[-1]) / (row[-1] - E) for f, row in zip(fits_known, L)]
    err_free = [(f.predict(N[-1]) - row[-1]) / (row[-1] - E) for f, row in zip(fits_free, L)]
    measured = {
        "r2_log_reducible": Measure(pooled.r2, note="R² of log(L − E) on log N for the seed-mean "
                                    "losses, E known", samples=[f.r2 for f in fits_known]),
        "holdout_error": interval_from_samples(err, note=f"(L_pred − L_obs)/(L_obs − E) at N = {N[-1]:.0f}"),
        "alpha_known_E": interval_from_samples([f.alpha for f in fits_known]),
        "alpha_free_E": interval_from_samples([f.alpha for f in fits_free]),
        "E_fit_minus_E": interval_from_samples([f.E - E for f in fits_free], unit="nats",
                                               note="fitted E − exact entropy (E free)"),
        "r2_free_E": interval_from_samples([f.r2 for f in fits_free]),
        "holdout_error_free_E": interval_from_samples(err_free),
        "entropy": Measure(E, unit="nats", note="exact entropy rate of the source"),
    }
    return measured, [pooled, pooled_free]


def _power_law_figure(N: np.ndarray, mean: np.ndarray, E: float, pooled, pooled_free,
                      tokens: int) -> Figure:
    xs = np.geomspace(N[0] / 1.5, N[-1] * 1.5, 40)
    return Figure(
        "Loss against model size at fixed data", "non-embedding parameters N", "loss − E (nats)",
        [Series("runs (mean over seeds)", N[:-1], mean[:-1] - E, "points"),
         Series("held-out larger model", N[-1:], mean[-1:] - E, "points"),
         Series(f"fit, E known: α = {pooled.alpha:.2f}", xs, pooled.predict(xs) - E),
         Series(f"fit, E free: α = {pooled_free.alpha:.2f}", xs, pooled_free.predict(xs) - E,
                "dashed")],
        xscale="log", yscale="log",
        caption=f"{tokens:,} training tokens for every size; E = {E:.4f} nats is the source's "
                "exact entropy.")


def loss_power_law(widths: list[int], holdout: PosInt, steps: PosInt, seeds: Seeds, zipf: NonNeg,
                   n_boot: int, text_k: PosInt, text_bytes: PosInt, device: str) -> Evidence:
    """L(N) at fixed data: fit L = E + A·N^-α on `widths` (E known; also E free) and predict `holdout`.

    Per seed (same data stream for every size): fit with E known, measure R² of log(L − E) on
    log N and the signed error of the predicted held-out loss as a fraction of its reducible
    part L − E. Intervals: Student-t over seeds. The same widths are also trained on real text
    (the standard library's source, bytes, over the last `text_k` bytes), fitted with E free.
    """
    lab = Lab(zipf=zipf)
    E, hs, tokens = lab.source().entropy, sorted(widths) + [holdout], steps * lab.tokens_per_step
    runs = run_grid(lab, [(h, steps, s) for s in seeds for h in hs], 0, device)
    L = np.array([r.loss["train"] for r in runs]).reshape(len(seeds), len(hs))
    N = np.array([lab.N(h) for h in hs], dtype=float)
    measured, (pooled, pooled_free) = _power_law_measures(N, L, E, n_boot)
    L_text = text_losses(hs, steps, list(seeds), text_k, lab.d_emb, lab.lr, lab.batch, lab.T,
                         text_bytes, device)
    text_measured, text_fig = text_power_law_measures(hs, L_text, text_k, lab.d_emb, tokens)
    measured.update(text_measured)
    table = [{"h": h, "N": int(n), "loss_mean": float(m), "loss_minus_E": float(m - E)}
             for h, n, m in zip(hs, N, L.mean(0))]
    notes = [f"Pooled fit (seed means), E known: A = {pooled.A:.3g}, α = {pooled.alpha:.3f} "
             f"{_iv(pooled.intervals.get('alpha'))}, R² = {pooled.r2:.4f}.",
             f"Pooled fit, E free: E = {pooled_free.E:.4f} {_iv(pooled_free.intervals.get('E'))} "
             f"vs exact {E:.4f}; α = {pooled_free.alpha:.3f}."]
    fig = _power_law_figure(N, L.mean(0), E, pooled, pooled_free, tokens)
    ev = Evidence(measured=measured, figures=[fig, text_fig], table=table, notes=notes, seeds=list(seeds))
    sc = lab_scale(lab, runs)
    sc["max_params"] = max(sc["max_params"], mlp_params(256, text_k, lab.d_emb, hs[-1], 1))
    sc["data"].append(TEXT)
    return recorded(ev, replication(len(seeds), 1, STREAMS), sc)


def _iv(iv: tuple[float, float] | None) -> str:
    return f"(95% bootstrap interval {iv[0]:.3g}–{iv[1]:.3g})" if iv else ""


# ---------------------------------------------------------------- sample-efficiency

def sample_efficiency(widths: list[int], steps: PosInt, eval_every: PosInt, seeds: Seeds,
                      device: str) -> Evidence:
    """Tokens each size needs to reach the loss the smallest model ends at (Kaplan et al. Fig. 2).

    Every size trains on the same stream for the same number of tokens; the target is the
    smallest model's final loss in the same seed. Measured per seed: the slope of
    log(tokens to target) on log N, and how many times fewer tokens the largest model needs.
    """
    lab = Lab()
    hs = sorted(widths)
    runs = run_grid(lab, [(h, steps, s) for s in seeds for h in hs], eval_every, device)
    N = np.array([lab.N(h) for h in hs], float)
    slopes, ratios, tok = [], [], []
    for i in range(len(seeds)):
        row = runs[i * len(hs):(i + 1) * len(hs)]
        target = row[0].loss["train"]
        t = np.array([tokens_to_reach(r, target, lab.tokens_per_step) for r in row])
        tok.append(t)
        slopes.append(float(np.polyfit(np.log(N), np.log(t), 1)[0]))
        ratios.append(float(t[0] / t[-1]))
    tok = np.array(tok)
    measured = {
        "tokens_slope": interval_from_samples(slopes, note="d log(tokens to target) / d log N"),
        "tokens_ratio_small_over_large": interval_from_samples(
            ratios, note=f"tokens the N = {N[0]:.0f} model needs ÷ tokens the N = {N[-1]:.0f} model needs"),
    }
    curves = [Series(f"N = {n:.0f}", np.array(r.eval_steps) * lab.tokens_per_step,
                     r.eval_loss) for n, r in zip(N, runs[:len(hs)])]
    curves.append(Series("target (smallest model's final loss)",
                         [lab.tokens_per_step * eval_every, steps * lab.tokens_per_step],
                         [runs[0].loss["train"]] * 2, "dashed"))
    fig1 = Figure("Learning curves by model size (seed 0)", "tokens seen", "loss (nats)", curves,
                  xscale="log", yscale="log")
    fit = np.polyfit(np.log(N), np.log(tok.mean(0)), 1)
    fig2 = Figure("Tokens needed to reach the target loss", "non-embedding parameters N",
                  "tokens to target", [Series("mean over seeds", N, tok.mean(0), "points"),
                                       Series(f"fit: tokens ∝ N^{fit[0]:.2f}", N,
                                              np.exp(np.polyval(fit, np.log(N))))],
                  xscale="log", yscale="log")
    table = [{"h": h, "N": int(n), "tokens_to_target_mean": float(m)}
             for h, n, m in zip(hs, N, tok.mean(0))]
    ev = Evidence(measured=measured, figures=[fig1, fig2], table=table, seeds=list(seeds))
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    lab_scale(lab, runs))


# ---------------------------------------------------------------- transfer-offset

def transfer_offset(widths: list[int], steps: PosInt, sigma: NonNeg, topic_mix: Frac, seeds: Seeds,
                    device: str) -> Evidence:
    """Train on the lab source, evaluate exactly on shifted sources; slope of L_ood on L_id across sizes.

    Kaplan et al. 2020 §3.2.2: the loss on another distribution tracks the in-distribution loss
    with a roughly constant offset, i.e. slope ≈ 1. Three shifts: 'style' (row logits + N(0, σ²)
    noise), 'topic' (topic weights mixed towards uniform) and 'both'. Slope per seed, t-interval.
    """
    lab = Lab()
    src = lab.source()
    shifts = {"style": src.shifted(sigma, 0.0), "topic": src.shifted(0.0, topic_mix),
              "both": src.shifted(sigma, topic_mix)}
    runs = run_grid(lab, [(h, steps, s) for s in seeds for h in widths], 0, device, shifts)
    shape = (len(seeds), len(widths))
    Lid = np.array([r.loss["train"] for r in runs]).reshape(shape)
    measured, series, table = {}, [], []
    for name, q in shifts.items():
        Lood = np.array([r.loss[name] for r in runs]).reshape(shape)
        off = Lood - Lid
        measured[f"slope_{name}"] = interval_from_samples(
            [float(np.polyfit(a, b, 1)[0]) for a, b in zip(Lid, Lood)],
            note=f"least-squares slope of L_{name} on L_train across sizes")
        measured[f"offset_spread_{name}"] = interval_from_samples(
            off.max(1) - off.min(1), unit="nats", note="largest minus smallest offset across sizes")
        measured[f"entropy_{name}"] = Measure(q.entropy, unit="nats")
        series.append(Series(f"{name} shift", Lid.mean(0), Lood.mean(0), "line"))
        table += [{"shift": name, "h": h, "N": lab.N(h), "L_train": float(a), "L_shifted": float(b)}
                  for h, a, b in zip(widths, Lid.mean(0), Lood.mean(0))]
    xs = [float(Lid.min()), float(Lid.max())]
    series.append(Series("slope 1", xs, xs, "dashed"))
    fig = Figure("Shifted-distribution loss against training-distribution loss",
                 "loss on the training distribution (nats)", "loss on a shifted distribution (nats)",
                 series, caption="One point per model size (seed means); parallel to the dashed "
                 "line means a constant offset.")
    notes = [f"Shifts: 'style' adds N(0, {sigma}²) noise to every row's logits; 'topic' mixes the topic "
             f"weights {topic_mix:.0%} towards uniform, so rare topics become common; 'both' does both. "
             f"Training-source entropy {src.entropy:.4f} nats."]
    ev = Evidence(measured=measured, figures=[fig], table=table, notes=notes, seeds=list(seeds))
    return recorded(ev, replication(len(seeds), 1, STREAMS),
                    lab_scale(lab, runs))
