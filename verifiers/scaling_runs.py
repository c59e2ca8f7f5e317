"""Scaling laws measured on tiny models: GPT ladders on real text and a Zipfian Markov source.

loss-power-law, sample-efficiency and transfer-offset train a GPT ladder from a FLOP budget on
both sources (``verifiers.lab.ladder``). ``Lab``/``run_grid`` below are the MLP lab that
``verifiers.compute_optimal`` uses: ``ZipfBlockSource`` (V = 64 tokens in 16 'topics' with Zipf weights, order-2 chains,
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
from principia.types import Frac, NonNeg, Pos, PosInt
from verifiers.lab.grid import GridSetting, Run
from verifiers.lab.grid import run_grid as grid_runs
from verifiers.lab.stacks import mlp_params
from verifiers.lab.ladder import HELD_OUT, Ladder, ladder, markov_name, run_ladder, window_floor, zipf_source
from verifiers.lab.text import NAME as TEXT, TextSource, UnigramText, code_and_prose
from verifiers.lab.tuning import recorded, replication, scale
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
    return scale(max(r.N for r in runs), max(r.D for r in runs), [lab.data_name], min(r.N for r in runs))


def tokens_to_reach(steps: Sequence[int], loss: Sequence[float], target: float,
                    tokens_per_step: int) -> float:
    """Tokens at which an eval curve first reaches `target` (log-linear between evaluations)."""
    steps, loss = np.array(steps, float), np.asarray(loss, float)
    hit = np.flatnonzero(loss <= target)
    if hit.size == 0:
        return float("nan")
    i = hit[0]
    if i == 0:
        return steps[0] * tokens_per_step
    s0, s1, l0, l1 = steps[i - 1], steps[i], loss[i - 1], loss[i]
    frac = (l0 - target) / (l0 - l1)
    return float(math.exp(math.log(s0) + frac * (math.log(s1) - math.log(s0)))) * tokens_per_step


# ---------------------------------------------------------------- GPT ladders on both sources

def _ladder(flops, n_sizes, span, tokens, n_layer, n_head, n_ctx, d_max, lr_grid, batch, eval_seqs,
            draws) -> Ladder:
    return Ladder(float(flops), n_sizes, span, tokens, n_layer, n_head, n_ctx, d_max, tuple(lr_grid),
                  batch, eval_seqs, draws)


def _text(text_bytes: int, unigram: bool) -> tuple[TextSource, TextSource]:
    """(train, held-out) byte sources; `unigram`: the counterfactual with no context to learn."""
    cls = UnigramText if unigram else TextSource
    return cls("train", HELD_OUT, text_bytes), cls("val", HELD_OUT, text_bytes)


def _ladder_table(rungs, lad: Ladder) -> list[dict]:
    return [{"d_model": r.shape.cfg.d_model, "n_layer": r.shape.cfg.n_layer, "n_head": r.shape.cfg.n_head,
             "N": r.shape.N, "tokens": lad.steps(r) * lad.setting().tokens_per_step} for r in rungs]


def _with_lr(table: list[dict], name: str, out: dict) -> list[dict]:
    """The learning rate chosen per draw for each rung (selection windows), for the page."""
    return [{**row, f"{name}_lr_chosen": [float(x) for x in lr]} for row, lr in zip(table, out["lr"].T)]


def _scale(rungs, lad: Ladder, names: list[str]) -> dict:
    return scale(rungs[-1].shape.N, max(lad.steps(r) for r in rungs) * lad.setting().tokens_per_step, names,
                 rungs[0].shape.N)


def _reason(lad: Ladder) -> str:
    return (f"{lad.draws} data draws, one init seed each: on real text a draw is a fresh sample of "
            "training windows and of held-out windows from the one corpus (split by file); on the "
            "Markov source a fresh token stream and held-out windows from one fixed source")


def _floors(src: ZipfBlockSource, out: dict, name: str) -> np.ndarray:
    """Bayes loss of the source on each draw's held-out windows -> (draws, 1)."""
    return np.array([[window_floor(src, w)] for w in out["windows"][name]])


