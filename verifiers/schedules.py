"""Learning-rate schedules (GPT members on real text and on a Markov source, held-out loss,
schedules paired by init seed and data stream) and the learning rate against model size
(NGramStack sweeps with exact population loss on Markov sources, plus a GPT ladder on text)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from principia.evidence import Evidence, Figure, Measure, Series, interval_from_samples, interval_over_draws
from principia.types import Frac, NonNeg, Pos, PosInt, Seeds

from .lab.budget import Shape, fit_ladder, gpt_family, scaled
from .lab.lm import LMSetting, train_lm
from .lab.noise import best_lr, best_value, loglog_slope
from .lab.pairs import fit_pairs
from .lab.stacks import mlp_params
from .lab.text import NAME as TEXT_NAME, TextSource
from .lab.train import lr_at
from .lab.mup import MuAdam, mu_ensemble
from .lab.tuning import Layout, nested_seed, recorded, replication, scale
from .lab.sources import corpus, corpus_name
from .lab.sweeps import adam, ci_exp, diverged_as, ensemble, grid, source

__all__ = ["lr_vs_model_size", "cosine_vs_noam", "cosine_period", "GPT3_TABLE"]

DRAWS = ("each data draw is a fresh Markov source (its transition table redrawn) with its own "
         "token streams; init seeds nest inside a draw")

GPT3_TABLE = [
    (125e6, 768, 6.0e-4), (350e6, 1024, 3.0e-4), (760e6, 1536, 2.5e-4), (1.3e9, 2048, 2.0e-4),
    (2.7e9, 2560, 1.6e-4), (6.7e9, 4096, 1.2e-4), (13.0e9, 5140, 1.0e-4), (175.0e9, 12288, 0.6e-4),
]



# ---------------------------------------------------------------- learning rate vs model size

def _best_rates(src, seeds: list[int], widths: list[int], n_layers: int, B: int, steps: int,
                warmup: int, lr_grid: list[float], mup: bool, device: str):
    """Best peak rate per (width, seed) -> (n_widths, S), and final losses per width (C, S).
    mup: μP relative to the first width (Tensor Programs V), else the standard parametrisation."""
    S, C = len(seeds), len(lr_grid)
    best, finals = [], []
    peaks = torch.tensor([l for l in lr_grid for _ in seeds])
    for width in widths:
        if mup:
            model, sampler, seed_of = mu_ensemble(src, seeds, C, width, n_layers, widths[0], device)
            opt = MuAdam(model, (0.9, 0.95))
        else:
            model, sampler, seed_of = ensemble(src, seeds, C, width, n_layers, device=device)
            opt = adam(model)
        run = fit_pairs(model, opt, src, sampler, seed_of,
                        lambda t: peaks * lr_at(t, steps, 1.0, "cosine", warmup), steps, B, 10 ** 9)
        f = grid(run.final, S)
        finals.append(f)
        best.append([best_lr(lr_grid, f[:, s]) for s in range(S)])
    return np.array(best), finals


def _markov_arms(V, order, alpha, support, data_draws, widths, n_layers, B, steps, w, lr_grid,
                 seeds, device) -> dict:
    """arm -> draw -> (best rate (n_widths, S), finals) on fresh Markov sources."""
    arms = {"sp": {}, "mup": {}}
    for d in data_draws:
        src = source(V, order, alpha, support, d)
        for arm in arms:
            arms[arm][d] = _best_rates(src, [nested_seed(d, s) for s in seeds], widths, n_layers, B,
                                       steps, w, lr_grid, arm == "mup", device)
    return arms


def _text_ladder(src: Sources, rungs, setting: LMSetting, lr_grid, steps, draws, seeds, device):
    """Best peak rate (draw, rung, seed) of SP GPTs on text, every rate of the grid as members."""
    best = np.zeros((len(draws), len(rungs), len(seeds)))
    for i, d in enumerate(draws):
        train_src, windows = src.draw("text", d, setting.T, setting.eval_seqs)
        ids = [nested_seed(d, s) for _ in lr_grid for s in seeds]
        peaks = [p for p in lr_grid for _ in seeds]
        for r, rung in enumerate(rungs):
            run = train_lm(rung.shape.cfg, train_src, setting, [steps] * len(ids), peaks, ids, ids,
                           device, windows)
            loss = diverged_as(run.loss.reshape(len(lr_grid), len(seeds)), math.log(src.vocab("text")))
            best[i, r] = [best_lr(lr_grid, loss[:, s]) for s in range(len(seeds))]
    return best


def _text_arm(src: Sources, setting: LMSetting, flops: float, n_sizes: int, span: float,
              shape: tuple[int, int, int], lr_grid, steps: int, draws, seeds, device):
    """SP slope of the best rate against d_model on real text: (measured, table, rungs)."""
    family = gpt_family(src.vocab("text"), setting.T, *shape)  # (n_layer, n_head, d_max)
    rungs = fit_ladder(flops, family, n_sizes, span, runs=len(draws) * len(lr_grid) * len(seeds),
                       tokens=steps * setting.tokens_per_step)
    best = _text_ladder(src, rungs, setting, lr_grid, steps, draws, seeds, device)
    dm = [r.shape.cfg.d_model for r in rungs]
    slope = interval_over_draws({d: [loglog_slope(dm, best[i, :, s]) for s in range(len(seeds))]
                                 for i, d in enumerate(draws)},
                                note="d log η* / d log d_model, SP GPTs on real text")
    table = [{"arm": "sp-gpt-text", "draw": d, "width": dm[r], "N": rungs[r].shape.N,
              "tokens": rungs[r].tokens, "seed": seeds[s], "best_lr": float(best[i, r, s])}
             for i, d in enumerate(draws) for r in range(len(rungs)) for s in range(len(seeds))]
    return {"slope_lr_vs_width_text": slope}, table, rungs


def lr_vs_model_size(gpt3_lr: list[float], gpt3_d_model: list[float], V: PosInt, order: PosInt,
                     alpha: Pos, support: int, data_draws: Seeds, widths: list[int],
                     n_layers: PosInt, B: PosInt, steps: PosInt, warmup_frac: Frac,
                     lr_grid: list[float], seeds: Seeds, text_bytes: PosInt, held_out_frac: Frac,
                     text_flops: Pos, text_sizes: PosInt, text_span: Pos, gpt_layers: PosInt,
                     n_head: PosInt, d_max: PosInt, T: PosInt, text_batch: PosInt, text_steps: PosInt,
                     text_lr_grid: list[float], eval_seqs: PosInt, device: str,
                     budget_scale: float = 1.0) -> Evidence:
    """Best peak LR vs width in the standard parametrisation and in μP (Adam, cosine) on Markov
    sources, SP GPTs on real text, per data draw with nested seeds; GPT-3's published LRs."""
    w = max(1, int(warmup_frac * steps))
    arms = _markov_arms(V, order, alpha, support, data_draws, widths, n_layers, B, steps, w,
                        lr_grid, seeds, device)
    gs = LMSetting(text_batch, T, (0.9, 0.95), 0.0, "cosine", max(1, int(warmup_frac * text_steps)),
                   0.0, eval_seqs)
    src = Sources(text_bytes, held_out_frac, V, order, alpha, support)
    text, text_table, rungs = _text_arm(src, gs, scaled(text_flops, budget_scale), text_sizes,
                                        text_span, (gpt_layers, n_head, d_max), text_lr_grid, text_steps,
                                        data_draws, seeds, device)
    ev = Evidence(measured={**_lr_size_measured(arms, widths, gpt3_d_model, gpt3_lr), **text},
                  figures=_lr_size_figures(arms, widths, lr_grid, gpt3_d_model, gpt3_lr, V),
                  table=[{"arm": arm, "draw": d, "width": wd, "seed": seeds[s], "best_lr": float(b[i, s])}
                         for arm, runs in arms.items() for d, (b, _) in runs.items()
                         for i, wd in enumerate(widths) for s in range(len(seeds))] + text_table,
                  notes=[f"{n_layers} hidden layers, embedding 16 per token; Adam (0.9, 0.95), {steps} "
                         f"steps of {B} examples, cosine to 0 after {w} warm-up steps. μP is taken "
                         f"relative to width {widths[0]}, where both arms are the same model.",
                         f"Real text: SP GPTs ({gpt_layers} layers, {n_head} heads) of d_model "
                         f"{[r.shape.cfg.d_model for r in rungs]} from the budget, AdamW (0.9, 0.95), "
                         f"{text_steps} steps of {text_batch}×{T} bytes, held-out loss on {eval_seqs} windows."],
                  seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), DRAWS + "; " + GPT_DRAWS),
                    scale(max(mlp_params(V, order, 16, max(widths), n_layers), rungs[-1].shape.N),
                          max(steps * B, rungs[-1].tokens), [f"markov:V{V}-order{order}", TEXT_NAME],
                          min(mlp_params(V, order, 16, min(widths), n_layers), rungs[0].shape.N)))