# ---------------------------------------------------------------- loss-power-law

def _forecast_errors(N: np.ndarray, L: np.ndarray) -> tuple[list, list, list]:
    """Per draw: E-free power law and a line in log N fitted on all sizes but the largest; their
    forecast errors at the largest as a share of the whole ladder's gain -> (fits, err_pl, err_line)."""
    fits = [fit_power_law(N[:-1], row[:-1], n_boot=0) for row in L]
    gain = L[:, 0] - L[:, -1]
    err = [(f.predict(N[-1]) - row[-1]) / g for f, row, g in zip(fits, L, gain)]
    lines = [np.polyfit(np.log(N[:-1]), row[:-1], 1) for row in L]
    err_line = [(np.polyval(c, math.log(N[-1])) - row[-1]) / g for c, row, g in zip(lines, L, gain)]
    return fits, err, err_line


def _text_law(N: np.ndarray, L: np.ndarray) -> dict:
    fits, err, err_line = _forecast_errors(N, L)
    full = [fit_power_law(N, row, n_boot=0) for row in L]
    return {
        "text_alpha": interval_from_samples([f.alpha for f in full],
                                            note="α of L = E + A·N^-α, E free, all sizes, real text"),
        "text_E": interval_from_samples([f.E for f in full], unit="nats/byte", note="fitted E (free)"),
        "text_r2": interval_from_samples([f.r2 for f in full], note="R² of the E-free fit in log(L − E)"),
        "text_gain": interval_from_samples(L[:, 0] - L[:, -1], unit="nats/byte",
                                           note=f"held-out loss at N = {N[0]:.0f} minus at N = {N[-1]:.0f}"),
        "text_holdout_error": interval_from_samples(
            err, note=f"(L_pred − L_obs)/(L_first − L_obs) at N = {N[-1]:.0f}: forecast error of the "
                      "law fitted on the smaller sizes, as a share of the whole ladder's gain"),
        "text_line_holdout_error": interval_from_samples(
            err_line, note="the same for a straight line in log N (the no-curvature alternative)"),
        "text_forecast_advantage": interval_from_samples(
            np.abs(err_line) - np.abs(err), note="|line error| − |power-law error|: > 0 when the law forecasts better"),
    }


def _markov_law(N: np.ndarray, L: np.ndarray, floor: np.ndarray) -> tuple[dict, np.ndarray]:
    """Excess over the Bayes loss per size, and the local exponent between neighbouring sizes."""
    X = L - floor
    local = -np.diff(np.log(np.clip(X, 1e-6, None)), axis=1) / np.diff(np.log(N))
    return {
        "markov_alpha_first": interval_from_samples(local[:, 0], note=f"local −dlog(L − E)/dlog N, N = {N[0]:.0f}–{N[1]:.0f}"),
        "markov_alpha_last": interval_from_samples(local[:, -1], note=f"local −dlog(L − E)/dlog N, N = {N[-2]:.0f}–{N[-1]:.0f}"),
        "markov_excess_largest": interval_from_samples(X[:, -1], unit="nats", note="L − E of the largest model"),
        "markov_entropy": Measure(float(floor.mean()), unit="nats", note="Bayes loss on the held-out windows (mean over draws)"),
    }, local


def _regime_note(N: np.ndarray, local: np.ndarray, band: float) -> str:
    """Which sizes are in the power-law regime: local exponent within ±band of the first one."""
    m = local.mean(0)
    ok = np.abs(m - m[0]) <= band * abs(m[0])
    last = len(ok) if ok.all() else int(np.argmin(ok))
    return (f"Known-entropy ladder: local exponents {', '.join(f'{a:.2f}' for a in m)} between "
            f"neighbouring sizes; the power-law regime (local exponent within ±{band:.0%} of the "
            f"first) runs from N = {N[0]:.0f} to N = {N[last]:.0f}" +
            ("." if last == len(m) else f"; beyond it the models approach the entropy and the law stops."))