def _lr_size_measured(arms: dict, widths, gpt3_d_model, gpt3_lr) -> dict:
    slope = {arm: interval_over_draws(
        {d: [loglog_slope(widths, b[:, s]) for s in range(b.shape[1])] for d, (b, _) in runs.items()},
        note=f"d log η* / d log width, {'μP' if arm == 'mup' else 'standard parametrisation'}")
        for arm, runs in arms.items()}
    return {
        "slope_lr_vs_width": slope["sp"], "slope_lr_vs_width_mup": slope["mup"],
        "gpt3_slope_lr_vs_dmodel": Measure(loglog_slope(gpt3_d_model, gpt3_lr), note="least squares over Table 2.1"),
        "gpt3_fraction_falling": Measure(float(np.mean(np.diff(np.log(gpt3_lr)) <= 0)),
                                         note="share of consecutive GPT-3 sizes whose LR does not rise"),
        **{f"best_lr_{arm}_width{wd}": ci_exp([float(np.log(b[i]).mean()) for b, _ in runs.values()])
           for arm, runs in arms.items() for i, wd in enumerate(widths)},
    }


def _lr_size_figures(arms: dict, widths, lr_grid, gpt3_d_model, gpt3_lr, V) -> list[Figure]:
    first = {arm: next(iter(runs.values())) for arm, runs in arms.items()}
    name = {"sp": "SP", "mup": "μP"}
    sweeps = [Figure(f"Final loss vs peak learning rate by width, {name[arm]} (first draw)",
                     "peak learning rate", "population loss (nats)",
                     [Series(f"width {wd}", lr_grid, diverged_as(f[i], math.log(V)).mean(1))
                      for i, wd in enumerate(widths)], xscale="log",
                     caption="A diverged run is drawn at the uniform guess, log V.")
              for arm, (_, f) in first.items()]
    gm = lambda runs: np.exp(np.mean([np.log(b).mean(1) for b, _ in runs.values()], axis=0))
    best = Figure("Best peak learning rate vs width (geometric mean over draws)", "hidden width",
                  "best learning rate", [Series(name[arm], widths, gm(runs), "points")
                                         for arm, runs in arms.items()], xscale="log", yscale="log")
    gpt3 = Figure("GPT-3 peak learning rates (Brown et al. 2020, Table 2.1)", "d_model", "learning rate",
                  [Series("GPT-3", gpt3_d_model, gpt3_lr, "points")], xscale="log", yscale="log")
    return sweeps + [best, gpt3]