def _text_figure(N, Lt, fit) -> Figure:
    xs = np.geomspace(N[0] / 1.5, N[-1] * 1.5, 40)
    return Figure("Real text: held-out loss against model size", "non-embedding parameters N",
                  "held-out loss (nats/byte)",
                  [Series("runs (mean over draws)", N, Lt.mean(0), "points"),
                   Series(f"fit, E free: α = {fit.alpha:.2f}, E = {fit.E:.2f}", xs, fit.predict(xs))],
                  xscale="log", caption="GPT ladder on the standard library's bytes; held-out files.")


def _markov_figure(N, Lm, floor) -> Figure:
    return Figure("Known-entropy source: excess loss against model size", "non-embedding parameters N",
                  "L − E (nats)", [Series("runs (mean over draws)", N, (Lm - floor).mean(0), "points")],
                  xscale="log", yscale="log",
                  caption="E is the source's Bayes loss on the same held-out windows.")


def loss_power_law(flops: Pos, n_sizes: PosInt, span: Pos, tokens: PosInt, n_layer: PosInt,
                   n_head: PosInt, n_ctx: PosInt, d_max: PosInt, lr_grid: list[float], batch: PosInt,
                   eval_seqs: PosInt, draws: PosInt, zipf: NonNeg, text_bytes: PosInt,
                   text_unigram: bool, regime_band: Frac, markov_ladder: bool, device: str = "cpu",
                   budget_scale: float = 1.0) -> Evidence:
    """L(N) at fixed data on a GPT ladder: on real text (E free, decided) and, when
    `markov_ladder`, on a known-entropy source (E exact, shown: where the law holds and stops)."""
    lad = _ladder(flops, n_sizes, span, tokens, n_layer, n_head, n_ctx, d_max, lr_grid, batch, eval_seqs, draws)
    rungs = ladder(lad, budget_scale, 1 + markov_ladder)
    N = np.array([r.shape.N for r in rungs], float)
    tr, va = _text(text_bytes, text_unigram)
    ot = run_ladder(rungs, lad, tr, {"text": va}, device)
    Lt = ot["loss"]["text"]
    pooled = fit_power_law(N, Lt.mean(0), n_boot=0)
    table = _with_lr([{**row, "text_loss": float(a)} for row, a in zip(_ladder_table(rungs, lad), Lt.mean(0))],
                     "text", ot)
    ev = Evidence(measured=_text_law(N, Lt), figures=[_text_figure(N, Lt, pooled)], table=table,
                  seeds=list(range(draws)))
    names = [tr.name]
    if markov_ladder:
        names.append(_add_markov_ladder(ev, rungs, lad, zipf, regime_band, device))
    return recorded(ev, replication(draws, 1, _reason(lad)), _scale(rungs, lad, names))


def _add_markov_ladder(ev: Evidence, rungs, lad: Ladder, zipf: float, band: float, device: str) -> str:
    """The same ladder on the known-entropy source, added to `ev` -> the source's name."""
    src = zipf_source(zipf)
    om = run_ladder(rungs, lad, src, {"markov": src}, device)
    N = np.array([r.shape.N for r in rungs], float)
    Lm, floor = om["loss"]["markov"], _floors(src, om, "markov")
    mm, local = _markov_law(N, Lm, floor)
    ev.measured.update(mm)
    ev.figures.append(_markov_figure(N, Lm, floor))
    for row, x in zip(ev.table, (Lm - floor).mean(0)):
        row["markov_loss_minus_E"] = float(x)
    ev.table[:] = _with_lr(ev.table, "markov", om)
    ev.notes.append(_regime_note(N, local, band))
    return markov_name(src)


# ---------------------------------------------------------------- sample-efficiency