# ---------------------------------------------------------------- GPT members on text and Markov

GPT_DRAWS = ("a data draw on real text is a fresh sample of training windows (each member's own "
             "token stream) and of held-out windows (the corpus is one); on the Markov source it "
             "is a fresh source (transition table redrawn) with its own streams and held-out "
             "windows; init seeds nest inside a draw")


@dataclass(frozen=True)
class Sources:
    """This module's flat YAML settings of the two sources (``lab.sources`` does the drawing)."""

    text_bytes: int
    held_out_frac: float
    V: int
    order: int
    alpha: float
    support: int

    def data(self) -> dict:
        return {"text": {"held_out_frac": self.held_out_frac, "train_bytes": self.text_bytes,
                         "val_bytes": self.text_bytes},
                "markov": {"V": self.V, "order": self.order, "alpha": self.alpha, "support": self.support}}

    def vocab(self, kind: str) -> int:
        return TextSource.V if kind == "text" else self.V

    def name(self, kind: str) -> str:
        return corpus_name(kind, self.data())

    def draw(self, kind: str, d: int, T: int, n_eval: int):
        """(training source, held-out windows) of draw d; windows differ between draws."""
        c = corpus(kind, d, self.data(), T, n_eval, windows_seed=WINDOWS + d)
        return c.src, c.windows


WINDOWS = 10 ** 6  # held-out windows' seed offset, apart from the members' stream seeds


def _shape(V: int, T: int, n_layer: int, n_head: int, d_max: int, flops: float, runs: int,
           tokens: int) -> Shape:
    """The largest GPT of the family whose `runs` runs of `tokens` tokens fit in `flops`."""
    family = gpt_family(V, T, n_layer, n_head, d_max)
    return fit_ladder(flops, family, 1, 0.0, runs=runs, tokens=tokens)[0].shape


def _train_at_rates(cfg, src, setting: LMSetting, rates: torch.Tensor, seeds: Sequence[int],
                    streams: Sequence[int], device: str, windows: torch.Tensor) -> np.ndarray:
    """``lm.train_lm`` with per-step rates (steps, K) in place of an lr_at schedule by name (for
    schedules lr_at cannot write, such as a cosine cycle that holds its minimum) -> (K,) loss."""
    K = len(seeds)
    return train_lm(cfg, src, setting, [len(rates)] * K, [0.0] * K, seeds, streams, device, windows,
                    rates=lambda step: rates[step]).loss


def _gpt_scale(shapes: dict, tokens: int, sources: Sources) -> dict:
    return scale(max(s.N for s in shapes.values()), tokens, [sources.name(k) for k in shapes])


def _shape_rows(shapes: dict, tokens: int) -> list[dict]:
    return [{"source": k, "d_model": s.cfg.d_model, "n_layer": s.cfg.n_layer, "N": s.N,
             "tokens": tokens} for k, s in shapes.items()]


# ---------------------------------------------------------------- cosine vs Noam

SCHEDULES = ("cosine", "noam")


def _noam_source(kind, sources, shape, setting, peak_grid, steps, draws, seeds, device, n_eval):
    """Held-out loss (draw, schedule, peak, seed) of one source; both schedules share init seeds,
    streams and windows, so every comparison is paired."""
    out = []
    for d in draws:
        train_src, windows = sources.draw(kind, d, setting.T, n_eval)
        seeds_d = [nested_seed(d, s) for s in seeds]
        members = [(p, s) for p in peak_grid for s in seeds_d]
        per = []
        for sched in SCHEDULES:
            run = train_lm(shape.cfg, train_src, replace(setting, schedule=sched),
                           [steps] * len(members), [p for p, _ in members],
                           [s for _, s in members], [s for _, s in members], device, windows)
            per.append(run.loss.reshape(len(peak_grid), len(seeds)))
        out.append(per)
    return diverged_as(np.array(out), math.log(sources.vocab(kind)))  # a diverged run: uniform