def _tokens_needed(L: np.ndarray, curve: np.ndarray, eval_at: tuple, tps: int) -> np.ndarray:
    """Per draw and size: tokens to reach the smallest model's final loss (its own by definition).
    A size that never reaches it is counted at all its tokens (censored: a lower bound)."""
    out = np.array([[tokens_to_reach(eval_at, c, L[d, 0], tps) for c in curve[d]] for d in range(len(L))])
    out[:, 0] = eval_at[-1] * tps
    return np.where(np.isfinite(out), out, eval_at[-1] * tps)


def _efficiency_measures(name: str, N: np.ndarray, tok: np.ndarray) -> dict:
    slopes = [float(np.polyfit(np.log(N), np.log(t), 1)[0]) if np.isfinite(t).all() else float("nan")
              for t in tok]
    return {f"{name}_tokens_slope": interval_from_samples(slopes, note=f"d log(tokens to target)/d log N, {name}"),
            f"{name}_tokens_ratio": interval_from_samples(
                tok[:, 0] / tok[:, -1], note=f"tokens the N = {N[0]:.0f} model needs ÷ the N = {N[-1]:.0f} model's, {name}")}


def _eval_steps(steps: int, n_evals: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, round(steps ** (i / (n_evals - 1)))) for i in range(n_evals)} | {steps}))


def sample_efficiency(flops: Pos, n_sizes: PosInt, span: Pos, tokens: PosInt, n_layer: PosInt,
                      n_head: PosInt, n_ctx: PosInt, d_max: PosInt, lr_grid: list[float], batch: PosInt,
                      eval_seqs: PosInt, draws: PosInt, n_evals: PosInt, zipf: NonNeg,
                      text_bytes: PosInt, text_unigram: bool, device: str = "cpu",
                      budget_scale: float = 1.0) -> Evidence:
    """Tokens each size of a GPT ladder needs to reach the smallest model's final loss
    (Kaplan et al. Fig. 2), on real text and on the known-entropy source; same stream per draw."""
    lad = _ladder(flops, n_sizes, span, tokens, n_layer, n_head, n_ctx, d_max, lr_grid, batch, eval_seqs, draws)
    rungs = ladder(lad, budget_scale, 2)
    N = np.array([r.shape.N for r in rungs], float)
    ev_at = _eval_steps(lad.steps(rungs[0]), n_evals)
    tps, measured, table = lad.setting().tokens_per_step, {}, _ladder_table(rungs, lad)
    tr, va = _text(text_bytes, text_unigram)
    src = zipf_source(zipf)
    curves = []
    for name, train_src, held in (("text", tr, va), ("markov", src, src)):
        o = run_ladder(rungs, lad, train_src, {name: held}, device, ev_at)
        tok = _tokens_needed(o["loss"][name], o["curve"], ev_at, tps)
        measured.update(_efficiency_measures(name, N, tok))
        table = [{**row, f"{name}_tokens_to_target": float(t)} for row, t in zip(_with_lr(table, name, o), np.nanmean(tok, 0))]
        curves.append((name, o["curve"][0]))
    figs = [Figure(f"Learning curves by size ({name}, draw 0)", "tokens seen", "held-out loss (nats)",
                   [Series(f"N = {n:.0f}", np.array(ev_at) * tps, c) for n, c in zip(N, cur)],
                   xscale="log") for name, cur in curves]
    ev = Evidence(measured=measured, figures=figs, table=table, seeds=list(range(draws)))
    return recorded(ev, replication(draws, 1, _reason(lad)), _scale(rungs, lad, [tr.name, markov_name(src)]))


# ---------------------------------------------------------------- transfer-offset

def _slopes(name: str, Lid: np.ndarray, Lood: np.ndarray, unit: str) -> dict:
    off = Lood - Lid
    return {f"slope_{name}": interval_from_samples(
                [float(np.polyfit(a, b, 1)[0]) for a, b in zip(Lid, Lood)],
                note=f"least-squares slope of L_{name} on L_in-distribution across sizes"),
            f"offset_spread_{name}": interval_from_samples(
                off.max(1) - off.min(1), unit=unit, note="largest minus smallest offset across sizes")}