def _tuned(final: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """(draw, arm, grid, seed) -> (draw, arm, seed): each arm's loss at its own best grid value."""
    D, A, _, S = final.shape
    return np.array([[[best_value(grid, final[d, a, :, s]) for s in range(S)] for a in range(A)]
                     for d in range(D)])


def _noam_measured(k: str, final: np.ndarray, peak_grid, draws) -> dict:
    tuned = _tuned(final, peak_grid)
    gap = lambda x: {d: x[i].tolist() for i, d in enumerate(draws)}
    return {
        f"tuned_noam_minus_tuned_cosine_{k}": interval_over_draws(
            gap(tuned[:, 1] - tuned[:, 0]), unit="nats",
            note=f"{k}: held-out loss, each schedule at its own best peak; interval over draws"),
        **{f"noam_minus_cosine_at_{p:g}_{k}": interval_over_draws(
            gap(final[:, 1, i] - final[:, 0, i]), unit="nats")
           for i, p in enumerate(peak_grid)},
    }


def _tuning_rows(k: str, final: np.ndarray, grid, arm_names) -> list[dict]:
    """The grid value each arm chose per (draw, seed) replicate (``tuning.Layout``)."""
    D, A, P, S = final.shape
    arms = Layout(n_arms=A, n_reps=D * S, grid=tuple(grid))
    tuning = arms.evidence("peak learning rate", arms.choose(final.transpose(1, 0, 3, 2).ravel()),
                           [str(a) for a in arm_names])
    return [{"source": k, "arm": a, "replicate": r, "chosen_peak": v}
            for a, vs in tuning["chosen"].items() for r, v in enumerate(vs)]


def _noam_figures(finals: dict, peak_grid, setting: LMSetting, steps: int) -> list[Figure]:
    xs = list(range(steps))
    p = peak_grid[len(peak_grid) // 2]
    rates = [Figure(f"The two schedules at peak {p:g}", "step", "learning rate",
                    [Series(s, xs, [lr_at(t, steps, p, s, setting.warmup, None, setting.min_ratio
                                          if s == "cosine" else 0.0) for t in xs])
                     for s in SCHEDULES])]
    return rates + [Figure(f"Held-out loss vs peak learning rate, {k} (mean over draws and seeds)",
                           "peak learning rate", "held-out loss (nats)",
                           [Series(s, peak_grid, f[:, a].mean(axis=(0, 2)),
                                   "line" if a == 0 else "dashed")
                            for a, s in enumerate(SCHEDULES)], xscale="log")
                    for k, f in finals.items()]


def _noam_table(finals: dict, peak_grid, draws, seeds) -> list[dict]:
    return [{"source": k, "draw": d, "seed": s, "peak": p, "schedule": sch,
             "loss": float(f[i, a, j, t])} for k, f in finals.items()
            for i, d in enumerate(draws) for a, sch in enumerate(SCHEDULES)
            for j, p in enumerate(peak_grid) for t, s in enumerate(seeds)]


def cosine_vs_noam(sources: list[str], peak_grid: list[float], warmup_frac: Frac,
                   cosine_min_ratio: NonNeg, text_bytes: PosInt, held_out_frac: Frac, V: PosInt,
                   order: PosInt, alpha: Pos, support: PosInt, n_layer: PosInt, n_head: PosInt,
                   d_max: PosInt, T: PosInt, batch: PosInt, betas: list[float], steps: PosInt,
                   flops: Pos, eval_seqs: PosInt, data_draws: Seeds, seeds: Seeds, device: str,
                   budget_scale: float = 1.0) -> Evidence:
    """Held-out loss of GPT members under cosine decay and under Noam's inverse square root,
    each schedule at its own best peak, on real text and on a Markov source."""
    src = Sources(text_bytes, held_out_frac, V, order, alpha, support)
    setting = LMSetting(batch, T, tuple(betas), 0.0, "cosine", max(1, int(warmup_frac * steps)),
                        cosine_min_ratio, eval_seqs)
    runs, tokens = 2 * len(peak_grid) * len(data_draws) * len(seeds), steps * setting.tokens_per_step
    shapes = {k: _shape(src.vocab(k), T, n_layer, n_head, d_max, scaled(flops, budget_scale), runs,
                        tokens) for k in sources}
    finals = {k: _noam_source(k, src, shapes[k], setting, peak_grid, steps, data_draws, seeds,
                              device, eval_seqs) for k in sources}
    ev = Evidence(
        measured={n: m for k, f in finals.items() for n, m in
                  _noam_measured(k, f, peak_grid, data_draws).items()},
        figures=_noam_figures(finals, peak_grid, setting, steps),
        table=_shape_rows(shapes, tokens) + _noam_table(finals, peak_grid, data_draws, seeds)
        + [row for k, f in finals.items() for row in _tuning_rows(k, f, peak_grid, SCHEDULES)],
        notes=[f"GPT members ({n_layer} layers, {n_head} heads; the largest width that the budget "
               f"holds, per source), AdamW {tuple(betas)} without weight decay, {steps} steps of "
               f"{batch}×{T} tokens, {setting.warmup} linear warm-up steps; cosine falls to "
               f"{cosine_min_ratio:g}× peak at the last step, Noam as (warm-up/step)^0.5. "
               f"Held-out loss on {eval_seqs} fixed windows per draw."],
        seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), GPT_DRAWS),
                    _gpt_scale(shapes, tokens, src))


# ---------------------------------------------------------------- cosine period

def _cosine_hold(step: int, total: int, peak: float, m: float, warmup: int,
                 min_ratio: float) -> float:
    """Cosine over a cycle of m·total steps; past the cycle the rate holds its minimum."""
    if step >= m * total and step >= warmup:
        return peak * min_ratio
    return lr_at(step, total, peak, "cosine", warmup, period=m * total, min_ratio=min_ratio)


def _period_rates(ms, peak_grid, S: int, steps: int, w: int, min_ratio: float) -> torch.Tensor:
    """(steps, K) rates of members ordered (multiplier, peak, seed)."""
    cols = [[_cosine_hold(t, steps, p, m, w, min_ratio) for t in range(steps)]
            for m in ms for p in peak_grid for _ in range(S)]
    return torch.tensor(cols, dtype=torch.float32).T.contiguous()


def _period_source(kind, sources, shape, setting, rates, ms, peak_grid, draws, seeds, device, n_eval):
    """Held-out loss (draw, multiplier, peak, seed) of one source, paired within a draw."""
    out = []
    for d in draws:
        train_src, windows = sources.draw(kind, d, setting.T, n_eval)
        ids = [nested_seed(d, s) for _ in ms for _ in peak_grid for s in seeds]
        loss = _train_at_rates(shape.cfg, train_src, setting, rates, ids, ids, device, windows)
        out.append(loss.reshape(len(ms), len(peak_grid), len(seeds)))
    return diverged_as(np.array(out), math.log(sources.vocab(kind)))


def _period_measured(k: str, final: np.ndarray, ms, peak_grid, draws) -> dict:
    tuned = _tuned(final, peak_grid).mean(2)  # (draw, multiplier): seeds averaged in a draw
    i1 = ms.index(1.0)
    gap = lambda m: interval_from_samples((tuned[:, ms.index(m)] - tuned[:, i1]).tolist(),
                                          unit="nats", note=f"{k}: {m:g}× minus 1×, over draws")
    return {f"best_multiplier_{k}": ci_exp([math.log(best_lr(ms, t)) for t in tuned],
                                           note=f"{k}: argmin over the cycle grid per draw "
                                                "(parabola in log m), each at its best peak"),
            **{f"{name}_minus_matched_{k}": gap(m) for name, m in
               (("shorter", min(ms)), ("longer", 1.5), ("much_longer", max(ms))) if m in ms}}