def _shift_sources(sigma: float, topic_mix: float, zipf: float) -> tuple[ZipfBlockSource, dict]:
    src = zipf_source(zipf)
    return src, {"markov": src, "style": src.shifted(sigma, 0.0), "topic": src.shifted(0.0, topic_mix),
                 "both": src.shifted(sigma, topic_mix)}


def _transfer_figure(pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    series = [Series(f"{n} shift", a.mean(0), b.mean(0), "line") for n, a, b in pairs]
    lo = min(float(a.min()) for _, a, _ in pairs)
    hi = max(float(a.max()) for _, a, _ in pairs)
    series.append(Series("slope 1", [lo, hi], [lo, hi], "dashed"))
    return Figure("Shifted-distribution loss against in-distribution loss",
                  "in-distribution held-out loss (nats)", "loss on a shifted distribution (nats)", series,
                  caption="One point per model size (means over draws); parallel to the dashed line "
                          "means a constant offset. Text: code → prose; Markov: style / topic shifts.")


def transfer_offset(flops: Pos, n_sizes: PosInt, span: Pos, tokens: PosInt, n_layer: PosInt,
                    n_head: PosInt, n_ctx: PosInt, d_max: PosInt, lr_grid: list[float], batch: PosInt,
                    eval_seqs: PosInt, draws: PosInt, sigma: NonNeg, topic_mix: Frac, zipf: NonNeg,
                    text_bytes: PosInt, shift_text: str, device: str = "cpu",
                    budget_scale: float = 1.0) -> Evidence:
    """Slope of the shifted-distribution loss on the in-distribution loss across a GPT ladder
    (Kaplan et al. §3.2.2): code → prose on real text; style / topic shifts on the Markov source.
    `shift_text`: 'prose' (pydoc topics) or 'unigram' (the counterfactual: i.i.d. bytes)."""
    lad = _ladder(flops, n_sizes, span, tokens, n_layer, n_head, n_ctx, d_max, lr_grid, batch, eval_seqs, draws)
    rungs = ladder(lad, budget_scale, 2)
    code, prose = code_and_prose(text_bytes, HELD_OUT)
    shifted = prose if shift_text == "prose" else _text(text_bytes, True)[1]
    ot = run_ladder(rungs, lad, TextSource("train", HELD_OUT, text_bytes), {"code": code, "prose": shifted}, device)
    src, shifts = _shift_sources(sigma, topic_mix, zipf)
    om = run_ladder(rungs, lad, src, shifts, device)
    Lc, Lm = ot["loss"]["code"], om["loss"]["markov"]
    measured = _slopes("prose", Lc, ot["loss"]["prose"], "nats/byte")
    for k in ("style", "topic", "both"):
        measured.update(_slopes(k, Lm, om["loss"][k], "nats"))
    pairs = [("prose", Lc, ot["loss"]["prose"])] + [(k, Lm, om["loss"][k]) for k in ("style", "topic", "both")]
    table = [{**row, "L_code": float(a), "L_prose": float(b), "L_markov": float(c)}
             for row, a, b, c in zip(_ladder_table(rungs, lad), Lc.mean(0), ot["loss"]["prose"].mean(0), Lm.mean(0))]
    table = _with_lr(_with_lr(table, "text", ot), "markov", om)
    ev = Evidence(measured=measured, figures=[_transfer_figure(pairs)], table=table, seeds=list(range(draws)),
                  notes=[f"Text shift: '{shift_text}' ({len(shifted.data):,} bytes); held-out code {len(code.data):,} bytes."])
    return recorded(ev, replication(draws, 1, _reason(lad)), _scale(rungs, lad, [TEXT, markov_name(src)]))