def _period_figures(finals: dict, ms, peak_grid, steps, w, min_ratio) -> list[Figure]:
    xs, p = list(range(steps)), peak_grid[len(peak_grid) // 2]
    rates = Figure(f"Schedules at peak {p:g}: cosine cycle as a multiple of the run", "step",
                   "learning rate", [Series(f"{m:g}×", xs, [_cosine_hold(t, steps, p, m, w, min_ratio)
                                                            for t in xs],
                                            "line" if m == 1.0 else "dashed") for m in ms])
    return [rates] + [Figure(f"Held-out loss vs cycle multiplier, {k} (each at its best peak)",
                             "cycle length / run length", "held-out loss (nats)",
                             [Series(f"draw {i}", ms, t, "points") for i, t in
                              enumerate(_tuned(f, peak_grid).mean(2))], xscale="log")
                      for k, f in finals.items()]


def cosine_period(sources: list[str], multipliers: list[float], min_ratio: NonNeg,
                  peak_grid: list[float], warmup_frac: Frac, text_bytes: PosInt,
                  held_out_frac: Frac, V: PosInt, order: PosInt, alpha: Pos, support: PosInt,
                  n_layer: PosInt, n_head: PosInt, d_max: PosInt, T: PosInt, batch: PosInt,
                  betas: list[float], steps: PosInt, flops: Pos, eval_seqs: PosInt,
                  data_draws: Seeds, seeds: Seeds, device: str, budget_scale: float = 1.0) -> Evidence:
    """Held-out loss of GPT members against the cosine cycle length as a multiple of the run,
    each cycle at its own best peak, on real text and on a Markov source."""
    src, ms = Sources(text_bytes, held_out_frac, V, order, alpha, support), list(multipliers)
    setting = LMSetting(batch, T, tuple(betas), 0.0, "cosine", max(1, int(warmup_frac * steps)),
                        min_ratio, eval_seqs)
    runs = len(ms) * len(peak_grid) * len(data_draws) * len(seeds)
    tokens = steps * setting.tokens_per_step
    shapes = {k: _shape(src.vocab(k), T, n_layer, n_head, d_max, scaled(flops, budget_scale), runs,
                        tokens) for k in sources}
    rates = _period_rates(ms, peak_grid, len(seeds), steps, setting.warmup, min_ratio)
    finals = {k: _period_source(k, src, shapes[k], setting, rates, ms, peak_grid, data_draws,
                                seeds, device, eval_seqs) for k in sources}
    ev = Evidence(
        measured={n: m for k, f in finals.items()
                  for n, m in _period_measured(k, f, ms, peak_grid, data_draws).items()},
        figures=_period_figures(finals, ms, peak_grid, steps, setting.warmup, min_ratio),
        table=_shape_rows(shapes, tokens) + [
            {"source": k, "draw": d, "multiplier": m, "peak": p, "seed": s, "loss": float(f[i, a, j, t])}
            for k, f in finals.items() for i, d in enumerate(data_draws) for a, m in enumerate(ms)
            for j, p in enumerate(peak_grid) for t, s in enumerate(seeds)]
        + [row for k, f in finals.items() for row in _tuning_rows(k, f, peak_grid, ms)],
        notes=[f"GPT members ({n_layer} layers, {n_head} heads; the largest width the budget holds, "
               f"per source), AdamW {tuple(betas)} without weight decay, {steps} steps of "
               f"{batch}×{T} tokens, {setting.warmup} warm-up steps, cosine down to {min_ratio:g}× "
               "peak over the cycle; a cycle shorter than the run holds the minimum afterwards. "
               f"Each cycle at its best peak on the grid {list(peak_grid)} (parabola in log peak)."],
        seeds=list(seeds))
    return recorded(ev, replication(len(data_draws), len(seeds), GPT_DRAWS),
                    _gpt_scale(shapes, tokens, src))
